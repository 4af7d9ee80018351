package faults_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/e2eimage/e2eimage/internal/faults"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend answers "ok" to everything and counts the requests that reach it.
type backend struct{ hits atomic.Int64 }

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "ok")
}

func newServer(t *testing.T, inj *faults.Injector, service string, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(inj.Middleware(service, h))
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return srv, &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestNoRulesPassesThrough(t *testing.T) {
	inj := faults.New(1)
	be := &backend{}
	srv, c := newServer(t, inj, "kms", be)
	resp, body, err := get(t, c, srv.URL+"/api/v2/keys")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok", body)
	require.Equal(t, 0, inj.Injected())
}

func TestStatusWithRetryAfterCountAndAfter(t *testing.T) {
	inj := faults.New(1)
	be := &backend{}
	srv, c := newServer(t, inj, "kms", be)
	id := inj.Add(faults.Rule{Service: "kms", PathContains: "/wrap", Kind: faults.Status, Status: 429, RetryAfter: 2 * time.Second, Count: 2, After: 1})

	// First matching request passes (After: 1).
	resp, _, err := get(t, c, srv.URL+"/api/v2/keys/k/actions/wrap")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	// Non-matching requests are never touched.
	resp, _, err = get(t, c, srv.URL+"/api/v2/keys")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	// The next two are refused with 429 and Retry-After, in the KP envelope.
	for range 2 {
		resp, body, err := get(t, c, srv.URL+"/api/v2/keys/k/actions/wrap")
		require.NoError(t, err)
		require.Equal(t, 429, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
		require.Contains(t, body, "application/vnd.ibm.kms.error+json")
	}
	// Count exhausted.
	resp, _, err = get(t, c, srv.URL+"/api/v2/keys/k/actions/wrap")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)

	require.Equal(t, 2, inj.Injected())
	require.Equal(t, 2, inj.Hits(id))
	require.Equal(t, map[string]int{"kms": 2}, inj.Counts())
	require.EqualValues(t, 3, be.hits.Load())
}

func TestStatusDefaultsAndServiceBodies(t *testing.T) {
	inj := faults.New(1)
	srv, c := newServer(t, inj, "s3", &backend{})
	inj.Add(faults.Rule{Kind: faults.Status})
	resp, body, err := get(t, c, srv.URL+"/bucket/key")
	require.NoError(t, err)
	require.Equal(t, faults.DefaultStatus, resp.StatusCode)
	require.Equal(t, "0", resp.Header.Get("Retry-After"), "503 always carries Retry-After")
	require.Contains(t, body, "<Code>SlowDown</Code>")

	inj.Clear()
	inj.Add(faults.Rule{Kind: faults.Status, Status: 500, Body: `{"custom":true}`})
	resp, body, err = get(t, c, srv.URL+"/bucket/key")
	require.NoError(t, err)
	require.Equal(t, 500, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Retry-After"))
	require.Equal(t, `{"custom":true}`, body)
}

func TestMatchFields(t *testing.T) {
	inj := faults.New(1)
	srv, c := newServer(t, inj, "s3", &backend{})
	inj.Add(faults.Rule{Service: "other", Kind: faults.Status})
	inj.Add(faults.Rule{Method: http.MethodPut, Kind: faults.Status})
	inj.Add(faults.Rule{QueryContains: "uploads", Kind: faults.Status, Status: 500})
	resp, _, err := get(t, c, srv.URL+"/b/k")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	resp, _, err = get(t, c, srv.URL+"/b/k?uploads")
	require.NoError(t, err)
	require.Equal(t, 500, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/b/k", strings.NewReader("x"))
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
}

func TestLatency(t *testing.T) {
	inj := faults.New(1)
	srv, c := newServer(t, inj, "iam", &backend{})
	id := inj.Add(faults.Rule{Kind: faults.Latency, Delay: 150 * time.Millisecond, Count: 1})
	start := time.Now()
	resp, body, err := get(t, c, srv.URL+"/identity/token")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok", body)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	require.Equal(t, 1, inj.Hits(id))
}

func TestLatencyThenStatus(t *testing.T) {
	inj := faults.New(1)
	be := &backend{}
	srv, c := newServer(t, inj, "iam", be)
	inj.Add(faults.Rule{Kind: faults.Latency, Delay: 50 * time.Millisecond})
	inj.Add(faults.Rule{Kind: faults.Status, Status: 502})
	start := time.Now()
	resp, _, err := get(t, c, srv.URL+"/")
	require.NoError(t, err)
	require.Equal(t, 502, resp.StatusCode)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Equal(t, 2, inj.Injected())
	require.Zero(t, be.hits.Load())
}

func TestResetBeforeResponse(t *testing.T) {
	inj := faults.New(1)
	be := &backend{}
	srv, c := newServer(t, inj, "kms", be)
	inj.Add(faults.Rule{Kind: faults.Reset, Count: 1})
	_, _, err := get(t, c, srv.URL+"/x")
	require.Error(t, err)
	require.Zero(t, be.hits.Load())
	// The next request works.
	resp, body, err := get(t, c, srv.URL+"/x")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok", body)
}

func TestResetMidResponseBody(t *testing.T) {
	inj := faults.New(1)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		_, _ = w.Write(big)
	})
	srv, c := newServer(t, inj, "s3", h)
	inj.Add(faults.Rule{Kind: faults.Reset, AfterBytes: 100 << 10})
	resp, err := c.Get(srv.URL + "/b/k")
	require.NoError(t, err, "headers arrive before the cut")
	require.Equal(t, 200, resp.StatusCode)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Less(t, n, int64(len(big)))
	require.GreaterOrEqual(t, n, int64(100<<10))
}

func TestResetMidUpload(t *testing.T) {
	inj := faults.New(1)
	be := &backend{}
	srv, c := newServer(t, inj, "s3", be)
	inj.Add(faults.Rule{Method: http.MethodPut, Kind: faults.Reset, AfterBytes: 64 << 10})
	body := bytes.Repeat([]byte{'z'}, 4<<20)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/b/k?partNumber=1", bytes.NewReader(body))
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	require.Zero(t, be.hits.Load())
}

// TestTimeoutHangsUntilClientGivesUp: a Timeout rule without a Delay
// answers nothing, however long the client waits, and lets the handler go
// once the client gives up. The client gives up when the request has
// reached the injector, so nothing here depends on the clock.
func TestTimeoutHangsUntilClientGivesUp(t *testing.T) {
	inj := faults.New(1)
	be := &backend{}
	arrived := make(chan struct{})
	left := make(chan struct{})
	mw := inj.Middleware("kms", be)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		defer close(left)
		mw.ServeHTTP(w, r)
	}))
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	id := inj.Add(faults.Rule{Kind: faults.Timeout})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
	type answer struct {
		resp *http.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		got <- answer{resp, err}
	}()
	<-arrived
	cancel() // the client gives up
	a := <-got
	if a.err == nil {
		a.resp.Body.Close()
		t.Fatalf("the injector answered %d instead of hanging", a.resp.StatusCode)
	}
	require.ErrorIs(t, a.err, context.Canceled, "the call ended only because the client gave up")
	<-left // the hanging handler returned once the client left
	require.Equal(t, 1, inj.Hits(id))
	require.Zero(t, be.hits.Load())
}

func TestTimeoutWithLimitAnswers504(t *testing.T) {
	inj := faults.New(1)
	srv, c := newServer(t, inj, "kms", &backend{})
	inj.Add(faults.Rule{Kind: faults.Timeout, Delay: 50 * time.Millisecond})
	resp, _, err := get(t, c, srv.URL+"/x")
	require.NoError(t, err)
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
}

func TestProbabilityIsDeterministic(t *testing.T) {
	pattern := func(seed int64) []bool {
		inj := faults.New(seed)
		srv, c := newServer(t, inj, "kms", &backend{})
		inj.Add(faults.Rule{Kind: faults.Status, Status: 500, Probability: 0.3})
		var out []bool
		for range 60 {
			resp, _, err := get(t, c, srv.URL+"/x")
			require.NoError(t, err)
			out = append(out, resp.StatusCode == 500)
		}
		return out
	}
	a, b, other := pattern(42), pattern(42), pattern(43)
	require.Equal(t, a, b, "same seed, same faults")
	require.NotEqual(t, a, other, "another seed, other faults")
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	require.Greater(t, n, 5)
	require.Less(t, n, 35)
}

func TestRemove(t *testing.T) {
	inj := faults.New(1)
	srv, c := newServer(t, inj, "kms", &backend{})
	id := inj.Add(faults.Rule{Kind: faults.Status})
	resp, _, err := get(t, c, srv.URL+"/x")
	require.NoError(t, err)
	require.Equal(t, 503, resp.StatusCode)
	inj.Remove(id)
	inj.Remove(999)
	resp, _, err = get(t, c, srv.URL+"/x")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, 1, inj.Hits(id))
}

func TestProxyStreamsAndInjects(t *testing.T) {
	var gotHost atomic.Value
	var gotLen atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		n, _ := io.Copy(io.Discard, r.Body)
		gotLen.Store(n)
		w.Header().Set("ETag", `"abc"`)
		_, _ = io.WriteString(w, r.URL.Path+"?"+r.URL.RawQuery)
	}))
	defer up.Close()
	target, err := url.Parse(up.URL)
	require.NoError(t, err)
	inj := faults.New(7)
	p := faults.NewProxy(target, inj, "s3")
	defer p.Close()
	front := httptest.NewServer(p)
	defer front.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}

	body := bytes.Repeat([]byte("p"), 3<<20)
	req, _ := http.NewRequest(http.MethodPut, front.URL+"/b/k?partNumber=1&uploadId=u", bytes.NewReader(body))
	resp, err := c.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "/b/k?partNumber=1&uploadId=u", string(b))
	require.Equal(t, `"abc"`, resp.Header.Get("ETag"))
	require.EqualValues(t, len(body), gotLen.Load())
	require.Equal(t, strings.TrimPrefix(front.URL, "http://"), gotHost.Load(), "Host is kept for SigV4")

	inj.Add(faults.Rule{Kind: faults.Status, Status: 500, Count: 1})
	resp, _, err = get(t, c, front.URL+"/b/k")
	require.NoError(t, err)
	require.Equal(t, 500, resp.StatusCode)

	// net/http retries an idempotent request once when a reused connection
	// drops before any response, so the rule must outlast that retry.
	rid := inj.Add(faults.Rule{Kind: faults.Reset})
	_, _, err = get(t, c, front.URL+"/b/k")
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
	inj.Remove(rid)

	resp, _, err = get(t, c, front.URL+"/b/k")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
}

func ExampleInjector_Middleware() {
	inj := faults.New(1)
	inj.Add(faults.Rule{Service: "kms", PathContains: "/actions/wrap", Kind: faults.Status, Status: 429, Count: 1})
	h := inj.Middleware("kms", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "wrapped")
	}))
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/keys/k/actions/wrap", nil))
		fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	}
	// Output:
	// 429 0
	// 200
}
