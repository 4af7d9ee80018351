package cos

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam"
	"github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/httppolicy"
	"github.com/e2eimage/e2eimage/secret"
)

// DefaultIAMTokenURL is the IAM token endpoint the API-key credentials use
// unless Config.IAMTokenURL says otherwise (../docs/CLOUD.md §3.1). The COS SDK
// takes the full URL, path included.
const DefaultIAMTokenURL = "https://iam.cloud.ibm.com/identity/token"

// DefaultMaxRetries is how many times the SDK itself retries one request
// (throttling, 5xx, connection errors) before the caller sees the error. The
// upload engine retries a failed part on top of this (WithPartAttempts).
// CreateMultipartUpload is the exception: the engine sends it without SDK
// retries and retries it itself, because a retry after a lost answer
// creates a second upload.
const DefaultMaxRetries = 3

// EndpointType selects which of a region's COS endpoints a client uses.
type EndpointType int

// The endpoint types (../docs/CLOUD.md §4.2).
const (
	// Public is s3.<region>.cloud-object-storage.appdomain.cloud.
	Public EndpointType = iota
	// Private is s3.private.<region>…, reachable from IBM Cloud's private
	// network (classic infrastructure included).
	Private
	// Direct is s3.direct.<region>…, for VPC.
	Direct
)

// String names the endpoint type.
func (t EndpointType) String() string {
	switch t {
	case Public:
		return "public"
	case Private:
		return "private"
	case Direct:
		return "direct"
	}
	return fmt.Sprintf("EndpointType(%d)", int(t))
}

// Errors returned by New.
var (
	// ErrConfig is wrapped by every configuration error New returns.
	ErrConfig = errors.New("cos: invalid configuration")
	// ErrInsecureEndpoint means a plain-http URL that is not a loopback
	// address, or an HTTP client that skips TLS verification. Requests carry
	// bearer tokens or signatures and object data; they are never sent in
	// clear text over a network.
	ErrInsecureEndpoint = errors.New("cos: insecure endpoint: plain http is allowed only to loopback hosts, and TLS verification cannot be turned off")
)

// HMAC holds COS HMAC credentials (an access key ID and a secret access
// key, created with a service credential's HMAC option).
type HMAC struct {
	AccessKeyID     string
	SecretAccessKey *secret.String
}

// Config describes how to reach COS. Exactly one of APIKey and HMAC must
// be set.
type Config struct {
	// Region is the COS location the endpoint is derived from and, for
	// HMAC, the region requests are signed for ("us-south", "eu-de", ...).
	// Required.
	Region string
	// EndpointType picks the public (default), private or direct endpoint.
	EndpointType EndpointType
	// Endpoint overrides the URL derived from Region and EndpointType
	// ("https://s3.example.com", or "http://127.0.0.1:9000" for a local
	// server). Plain http is accepted only for loopback hosts.
	Endpoint string

	// Tokens supplies IAM access tokens (iam.Authenticator is one), so that
	// COS shares one token cache with the other clients of the same API key
	// (kms, iam, audit) rather than exchanging the key again. Exactly one of
	// Tokens, APIKey and HMAC must be set.
	Tokens TokenSource

	// APIKey is an IBM Cloud API key. The SDK's ibmiam credentials exchange
	// it for IAM tokens at IAMTokenURL and refresh them.
	APIKey *secret.String
	// ServiceInstanceID is the COS instance's CRN or GUID, sent with
	// API-key credentials as ibm-service-instance-id. Needed to create or
	// list buckets; object operations work without it.
	ServiceInstanceID string
	// IAMTokenURL overrides DefaultIAMTokenURL (full URL including
	// /identity/token), for the private IAM endpoint or a local simulator.
	IAMTokenURL string

	// HMAC selects HMAC (AWS Signature V4) credentials instead of an API key.
	HMAC *HMAC

	// HTTPClient is used for every request, IAM included. Default: a client
	// whose transport keeps enough idle connections for parallel parts and
	// requires TLS 1.2. A client whose transport skips certificate
	// verification is refused.
	HTTPClient *http.Client
	// MaxRetries is the SDK's per-request retry count. Default
	// DefaultMaxRetries; a negative value disables SDK retries.
	MaxRetries int
	// Logger receives the client's log records (retries at Info, failures
	// at Warn, part traffic at Debug). Default: discard.
	Logger *slog.Logger
}

// Client is a COS client. It is safe for concurrent use.
type Client struct {
	s3       *s3.S3
	http     *http.Client
	region   string
	endpoint string
	logger   *slog.Logger
}

// region names are lower-case words joined by hyphens ("us-south",
// "eu-de", "us" for cross-region, "ams03" for single sites).
var regionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// EndpointURL returns the COS endpoint for a location and endpoint type:
// https://s3.<region>.cloud-object-storage.appdomain.cloud and its
// s3.private. and s3.direct. variants (../docs/CLOUD.md §4.2).
func EndpointURL(region string, t EndpointType) (string, error) {
	if !regionRE.MatchString(region) {
		return "", fmt.Errorf("%w: region %q is not a COS location name", ErrConfig, region)
	}
	var prefix string
	switch t {
	case Public:
		prefix = "s3."
	case Private:
		prefix = "s3.private."
	case Direct:
		prefix = "s3.direct."
	default:
		return "", fmt.Errorf("%w: unknown endpoint type %v", ErrConfig, t)
	}
	return "https://" + prefix + region + ".cloud-object-storage.appdomain.cloud", nil
}

// New returns a client for cfg. It makes no request: a wrong key or an
// unreachable endpoint shows on the first call.
func New(cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: Region is required", ErrConfig)
	}
	ep := cfg.Endpoint
	if ep == "" {
		var err error
		if ep, err = EndpointURL(cfg.Region, cfg.EndpointType); err != nil {
			return nil, err
		}
	}
	if err := checkURL("endpoint", ep); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	} else if err := endpoint.CheckClient(hc); err != nil {
		return nil, fmt.Errorf("%w (HTTPClient: %w)", ErrInsecureEndpoint, err)
	}
	// The library's HTTP policy: no redirect carries a signature, a token,
	// the IAM exchange's API key or a body elsewhere. base keeps the
	// caller's transport for the SDK session (AWS_CA_BUNDLE below).
	base := hc
	hc = httppolicy.Client(hc)
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	awsConf := aws.NewConfig().
		WithRegion(cfg.Region).
		WithEndpoint(strings.TrimRight(ep, "/")).
		WithS3ForcePathStyle(true).
		WithHTTPClient(hc).
		WithMaxRetries(retries)

	var creds *credentials.Credentials
	set := 0
	for _, ok := range []bool{cfg.Tokens != nil, !cfg.APIKey.Empty(), cfg.HMAC != nil} {
		if ok {
			set++
		}
	}
	switch {
	case set > 1:
		return nil, fmt.Errorf("%w: set one of Tokens, APIKey and HMAC", ErrConfig)
	case cfg.Tokens != nil:
		creds = credentials.NewCredentials(&tokenProvider{ts: cfg.Tokens, instance: cfg.ServiceInstanceID})
	case cfg.HMAC != nil:
		if cfg.HMAC.AccessKeyID == "" || cfg.HMAC.SecretAccessKey.Empty() {
			return nil, fmt.Errorf("%w: HMAC needs an access key ID and a secret access key", ErrConfig)
		}
		creds = credentials.NewStaticCredentials(cfg.HMAC.AccessKeyID, cfg.HMAC.SecretAccessKey.Reveal(), "")
	case !cfg.APIKey.Empty():
		tokenURL := cfg.IAMTokenURL
		if tokenURL == "" {
			tokenURL = DefaultIAMTokenURL
		}
		if err := checkURL("IAM token URL", tokenURL); err != nil {
			return nil, err
		}
		// The token manager uses awsConf.HTTPClient, so the TLS rules
		// above apply to the IAM exchange too.
		creds = ibmiam.NewStaticCredentials(awsConf, tokenURL, cfg.APIKey.Reveal(), cfg.ServiceInstanceID)
	default:
		return nil, fmt.Errorf("%w: no credentials (set Tokens, APIKey or HMAC)", ErrConfig)
	}
	awsConf.WithCredentials(creds)

	// With AWS_CA_BUNDLE set, the SDK's session loads the bundle into the
	// client's transport, and fails when that is not an *http.Transport (a
	// proxying or recording RoundTripper). Such a transport is the caller's
	// to configure: the session is made over a stand-in, then given hc.
	sessConf := awsConf.Copy().WithHTTPClient(base)
	if _, ok := base.Transport.(*http.Transport); !ok && base.Transport != nil {
		sessConf = awsConf.Copy().WithHTTPClient(&http.Client{Transport: &http.Transport{}})
	}
	sess, err := session.NewSession(sessConf)
	if err != nil {
		return nil, fmt.Errorf("cos: creating SDK session: %w", err)
	}
	sess.Config.HTTPClient = hc
	svc := s3.New(sess)
	svc.Handlers.Send.PushBack(unwrappableError)
	return &Client{
		s3:       svc,
		http:     hc,
		region:   cfg.Region,
		endpoint: ep,
		logger:   logger,
	}, nil
}

// Region returns the configured region.
func (c *Client) Region() string { return c.region }

// Endpoint returns the endpoint URL requests go to.
func (c *Client) Endpoint() string { return c.endpoint }

// CloseIdleConnections closes the HTTP connections the client keeps open
// between requests. The client stays usable.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// SDK returns the underlying ibm-cos-sdk-go client, for operations this
// package does not wrap. It shares the client's credentials and transport.
func (c *Client) SDK() *s3.S3 { return c.s3 }

// checkURL accepts https URLs, and http URLs whose host is a loopback
// address or "localhost" (internal/endpoint's rule); what names the URL in
// errors.
func checkURL(what, raw string) error {
	_, err := endpoint.Check(raw)
	switch {
	case errors.Is(err, endpoint.ErrInsecure):
		return fmt.Errorf("%w (%s: %w)", ErrInsecureEndpoint, what, err)
	case err != nil:
		return fmt.Errorf("%w: %s: %w", ErrConfig, what, err)
	}
	return nil
}

// Transport settings of the default HTTP client.
const (
	// maxIdleConnsPerHost keeps a connection per part in flight, with room
	// for a raised concurrency, instead of net/http's default of 2.
	maxIdleConnsPerHost = 32
	// responseHeaderTimeout bounds the wait for a response once a request
	// has been sent in full; a stuck connection then fails and is retried.
	responseHeaderTimeout = 2 * time.Minute
)

// defaultHTTPClient speaks HTTP/1.1: each part in flight gets its own TCP
// connection, which moves bulk data faster than multiplexing them over one
// HTTP/2 connection's flow-control window.
func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * maxIdleConnsPerHost,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}}
}
