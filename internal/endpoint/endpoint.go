// Package endpoint holds the one rule every e2eimage client applies to the
// service URLs and HTTP transports it is given: requests that carry API
// keys, tokens or key material go over https, or over plain http only to
// the local machine (a simulator or a test server), and never over a TLS
// connection whose certificate is not verified.
//
// Check validates a URL, IsLoopback decides what "the local machine" is,
// CheckTransport / CheckClient refuse transports with InsecureSkipVerify,
// and NewTransport is the verifying transport the clients use by default. Errors are typed (ErrInvalid, ErrScheme,
// ErrInsecure, ErrSkipVerify) and carry no package prefix: callers wrap
// them with their own context and, where they have one, their own
// sentinel.
//
// What this package does NOT do: it resolves no names (a host name is
// loopback only if it is "localhost"; "127.1" or a name that resolves to
// 127.0.0.1 is not), it does not look inside RoundTrippers that wrap an
// *http.Transport, and it makes no request.
package endpoint

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sentinels for what Check, CheckTransport and CheckClient refuse. An
// error they return matches exactly one of them with errors.Is; its
// message says what is wrong with which URL, never the sentinel's text.
var (
	// ErrInvalid: the URL does not parse, has no host, or carries user
	// information (which may hold a password).
	ErrInvalid = errors.New("endpoint: invalid URL")
	// ErrScheme: the scheme is neither https nor http.
	ErrScheme = errors.New("endpoint: scheme is not https")
	// ErrInsecure: plain http to a host that is not loopback.
	ErrInsecure = errors.New("endpoint: plain http to a host that is not loopback")
	// ErrSkipVerify: the transport does not verify TLS certificates.
	ErrSkipVerify = errors.New("endpoint: TLS certificate verification is off")
)

// checkError is a refusal: msg for people, kind (one of the sentinels)
// and the cause, if any, for errors.Is and errors.As.
type checkError struct {
	kind  error
	msg   string
	cause error
}

func (e *checkError) Error() string { return e.msg }

func (e *checkError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func refuse(kind error, format string, args ...any) error {
	return &checkError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Check parses raw as the base URL of a service and returns it if it is
// https to any host, or http to a loopback host (see IsLoopback), with a
// host and without user information. The scheme is compared without
// regard to case, as url.Parse lowers it. Check changes nothing else:
// trailing slashes, paths, queries and fragments are the caller's to
// judge.
//
// Error messages never echo the raw string of a URL that does not parse
// or that holds user information, since either may contain a password.
func Check(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error quotes the whole input, password included.
			return nil, &checkError{kind: ErrInvalid, msg: "the URL does not parse: " + ue.Err.Error(), cause: ue.Err}
		}
		return nil, &checkError{kind: ErrInvalid, msg: "the URL does not parse", cause: err}
	}
	if u.User != nil {
		return nil, refuse(ErrInvalid, "the URL must not contain user information")
	}
	if u.Opaque != "" {
		// "https:user:password@host" parses as opaque: do not echo it.
		return nil, refuse(ErrInvalid, "the URL has no host: want an absolute URL such as https://host")
	}
	if u.Hostname() == "" {
		return nil, refuse(ErrInvalid, "%q has no host: want an absolute URL such as https://host", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, refuse(ErrInsecure, "%q is plain http to a host that is not loopback: want https", raw)
		}
	default:
		return nil, refuse(ErrScheme, "%q has scheme %q: want https (or http to a loopback host)", raw, u.Scheme)
	}
	return u, nil
}

// IsLoopback reports whether host, a host name or IP address without port
// or brackets (url.URL.Hostname), names the local machine: "localhost" in
// any case, an address in 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into
// IPv6 (::ffff:127.0.0.1). No name is resolved, so "localhost.", "127.1"
// and names under public DNS that resolve to 127.0.0.1 are not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewTransport returns a new keep-alive transport that verifies
// certificates and speaks TLS 1.2 or later, with timeouts on dialing
// (30 s) and the TLS handshake (10 s) and at most 4 idle connections per
// host: the default of the clients that talk to one API host (IAM, Key
// Protect). It honours the proxy environment variables. Each call returns
// its own transport, so closing one's idle connections leaves the others.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// CheckTransport returns an error matching ErrSkipVerify if rt is an
// *http.Transport (nil meaning http.DefaultTransport) whose TLS
// configuration skips certificate verification. Other RoundTrippers are
// accepted as they are: their TLS settings cannot be seen from outside.
func CheckTransport(rt http.RoundTripper) error {
	if rt == nil {
		rt = http.DefaultTransport
	}
	// Look through wrappers such as internal/httppolicy's Transport.
	for range 8 {
		u, ok := rt.(interface{ Unwrap() http.RoundTripper })
		if !ok {
			break
		}
		rt = u.Unwrap()
	}
	if t, ok := rt.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify {
		return refuse(ErrSkipVerify, "the transport skips TLS certificate verification (InsecureSkipVerify)")
	}
	return nil
}

// CheckClient applies CheckTransport to hc's Transport. A nil hc is
// accepted, as callers then use a client of their own.
func CheckClient(hc *http.Client) error {
	if hc == nil {
		return nil
	}
	return CheckTransport(hc.Transport)
}
