// Package kmssim simulates the key-provider REST API shared by IBM Key
// Protect and Hyper Protect Crypto Services (../../../docs/CLOUD.md sections 1 and 2):
// /api/v2/keys for create, import, list, get and delete, and the key actions
// wrap, unwrap, rewrap, rotate, disable and enable. One Server is one service
// instance; Key Protect and HPCS are two Servers with their own instance GUID
// and CRN service name ("kms" or "hs-crypto").
//
// Wrapping is real authenticated encryption: AES-GCM under the key
// version's material, with the service, instance GUID, key ID, key version
// and the caller's AAD bound as additional data. A ciphertext from another
// instance or key, or with other AAD, fails to unwrap with 422
// UNPROCESSABLE_CIPHERTEXT_ERR, as on the real service. Every request that
// reaches a key records an Activity Tracker event (kms.secrets.*).
//
// Choices where the documentation is silent (also in the cloudsim README):
// a missing bluemix-instance header is 400 MISSING_INSTANCE_ERR (a
// simulator reason code); a GUID other than this instance's is 401
// UNAUTHORIZED_ERR, as for a caller without access; wrap plaintext is
// limited to MaxPlaintext bytes.
//
// What this package does NOT do: key rings management, key policies and
// instance policies, dual authorization, secure import (import tokens,
// encryptedNonce/iv), registrations API (registrations exist only in
// process, see Register), KMIP, key aliases management endpoints, the
// 30-second disable/enable wait, rotation rate limits, the 4 MB request
// limit, role semantics (any access policy allows every action), or key
// material held in an HSM.
package kmssim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Service names used in CRNs and IAM policies.
const (
	ServiceKeyProtect = "kms"
	ServiceHPCS       = "hs-crypto"
)

// Key states (../../../docs/CLOUD.md section 1.5).
const (
	StatePreActivation = 0
	StateActive        = 1
	StateSuspended     = 2
	StateDeactivated   = 3
	StateDestroyed     = 5
)

// Limits and time spans the simulator enforces.
const (
	// MaxPlaintext is the largest wrap plaintext accepted. Key Protect does
	// not document one (../../../docs/CLOUD.md section 1.3); 7,500 bytes is its standard
	// key size limit, used here as a bound.
	MaxPlaintext = 7500
	// MaxAADEntry is the longest AAD string (../../../docs/CLOUD.md section 1.3).
	MaxAADEntry = 255
	// PurgeWait is how long after deletion a key may be purged (Key
	// Protect: 4 hours, keyprotect-go-client PurgeKey doc).
	PurgeWait = 4 * time.Hour
	// AutoPurge is when deleted keys disappear on their own (Key Protect:
	// 90 days).
	AutoPurge = 90 * 24 * time.Hour
	// RestoreWindow is how long a deleted key can be restored (30 days).
	RestoreWindow = 30 * 24 * time.Hour
	// DefaultListLimit and MaxListLimit bound GET keys (Key Protect API:
	// default 200, at most 5000).
	DefaultListLimit = 200
	MaxListLimit     = 5000
	// DEKSize is the size of the DEKs wrap generates (32 bytes).
	DEKSize = 32
)

// Media types of the key API.
const (
	TypeKey        = "application/vnd.ibm.kms.key+json"
	TypeError      = "application/vnd.ibm.kms.error+json"
	TypeKeyActions = "application/vnd.ibm.kms.key_action+json"
)

// Config configures one simulated instance.
type Config struct {
	// ServiceName is ServiceKeyProtect (default) or ServiceHPCS.
	ServiceName string
	// InstanceID is the instance GUID that bluemix-instance must carry
	// (required).
	InstanceID string
	// AccountID owns the instance (required).
	AccountID string
	// Region appears in CRNs (default us-south).
	Region string
	// Identity validates bearer tokens (required).
	Identity simcore.Identity
	// Authz decides whether a principal may use the instance (required).
	Authz simcore.Authorizer
	// Events receives Activity Tracker events (optional).
	Events simcore.EventSink
	// Clock gives simulated time for dates, expiry and purge (default:
	// real time).
	Clock *simcore.Clock
	// Logger is for debug logs (default: discard).
	Logger *slog.Logger
	// Rand is the source of key and version IDs (default crypto/rand). Key
	// material and GCM nonces always come from crypto/rand.
	Rand io.Reader
}

// Server is one simulated Key Protect or HPCS instance. It is safe for
// concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	randMu sync.Mutex

	mu      sync.Mutex
	keys    map[string]*key // by id
	aliases map[string]string
	purged  map[string]bool
}

type version struct {
	ID       string
	Created  time.Time
	material []byte
}

type key struct {
	ID           string
	Name         string
	Description  string
	Aliases      []string
	Extractable  bool
	Imported     bool
	KeyRingID    string
	CreatedBy    string
	Created      time.Time
	LastUpdate   time.Time
	LastRotate   *time.Time
	Expiration   *time.Time
	state        int // stored state; Deactivated is derived from Expiration
	versions     []*version
	payload      []byte // standard keys only
	deleted      *time.Time
	deletedBy    string
	registration map[string]bool
}

// KeyInfo describes a key for in-process callers (other simulated services
// and tests).
type KeyInfo struct {
	ID          string
	Name        string
	CRN         string
	State       int
	Extractable bool
	Versions    int
}

// New returns a simulated instance with no keys.
func New(cfg Config) (*Server, error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = ServiceKeyProtect
	}
	if cfg.ServiceName != ServiceKeyProtect && cfg.ServiceName != ServiceHPCS {
		return nil, fmt.Errorf("kmssim: unknown service name %q (want %q or %q)", cfg.ServiceName, ServiceKeyProtect, ServiceHPCS)
	}
	switch {
	case cfg.InstanceID == "":
		return nil, errors.New("kmssim: Config.InstanceID is required")
	case cfg.AccountID == "":
		return nil, errors.New("kmssim: Config.AccountID is required")
	case cfg.Identity == nil || cfg.Authz == nil:
		return nil, errors.New("kmssim: Config.Identity and Config.Authz are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-south"
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, log: cfg.Logger,
		keys: make(map[string]*key), aliases: make(map[string]string), purged: make(map[string]bool),
	}, nil
}

// InstanceID returns the instance GUID.
func (s *Server) InstanceID() string { return s.cfg.InstanceID }

// ServiceName returns "kms" or "hs-crypto".
func (s *Server) ServiceName() string { return s.cfg.ServiceName }

// InstanceCRN returns the instance's CRN.
func (s *Server) InstanceCRN() string {
	return fmt.Sprintf("crn:v1:bluemix:public:%s:%s:a/%s:%s::", s.cfg.ServiceName, s.cfg.Region, s.cfg.AccountID, s.cfg.InstanceID)
}

// KeyCRN returns the CRN of key id in this instance
// (crn:v1:bluemix:public:<service>:<region>:a/<account>:<instance>:key:<id>).
func (s *Server) KeyCRN(id string) string {
	return fmt.Sprintf("crn:v1:bluemix:public:%s:%s:a/%s:%s:key:%s", s.cfg.ServiceName, s.cfg.Region, s.cfg.AccountID, s.cfg.InstanceID, id)
}

func (s *Server) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) uuid() string {
	var b [16]byte
	s.randMu.Lock()
	_, err := io.ReadFull(s.cfg.Rand, b[:])
	s.randMu.Unlock()
	if err != nil {
		_, _ = rand.Read(b[:])
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newMaterial(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("kmssim: generating key material: %w", err)
	}
	return b, nil
}

// stateLocked returns the key's effective state at now.
func (k *key) stateLocked(now time.Time) int {
	if k.deleted != nil {
		return StateDestroyed
	}
	if k.Expiration != nil && !now.Before(*k.Expiration) && k.state == StateActive {
		return StateDeactivated
	}
	return k.state
}

func (k *key) latest() *version { return k.versions[len(k.versions)-1] }

func (s *Server) info(k *key, now time.Time) KeyInfo {
	return KeyInfo{ID: k.ID, Name: k.Name, CRN: s.KeyCRN(k.ID), State: k.stateLocked(now), Extractable: k.Extractable, Versions: len(k.versions)}
}

// CreateRootKey creates a root key directly (for seeding and tests), as
// the account owner would through the API.
func (s *Server) CreateRootKey(name string) (KeyInfo, error) {
	mat, err := newMaterial(32)
	if err != nil {
		return KeyInfo{}, err
	}
	now := s.now()
	k := &key{
		ID: s.uuid(), Name: name, KeyRingID: "default", Created: now, LastUpdate: now,
		state: StateActive, CreatedBy: "cloudsim",
		versions: []*version{{ID: s.uuid(), Created: now, material: mat}},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = k
	return s.info(k, now), nil
}

// Key returns a key by ID or alias.
func (s *Server) Key(idOrAlias string) (KeyInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	k := s.findLocked(idOrAlias, now)
	if k == nil {
		return KeyInfo{}, false
	}
	return s.info(k, now), true
}

// LookupCRN returns the key that a CRN names, if it is a key of this
// instance that has not been purged.
func (s *Server) LookupCRN(crn string) (KeyInfo, bool) {
	prefix := s.KeyCRN("")
	if !strings.HasPrefix(crn, prefix) {
		return KeyInfo{}, false
	}
	return s.Key(strings.TrimPrefix(crn, prefix))
}

// Register records that resourceCRN (a bucket, an image) is protected by
// the key, as IBM services do when they adopt a root key. A key with
// registrations cannot be deleted without force=true (409
// PROTECTED_RESOURCE_ERR).
func (s *Server) Register(idOrAlias, resourceCRN string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.findLocked(idOrAlias, s.now())
	if k == nil {
		return fmt.Errorf("kmssim: registering %s: key %s not found", resourceCRN, idOrAlias)
	}
	if k.registration == nil {
		k.registration = make(map[string]bool)
	}
	k.registration[resourceCRN] = true
	return nil
}

// Unregister removes a registration made by Register; unknown keys and
// resources are ignored.
func (s *Server) Unregister(idOrAlias, resourceCRN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.findLocked(idOrAlias, s.now()); k != nil {
		delete(k.registration, resourceCRN)
	}
}

// Purge removes a deleted key at once, regardless of PurgeWait (for tests).
func (s *Server) Purge(idOrAlias string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.findLocked(idOrAlias, s.now())
	if k == nil || k.deleted == nil {
		return false
	}
	s.purgeLocked(k)
	return true
}

func (s *Server) purgeLocked(k *key) {
	for _, a := range k.Aliases {
		delete(s.aliases, a)
	}
	delete(s.keys, k.ID)
	s.purged[k.ID] = true
	for _, v := range k.versions {
		clear(v.material)
	}
	clear(k.payload)
}

// findLocked resolves an ID or alias, applying auto-purge.
func (s *Server) findLocked(idOrAlias string, now time.Time) *key {
	id := idOrAlias
	if a, ok := s.aliases[idOrAlias]; ok {
		id = a
	}
	k := s.keys[id]
	if k != nil && k.deleted != nil && now.Sub(*k.deleted) >= AutoPurge {
		s.purgeLocked(k)
		return nil
	}
	return k
}

// Keys lists every key that has not been purged, oldest first.
func (s *Server) Keys() []KeyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]KeyInfo, 0, len(s.keys))
	for _, k := range s.sortedLocked() {
		out = append(out, s.info(k, now))
	}
	return out
}

func (s *Server) sortedLocked() []*key {
	list := make([]*key, 0, len(s.keys))
	for _, k := range s.keys {
		list = append(list, k)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].Created.Equal(list[j].Created) {
			return list[i].Created.Before(list[j].Created)
		}
		return list[i].ID < list[j].ID
	})
	return list
}

func (s *Server) record(ev simcore.Event) {
	if s.cfg.Events != nil {
		s.cfg.Events.Record(ev)
	}
}
