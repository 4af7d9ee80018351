package retry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

var (
	errTransient = errors.New("transient")
	errPermanent = errors.New("permanent")
)

func classify(err error) Decision {
	if errors.Is(err, errTransient) {
		return Retryable
	}
	var ra *retryAfterErr
	if errors.As(err, &ra) {
		return Decision{Retry: true, After: ra.d}
	}
	return Permanent
}

type retryAfterErr struct{ d time.Duration }

func (e *retryAfterErr) Error() string { return fmt.Sprintf("retry after %s", e.d) }

// recorder is a fake Sleep and clock: it records each wait and advances
// the clock by it, so no test depends on real time.
type recorder struct {
	now   time.Time
	waits []time.Duration
}

func (r *recorder) policy(p Policy) Policy {
	r.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		r.waits = append(r.waits, d)
		r.now = r.now.Add(d)
		return ctx.Err()
	}
	p.Now = func() time.Time { return r.now }
	return p
}

func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	p := Policy{MinWait: 100 * time.Millisecond, MaxWait: time.Second}.WithDefaults()
	for n := 1; n <= 8; n++ {
		full := min(100*time.Millisecond<<(n-1), time.Second)
		lo, hi := full, time.Duration(0)
		for range 2000 {
			d := p.Backoff(n)
			if d < full/2 || d > full {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// The jitter must actually spread the waits: over 2000 draws the
		// range covers most of [full/2, full].
		if hi-lo < full/4 {
			t.Errorf("Backoff(%d) spread only %s..%s over 2000 draws", n, lo, hi)
		}
	}
}

func TestDoRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	var r recorder
	calls := 0
	err := Do(context.Background(), r.policy(Policy{MaxAttempts: 5, MinWait: time.Second, MaxWait: 4 * time.Second}), classify,
		func(attempt int) error {
			calls++
			if attempt != calls {
				t.Errorf("attempt %d on call %d", attempt, calls)
			}
			if calls < 4 {
				return errTransient
			}
			return nil
		})
	if err != nil || calls != 4 || len(r.waits) != 3 {
		t.Fatalf("err %v after %d calls and %d waits, want nil after 4 calls and 3 waits", err, calls, len(r.waits))
	}
	for i, w := range r.waits {
		full := min(time.Second<<i, 4*time.Second)
		if w < full/2 || w > full {
			t.Errorf("wait %d = %s, want within [%s, %s]", i+1, w, full/2, full)
		}
	}
}

func TestDoStopsAtMaxAttempts(t *testing.T) {
	t.Parallel()
	var r recorder
	calls := 0
	err := Do(context.Background(), r.policy(Policy{MaxAttempts: 3}), classify, func(int) error { calls++; return errTransient })
	var gu *GaveUpError
	if !errors.As(err, &gu) || gu.Reason != StopAttempts || gu.Attempts != 3 || !errors.Is(err, errTransient) {
		t.Fatalf("err %#v, want a GaveUpError after 3 attempts that unwraps to the last error", err)
	}
	if calls != 3 || len(r.waits) != 2 {
		t.Errorf("%d calls and %d waits, want 3 and 2", calls, len(r.waits))
	}
	if err.Error() != errTransient.Error() {
		t.Errorf("message %q, want the last error's", err)
	}
}

func TestDoPermanentNotRetried(t *testing.T) {
	t.Parallel()
	var r recorder
	calls := 0
	err := Do(context.Background(), r.policy(Policy{}), classify, func(int) error { calls++; return errPermanent })
	if err != errPermanent || calls != 1 || len(r.waits) != 0 {
		t.Fatalf("err %v after %d calls, %d waits; want the permanent error after 1 call", err, calls, len(r.waits))
	}
}

func TestRetryAfterHonouredAndCapped(t *testing.T) {
	t.Parallel()
	var r recorder
	calls := 0
	p := r.policy(Policy{MaxAttempts: 5, MaxWait: 2 * time.Second, MaxRetryAfter: 10 * time.Second})
	err := Do(context.Background(), p, classify, func(int) error {
		calls++
		if calls == 1 {
			return &retryAfterErr{7 * time.Second} // under the cap: honoured exactly
		}
		return &retryAfterErr{11 * time.Second} // over the cap: stop
	})
	var gu *GaveUpError
	if !errors.As(err, &gu) || gu.Reason != StopRetryAfter {
		t.Fatalf("err %v, want a GaveUpError for the Retry-After", err)
	}
	if calls != 2 || len(r.waits) != 1 || r.waits[0] != 7*time.Second {
		t.Errorf("%d calls, waits %v; want 2 calls and one wait of exactly 7s", calls, r.waits)
	}
}

func TestMaxRetryAfterNeverBelowMaxWait(t *testing.T) {
	t.Parallel()
	p := Policy{MaxWait: time.Minute, MaxRetryAfter: time.Second}.WithDefaults()
	if p.MaxRetryAfter != time.Minute {
		t.Errorf("MaxRetryAfter = %s, want raised to MaxWait", p.MaxRetryAfter)
	}
}

func TestDoStopsAtMaxElapsed(t *testing.T) {
	t.Parallel()
	var r recorder
	calls := 0
	p := r.policy(Policy{MaxAttempts: 1000, MinWait: 10 * time.Second, MaxWait: 10 * time.Second, MaxElapsed: 35 * time.Second})
	err := Do(context.Background(), p, classify, func(int) error { calls++; return errTransient })
	var gu *GaveUpError
	if !errors.As(err, &gu) || gu.Reason != StopElapsed {
		t.Fatalf("err %v, want StopElapsed", err)
	}
	var total time.Duration
	for _, w := range r.waits {
		total += w
	}
	if total > 35*time.Second || calls < 4 {
		t.Errorf("%d calls, %s waited; want at least 4 calls within 35s", calls, total)
	}
}

func TestDoStopsBeforeDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	calls := 0
	slept := 0
	p := Policy{MaxAttempts: 5, MinWait: 2 * time.Hour, MaxWait: 2 * time.Hour,
		Sleep: func(context.Context, time.Duration) error { slept++; return nil }}
	err := Do(ctx, p, classify, func(int) error { calls++; return errTransient })
	var gu *GaveUpError
	if !errors.As(err, &gu) || gu.Reason != StopDeadline || calls != 1 || slept != 0 {
		t.Fatalf("err %v after %d calls, %d sleeps; want StopDeadline after 1 call and no sleep", err, calls, slept)
	}
}

// TestCancelDuringBackoff uses the real Sleep with an hour-long backoff:
// the test ends only because cancel ends the wait (a hang would hit the
// test binary's timeout, not a timed assertion).
func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("user pressed ^C")
	calls := 0
	err := Do(ctx, Policy{MinWait: time.Hour, MaxWait: time.Hour}, classify, func(int) error {
		calls++
		go cancel(cause)
		return errTransient
	})
	var ce *CanceledError
	if !errors.As(err, &ce) || !errors.Is(err, cause) || !errors.Is(err, errTransient) || calls != 1 {
		t.Fatalf("err %v after %d calls; want a CanceledError matching the cause and the last error after 1 call", err, calls)
	}
}

func TestErrorAfterContextEndIsReturnedAsIs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	err := Do(ctx, Policy{}, classify, func(int) error { cancel(); return errTransient })
	if err != errTransient {
		t.Fatalf("err %v, want the operation's own error", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in string
		d  time.Duration
		ok bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"abc", 0, false},
		{"99999999999999999999", 0, false},
		{"9223372036854775807", time.Duration(int64(1<<63-1)/int64(time.Second)) * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		d, ok := ParseRetryAfter(tc.in, now)
		if d != tc.d || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, d, ok, tc.d, tc.ok)
		}
	}
}

func TestPollIntervalGrowsWhileUnchangedAndResets(t *testing.T) {
	t.Parallel()
	var r recorder
	states := []string{"a", "a", "a", "a", "b", "b"}
	i := 0
	err := Poll(context.Background(), r.policy(Policy{}), Interval{Min: 10 * time.Second, Max: 40 * time.Second}, classify,
		func() (string, bool, error) {
			if i == len(states) {
				return "", true, nil
			}
			s := states[i]
			i++
			return s, false, nil
		})
	if err != nil || len(r.waits) != len(states) {
		t.Fatalf("err %v, %d waits; want nil and %d", err, len(r.waits), len(states))
	}
	full := []time.Duration{10, 20, 40, 40, 10, 20}
	for k, w := range r.waits {
		f := full[k] * time.Second
		if w < f/2 || w > f {
			t.Errorf("wait %d = %s, want within [%s, %s]", k+1, w, f/2, f)
		}
	}
}

func TestPollToleratesTransientErrorsWithinBound(t *testing.T) {
	t.Parallel()
	var r recorder
	results := []error{nil, errTransient, errTransient, nil, errTransient, nil}
	i := 0
	err := Poll(context.Background(), r.policy(Policy{MaxAttempts: 3}), Interval{Min: time.Second}, classify,
		func() (string, bool, error) {
			if i == len(results) {
				return "", true, nil
			}
			e := results[i]
			i++
			return "s", false, e
		})
	if err != nil || i != len(results) {
		t.Fatalf("err %v after %d polls; want nil after all %d (two in a row is within 3 attempts)", err, i, len(results))
	}

	var r2 recorder
	polls := 0
	err = Poll(context.Background(), r2.policy(Policy{MaxAttempts: 3}), Interval{Min: time.Second}, classify,
		func() (string, bool, error) { polls++; return "", false, errTransient })
	var gu *GaveUpError
	if !errors.As(err, &gu) || gu.Reason != StopAttempts || polls != 3 {
		t.Fatalf("err %v after %d polls; want GaveUpError after 3", err, polls)
	}
}

func TestPollPermanentAndDone(t *testing.T) {
	t.Parallel()
	var r recorder
	polls := 0
	err := Poll(context.Background(), r.policy(Policy{}), Interval{Min: time.Second}, classify,
		func() (string, bool, error) { polls++; return "", false, errPermanent })
	if err != errPermanent || polls != 1 {
		t.Fatalf("err %v after %d polls; want the permanent error after 1", err, polls)
	}
	failed := errors.New("import failed")
	err = Poll(context.Background(), r.policy(Policy{}), Interval{Min: time.Second}, classify,
		func() (string, bool, error) { return "", true, failed })
	if err != failed {
		t.Fatalf("err %v, want the done error", err)
	}
}

func TestPollCancelDuringWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	err := Poll(ctx, Policy{}, Interval{Min: time.Hour}, classify, func() (string, bool, error) {
		polls++
		go cancel()
		return "s", false, nil
	})
	if !errors.Is(err, context.Canceled) || polls != 1 {
		t.Fatalf("err %v after %d polls; want context.Canceled after 1", err, polls)
	}
}
