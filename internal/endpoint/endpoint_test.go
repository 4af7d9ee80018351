package endpoint

import (
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	sentinels := []error{ErrInvalid, ErrScheme, ErrInsecure, ErrSkipVerify}
	for _, tc := range []struct {
		in   string
		want error // nil: accepted
		msg  string
	}{
		// Accepted.
		{in: "https://us-south.kms.cloud.ibm.com"},
		{in: "https://example.com:8443/prefix/"},
		{in: "HTTPS://Example.COM"},
		{in: "http://127.0.0.1:8080"},
		{in: "http://127.9.9.9:1/"},
		{in: "http://localhost:9000"},
		{in: "http://LOCALHOST"},
		{in: "HTTP://127.0.0.1"},
		{in: "http://[::1]:9000"},
		{in: "http://[::1]"},
		{in: "http://[::ffff:127.0.0.1]"},
		{in: "http://[::ffff:127.0.0.1]:80/x"},
		{in: "https://host/?a=b#frag"}, // queries and fragments are the caller's to judge

		// Plain http to hosts that only look local.
		{in: "http://localhost.evil.com", want: ErrInsecure, msg: `"http://localhost.evil.com" is plain http to a host that is not loopback: want https`},
		{in: "http://127.0.0.1.nip.io:80", want: ErrInsecure},
		{in: "http://0.0.0.0:8080", want: ErrInsecure},
		{in: "http://127.1", want: ErrInsecure},
		{in: "http://2130706433", want: ErrInsecure},
		{in: "http://localhost.", want: ErrInsecure},
		{in: "http://[::ffff:10.0.0.1]", want: ErrInsecure},
		{in: "http://[::1%25lo]:9", want: ErrInsecure},
		{in: "http://10.0.0.1:80", want: ErrInsecure},
		{in: "http://us-south.kms.cloud.ibm.com", want: ErrInsecure},

		// Other schemes.
		{in: "ftp://127.0.0.1", want: ErrScheme, msg: `"ftp://127.0.0.1" has scheme "ftp": want https (or http to a loopback host)`},
		{in: "ws://localhost", want: ErrScheme},
		{in: "//host/x", want: ErrScheme},

		// Malformed.
		{in: "", want: ErrInvalid},
		{in: "https://", want: ErrInvalid},
		{in: "https:///rest", want: ErrInvalid},
		{in: "http://:8080", want: ErrInvalid},
		{in: "http://[]:80", want: ErrInvalid},
		{in: "us-south.kms.cloud.ibm.com", want: ErrInvalid, msg: `"us-south.kms.cloud.ibm.com" has no host: want an absolute URL such as https://host`},
		{in: "https:user:secretpw@host", want: ErrInvalid, msg: "the URL has no host: want an absolute URL such as https://host"},
		{in: "https://user:secretpw@host", want: ErrInvalid, msg: "the URL must not contain user information"},
		{in: "http://user:secretpw@127.0.0.1", want: ErrInvalid},
		{in: "https://user@host", want: ErrInvalid},
		{in: "https://user:secretpw@ho st", want: ErrInvalid, msg: `the URL does not parse: invalid character " " in host name`},
		{in: "://", want: ErrInvalid},
	} {
		u, err := Check(tc.in)
		if tc.want == nil {
			if err != nil || u == nil {
				t.Errorf("Check(%q) = %v, %v; want it accepted", tc.in, u, err)
			}
			continue
		}
		if u != nil || !errors.Is(err, tc.want) {
			t.Errorf("Check(%q) = %v, %v; want an error matching %v", tc.in, u, err, tc.want)
			continue
		}
		for _, s := range sentinels {
			if s != tc.want && errors.Is(err, s) {
				t.Errorf("Check(%q) error %v also matches %v", tc.in, err, s)
			}
		}
		if tc.msg != "" && err.Error() != tc.msg {
			t.Errorf("Check(%q) error %q, want %q", tc.in, err, tc.msg)
		}
		if strings.Contains(err.Error(), "secretpw") || strings.Contains(err.Error(), "endpoint:") {
			t.Errorf("Check(%q) error %q echoes a password or a sentinel's text", tc.in, err)
		}
	}
}

func TestCheckKeepsTheURL(t *testing.T) {
	t.Parallel()
	u, err := Check("HTTP://LocalHost:9000/a/b/?q=1")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.String(); got != "http://LocalHost:9000/a/b/?q=1" {
		t.Errorf("Check returned %q", got)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.255.255.254": true,
		"::1": true, "0:0:0:0:0:0:0:1": true, "::ffff:127.0.0.1": true,
		"": false, "[::1]": false, "localhost.": false, "localhost.evil.com": false,
		"127.0.0.1.nip.io": false, "127.1": false, "0.0.0.0": false, "::": false,
		"128.0.0.1": false, "10.0.0.1": false, "::ffff:10.0.0.1": false, "example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckTransport(t *testing.T) {
	t.Parallel()
	skip := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the test checks that it is refused
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
		bad  bool
	}{
		{"nil (default transport)", nil, false},
		{"no TLS config", &http.Transport{}, false},
		{"verifying", &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}, false},
		{"skip verify", skip, true},
		{"opaque round tripper", roundTripperFunc(skip.RoundTrip), false},
	} {
		err := CheckTransport(tc.rt)
		if (err != nil) != tc.bad || (tc.bad && !errors.Is(err, ErrSkipVerify)) {
			t.Errorf("%s: CheckTransport = %v, want refused %v", tc.name, err, tc.bad)
		}
		var hc *http.Client
		if tc.rt != nil {
			hc = &http.Client{Transport: tc.rt}
		}
		if err := CheckClient(hc); (err != nil) != tc.bad || (tc.bad && !errors.Is(err, ErrSkipVerify)) {
			t.Errorf("%s: CheckClient = %v, want refused %v", tc.name, err, tc.bad)
		}
	}
	if err := CheckClient(&http.Client{}); err != nil {
		t.Errorf("CheckClient of a client with the default transport: %v", err)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewTransport(t *testing.T) {
	t.Parallel()
	a, b := NewTransport(), NewTransport()
	if a == b || a.TLSClientConfig == b.TLSClientConfig {
		t.Error("NewTransport shares state between calls")
	}
	if err := CheckTransport(a); err != nil {
		t.Errorf("CheckTransport(NewTransport()): %v", err)
	}
	if a.TLSClientConfig.MinVersion != tls.VersionTLS12 || a.Proxy == nil || a.DialContext == nil || a.TLSHandshakeTimeout <= 0 {
		t.Errorf("NewTransport: MinVersion %#x, proxy %v, dialer %v, handshake timeout %v",
			a.TLSClientConfig.MinVersion, a.Proxy != nil, a.DialContext != nil, a.TLSHandshakeTimeout)
	}
}
