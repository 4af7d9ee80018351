package slsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Defaults applied by New to a zero Config field.
const (
	// DefaultImportDuration is the simulated time the copy phase of an image
	// import takes once the image has been verified. IBM says an import takes
	// "several minutes to an hour" (../../../docs/CLOUD.md section 7.2).
	DefaultImportDuration = 10 * time.Minute
	// DefaultProvisionDuration is the simulated time from an accepted order to
	// a virtual server with a provisionDate.
	DefaultProvisionDuration = 5 * time.Minute
	// DefaultRegion is used in CRNs and Activity Tracker events when
	// Config.Region is empty.
	DefaultRegion = "us-south"
)

// DefaultCopyDuration is the simulated time addLocations takes to copy a
// template to another data center (invented; IBM gives no figure).
const DefaultCopyDuration = 5 * time.Minute

// DefaultDatacenters returns the data centers a guest can be ordered in when
// Config.Datacenters is empty: the import data centers of
// DefaultImportDatacenters plus ams03 and syd05, so that a template can be
// copied to a data center it was not imported into.
func DefaultDatacenters() []string {
	return []string{"dal13", "wdc07", "lon02", "fra02", "tok02", "syd04", "ams03", "syd05"}
}

// DefaultImportDatacenters returns the data center an import from each COS
// region lands in. IBM documents four: "US-South (DAL13), US-East (WDC07),
// EU-Great Britain (LON02), EU-Germany (FRA02), AP-Japan, and AU-Sydney"
// (image-templates import-image.md, Table 1, "Location"). It names no data
// center for AP-Japan and AU-Sydney: tok02 (jp-tok) and syd04 (au-syd) are
// invented.
func DefaultImportDatacenters() map[string]string {
	return map[string]string{
		"us-south": "dal13", "us-east": "wdc07", "eu-gb": "lon02", "eu-de": "fra02",
		"jp-tok": "tok02", "au-syd": "syd04",
	}
}

// Config configures a Server. IAMTokenURL, S3URL and the KMS URLs are what the
// simulated backplane calls during an import, exactly as the real one calls
// IBM Cloud; leave a URL empty and every import that needs it fails with an
// internal-error reason.
type Config struct {
	IAMTokenURL string // full token URL (…/identity/token)
	S3URL       string // Cloud Object Storage S3 endpoint (path-style)
	KMSURL      string // Key Protect base URL (without /api/v2)
	HPCSURL     string // Hyper Protect Crypto Services key-management base URL

	Identity simcore.Identity   // required: resolves API keys and tokens
	Authz    simcore.Authorizer // required: service-to-service authorizations
	Events   simcore.EventSink  // optional: Activity Tracker events

	Clock       *simcore.Clock // optional: defaults to real time
	Logger      *slog.Logger   // optional: defaults to a discarding logger
	Region      string         // defaults to DefaultRegion
	Datacenters []string       // defaults to DefaultDatacenters()
	// ImportDatacenters maps a COS region to the data center its imports
	// land in (default DefaultImportDatacenters). An import from another
	// region is refused. Each is added to Datacenters.
	ImportDatacenters map[string]string
	// DeleteFailedImports removes a template whose import failed (getObject
	// then answers SoftLayer_Exception_ObjectNotFound) instead of showing it
	// with the invented ERROR status. IBM documents neither.
	DeleteFailedImports bool
	// CopyDuration is the simulated time addLocations takes (default
	// DefaultCopyDuration).
	CopyDuration time.Duration

	// ImportDuration is the simulated time an import transaction spends
	// copying the verified image (default DefaultImportDuration).
	ImportDuration time.Duration
	// ProvisionDuration is the simulated time a guest takes to provision
	// (default DefaultProvisionDuration).
	ProvisionDuration time.Duration

	// HTTPClient is used for the backplane's IAM and S3 calls. Nil means a
	// client with a 60-second timeout.
	HTTPClient *http.Client
}

// Server is the simulated SoftLayer API. Create it with New, serve
// Handler, and Close it to stop the background transactions.
type Server struct {
	cfg   Config
	log   *slog.Logger
	clock *simcore.Clock
	http  *http.Client
	locs  map[string]int // datacenter name -> location id

	ctx    context.Context // cancelled by Close; parent of every background task
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	ids       idCounters
	accounts  map[string]*account // by IBM Cloud account ID
	users     map[string]int      // IAM ID -> SoftLayer user id
	templates map[int]*template
	guests    map[int]*guest
	events    []eventRecord

	progressMu sync.Mutex
	progress   chan struct{} // closed and replaced by signal
}

type idCounters struct {
	account, user, template, guest, tx, order, orderItem, blockDevice int
}

// account is a classic infrastructure account linked to an IBM Cloud account.
type account struct {
	id  int
	ibm string
}

// New validates cfg and returns a Server. It starts nothing until a request
// arrives.
func New(cfg Config) (*Server, error) {
	if cfg.Identity == nil {
		return nil, errors.New("slsim: Config.Identity is required")
	}
	if cfg.Authz == nil {
		return nil, errors.New("slsim: Config.Authz is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = simcore.NewClock(time.Now(), 1)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if len(cfg.Datacenters) == 0 {
		cfg.Datacenters = DefaultDatacenters()
	}
	cfg.Datacenters = append([]string(nil), cfg.Datacenters...)
	if cfg.ImportDatacenters == nil {
		cfg.ImportDatacenters = DefaultImportDatacenters()
	}
	cfg.ImportDatacenters = maps.Clone(cfg.ImportDatacenters)
	for _, region := range slices.Sorted(maps.Keys(cfg.ImportDatacenters)) {
		if dc := cfg.ImportDatacenters[region]; !slices.Contains(cfg.Datacenters, dc) {
			cfg.Datacenters = append(cfg.Datacenters, dc)
		}
	}
	if cfg.CopyDuration <= 0 {
		cfg.CopyDuration = DefaultCopyDuration
	}
	if cfg.ImportDuration <= 0 {
		cfg.ImportDuration = DefaultImportDuration
	}
	if cfg.ProvisionDuration <= 0 {
		cfg.ProvisionDuration = DefaultProvisionDuration
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		clock:     cfg.Clock,
		http:      hc,
		locs:      make(map[string]int),
		ctx:       ctx,
		cancel:    cancel,
		accounts:  make(map[string]*account),
		users:     make(map[string]int),
		templates: make(map[int]*template),
		guests:    make(map[int]*guest),
		ids: idCounters{
			account:     1840000,
			user:        7310000,
			template:    3100000,
			guest:       141000000,
			tx:          92000000,
			order:       61000000,
			orderItem:   850000000,
			blockDevice: 5520000,
		},
	}
	for i, dc := range cfg.Datacenters {
		s.locs[dc] = locationID(dc, i)
	}
	return s, nil
}

// locationID gives each configured datacenter a stable, plausible id.
func locationID(name string, index int) int {
	h := 0
	for _, c := range name {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	return 100000 + (h%800000)*2 + index
}

// Close stops every background transaction (imports, exports, provisioning)
// and waits for them to end. Requests served afterwards still answer but
// start nothing new.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// goBackground runs f in a goroutine tracked by Close. It returns false (and
// does not run f) when the server is closed.
func (s *Server) goBackground(ctx context.Context, f func(ctx context.Context)) bool {
	// Caller holds s.mu.
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.signal()
		f(ctx)
	}()
	return true
}

// Progress returns a channel that is closed the next time a background
// task (an import, export, copy or provisioning) changes state: at each of
// its phases and when it ends, after its events are recorded. A waiter takes
// the channel, checks its condition, and waits on the channel only if the
// condition does not hold yet, so no change can slip between the two.
func (s *Server) Progress() <-chan struct{} {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	if s.progress == nil {
		s.progress = make(chan struct{})
	}
	return s.progress
}

// signal wakes every waiter of Progress. It takes only progressMu, so a
// caller may hold s.mu or not.
func (s *Server) signal() {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	if s.progress != nil {
		close(s.progress)
		s.progress = nil
	}
}

// Handler returns the HTTP handler serving /rest/v3.1/....
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// accountFor returns (creating on first use) the classic account linked to
// an IBM Cloud account. Caller holds s.mu.
func (s *Server) accountFor(ibm string) *account {
	if a, ok := s.accounts[ibm]; ok {
		return a
	}
	s.ids.account++
	a := &account{id: s.ids.account, ibm: ibm}
	s.accounts[ibm] = a
	return a
}

// userFor returns the SoftLayer user id of an IAM identity. Caller holds s.mu.
func (s *Server) userFor(iamID string) int {
	if id, ok := s.users[iamID]; ok {
		return id
	}
	s.ids.user++
	s.users[iamID] = s.ids.user
	return s.ids.user
}

func (s *Server) nextTx() int { s.ids.tx++; return s.ids.tx }

func (s *Server) location(name string) *datatypes.Location {
	id, ok := s.locs[name]
	if !ok {
		return nil
	}
	return &datatypes.Location{Id: ptr(id), Name: ptr(name), LongName: ptr(longDCName(name)), StatusId: ptr(2)}
}

func longDCName(dc string) string {
	city := map[string]string{"dal": "Dallas", "wdc": "Washington", "lon": "London", "fra": "Frankfurt",
		"tok": "Tokyo", "syd": "Sydney", "osa": "Osaka", "tor": "Toronto", "sao": "Sao Paulo",
		"mad": "Madrid", "par": "Paris", "ams": "Amsterdam", "che": "Chennai", "sng": "Singapore", "mon": "Montreal"}
	if len(dc) > 3 {
		if c, ok := city[dc[:3]]; ok {
			return c + " " + strings.TrimLeft(dc[3:], "0")
		}
	}
	return strings.ToUpper(dc)
}

// newGUID returns a random RFC 4122 version 4 UUID.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func ptr[T any](v T) *T { return &v }

func slTime(t time.Time) *datatypes.Time {
	if t.IsZero() {
		return nil
	}
	return &datatypes.Time{Time: t.Truncate(time.Second)}
}

// TemplateInfo is a test-facing snapshot of an image template group.
type TemplateInfo struct {
	ID               int
	GlobalIdentifier string
	Name             string
	Account          string // IBM Cloud account ID
	Status           string // status keyName: ACTIVE or ERROR
	Reason           string // failure reason when Status is ERROR
	Transaction      string // current transaction status name, "" when none
	Encrypted        bool
	CloudInit, BYOL  bool
	OSReferenceCode  string
	URI              string
	VirtualSize      int64 // guest disk size in bytes, known after verification
	KeySize          int   // DEK length in bytes for an encrypted import, after verification
	// ImageCheck says what the import's checks of the guest's contents
	// found: "checked: <root, cloud-init version, datasource_list>" or
	// "not checked: <why>" (a root the simulator does not read, a Windows
	// image, an import that is not cloud-init enabled). Empty until the
	// import succeeds.
	ImageCheck string
	// ImageCheckRead counts the bytes of the guest disk the checks of the
	// guest's contents fetched from the image object.
	ImageCheckRead int64
	ParentID       int    // 0 for a parent group
	Datacenter     string // a child's data center
	Ready          bool   // a child whose disks are in place
}

// Templates returns a snapshot of every template group (parents and
// children), ordered by id.
func (s *Server) Templates() []TemplateInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TemplateInfo, 0, len(s.templates))
	for _, t := range s.templates {
		ti := TemplateInfo{
			ID: t.id, GlobalIdentifier: t.guid, Name: t.name, Account: t.acct.ibm,
			Status: t.status, Reason: t.reason, Encrypted: t.encrypted, CloudInit: t.cloudInit,
			BYOL: t.byol, OSReferenceCode: t.osCode, URI: t.uri, VirtualSize: t.virtualSize,
			KeySize: t.keySize, ParentID: t.parentID, ImageCheck: t.imageCheck,
			ImageCheckRead: t.imageCheckRead,
		}
		if t.tx != nil {
			ti.Transaction = t.tx.name
		}
		if t.parentID != 0 && len(t.datacenters) == 1 {
			ti.Datacenter, ti.Ready = t.datacenters[0], t.ready
		}
		out = append(out, ti)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// GuestInfo is a test-facing snapshot of a virtual guest.
type GuestInfo struct {
	ID               int
	GlobalIdentifier string
	Hostname, Domain string
	Account          string
	Datacenter       string
	TemplateID       int
	ProvisionDate    time.Time // zero until provisioning finished
	PowerState       string    // RUNNING or HALTED
	Transaction      string    // current transaction status name, "" when none
}

// Guests returns a snapshot of every virtual guest, ordered by id.
func (s *Server) Guests() []GuestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GuestInfo, 0, len(s.guests))
	for _, g := range s.guests {
		gi := GuestInfo{ID: g.id, GlobalIdentifier: g.guid, Hostname: g.hostname, Domain: g.domain,
			Account: g.acct.ibm, Datacenter: g.dc, TemplateID: g.templateID,
			ProvisionDate: g.provisioned, PowerState: g.power}
		if g.tx != nil {
			gi.Transaction = g.tx.name
		}
		out = append(out, gi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Events returns a copy of every SoftLayer_Event_Log record, oldest first,
// across all accounts.
func (s *Server) Events() []datatypes.Event_Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]datatypes.Event_Log, len(s.events))
	for i, e := range s.events {
		out[i] = e.log
	}
	return out
}
