package iam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/httppolicy"
	"github.com/e2eimage/e2eimage/secret"
)

// IAM endpoints (../docs/CLOUD.md §3.1).
const (
	// DefaultURL is the public IAM endpoint.
	DefaultURL = "https://iam.cloud.ibm.com"
	// PrivateURL is the IAM endpoint on the IBM Cloud private network.
	PrivateURL = "https://private.iam.cloud.ibm.com"
	// tokenPath is appended to the base URL by go-sdk-core.
	tokenPath = "/identity/token"
)

// Token timing. IAM tokens last at most 60 minutes (../docs/CLOUD.md §3.1); a token
// is renewed when less than tokenMargin (or a fifth of its lifetime, if that
// is shorter) remains, so that a request never leaves with a token about to
// expire.
const (
	tokenMargin         = 60 * time.Second
	defaultTokenTimeout = 30 * time.Second
)

// ErrAuthentication is matched by errors from IAM refusing the API key (HTTP
// 400 or 401 from the token endpoint, e.g. BXNIM0415E "Provided API key could
// not be found"). They also say so through a CredentialsRefused method
// (true), which is how package kms tells a refused key from an IAM outage
// without importing this package.
var ErrAuthentication error = refusedError{}

type refusedError struct{}

// ErrInsecureEndpoint is returned for an IAM URL that is not https (plain
// http is allowed only to a loopback host, such as a local simulator): an
// API key never travels in clear text.
var ErrInsecureEndpoint = errors.New("iam: endpoint must use https (plain http is allowed only to a loopback host)")

func (refusedError) Error() string { return "iam: the API key was refused" }

// CredentialsRefused reports that IAM refused the credentials (rather than
// being unreachable): a token source's callers, such as kms, branch on it.
func (refusedError) CredentialsRefused() bool { return true }

// WithURL sets the IAM base URL (default DefaultURL). A full token URL
// ending in /identity/token is accepted too. It must be https, or http to a
// loopback host. An empty url keeps the default, so that a value read from an
// environment variable that may be unset can be passed as it is.
func WithURL(url string) Option {
	return func(o *options) {
		if url != "" {
			o.url = url
		}
	}
}

// WithTokenTimeout bounds one token request (default 30s); the context
// passed to AccessToken bounds it too.
func WithTokenTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Authenticator exchanges an API key for IAM access tokens through
// go-sdk-core's IamAuthenticator and caches them until shortly before they
// expire. It implements kms.TokenSource and go-sdk-core's
// core.Authenticator, so the same credentials serve the key services and the
// platform SDKs. It is safe for concurrent use; concurrent callers share one
// token request.
//
// Unlike core.IamAuthenticator used directly, it starts no background
// goroutine, and a token request stops when the caller's context is done.
type Authenticator struct {
	apiKey    *secret.String
	url       string
	transport http.RoundTripper
	timeout   time.Duration
	now       func() time.Time

	sem    chan struct{} // one token request at a time
	mu     sync.Mutex
	token  *secret.String
	expiry time.Time
}

var (
	_ core.Authenticator = (*Authenticator)(nil)
)

// NewAuthenticator returns an Authenticator for apiKey. It keeps its own
// copy of the key, so the caller may Zero apiKey afterwards. It makes no
// request.
func NewAuthenticator(apiKey *secret.String, opts ...Option) (*Authenticator, error) {
	if apiKey.Empty() {
		return nil, errors.New("iam: an API key is required")
	}
	o := options{url: DefaultURL, timeout: defaultTokenTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	base, err := checkURL(strings.TrimSuffix(strings.TrimSuffix(o.url, "/"), tokenPath))
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = endpoint.NewTransport()
	if o.httpClient != nil && o.httpClient.Transport != nil {
		rt = o.httpClient.Transport
	}
	if err := endpoint.CheckTransport(rt); err != nil {
		return nil, fmt.Errorf("iam: refusing to send an API key over this transport: %w", err)
	}
	// No redirect carries the API key (the form body) anywhere.
	rt = httppolicy.Wrap(rt)
	if o.timeout <= 0 {
		o.timeout = defaultTokenTimeout
	}
	return &Authenticator{
		apiKey:    secret.NewString(apiKey.Reveal()),
		url:       base,
		transport: rt,
		timeout:   o.timeout,
		now:       time.Now,
		sem:       make(chan struct{}, 1),
	}, nil
}

// CloseIdleConnections closes the keep-alive connections to IAM that carry
// no token request now: those of the Authenticator's own transport, or of
// the one given with WithTransport if it has a CloseIdleConnections method.
// The Authenticator stays usable, and its cached token stays valid.
func (a *Authenticator) CloseIdleConnections() {
	if ci, ok := a.transport.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// URL returns the IAM base URL in use.
func (a *Authenticator) URL() string { return a.url }

// AccessToken returns a valid access token, without the "Bearer " prefix,
// fetching a new one when the cached one is missing or about to expire.
func (a *Authenticator) AccessToken(ctx context.Context) (*secret.String, error) {
	if tok := a.cached(); tok != nil {
		return tok, nil
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("iam: waiting for an access token: %w", ctx.Err())
	}
	defer func() { <-a.sem }()
	if tok := a.cached(); tok != nil { // another caller fetched it meanwhile
		return tok, nil
	}
	return a.fetch(ctx)
}

func (a *Authenticator) cached() *secret.String {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != nil && a.now().Before(a.expiry) {
		return a.token
	}
	return nil
}

// InvalidateToken drops the cached token, so that the next AccessToken
// fetches a new one. Call it when a service refuses a token (HTTP 401).
func (a *Authenticator) InvalidateToken() {
	a.mu.Lock()
	a.token = nil
	a.mu.Unlock()
}

// fetch asks IAM for a token through a throw-away core.IamAuthenticator
// whose HTTP client is bound to ctx (go-sdk-core's token call takes no
// context).
func (a *Authenticator) fetch(ctx context.Context) (*secret.String, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("iam: getting an access token: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	ca := &core.IamAuthenticator{
		ApiKey: a.apiKey.Reveal(),
		URL:    a.url,
		Client: &http.Client{Transport: ctxTransport{ctx: tctx, base: a.transport}, CheckRedirect: httppolicy.CheckRedirect},
	}
	start := a.now()
	resp, err := ca.RequestToken()
	if err != nil {
		if tctx.Err() != nil {
			return nil, fmt.Errorf("iam: getting an access token from %s: %w", a.url, tctx.Err())
		}
		if sc := httpStatus(err); sc == http.StatusBadRequest || sc == http.StatusUnauthorized {
			return nil, fmt.Errorf("iam: getting an access token from %s: HTTP %d: %w: %w", a.url, sc, ErrAuthentication, err)
		}
		return nil, fmt.Errorf("iam: getting an access token from %s: %w", a.url, err)
	}
	if resp == nil || resp.AccessToken == "" {
		return nil, fmt.Errorf("iam: getting an access token from %s: the answer holds no access_token", a.url)
	}
	life := time.Duration(resp.ExpiresIn) * time.Second
	if life <= 0 && resp.Expiration > 0 {
		life = time.Unix(resp.Expiration, 0).Sub(start)
	}
	if life <= 0 {
		return nil, fmt.Errorf("iam: getting an access token from %s: the token has no lifetime (expires_in and expiration missing)", a.url)
	}
	margin := min(tokenMargin, life/5)
	tok := secret.NewString(resp.AccessToken)
	a.mu.Lock()
	a.token, a.expiry = tok, start.Add(life-margin)
	a.mu.Unlock()
	return tok, nil
}

// AuthenticationType implements core.Authenticator.
func (a *Authenticator) AuthenticationType() string { return core.AUTHTYPE_IAM }

// Authenticate implements core.Authenticator: it sets the Authorization
// header of req, bounded by req's context.
func (a *Authenticator) Authenticate(req *http.Request) error {
	tok, err := a.AccessToken(req.Context())
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	return nil
}

// Validate implements core.Authenticator.
func (a *Authenticator) Validate() error {
	if a == nil || a.apiKey.Empty() {
		return errors.New("iam: the authenticator has no API key")
	}
	return nil
}

// ctxTransport binds every request to a context.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(req.WithContext(t.ctx))
}

// checkURL applies the rule every client of this SDK applies to endpoints
// (https, or http to a loopback host; no query or fragment) with an iam
// prefix, and drops a trailing slash.
func checkURL(raw string) (string, error) {
	u, err := endpoint.Check(raw)
	switch {
	case errors.Is(err, endpoint.ErrInsecure), errors.Is(err, endpoint.ErrScheme):
		return "", fmt.Errorf("%w: %w", ErrInsecureEndpoint, err)
	case err != nil:
		return "", fmt.Errorf("iam: endpoint: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("iam: endpoint %q: must not have a query or fragment", raw)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// httpStatus is the HTTP status behind a go-sdk-core error, 0 if none.
func httpStatus(err error) int {
	var ae *core.AuthenticationError
	if errors.As(err, &ae) && ae.HTTPProblem != nil && ae.Response != nil {
		return ae.Response.GetStatusCode()
	}
	var hp *core.HTTPProblem
	if errors.As(err, &hp) && hp.Response != nil {
		return hp.Response.GetStatusCode()
	}
	return 0
}
