// Package httppolicy is the one HTTP policy of the library's clients (IAM,
// Key Protect and HPCS, COS, SoftLayer, Cloud Logs): what happens to a
// redirect, and the timeouts every client has.
//
// Redirects. A client follows a redirect only when nothing secret can go
// with it: the request that was answered carries no credentials (no
// Authorization or X-Auth-Token header, no user information in its URL)
// and no body (a token request's form body holds apikey=...), and the
// target has the same scheme, host and port as the request and passes
// internal/endpoint's rule (https, or http to a loopback host). Any other
// redirect is not followed: the client gets the 3xx answer itself, which
// every service client reports as an error naming the status.
//
// The rule is enforced in the transport (Wrap), because three of the
// clients are SDKs (softlayer-go, keyprotect-go-client, ibm-cos-sdk-go)
// that build their own http.Client: a transport that answers a refused
// redirect without its Location header stops net/http's redirect loop
// whatever CheckRedirect the SDK set, so the second host receives nothing.
// CheckRedirect applies the same rule for the http.Clients the library
// builds itself (defence in depth).
//
// Transport errors pass through unchanged, so *net.OpError, *net.DNSError
// and *url.Error stay reachable with errors.As through each client's
// errors.
package httppolicy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/internal/endpoint"
)

// Timeouts of the clients' transports (internal/endpoint.NewTransport sets
// the dial and TLS handshake bounds; these bound one request).
const (
	// DefaultRequestTimeout bounds one request of a small JSON API (IAM,
	// Key Protect, Cloud Logs, SoftLayer) where the client has no bound
	// of its own.
	DefaultRequestTimeout = 60 * time.Second
)

// RefusedHeader carries the Location of a redirect that was not followed,
// so that an error or a log can say where the server pointed.
const RefusedHeader = "X-E2eimage-Refused-Location"

// ErrRedirect is matched by every *RedirectError.
var ErrRedirect = errors.New("httppolicy: redirect not followed")

// RedirectError says why a redirect was not followed.
type RedirectError struct {
	From, To string // redacted URLs
	Reason   string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redirect from %s to %s not followed: %s", e.From, e.To, e.Reason)
}

// Is matches ErrRedirect.
func (e *RedirectError) Is(target error) bool { return target == ErrRedirect }

// Check decides whether a redirect from req to target may be followed; nil
// means it may.
func Check(req *http.Request, target *url.URL) error {
	refuse := func(why string) error {
		return &RedirectError{From: req.URL.Redacted(), To: target.Redacted(), Reason: why}
	}
	switch {
	case hasCredentials(req):
		return refuse("the request carries credentials")
	case req.Body != nil && req.Body != http.NoBody || req.ContentLength > 0:
		return refuse("the request has a body")
	case !strings.EqualFold(target.Scheme, req.URL.Scheme):
		return refuse("the scheme changes")
	case !strings.EqualFold(target.Host, req.URL.Host):
		return refuse("another host")
	}
	if _, err := endpoint.Check(target.String()); err != nil {
		return refuse(err.Error())
	}
	return nil
}

func hasCredentials(req *http.Request) bool {
	if req.URL.User != nil {
		return true
	}
	for _, h := range []string{"Authorization", "X-Auth-Token", "Proxy-Authorization", "Cookie"} {
		if req.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// Transport applies the redirect rule to the answers of Base.
type Transport struct {
	Base http.RoundTripper // nil means http.DefaultTransport
}

// Wrap returns rt behind the policy (rt itself when it already is).
func Wrap(rt http.RoundTripper) http.RoundTripper {
	if t, ok := rt.(*Transport); ok {
		return t
	}
	return &Transport{Base: rt}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// RoundTrip sends req; a redirect the policy refuses comes back without its
// Location header (moved to RefusedHeader), which net/http does not follow.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base().RoundTrip(req)
	if err != nil || !isRedirect(resp.StatusCode) {
		return resp, err
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp, nil
	}
	target, perr := req.URL.Parse(loc)
	if perr == nil && Check(req, target) == nil {
		return resp, nil
	}
	resp.Header = resp.Header.Clone()
	resp.Header.Del("Location")
	resp.Header.Set(RefusedHeader, loc)
	return resp, nil
}

// CloseIdleConnections closes Base's idle connections.
func (t *Transport) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	if c, ok := t.base().(closer); ok {
		c.CloseIdleConnections()
	}
}

// Unwrap returns Base (for checks such as endpoint.CheckTransport).
func (t *Transport) Unwrap() http.RoundTripper { return t.base() }

// CheckRedirect is an http.Client CheckRedirect that applies Check to the
// first request of the chain (the one that carries what was sent) and to
// the last, and allows at most 10 redirects.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if len(via) == 0 {
		return nil
	}
	if err := Check(via[0], req.URL); err != nil {
		return err
	}
	return Check(via[len(via)-1], req.URL)
}

// Client returns a copy of hc (a new client when hc is nil) whose transport
// is behind the policy and whose CheckRedirect is CheckRedirect. hc itself
// is not changed.
func Client(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc //nolint:govet // copying the configuration, not a client in use
	}
	c.Transport = Wrap(c.Transport)
	c.CheckRedirect = CheckRedirect
	return &c
}

// ServiceClock follows a service's clock from the Date header of its
// answers (RFC 9110 §6.6.1: the origin server's time when it made the
// answer), so that a time window ending "now" can end at the service's now
// rather than the local clock's, which may lag or lead it. It is safe for
// concurrent use; the zero value has seen no answer.
type ServiceClock struct {
	mu     sync.Mutex
	offset time.Duration
	seen   bool
	local  func() time.Time
}

// Observe records the Date of an answer received at the local time at.
// Date has a resolution of one second and is truncated, so the service's
// time at receipt is taken as Date plus one second: an upper bound.
func (c *ServiceClock) Observe(h http.Header, at time.Time) {
	d, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	c.mu.Lock()
	c.offset, c.seen = d.Add(time.Second).Sub(at), true
	c.mu.Unlock()
}

// Now returns the service's current time as the last answer showed it (the
// local clock moved by the last observed offset), and false when no answer
// with a Date has been seen.
func (c *ServiceClock) Now() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.local != nil {
		now = c.local
	}
	if !c.seen {
		return now(), false
	}
	return now().Add(c.offset), true
}

// Transport returns base with every answer's Date observed by c.
func (c *ServiceClock) Transport(base http.RoundTripper) http.RoundTripper {
	return &clockTransport{base: base, clock: c}
}

type clockTransport struct {
	base  http.RoundTripper
	clock *ServiceClock
}

func (t *clockTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.base
	if b == nil {
		b = http.DefaultTransport
	}
	resp, err := b.RoundTrip(req)
	if err == nil {
		t.clock.Observe(resp.Header, time.Now())
	}
	return resp, err
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *clockTransport) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	b := t.base
	if b == nil {
		b = http.DefaultTransport
	}
	if c, ok := b.(closer); ok {
		c.CloseIdleConnections()
	}
}

// Unwrap returns the base transport.
func (t *clockTransport) Unwrap() http.RoundTripper {
	if t.base == nil {
		return http.DefaultTransport
	}
	return t.base
}
