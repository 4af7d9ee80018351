package classic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/session"
	"github.com/softlayer/softlayer-go/sl"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/httppolicy"
	"github.com/e2eimage/e2eimage/internal/retry"
	"github.com/e2eimage/e2eimage/secret"
)

// Endpoints of the SoftLayer REST API (../docs/CLOUD.md section 5.5).
const (
	// DefaultEndpoint is the public REST endpoint, used when WithEndpoint is
	// not given.
	DefaultEndpoint = session.DefaultEndpoint
	// PrivateEndpoint is the REST endpoint on the IBM Cloud private
	// network, reachable from classic servers and over the VPN.
	PrivateEndpoint = "https://api.service.softlayer.com/rest/v3.1"
)

// IBMCloudUsername is the user name that goes with an IBM Cloud (IAM) API
// key on the classic API (SLDN "Authenticating to the SoftLayer API").
const IBMCloudUsername = "apikey"

// Defaults of the options.
const (
	// DefaultRequestTimeout bounds one HTTP request; it is softlayer-go's
	// own default (session.DefaultTimeout).
	DefaultRequestTimeout = session.DefaultTimeout
	// DefaultReadAttempts is how many times a read-only call is tried when
	// it times out or is rate limited.
	DefaultReadAttempts = 4
	// DefaultMinPoll and DefaultMaxPoll bound the interval between two
	// polls of a template or a server. Imports take "several minutes to an
	// hour" (../docs/CLOUD.md section 7.2), provisioning a few minutes.
	DefaultMinPoll = 5 * time.Second
	DefaultMaxPoll = 60 * time.Second
)

// Credentials authenticate to the classic infrastructure API.
type Credentials struct {
	// Username is the classic user name, or IBMCloudUsername ("apikey")
	// for an IBM Cloud API key. Empty means IBMCloudUsername.
	Username string
	// APIKey is the classic API key or the IBM Cloud API key.
	APIKey *secret.String
}

// IBMCloudAPIKey returns credentials for an IBM Cloud (IAM) API key.
func IBMCloudAPIKey(key *secret.String) Credentials {
	return Credentials{Username: IBMCloudUsername, APIKey: key}
}

// ClassicAPIKey returns credentials for a classic infrastructure user name
// and its API key.
func ClassicAPIKey(username string, key *secret.String) Credentials {
	return Credentials{Username: username, APIKey: key}
}

// Option configures a Client.
type Option func(*options)

type options struct {
	endpoint     string
	httpClient   *http.Client
	logger       *slog.Logger
	reqTimeout   time.Duration
	readAttempts int
	minPoll      time.Duration
	maxPoll      time.Duration
	userAgent    string
	retryBase    time.Duration // first delay between read attempts
	unknownBound time.Duration
	noProgress   time.Duration
	now          func() time.Time // the clock of the unknown-state and no-progress bounds
}

// WithEndpoint sets the REST endpoint (default DefaultEndpoint). It must be
// https, or http to a loopback address (a local simulator). An endpoint
// containing "/xmlrpc/" is refused: this package speaks REST only. An empty
// u keeps the default, so that a value read from an environment variable that
// may be unset can be passed as it is.
func WithEndpoint(u string) Option {
	return func(o *options) {
		if u != "" {
			o.endpoint = u
		}
	}
}

// WithPrivateEndpoint is WithEndpoint(PrivateEndpoint).
func WithPrivateEndpoint() Option { return WithEndpoint(PrivateEndpoint) }

// WithHTTPClient sets the HTTP client whose Transport carries the requests.
// Its Timeout is ignored (see WithRequestTimeout), and so is its
// CheckRedirect: no redirect is followed that would carry the API key or a
// request body, change host, or leave https (internal/httppolicy).
// A Transport that skips TLS certificate verification makes New fail.
// Default: a transport of the client's own (TLS 1.2 or later, the proxy
// environment variables), which CloseIdleConnections can empty without
// touching anyone else's connections.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithLogger sets the logger for debug messages (polls, retries). Default:
// none. Nothing secret is ever logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRequestTimeout bounds each HTTP request (default
// DefaultRequestTimeout). The context given to each method bounds the whole
// call as well.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.reqTimeout = d } }

// WithReadAttempts sets how many times a read-only call (getObject, list,
// getAllObjects) is tried when it times out, is rate limited, meets a
// 502/503/504 or a transient HTTP 500 ("Internal Error", a timeout, "try
// again"; see the package documentation) (default DefaultReadAttempts; 1
// disables retries). Calls that
// create or change something are never retried: see the package
// documentation.
func WithReadAttempts(n int) Option { return func(o *options) { o.readAttempts = n } }

// WithPollInterval sets the bounds of the interval between two polls of a
// waiting method (defaults DefaultMinPoll and DefaultMaxPoll). The interval
// starts at min, doubles after each poll that saw no change, is capped at
// max and is jittered by up to a half downwards.
func WithPollInterval(min, max time.Duration) Option {
	return func(o *options) { o.minPoll, o.maxPoll = min, max }
}

// WithUnknownStateBound sets how long WaitTemplate accepts a template in a
// state it cannot read before it gives up with a *TemplateStateError
// (default DefaultUnknownStateBound).
func WithUnknownStateBound(d time.Duration) Option { return func(o *options) { o.unknownBound = d } }

// WithNoProgressBound sets how long WaitTemplate accepts one
// transaction status (the same group, status and friendly name on the same
// copy) before it gives up with a *NoProgressError (default
// DefaultNoProgressBound).
func WithNoProgressBound(d time.Duration) Option { return func(o *options) { o.noProgress = d } }

// WithUserAgent appends a product token to softlayer-go's User-Agent.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// Client calls the SoftLayer classic infrastructure API through
// softlayer-go. It is safe for concurrent use.
type Client struct {
	creds    Credentials
	opts     options
	endpoint string
	// transport carries every request: the WithHTTPClient client's (nil
	// meaning http.DefaultTransport) or the client's own.
	transport http.RoundTripper

	// clock follows the API's clock from the Date of its answers.
	clock *httppolicy.ServiceClock

	osMu    sync.Mutex
	osCodes map[string]string // reference code -> name, nil until loaded
}

// New returns a Client. It checks the credentials and the endpoint but makes
// no request.
func New(creds Credentials, opts ...Option) (*Client, error) {
	o := options{
		endpoint:     DefaultEndpoint,
		reqTimeout:   DefaultRequestTimeout,
		readAttempts: DefaultReadAttempts,
		minPoll:      DefaultMinPoll,
		maxPoll:      DefaultMaxPoll,
		retryBase:    time.Second,
		unknownBound: DefaultUnknownStateBound,
		noProgress:   DefaultNoProgressBound,
		now:          time.Now,
	}
	for _, f := range opts {
		f(&o)
	}
	if creds.APIKey.Empty() {
		return nil, errors.New("classic: no API key")
	}
	if creds.Username == "" {
		creds.Username = IBMCloudUsername
	}
	ep, err := checkEndpoint(o.endpoint)
	if err != nil {
		return nil, err
	}
	if err := endpoint.CheckClient(o.httpClient); err != nil {
		return nil, fmt.Errorf("classic: refusing to send an API key over this HTTP client: %w", err)
	}
	if o.reqTimeout <= 0 {
		o.reqTimeout = DefaultRequestTimeout
	}
	if o.readAttempts < 1 {
		o.readAttempts = 1
	}
	if o.minPoll <= 0 {
		o.minPoll = DefaultMinPoll
	}
	if o.maxPoll < o.minPoll {
		o.maxPoll = o.minPoll
	}
	if o.unknownBound <= 0 {
		o.unknownBound = DefaultUnknownStateBound
	}
	if o.noProgress <= 0 {
		o.noProgress = DefaultNoProgressBound
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	var rt http.RoundTripper
	if o.httpClient != nil {
		rt = o.httpClient.Transport
	} else {
		rt = endpoint.NewTransport()
	}
	// No redirect carries the API key elsewhere; every answer's Date sets
	// the service clock (ServiceTime).
	clock := &httppolicy.ServiceClock{}
	return &Client{creds: creds, opts: o, endpoint: ep, transport: httppolicy.Wrap(clock.Transport(rt)), clock: clock}, nil
}

// CloseIdleConnections closes the keep-alive connections that carry no
// request now, as http.Client.CloseIdleConnections does for the client's
// transport: its own, or that of the client given with WithHTTPClient
// (which may be shared). The client stays usable.
func (c *Client) CloseIdleConnections() {
	(&http.Client{Transport: c.transport}).CloseIdleConnections()
}

// ServiceTime returns the SoftLayer API's current time as the Date header
// of its last answer showed it (an upper bound: Date has a resolution of a
// second), and false before any answer arrived. Event log records carry
// the service's time: a window that ends "now" should end at ServiceTime,
// not at the local clock's now, which may lag the service's.
func (c *Client) ServiceTime() (time.Time, bool) { return c.clock.Now() }

// Endpoint returns the REST endpoint the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// checkEndpoint refuses endpoints that would send the API key in clear over
// a network, carry credentials in the URL, or select the XML-RPC transport.
func checkEndpoint(raw string) (string, error) {
	u, err := endpoint.Check(raw)
	if err != nil {
		return "", fmt.Errorf("classic: endpoint: %w", err)
	}
	if strings.Contains(u.Path, "/xmlrpc/") {
		return "", fmt.Errorf("classic: endpoint %q is XML-RPC; only REST is supported", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// session returns a fresh softlayer-go session bound to ctx. A session per
// call keeps calls independent: softlayer-go writes LastCall (which holds
// the call's parameters, API keys included) and the http.Client's Timeout
// into the session it is given. The session is dropped after the call, and
// Debug logging (which prints request bodies) stays off.
func (c *Client) session(ctx context.Context) *session.Session {
	hc := &http.Client{Transport: c.transport, CheckRedirect: httppolicy.CheckRedirect}
	if c.opts.httpClient != nil {
		hc.Jar = c.opts.httpClient.Jar
	}
	s := &session.Session{
		UserName:         c.creds.Username,
		APIKey:           c.creds.APIKey.Reveal(),
		Endpoint:         c.endpoint,
		HTTPClient:       hc,
		Context:          ctx,
		Timeout:          c.opts.reqTimeout,
		TransportHandler: &session.RestTransport{},
		// softlayer-go retries timeouts on every method, POSTs included,
		// and sleeps without watching the context: a createObject that
		// timed out after the server accepted it would be sent again and
		// order a second server. Retries stay off here; reads are retried
		// by Client.read, which honours ctx.
		Retries: 0,
	}
	s.AppendUserAgent("e2eimage")
	if c.opts.userAgent != "" {
		s.AppendUserAgent(c.opts.userAgent)
	}
	return s
}

// secrets lists the strings that must never appear in an error.
func (c *Client) secrets(extra ...*secret.String) []string {
	out := []string{c.creds.APIKey.Reveal()}
	for _, s := range extra {
		if !s.Empty() {
			out = append(out, s.Reveal())
		}
	}
	return out
}

// read runs a read-only call under the one retry policy
// (internal/retry), retrying what transient calls passing: timeouts, rate
// limiting, 502/503/504 and the transient HTTP 500 answers.
func (c *Client) read(ctx context.Context, op string, fn func(*session.Session) error) error {
	p := retry.Policy{MaxAttempts: c.opts.readAttempts, MinWait: c.opts.retryBase, MaxWait: 30 * time.Second,
		OnRetry: func(n int, err error, wait time.Duration) {
			c.opts.logger.DebugContext(ctx, "classic: retrying read", "op", op, "attempt", n, "status", statusOf(err), "wait", wait)
		}}
	err := retry.Do(ctx, p, classify, func(int) error { return fn(c.session(ctx)) })
	return c.apiError(ctx, op, err)
}

// write runs a call that creates or changes something, exactly once.
func (c *Client) write(ctx context.Context, op string, fn func(*session.Session) error, extra ...*secret.String) error {
	if err := fn(c.session(ctx)); err != nil {
		return c.apiError(ctx, op, err, extra...)
	}
	return nil
}

// ptr helpers for softlayer-go's pointer-heavy datatypes.
func sp(s string) *string { return &s }
func bp(b bool) *bool     { return &b }
func ip(i int) *int       { return &i }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func num(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func tm(p *datatypes.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.Time
}

// callRaw makes one API call through softlayer-go and keeps its answer as
// raw JSON, for decodeAnswer.
func callRaw(s *session.Session, service, method string, id *int, args []any, raw *json.RawMessage) error {
	return s.DoRequest(service, method, args, &sl.Options{Id: id}, raw)
}

// decodeAnswer decodes the answer of a POST call (createFromIcos,
// createObject, verifyOrder) strictly, where softlayer-go would decode
// whatever it is given into an empty struct: the answer must be a JSON
// object (or a list of exactly one); one that carries "error" is an *APIError keeping IBM's code and
// message (SLDN release note 2020-10-09: createFromIcos could answer HTTP
// 200 with an error message); every name in required must be present and
// not null; and each field must have the type the datatype gives it.
// Fields the datatype does not know are ignored: SoftLayer adds
// properties without notice.
func (c *Client) decodeAnswer(op string, raw []byte, out any, required []string, extra ...*secret.String) error {
	secrets := c.secrets(extra...)
	bad := func(format string, a ...any) error {
		return &APIError{Op: op, StatusCode: 200, Message: scrub(fmt.Sprintf(format, a...), secrets)}
	}
	// softlayer-python's fixture of createFromIcos is a list holding the
	// template (SoftLayer/fixtures/SoftLayer_Virtual_Guest_Block_Device_Template_Group.py):
	// a one-element list stands for its element.
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 {
		raw = list[0]
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return bad("the answer is not a JSON object (%d bytes)", len(raw))
	}
	if e, ok := fields["error"]; ok {
		var msg, code string
		_ = json.Unmarshal(e, &msg)
		_ = json.Unmarshal(fields["code"], &code)
		if msg == "" {
			msg = string(e)
		}
		return &APIError{Op: op, StatusCode: 200, Code: scrub(code, secrets), Message: scrub(msg, secrets)}
	}
	for _, k := range required {
		if v, ok := fields[k]; !ok || string(v) == "null" {
			return bad("the answer has no %q", k)
		}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return bad("decoding the answer: %v", err)
	}
	return nil
}
