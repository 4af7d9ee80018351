package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/internal/retry"
)

// Retry defaults. They match keyprotect-go-client's own (../docs/CLOUD.md §2.4:
// RetryMax 4, so 5 attempts; exponential backoff from 1s; RetryWaitMax 30s)
// and its 30-second request timeout (§2.1).
const (
	DefaultMaxAttempts    = 5
	DefaultMinWait        = time.Second
	DefaultMaxWait        = 30 * time.Second
	DefaultAttemptTimeout = 30 * time.Second
)

// Body size limits. Key service requests and answers are a few hundred
// bytes (a DEK of at most 64 bytes, base64, in a small JSON document); the
// limits only stop a misbehaving server from exhausting memory.
const (
	maxRequestBody  = 64 << 10
	maxResponseBody = 1 << 20
)

// RetryPolicy bounds the retries of one key service call. A call is retried
// after a connection error, HTTP 429, or HTTP 5xx other than 501, waiting
// MinWait, then twice that, and so on up to MaxWait (with jitter), or as long
// as a Retry-After header asks. A Retry-After longer than MaxWait, or a wait
// that would pass the context's deadline, ends the retries at once rather
// than hammering the service. Zero fields take the defaults.
type RetryPolicy struct {
	// MaxAttempts is the most requests one call makes, the first included.
	// Default DefaultMaxAttempts; 1 disables retries.
	MaxAttempts int
	// MinWait is the first backoff. Default DefaultMinWait.
	MinWait time.Duration
	// MaxWait caps each backoff and the Retry-After honoured. Default
	// DefaultMaxWait.
	MaxWait time.Duration
	// AttemptTimeout bounds one request. Default DefaultAttemptTimeout.
	AttemptTimeout time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MinWait <= 0 {
		p.MinWait = DefaultMinWait
	}
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultMaxWait
	}
	if p.MaxWait < p.MinWait {
		p.MaxWait = p.MinWait
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	return p
}

// retryPolicy is p as the library's one retry policy (internal/retry):
// a Retry-After longer than MaxWait ends the retries.
func (p RetryPolicy) retryPolicy(sleep func(context.Context, time.Duration) error) retry.Policy {
	return retry.Policy{MaxAttempts: p.MaxAttempts, MinWait: p.MinWait, MaxWait: p.MaxWait,
		MaxRetryAfter: p.MaxWait, Sleep: sleep}.WithDefaults()
}

// backoff is the wait before retry number n (1 for the first retry):
// MinWait*2^(n-1) capped at MaxWait, with "equal jitter" (internal/retry).
func (p RetryPolicy) backoff(n int) time.Duration { return p.retryPolicy(nil).Backoff(n) }

// Why the SDK's own retries are not used.
//
// keyprotect-go-client retries every request through go-retryablehttp, but
// its limits are the package variables kp.RetryMax and kp.RetryWaitMax, read
// on every request without synchronisation: changing them affects every
// client in the process and races with requests in flight. It also obeys any
// Retry-After, however long. So retryTransport, the http.RoundTripper given
// to the SDK, does the retrying per client: each logical call made by this
// package carries a callState in its context, and the transport retries
// within that call's budget. When the budget runs out on a retryable
// answer, the transport records it and cancels the call's context, which is
// the one per-request signal that stops go-retryablehttp from retrying on
// its own; the Client then reports the recorded answer. The SDK therefore
// makes exactly one round trip per call, and the package variables keep
// their defaults untouched.

// errRetriesExhausted is the cancellation cause that stops the SDK's loop.
var errRetriesExhausted = errors.New("kms: retry budget exhausted")

type callKey struct{}

// callState is what one logical call shares with the transport.
type callState struct {
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	attempts  int
	exhausted *lastAnswer // set when the budget ran out on a retryable answer
	last      *lastAnswer // the final answer, whatever it was
	buffers   [][]byte    // request and response bodies, cleared by done
}

// lastAnswer is a buffered response (or transport error) of one attempt.
type lastAnswer struct {
	status int
	header http.Header
	body   []byte
	url    string
	method string
	err    error
}

func newCall(ctx context.Context) (context.Context, *callState) {
	ctx, cancel := context.WithCancelCause(ctx)
	st := &callState{cancel: cancel}
	return context.WithValue(ctx, callKey{}, st), st
}

// done clears every buffered body (they may hold DEKs) and releases the
// call's context.
func (st *callState) done() {
	st.mu.Lock()
	for _, b := range st.buffers {
		clear(b)
	}
	st.buffers = nil
	st.mu.Unlock()
	st.cancel(nil)
}

func (st *callState) keep(b []byte) {
	st.mu.Lock()
	st.buffers = append(st.buffers, b)
	st.mu.Unlock()
}

func (st *callState) result() (attempts int, exhausted, last *lastAnswer) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.attempts, st.exhausted, st.last
}

// retryTransport retries within the budget of the call in the request's
// context. Requests without a callState pass straight through.
type retryTransport struct {
	base   http.RoundTripper
	policy RetryPolicy
	log    *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error
}

// RoundTrip sends req, retrying within the call's budget.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(callKey{}).(*callState)
	if st == nil {
		return t.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
		_ = req.Body.Close()
		st.keep(b)
		if err != nil {
			return nil, fmt.Errorf("kms: reading request body: %w", err)
		}
		if len(b) > maxRequestBody {
			return nil, fmt.Errorf("kms: request body larger than %d bytes", maxRequestBody)
		}
		body = b
	}
	ctx := req.Context()
	var final *lastAnswer
	p := t.policy.retryPolicy(t.sleep)
	p.OnRetry = func(attempt int, err error, wait time.Duration) {
		ans := err.(*retryAnswer).ans
		attrs := []slog.Attr{slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait)}
		if ans.err != nil {
			attrs = append(attrs, slog.String("error", ans.err.Error()))
		} else {
			attrs = append(attrs, slog.Int("status", ans.status))
		}
		t.log.LogAttrs(ctx, slog.LevelInfo, "kms: retrying", attrs...)
	}
	err := retry.Do(ctx, p, classifyAnswer, func(attempt int) error {
		ans := t.attempt(ctx, req, body, st)
		st.mu.Lock()
		st.attempts = attempt
		st.last = ans
		st.mu.Unlock()
		final = ans
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if wait, ok := t.retryable(ans); ok {
			return &retryAnswer{ans: ans, after: wait}
		}
		return nil
	})
	var gu *retry.GaveUpError
	switch {
	case err == nil:
		return final.response(req), final.err
	case errors.As(err, &gu):
		t.log.LogAttrs(ctx, slog.LevelDebug, "kms: giving up",
			slog.Int("attempt", gu.Attempts), slog.Int("status", final.status), slog.String("why", string(gu.Reason)))
		st.mu.Lock()
		st.exhausted = final
		st.mu.Unlock()
		// Stop go-retryablehttp from retrying on its own (see above).
		st.cancel(errRetriesExhausted)
		return final.response(req), final.err
	}
	var ce *retry.CanceledError
	if errors.As(err, &ce) {
		return nil, ce.Cause
	}
	return nil, err
}

// retryAnswer is a retryable answer, as an error for internal/retry.
type retryAnswer struct {
	ans   *lastAnswer
	after time.Duration // the server's Retry-After, 0 for the backoff
}

func (e *retryAnswer) Error() string { return "kms: retryable answer" }

func classifyAnswer(err error) retry.Decision {
	var ra *retryAnswer
	if errors.As(err, &ra) {
		return retry.Decision{Retry: true, After: ra.after}
	}
	return retry.Permanent
}

// attempt makes one request and buffers its answer, so that the per-attempt
// timeout can be released and the body cleared later.
func (t *retryTransport) attempt(ctx context.Context, req *http.Request, body []byte, st *callState) *lastAnswer {
	actx, cancel := context.WithTimeout(ctx, t.policy.AttemptTimeout)
	defer cancel()
	r := req.Clone(actx)
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return &lastAnswer{err: err, url: req.URL.String(), method: req.Method}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	_ = resp.Body.Close()
	st.keep(b)
	if err == nil && len(b) > maxResponseBody {
		err = fmt.Errorf("kms: response body larger than %d bytes", maxResponseBody)
	}
	if err != nil {
		return &lastAnswer{err: fmt.Errorf("kms: reading response: %w", err), url: req.URL.String()}
	}
	return &lastAnswer{status: resp.StatusCode, header: resp.Header, body: b, url: req.URL.String()}
}

// retryable reports whether the answer warrants another attempt, and the
// wait the server asked for (0: the policy's backoff).
func (t *retryTransport) retryable(a *lastAnswer) (time.Duration, bool) {
	if a.err != nil {
		return 0, true
	}
	if a.status != http.StatusTooManyRequests && (a.status < 500 || a.status == http.StatusNotImplemented) {
		return 0, false
	}
	if d, ok := parseRetryAfter(a.header.Get("Retry-After"), time.Now()); ok && d > 0 {
		return d, true
	}
	return 0, true
}

// response rebuilds an *http.Response from the buffered answer.
func (a *lastAnswer) response(req *http.Request) *http.Response {
	if a.err != nil {
		return nil
	}
	return &http.Response{
		Status:        strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header,
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}
}

// parseRetryAfter reads a Retry-After header (internal/retry).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return retry.ParseRetryAfter(v, now)
}

// sleepCtx waits for d or until ctx is done (internal/retry).
func sleepCtx(ctx context.Context, d time.Duration) error { return retry.Sleep(ctx, d) }
