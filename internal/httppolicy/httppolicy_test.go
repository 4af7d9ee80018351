package httppolicy

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/endpoint"
)

// servers starts a second host that counts what it receives and a first
// that redirects every request there with status code.
func servers(t *testing.T, code int, sameHostPath bool) (first *httptest.Server, second *atomic.Int32, target *atomic.Int32) {
	t.Helper()
	second, target = &atomic.Int32{}, &atomic.Int32{}
	two := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(two.Close)
	first = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			target.Add(1)
			return
		}
		loc := two.URL + "/token"
		if sameHostPath {
			loc = "/moved"
		}
		http.Redirect(w, r, loc, code)
	}))
	t.Cleanup(first.Close)
	return first, second, target
}

func TestCrossHostRedirectNeverSent(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, name := range []string{"form body", "bearer", "plain GET"} {
			first, second, _ := servers(t, code, false)
			var req *http.Request
			switch name {
			case "form body":
				req, _ = http.NewRequest(http.MethodPost, first.URL+"/identity/token", strings.NewReader("grant_type=x&apikey=SECRET"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "bearer":
				req, _ = http.NewRequest(http.MethodGet, first.URL+"/api", nil)
				req.Header.Set("Authorization", "Bearer SECRET")
			default:
				req, _ = http.NewRequest(http.MethodGet, first.URL+"/api", nil)
			}
			// An SDK's client: default redirect policy, our transport.
			hc := &http.Client{Transport: Wrap(nil)}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%d %s: %v", code, name, err)
			}
			_ = resp.Body.Close()
			if n := second.Load(); n != 0 {
				t.Errorf("%d %s: the second host received %d requests, want 0", code, name, n)
			}
			if resp.StatusCode != code || resp.Header.Get("Location") != "" || resp.Header.Get(RefusedHeader) == "" {
				t.Errorf("%d %s: got %d, Location %q, refused %q; want the 3xx itself without Location", code, name,
					resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get(RefusedHeader))
			}
		}
	}
}

func TestSameHostRedirectWithoutSecretsFollowed(t *testing.T) {
	t.Parallel()
	first, second, target := servers(t, http.StatusTemporaryRedirect, true)
	hc := Client(nil)
	resp, err := hc.Get(first.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || target.Load() != 1 || second.Load() != 0 {
		t.Fatalf("status %d, target %d, second %d; want the same-host GET followed once", resp.StatusCode, target.Load(), second.Load())
	}
	// The same redirect with a credential is not followed.
	req, _ := http.NewRequest(http.MethodGet, first.URL+"/api", nil)
	req.Header.Set("Authorization", "Bearer SECRET")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || target.Load() != 1 {
		t.Fatalf("status %d, target %d; want the 307 returned and the target not asked", resp.StatusCode, target.Load())
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	mk := func(method, raw string, body bool) *http.Request {
		var r io.Reader
		if body {
			r = strings.NewReader("apikey=SECRET")
		}
		req, _ := http.NewRequest(method, raw, r)
		return req
	}
	u := func(s string) *url.URL { x, _ := url.Parse(s); return x }
	for _, tc := range []struct {
		req    *http.Request
		target string
		ok     bool
	}{
		{mk("GET", "https://iam.cloud.ibm.com/a", false), "https://iam.cloud.ibm.com/b", true},
		{mk("GET", "https://iam.cloud.ibm.com/a", false), "http://iam.cloud.ibm.com/b", false},
		{mk("GET", "https://iam.cloud.ibm.com/a", false), "https://evil.example/b", false},
		{mk("GET", "https://iam.cloud.ibm.com/a", false), "https://iam.cloud.ibm.com:8443/b", false},
		{mk("POST", "https://iam.cloud.ibm.com/a", true), "https://iam.cloud.ibm.com/b", false},
		{mk("GET", "http://127.0.0.1:1/a", false), "http://127.0.0.1:1/b", true},
		{mk("GET", "http://127.0.0.1:1/a", false), "http://10.0.0.1:1/b", false},
		{mk("GET", "https://user:pw@iam.cloud.ibm.com/a", false), "https://iam.cloud.ibm.com/b", false},
	} {
		err := Check(tc.req, u(tc.target))
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s %s -> %s) = %v, want ok=%v", tc.req.Method, tc.req.URL, tc.target, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrRedirect) || strings.Contains(err.Error(), "pw@")) {
			t.Errorf("error %q: want ErrRedirect without the password", err)
		}
	}
}

func TestCheckRedirectChain(t *testing.T) {
	t.Parallel()
	first, _ := http.NewRequest(http.MethodPost, "https://a.example/x", strings.NewReader("apikey=1"))
	mid, _ := http.NewRequest(http.MethodGet, "https://a.example/y", nil)
	next, _ := http.NewRequest(http.MethodGet, "https://a.example/z", nil)
	if err := CheckRedirect(next, []*http.Request{first, mid}); !errors.Is(err, ErrRedirect) {
		t.Errorf("a chain that began with a body: %v, want refused", err)
	}
	if err := CheckRedirect(next, make([]*http.Request, 10)); err == nil {
		t.Error("11th redirect allowed")
	}
}

func TestTransportErrorsPassThrough(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now
	_, err := Client(nil).Get(addr)
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err %v: want a *url.Error", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err %v: want the dial error kept", err)
	}
}

func TestWrappedTransportStillChecked(t *testing.T) {
	t.Parallel()
	bad := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the thing refused
	if err := endpoint.CheckTransport(Wrap(bad)); !errors.Is(err, endpoint.ErrSkipVerify) {
		t.Errorf("CheckTransport(Wrap(insecure)) = %v, want ErrSkipVerify", err)
	}
	if Wrap(Wrap(nil)) == nil {
		t.Error("Wrap twice")
	}
}

func TestServiceClock(t *testing.T) {
	t.Parallel()
	local := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &ServiceClock{local: func() time.Time { return local }}
	if _, ok := c.Now(); ok {
		t.Fatal("a clock that saw no answer claims to know the service's time")
	}
	h := http.Header{}
	h.Set("Date", local.Add(2*time.Hour).Format(http.TimeFormat))
	c.Observe(h, local)
	got, ok := c.Now()
	if !ok || got != local.Add(2*time.Hour+time.Second) {
		t.Errorf("Now() = %v, %v; want the service's time plus the Date's one-second resolution", got, ok)
	}
	h.Set("Date", "not a date")
	c.Observe(h, local)
	if got2, _ := c.Now(); got2 != got {
		t.Errorf("a malformed Date changed the clock: %v", got2)
	}
}

func TestServiceClockTransport(t *testing.T) {
	t.Parallel()
	ahead := time.Now().Add(3 * time.Hour).UTC()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", ahead.Format(http.TimeFormat))
	}))
	t.Cleanup(srv.Close)
	var c ServiceClock
	resp, err := (&http.Client{Transport: c.Transport(nil)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	now, ok := c.Now()
	if !ok || now.Before(ahead.Add(-time.Second)) || now.After(ahead.Add(time.Minute)) {
		t.Errorf("Now() = %v, %v; want about %v", now, ok, ahead)
	}
}
