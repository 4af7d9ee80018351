// Package cloudsim runs a local IBM Cloud for tests and demos: IAM (token
// grant, IAM Identity, IAM Policy Management), Key Protect and Hyper Protect
// Crypto Services, Cloud Object Storage (S3), SoftLayer classic and an
// Activity Tracker search endpoint. Each service listens on its own loopback
// port and follows the documented REST contract (../../docs/CLOUD.md)
// closely enough that the official Go SDKs talk to it unchanged, pointed at
// its URLs.
//
// Start seeds a fresh account: an owner API key, a Key Protect and an HPCS
// instance with one root key each, a COS instance with buckets, and HMAC
// credentials. Everything is derived from Options.Seed except secrets that
// must be unpredictable (token signing keys, key material). Every handler is
// wrapped by Sim.Faults, so tests can inject latency, errors, resets and
// hangs per service (service names as in URLs' JSON names: "iam",
// "iam_identity", "iam_policy", "kms", "hpcs", "s3", "softlayer",
// "activity_tracker").
//
// Time: the simulation clock (Sim.Clock) drives dates, key expiry, purge
// windows and SoftLayer provisioning, and can run faster than real time
// (Options.ClockSpeed). IAM token expiry uses real time, because the SDKs
// cache tokens by wall time.
//
// What this package does NOT do: TLS, HTTP/2, persistence across runs,
// more than one account or region, resource controller (instances are
// fixed at Start), billing, and the many API surfaces listed as not
// implemented in README.md. Credentials it prints are fake credentials of
// a local simulator.
package cloudsim

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/kmssim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/s3sim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/faults"
)

// Service names, as used for fault rules and in URLs' JSON.
const (
	ServiceIAM             = "iam"
	ServiceIAMIdentity     = "iam_identity"
	ServiceIAMPolicy       = "iam_policy"
	ServiceKMS             = "kms"
	ServiceHPCS            = "hpcs"
	ServiceS3              = "s3"
	ServiceSoftLayer       = "softlayer"
	ServiceActivityTracker = "activity_tracker"
)

// DefaultRegion is the region of the simulated account.
const DefaultRegion = "us-south"

// Options configures Start.
type Options struct {
	// Addr is the host the listeners bind (default 127.0.0.1). It may
	// carry a port: 0 or none gives each service a random port; N > 0 gives
	// the services ports N..N+7 in the order of URLs' fields.
	Addr string
	// Seed derives the account's identifiers and fake credentials, and
	// seeds Faults.
	Seed int64
	// ClockSpeed is simulated seconds per real second (default 1; tests
	// use e.g. 600).
	ClockSpeed float64
	// Logger receives debug logs of every request (default: discard).
	Logger *slog.Logger
	// Region is the account's region (default us-south).
	Region string
	// SeedAuthorizations pre-creates the authorizations the E2E flow
	// needs: server-protect -> kms and server-protect -> hs-crypto (Reader).
	// The default is a fresh account without them.
	SeedAuthorizations bool
	// TokenLifetime overrides how long IAM tokens last, in real time
	// (default 1 hour).
	TokenLifetime time.Duration
	// PolicyDelay makes new IAM access policies effective only this long
	// (simulated time) after their creation; see iamsim.Config.PolicyDelay.
	PolicyDelay time.Duration
	// ConnState, if set, is called with the service's name (ServiceIAM,
	// ...) on every change of state of a connection to a service (the
	// http.Server hook), so that tests can watch clients close their
	// connections.
	ConnState func(service string, state http.ConnState)
}

// URLs are the base URLs of the simulated services, exactly as each SDK
// wants them:
//   - IAM is the base for go-sdk-core's IamAuthenticator (it appends
//     /identity/token); keyprotect-go-client's TokenURL and COS ibmiam want
//     the full token URL, IAM + "/identity/token" (see TokenURL);
//   - KMS and HPCS are keyprotect-go-client BaseURLs (it appends /api/v2/);
//   - S3 is the endpoint root for path-style addressing;
//   - SoftLayer ends in /rest/v3.1, as softlayer-go's Session.Endpoint;
//   - ActivityTracker is the base of the Cloud Logs query API (/v1/query).
type URLs struct {
	IAM             string `json:"iam"`
	IAMIdentity     string `json:"iam_identity"`
	IAMPolicy       string `json:"iam_policy"`
	KMS             string `json:"kms"`
	HPCS            string `json:"hpcs"`
	S3              string `json:"s3"`
	SoftLayer       string `json:"softlayer"`
	ActivityTracker string `json:"activity_tracker"`
}

// TokenURL returns the full IAM token URL (IAM + "/identity/token").
func (u URLs) TokenURL() string { return u.IAM + "/identity/token" }

// Account is the seeded account: identifiers and fake credentials of the
// local simulator.
type Account struct {
	AccountID      string `json:"account_id"`
	APIKey         string `json:"api_key"`
	KMSInstanceID  string `json:"kms_instance_id"`
	HPCSInstanceID string `json:"hpcs_instance_id"`
	RootKeyCRN     string `json:"root_key_crn"`
	HPCSRootKeyCRN string `json:"hpcs_root_key_crn"`
	Bucket         string `json:"bucket"`
	Region         string `json:"region"`
	S3AccessKey    string `json:"s3_access_key"`
	S3SecretKey    string `json:"s3_secret_key"`
	COSInstanceID  string `json:"cos_instance_id"`
	COSInstanceCRN string `json:"cos_instance_crn"`
}

// Sim is a running simulated cloud.
type Sim struct {
	URLs       URLs
	Account    Account
	Faults     *faults.Injector
	Clock      *simcore.Clock
	sampleDisk []byte // SampleTemplateDisk

	// The simulated services, for tests that inspect or seed state.
	IAM       *iamsim.Server
	KMS       *kmssim.Server
	HPCS      *kmssim.Server
	S3        *s3sim.Server
	SoftLayer *slsim.Server
	Events    *atsim.Store

	log       *slog.Logger
	cancel    context.CancelFunc
	stopWatch func() bool
	servers   []*http.Server
	serveWG   sync.WaitGroup
	inflight  sync.WaitGroup
	closeMu   sync.Mutex
	closed    bool
	closeOnce sync.Once
	closeErr  error
	before    []func()       // run before the listeners stop (background work)
	extra     []func() error // closers of services, run after the listeners stop
}

// seeded derives identifiers from the seed.
type seeded struct{ r *rand.Rand }

func (s seeded) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.r.Uint32())
	}
	return hex.EncodeToString(b)
}

func (s seeded) uuid() string {
	h := s.hex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func (s seeded) apiKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 44) // IBM Cloud API keys are 44 characters
	for i := range b {
		b[i] = alphabet[s.r.IntN(len(alphabet))]
	}
	return string(b)
}

// Read fills p from the seeded generator (io.Reader for the services' IDs).
type lockedReader struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func seedBytes(seed int64, salt byte) [32]byte {
	var b [32]byte
	u := uint64(seed)
	for i := 0; i < 8; i++ {
		b[i] = byte(u >> (8 * i))
	}
	b[31] = salt
	return b
}

// Start seeds an account and starts every service. The services stop when
// Close is called or ctx is cancelled.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1"
	}
	if opts.ClockSpeed <= 0 {
		opts.ClockSpeed = 1
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, basePort, err := splitAddr(opts.Addr)
	if err != nil {
		return nil, err
	}

	sd := seeded{rand.New(rand.NewChaCha8(seedBytes(opts.Seed, 1)))}
	ids := &lockedReader{r: rand.NewChaCha8(seedBytes(opts.Seed, 2))}
	acct := Account{
		AccountID:      sd.hex(16),
		APIKey:         sd.apiKey(),
		KMSInstanceID:  sd.uuid(),
		HPCSInstanceID: sd.uuid(),
		COSInstanceID:  sd.uuid(),
		Region:         opts.Region,
		S3AccessKey:    sd.hex(16),
		S3SecretKey:    sd.hex(24),
		Bucket:         "e2e-images-" + sd.hex(4),
	}
	acct.COSInstanceCRN = fmt.Sprintf("crn:v1:bluemix:public:cloud-object-storage:global:a/%s:%s::", acct.AccountID, acct.COSInstanceID)

	sim := &Sim{
		Faults: faults.New(opts.Seed),
		Clock:  simcore.NewClock(time.Now().UTC(), opts.ClockSpeed),
		Events: atsim.NewStore(atsim.DefaultCapacity),
		log:    log,
	}
	sim.IAM, err = iamsim.New(iamsim.Config{
		AccountID: acct.AccountID, OwnerAPIKey: acct.APIKey, TokenLifetime: opts.TokenLifetime, PolicyDelay: opts.PolicyDelay,
		Clock: sim.Clock, Events: sim.Events, Logger: log, Rand: ids,
	})
	if err != nil {
		return nil, fmt.Errorf("cloudsim: starting IAM: %w", err)
	}
	newKMS := func(service, instance string) (*kmssim.Server, string, error) {
		k, err := kmssim.New(kmssim.Config{
			ServiceName: service, InstanceID: instance, AccountID: acct.AccountID, Region: opts.Region,
			Identity: sim.IAM, Authz: sim.IAM, Events: sim.Events, Clock: sim.Clock, Logger: log, Rand: ids,
		})
		if err != nil {
			return nil, "", err
		}
		root, err := k.CreateRootKey("e2e-root-key")
		if err != nil {
			return nil, "", err
		}
		return k, root.CRN, nil
	}
	if sim.KMS, acct.RootKeyCRN, err = newKMS(kmssim.ServiceKeyProtect, acct.KMSInstanceID); err != nil {
		return nil, fmt.Errorf("cloudsim: starting Key Protect: %w", err)
	}
	if sim.HPCS, acct.HPCSRootKeyCRN, err = newKMS(kmssim.ServiceHPCS, acct.HPCSInstanceID); err != nil {
		return nil, fmt.Errorf("cloudsim: starting HPCS: %w", err)
	}
	if opts.SeedAuthorizations {
		sim.IAM.AddAuthorization("server-protect", kmssim.ServiceKeyProtect, "")
		sim.IAM.AddAuthorization("server-protect", kmssim.ServiceHPCS, "")
	}
	sim.Account = acct

	// Listen first: the SoftLayer backplane needs the other services' URLs.
	names := serviceOrder
	listeners := make([]net.Listener, 0, len(names))
	urls := make(map[string]string, len(names))
	for i, name := range names {
		port := 0
		if basePort > 0 {
			port = basePort + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return nil, fmt.Errorf("cloudsim: listening for %s: %w", name, err)
		}
		listeners = append(listeners, ln)
		urls[name] = "http://" + ln.Addr().String()
	}
	sim.URLs = URLs{
		IAM:             urls[ServiceIAM],
		IAMIdentity:     urls[ServiceIAMIdentity],
		IAMPolicy:       urls[ServiceIAMPolicy],
		KMS:             urls[ServiceKMS],
		HPCS:            urls[ServiceHPCS],
		S3:              urls[ServiceS3],
		SoftLayer:       urls[ServiceSoftLayer] + "/rest/v3.1",
		ActivityTracker: urls[ServiceActivityTracker],
	}
	handlers, err := sim.buildHandlers(opts)
	if err != nil {
		for _, l := range listeners {
			_ = l.Close()
		}
		for _, f := range sim.before {
			f()
		}
		_ = sim.runClosers()
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sim.cancel = cancel
	for i, name := range names {
		srv := &http.Server{
			Handler:           sim.wrap(name, handlers[name]),
			ReadHeaderTimeout: 30 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return runCtx },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		if opts.ConnState != nil {
			srv.ConnState = func(_ net.Conn, s http.ConnState) { opts.ConnState(name, s) }
		}
		sim.servers = append(sim.servers, srv)
		sim.serveWG.Add(1)
		go func(ln net.Listener) {
			defer sim.serveWG.Done()
			_ = srv.Serve(ln)
		}(listeners[i])
	}
	sim.stopWatch = context.AfterFunc(ctx, func() { _ = sim.Close() })
	log.Debug("cloudsim: started", "urls", sim.URLs)
	return sim, nil
}

func splitAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port.
		return addr, 0, nil // a bare host: no port
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535-8 {
		return "", 0, fmt.Errorf("cloudsim: bad port in address %q", addr)
	}
	return host, p, nil
}

// serviceOrder is the order of URLs' fields, which fixes the services'
// ports when Options.Addr has one.
var serviceOrder = []string{
	ServiceIAM, ServiceIAMIdentity, ServiceIAMPolicy, ServiceKMS, ServiceHPCS,
	ServiceS3, ServiceSoftLayer, ServiceActivityTracker,
}

// wrap applies faults and request logging, and tracks in-flight requests
// so that Close can wait for them.
func (s *Sim) wrap(name string, h http.Handler) http.Handler {
	inner := s.Faults.Middleware(name, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.closeMu.Lock()
		if s.closed {
			s.closeMu.Unlock()
			http.Error(w, "cloudsim: shutting down", http.StatusServiceUnavailable)
			return
		}
		s.inflight.Add(1)
		s.closeMu.Unlock()
		defer s.inflight.Done()
		if name == ServiceSoftLayer || name == ServiceActivityTracker {
			// A server's Date is its own clock (RFC 9110 §6.6.1); the
			// records these services answer with carry simulated time,
			// so their Date does too, and a client can end a window at
			// the service's now. (IAM, the key services and S3 keep the
			// real time: token expiry and request signing use it.)
			w.Header().Set("Date", s.Clock.Now().UTC().Format(http.TimeFormat))
		}
		start := time.Now()
		sw := &simcore.StatusRecorder{ResponseWriter: w}
		inner.ServeHTTP(sw, r)
		s.log.Debug("cloudsim: request", "service", name, "method", r.Method, "path", r.URL.Path,
			"status", sw.Status, "elapsed", time.Since(start))
	})
}

// Close stops every service and waits for their goroutines. It is safe to
// call more than once.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatch != nil {
			s.stopWatch()
		}
		for _, f := range s.before {
			f()
		}
		if s.cancel != nil {
			s.cancel()
		}
		var errs []error
		for _, srv := range s.servers {
			if err := srv.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.serveWG.Wait()
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		s.inflight.Wait()
		if err := s.runClosers(); err != nil {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Sim) runClosers() error {
	var errs []error
	for i := len(s.extra) - 1; i >= 0; i-- {
		if err := s.extra[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.extra = nil
	return errors.Join(errs...)
}

// Token returns a fresh IAM access token for the seeded account owner, with
// the "Bearer " prefix, for tests that call the REST APIs directly.
func (s *Sim) Token() (string, error) {
	tok, _, err := s.IAM.IssueToken(s.Account.APIKey)
	if err != nil {
		return "", err
	}
	return "Bearer " + tok, nil
}
