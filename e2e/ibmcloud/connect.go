package ibmcloud

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/durable"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// Endpoints overrides the base URLs of the IBM Cloud services, for private
// networks, other environments or a local simulator. An empty field keeps
// the public endpoint derived from the region or the key CRN. The JSON
// names are those examples/cloudsim prints, so its first output line can be
// read as Endpoints.
type Endpoints struct {
	// IAM is the IAM base URL (the token endpoint is IAM +
	// "/identity/token"). Default iam.DefaultURL.
	IAM string `json:"iam,omitempty"`
	// IAMIdentity and IAMPolicy are the IAM Identity and Policy Management
	// API base URLs. Default: IAM.
	IAMIdentity string `json:"iam_identity,omitempty"`
	IAMPolicy   string `json:"iam_policy,omitempty"`
	// KMS and HPCS are the key service base URLs (without /api/v2); the
	// one matching the root key CRN's service is used. Default: from the
	// CRN.
	KMS  string `json:"kms,omitempty"`
	HPCS string `json:"hpcs,omitempty"`
	// S3 is the COS endpoint. Default: from the region.
	S3 string `json:"s3,omitempty"`
	// SoftLayer is the classic REST endpoint, ending in /rest/v3.1.
	// Default classic.DefaultEndpoint.
	SoftLayer string `json:"softlayer,omitempty"`
	// ActivityTracker is the IBM Cloud Logs instance that Activity Tracker
	// routes events to (https://<instance>.api.<region>.logs.cloud.ibm.com).
	// No default: without it, the audit trail holds the classic event log
	// only.
	ActivityTracker string `json:"activity_tracker,omitempty"`
}

// Cloud says how to reach IBM Cloud and with which credentials, for
// Connect.
type Config struct {
	// APIKey is the IBM Cloud API key the clients authenticate with.
	// Required.
	APIKey *secret.String
	// RootKeyCRN is the Key Protect or HPCS root key. Without it, Connect
	// makes no key service or IAM client (the account id comes from it).
	RootKeyCRN string
	// Region is the COS region of the bucket. Default: the root key's.
	Region string
	// COSInstance is the COS instance's CRN or GUID, sent with API-key
	// requests (ibm-service-instance-id); optional for object operations.
	COSInstance string
	// Classic are the classic infrastructure credentials. Zero: the IBM
	// Cloud API key (user name "apikey").
	Classic classic.Credentials
	// Private uses the private endpoints of IAM, the key service, COS and
	// the classic API (from IBM Cloud's network).
	Private bool
	// HPCSPort selects an older port-based HPCS endpoint.
	HPCSPort int
	// Endpoints overrides URLs.
	Endpoints Endpoints
	// PollMin and PollMax bound the classic polling interval (default
	// classic's). A simulator with a fast clock wants milliseconds.
	PollMin, PollMax time.Duration
	// Logger receives the clients' debug logs; default: discard.
	Logger *slog.Logger
	// HTTPClient, when set, carries every request of every client (IAM,
	// key service, COS, classic, Cloud Logs): for a proxy, extra CA
	// certificates, or a Recorder. Its transport is then shared, so each
	// client's CloseIdleConnections empties the same pool. A transport
	// that skips TLS verification is refused. Default: each client's own.
	HTTPClient *http.Client
}

// Clients are the service clients a Plan needs, made by Connect from one
// API key.
type Clients struct {
	// Auth exchanges the API key for IAM tokens.
	Auth *iam.Authenticator
	// IAM and Keys are nil without Config.RootKeyCRN.
	IAM  *iam.Client
	Keys *kms.Client
	COS  *cos.Client
	// Classic is the classic infrastructure client.
	Classic *classic.Client
	// Audit reads the classic event log and, with
	// Endpoints.ActivityTracker, Activity Tracker events.
	Audit *audit.Reader

	// cloudLogs is Audit's Activity Tracker source, nil without
	// Endpoints.ActivityTracker, for Close.
	cloudLogs *audit.CloudLogs

	// What ProveImportKey needs to build clients for another key.
	iamURL  string
	hc      *http.Client
	kmsOpts []kms.Option
	rootKey string
	cosCfg  cos.Config
}

// ProveImportKey shows that apiKey, the key the classic backplane will use
// to import, already works for what the import does: IAM issues a token
// for it, the key service shows it the root key, and COS lets it read the
// object. IAM is eventually consistent, so a service ID, key or policy
// made moments ago can be refused for a while; Run calls this (as
// Plan.ProveImportKey) before createFromIcos and retries while access is
// refused. Errors from a refusal match e2e.ErrImportKeyRefused.
func (cl *Clients) ProveImportKey(ctx context.Context, apiKey *secret.String, bucket, object string) error {
	aopts := []iam.Option{iam.WithURL(cl.iamURL)}
	if cl.hc != nil {
		aopts = append(aopts, iam.WithHTTPClient(cl.hc))
	}
	auth, err := iam.NewAuthenticator(apiKey, aopts...)
	if err != nil {
		return err
	}
	defer auth.CloseIdleConnections()
	if _, err := auth.AccessToken(ctx); err != nil {
		return importKeyError("IAM token", err, errors.Is(err, iam.ErrAuthentication))
	}
	if cl.rootKey != "" {
		ks, err := kms.New(cl.rootKey, auth, cl.kmsOpts...)
		if err != nil {
			return err
		}
		if _, err := ks.Describe(ctx); err != nil {
			return importKeyError("root key", err, errors.Is(err, kms.ErrUnauthorized))
		}
	}
	cfg := cl.cosCfg
	cfg.Tokens = auth
	c, err := cos.New(cfg)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	if _, err := c.Stat(ctx, bucket, object); err != nil {
		return importKeyError("image object", err, errors.Is(err, cos.ErrAccessDenied))
	}
	return nil
}

func importKeyError(what string, err error, refused bool) error {
	if refused {
		return fmt.Errorf("%w: %s: %w", e2e.ErrImportKeyRefused, what, err)
	}
	return fmt.Errorf("ibmcloud: proving the import API key: %s: %w", what, err)
}

// Connect makes the clients for c. It makes no request; a wrong key or an
// unreachable endpoint shows on the first call (Preflight finds both).
func Connect(c Config) (*Clients, error) {
	if c.APIKey.Empty() {
		return nil, fmt.Errorf("%w: Config.APIKey is required", e2e.ErrPlan)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	iamURL := c.Endpoints.IAM
	if iamURL == "" {
		iamURL = iam.DefaultURL
		if c.Private {
			iamURL = iam.PrivateURL
		}
	}
	iamURL = strings.TrimSuffix(strings.TrimSuffix(iamURL, "/"), "/identity/token")
	aopts := []iam.Option{iam.WithURL(iamURL)}
	if c.HTTPClient != nil {
		aopts = append(aopts, iam.WithHTTPClient(c.HTTPClient))
	}
	auth, err := iam.NewAuthenticator(c.APIKey, aopts...)
	if err != nil {
		return nil, err
	}
	cl := &Clients{Auth: auth, iamURL: iamURL, hc: c.HTTPClient, rootKey: c.RootKeyCRN}
	region, err := cl.connectKeyService(c)
	if err != nil {
		return nil, err
	}
	if region == "" {
		return nil, fmt.Errorf("%w: Config.Region is required without a root key CRN", e2e.ErrPlan)
	}
	if err := cl.connectCOS(c, region); err != nil {
		return nil, err
	}
	if err := cl.connectClassic(c); err != nil {
		return nil, err
	}
	return cl, nil
}

// connectKeyService makes the key service and IAM clients of the root key
// (none without Config.RootKeyCRN) and returns the region to use.
func (cl *Clients) connectKeyService(c Config) (string, error) {
	if c.RootKeyCRN == "" {
		return c.Region, nil
	}
	key, err := crn.ParseKey(c.RootKeyCRN)
	if err != nil {
		return "", err
	}
	e := c.Endpoints
	kopts := []kms.Option{kms.WithLogger(c.Logger)}
	switch {
	case key.Service == crn.KeyProtect && e.KMS != "":
		kopts = append(kopts, kms.WithURL(e.KMS))
	case key.Service == crn.HPCS && e.HPCS != "":
		kopts = append(kopts, kms.WithURL(e.HPCS))
	}
	if c.Private {
		kopts = append(kopts, kms.WithPrivateEndpoint())
	}
	if c.HPCSPort != 0 {
		kopts = append(kopts, kms.WithHPCSPort(c.HPCSPort))
	}
	if c.HTTPClient != nil {
		kopts = append(kopts, kms.WithHTTPClient(c.HTTPClient))
	}
	cl.kmsOpts = kopts
	if cl.Keys, err = kms.New(c.RootKeyCRN, cl.Auth, kopts...); err != nil {
		return "", err
	}
	iopts := []iam.Option{iam.WithLogger(c.Logger), iam.WithIdentityURL(cmp.Or(e.IAMIdentity, cl.iamURL)),
		iam.WithPolicyURL(cmp.Or(e.IAMPolicy, cl.iamURL))}
	if c.HTTPClient != nil {
		iopts = append(iopts, iam.WithHTTPClient(c.HTTPClient))
	}
	if cl.IAM, err = iam.NewClient(cl.Auth, key.AccountID, iopts...); err != nil {
		return "", err
	}
	return cmp.Or(c.Region, key.Region), nil
}

// connectCOS makes the COS client of region.
func (cl *Clients) connectCOS(c Config, region string) error {
	cc := cos.Config{
		Region: region, Endpoint: c.Endpoints.S3, Tokens: cl.Auth, ServiceInstanceID: c.COSInstance, Logger: c.Logger,
		HTTPClient: c.HTTPClient,
	}
	if c.Private {
		cc.EndpointType = cos.Private
	}
	cl.cosCfg = cc
	var err error
	cl.COS, err = cos.New(cc)
	return err
}

// connectClassic makes the classic infrastructure client and the audit
// reader over its event log (and Activity Tracker's, when configured).
func (cl *Clients) connectClassic(c Config) error {
	creds := c.Classic
	if creds.APIKey.Empty() {
		creds = classic.IBMCloudAPIKey(c.APIKey)
	}
	copts := []classic.Option{classic.WithLogger(c.Logger), classic.WithUserAgent("e2eimage")}
	if c.HTTPClient != nil {
		copts = append(copts, classic.WithHTTPClient(c.HTTPClient))
	}
	switch {
	case c.Endpoints.SoftLayer != "":
		copts = append(copts, classic.WithEndpoint(c.Endpoints.SoftLayer))
	case c.Private:
		copts = append(copts, classic.WithPrivateEndpoint())
	}
	if c.PollMin > 0 || c.PollMax > 0 {
		if c.PollMin <= 0 || c.PollMax < c.PollMin {
			return fmt.Errorf("%w: PollMin and PollMax must both be set, PollMin <= PollMax", e2e.ErrPlan)
		}
		copts = append(copts, classic.WithPollInterval(c.PollMin, c.PollMax))
	}
	var err error
	if cl.Classic, err = classic.New(creds, copts...); err != nil {
		return err
	}
	sources := []audit.Source{audit.NewEventLog(cl.Classic)}
	if at := c.Endpoints.ActivityTracker; at != "" {
		lopts := []audit.CloudLogsOption{audit.WithLogger(c.Logger), audit.WithSecrets(c.APIKey, creds.APIKey)}
		if c.HTTPClient != nil {
			lopts = append(lopts, audit.WithHTTPClient(c.HTTPClient))
		}
		logs, err := audit.NewCloudLogs(at, cl.Auth, lopts...)
		if err != nil {
			return err
		}
		sources = append(sources, logs)
		cl.cloudLogs = logs
	}
	cl.Audit = audit.NewReader(sources)
	return nil
}

// Close closes the keep-alive connections that the clients Connect made
// keep open between requests: the IAM token exchange's, the key service's,
// the IAM APIs', COS's (its IAM token exchange included), the classic
// API's and Activity Tracker's. Each client has a transport of its own, so
// no one else's connections are touched (with Config.HTTPClient they all
// share that client's transport, and Close empties its idle pool). Requests in flight are not
// interrupted, and the clients stay usable: a later call opens new
// connections. Close on nil does nothing.
func (c *Clients) Close() {
	if c == nil {
		return
	}
	if c.Auth != nil {
		c.Auth.CloseIdleConnections()
	}
	if c.Keys != nil {
		c.Keys.CloseIdleConnections()
	}
	if c.IAM != nil {
		c.IAM.CloseIdleConnections()
	}
	if c.COS != nil {
		c.COS.CloseIdleConnections()
	}
	if c.Classic != nil {
		c.Classic.CloseIdleConnections()
	}
	if c.cloudLogs != nil {
		c.cloudLogs.CloseIdleConnections()
	}
}

// LoadEndpoints reads Endpoints from a JSON file, such as the first line
// examples/cloudsim prints (other keys are ignored).
func LoadEndpoints(path string) (Endpoints, error) {
	var ep Endpoints
	b, err := os.ReadFile(path)
	if err != nil {
		return ep, fmt.Errorf("ibmcloud: reading endpoints: %w", err)
	}
	if err := json.Unmarshal(b, &ep); err != nil {
		return ep, fmt.Errorf("ibmcloud: endpoints file %s: %w", path, err)
	}
	return ep, nil
}

// maxSecretFile bounds ReadSecretFile: API keys are 44 characters.
const maxSecretFile = 64 << 10

// ErrWritableSecretFile is matched by ReadSecretFile's error for a file
// that users other than its owner can write: someone else could have put
// their key there, so it is not used.
var ErrWritableSecretFile = errors.New("ibmcloud: secret file is writable by other users")

// ReadSecretFile reads an API key (or another one-line secret) from a file,
// without surrounding white space. An empty file is an error, and so is a
// file writable by group or others (ErrWritableSecretFile). A file readable
// by others is read; vhdcrypt.LooseKeyFileMode tells a caller who wants to
// warn about it.
func ReadSecretFile(path string) (*secret.String, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ibmcloud: reading secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ibmcloud: reading secret file: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v (chmod go-w %s, or 600)", ErrWritableSecretFile, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("ibmcloud: reading secret file %s: %w", path, err)
	}
	defer clear(b)
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("ibmcloud: secret file %s is larger than %d bytes", path, maxSecretFile)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return nil, fmt.Errorf("ibmcloud: secret file %s is empty", path)
	}
	return secret.NewString(v), nil
}

// WriteSecretFile stores a secret (an API key that IAM shows only once) in a
// new file at path, mode 0600, followed by a newline. It refuses to replace
// an existing file (the error wraps fs.ErrExist). Like WriteKeyFile it is
// all or nothing, also across a crash or power cut, and durable once it
// returns.
func WriteSecretFile(path string, s *secret.String) error {
	b := []byte(s.Reveal() + "\n")
	defer clear(b)
	if err := durable.Create(path, b); err != nil {
		return fmt.Errorf("ibmcloud: writing secret file: %w", err)
	}
	return nil
}

// The clients Connect makes are what package e2e's Plan takes.
var (
	_ e2e.ObjectStore  = (*cos.Client)(nil)
	_ e2e.ImageService = (*classic.Client)(nil)
	_ e2e.AuditSource  = (*audit.Reader)(nil)
	_ kms.KeyService   = (*kms.Client)(nil)
)
