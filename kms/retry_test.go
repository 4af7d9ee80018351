package kms

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/crn"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/secret"
)

// staticTokens is a TokenSource for unit tests against httptest servers.
type staticTokens struct{ invalidated atomic.Int32 }

func (s *staticTokens) AccessToken(context.Context) (*secret.String, error) {
	return secret.NewString("unit-test-token"), nil
}
func (s *staticTokens) InvalidateToken() { s.invalidated.Add(1) }

// scripted answers wrap requests with the scripted statuses in turn, then
// with success.
type scripted struct {
	mu         sync.Mutex
	statuses   []int
	retryAfter string
	requests   int
	bodies     []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests++
	s.bodies = append(s.bodies, string(b))
	var status int
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	}
	s.mu.Unlock()
	if r.Header.Get("authorization") != "Bearer unit-test-token" {
		status = http.StatusUnauthorized
	}
	if status != 0 {
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		w.WriteHeader(status)
		_, _ = w.Write(kpBody(status, "", "scripted failure"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ciphertext":"Y2lwaGVydGV4dA==","keyVersion":{"id":"v1"}}`)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func newTestClient(t *testing.T, h http.Handler, p RetryPolicy) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(testKPCRN, &staticTokens{}, WithURL(srv.URL), WithRetryPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testDEK(t *testing.T) *secret.DEK {
	d, err := secret.GenerateDEK(secret.DEK256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Zero)
	return d
}

func fastPolicy(attempts int) RetryPolicy {
	return RetryPolicy{MaxAttempts: attempts, MinWait: time.Millisecond, MaxWait: 50 * time.Millisecond, AttemptTimeout: 5 * time.Second}
}

func TestRetryThenSucceed(t *testing.T) {
	t.Parallel()
	h := &scripted{statuses: []int{429, 503, 500}, retryAfter: "0"}
	c := newTestClient(t, h, fastPolicy(5))
	w, err := c.Wrap(context.Background(), testDEK(t))
	if err != nil {
		t.Fatal(err)
	}
	if w.Ciphertext != "Y2lwaGVydGV4dA==" || w.KeyVersion != "v1" {
		t.Errorf("wrapped %+v", w)
	}
	if h.count() != 4 {
		t.Errorf("%d requests, want 4 (3 failures then success)", h.count())
	}
	// Every attempt resent the same body.
	for i, b := range h.bodies {
		if b != h.bodies[0] || !strings.Contains(b, `"plaintext"`) {
			t.Errorf("attempt %d sent %d bytes, not the first attempt's body", i+1, len(b))
		}
	}
}

func TestRetryGivesUpWithinBudget(t *testing.T) {
	t.Parallel()
	sdkMax, sdkWait := kp.RetryMax, kp.RetryWaitMax
	for _, attempts := range []int{1, 3} {
		h := &scripted{statuses: []int{503, 503, 503, 503, 503, 503, 503, 503}}
		c := newTestClient(t, h, fastPolicy(attempts))
		_, err := c.Wrap(context.Background(), testDEK(t))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("attempts=%d: %v, want ErrUnavailable", attempts, err)
		}
		if h.count() != attempts {
			t.Errorf("attempts=%d: the server saw %d requests", attempts, h.count())
		}
		var e *Error
		if !errors.As(err, &e) || e.Attempts != attempts || e.Status != 503 {
			t.Errorf("attempts=%d: %+v", attempts, e)
		}
		var ke *kp.Error
		if !errors.As(err, &ke) || ke.StatusCode != 503 || ke.Message != "scripted failure" || !strings.Contains(string(ke.BodyContent), "scripted failure") {
			t.Errorf("attempts=%d: the cause is not the *kp.Error of the last answer: %#v", attempts, ke)
		}
	}
	if kp.RetryMax != sdkMax || kp.RetryWaitMax != sdkWait {
		t.Errorf("the SDK's package variables were changed")
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	h := &scripted{statuses: []int{429}, retryAfter: "1"}
	c := newTestClient(t, h, RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 2 * time.Second})
	start := time.Now()
	if _, err := c.Wrap(context.Background(), testDEK(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, before the 1s Retry-After", d)
	}
	if h.count() != 2 {
		t.Errorf("%d requests, want 2", h.count())
	}
}

func TestRetryAfterBeyondMaxWaitStops(t *testing.T) {
	t.Parallel()
	h := &scripted{statuses: []int{429, 429}, retryAfter: "3600"}
	c := newTestClient(t, h, fastPolicy(5))
	start := time.Now()
	_, err := c.Wrap(context.Background(), testDEK(t))
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("%v, want ErrRateLimited", err)
	}
	// Obeying the header would take an hour; the bound is far from both.
	if h.count() != 1 || time.Since(start) > 60*time.Second {
		t.Errorf("%d requests in %v: a Retry-After beyond MaxWait must end the retries at once", h.count(), time.Since(start))
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	t.Parallel()
	h := &scripted{statuses: []int{503, 503, 503, 503, 503}}
	c := newTestClient(t, h, RetryPolicy{MaxAttempts: 5, MinWait: 10 * time.Minute, MaxWait: 10 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Wrap(ctx, testDEK(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
	// A wait that ignored the cancellation would last 10 minutes.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("cancellation took %v", d)
	}
}

func TestRetryDeadlineBeforeWaitStops(t *testing.T) {
	t.Parallel()
	h := &scripted{statuses: []int{503, 503}}
	c := newTestClient(t, h, RetryPolicy{MaxAttempts: 5, MinWait: 20 * time.Minute, MaxWait: 20 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.Wrap(ctx, testDEK(t))
	// Waiting until the deadline would take 5 minutes and end with
	// DeadlineExceeded, not ErrUnavailable.
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Minute {
		t.Fatalf("%v after %v: a wait past the deadline must give up at once", err, time.Since(start))
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 404, 409, 422, 501} {
		h := &scripted{statuses: []int{status, status}}
		c := newTestClient(t, h, fastPolicy(5))
		if _, err := c.Wrap(context.Background(), testDEK(t)); err == nil {
			t.Fatalf("%d: no error", status)
		}
		if h.count() != 1 {
			t.Errorf("%d: %d requests, want 1", status, h.count())
		}
	}
}

func TestUnauthorizedRefreshesTokenOnce(t *testing.T) {
	t.Parallel()
	h := &scripted{statuses: []int{401, 401, 401}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ts := &staticTokens{}
	c, err := New(testKPCRN, ts, WithURL(srv.URL), WithRetryPolicy(fastPolicy(3)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Wrap(context.Background(), testDEK(t))
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrWrongInstance) {
		t.Fatalf("%v: want ErrUnauthorized and ErrWrongInstance", err)
	}
	if ts.invalidated.Load() != 1 || h.count() != 2 {
		t.Errorf("invalidated %d times, %d requests; want 1 and 2", ts.invalidated.Load(), h.count())
	}
}

func TestConnectionErrorsRetried(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	c, err := New(testKPCRN, &staticTokens{}, WithURL(url), WithRetryPolicy(fastPolicy(3)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Wrap(context.Background(), testDEK(t))
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrUnavailable || e.Attempts != 3 {
		t.Fatalf("%v (%+v): want ErrUnavailable after 3 attempts", err, e)
	}
}

func TestMalformedAnswerDoesNotPanic(t *testing.T) {
	t.Parallel()
	// keyprotect-go-client indexes resources[0] of a 200 answer unchecked.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"metadata":{"collectionTotal":0},"resources":[]}`)
	})
	c := newTestClient(t, h, fastPolicy(1))
	if _, err := c.Describe(context.Background()); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
		t.Fatalf("Describe on an empty key list: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"0", 0, true}, {"7", 7 * time.Second, true}, {"-1", 0, false}, {"soon", 0, false},
		{"Wed, 01 Jan 2025 00:00:30 GMT", 30 * time.Second, true},
		{"Tue, 31 Dec 2024 23:00:00 GMT", 0, true},
		{"99999999999999999999", 0, false},
		{"9999999999999", time.Duration(int64(1<<63-1) / int64(time.Second) * int64(time.Second)), true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MinWait: 100 * time.Millisecond, MaxWait: time.Second}.withDefaults()
	for n, max := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 50 {
			d := p.backoff(n)
			if d < max/2 || d > max {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, max/2, max)
			}
		}
	}
	if d := (RetryPolicy{}).withDefaults(); d.MaxAttempts != DefaultMaxAttempts || d.MinWait != DefaultMinWait || d.MaxWait != DefaultMaxWait || d.AttemptTimeout != DefaultAttemptTimeout {
		t.Errorf("defaults: %+v", d)
	}
}

func TestDecodeDEK(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 64)
	for i := range raw {
		raw[i] = byte(i)
	}
	d, err := decodeDEK([]byte(base64.StdEncoding.EncodeToString(raw)))
	if err != nil || d.Len() != 64 || string(d.Bytes()) != string(raw) {
		t.Fatalf("decodeDEK: %v", err)
	}
	d.Zero()
	if _, err := decodeDEK([]byte(base64.StdEncoding.EncodeToString(raw[:16]))); !errors.Is(err, secret.ErrDEKSize) {
		t.Errorf("16-byte DEK: %v", err)
	}
	if _, err := decodeDEK([]byte("***")); err == nil {
		t.Errorf("bad base64 accepted")
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	ts := &staticTokens{}
	if _, err := New(testKPCRN, nil); err == nil {
		t.Errorf("no token source accepted")
	}
	if _, err := New("crn:bad", ts); !errors.Is(err, crn.ErrInvalid) {
		t.Errorf("bad crn.Key: %v", err)
	}
	if _, err := New(testKPCRN, ts, WithURL("http://kms.example.com")); !errors.Is(err, ErrInsecureEndpoint) {
		t.Errorf("plain http to a remote host: %v", err)
	}
	insecure := &http.Transport{TLSClientConfig: nil}
	insecure.TLSClientConfig = insecureTLS()
	if _, err := New(testKPCRN, ts, WithHTTPClient(&http.Client{Transport: insecure})); err == nil || !strings.Contains(err.Error(), "skips TLS") {
		t.Errorf("transport without TLS verification: %v", err)
	}
	c, err := New(testHPCSCRN, ts, WithPrivateEndpoint())
	if err != nil || c.Endpoint() != "https://"+testInstance+".api.private.eu-de.hs-crypto.appdomain.cloud" {
		t.Errorf("HPCS private: %v %v", c, err)
	}
	c, err = New(testHPCSCRN, ts, WithHPCSPort(9730))
	if err != nil || c.Endpoint() != "https://api.eu-de.hs-crypto.cloud.ibm.com:9730" {
		t.Errorf("HPCS port: %v", err)
	}
	c, err = New(testHPCSCRN, ts, WithHPCSPort(9730), WithURL("https://example.com"))
	if err != nil || c.Endpoint() != "https://example.com" {
		t.Errorf("an explicit URL must win: %v", err)
	}
	if c.CRN().Service != crn.HPCS {
		t.Errorf("CRN: %+v", c.CRN())
	}
}

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // the test checks that it is refused
