// Package retry is the one retry and poll policy of the library's clients
// (kms, classic, cos, audit, iam and the e2e facade).
//
// A Policy bounds how often and for how long a failing operation is tried
// again: exponential backoff with "equal jitter" (half of each wait fixed,
// half random, so that many clients do not retry in step), a server's
// Retry-After honoured up to a cap (a longer one ends the retries at once
// rather than hammering the service or hanging), at most MaxAttempts
// attempts, at most MaxElapsed in all, and every wait ends with the context.
// A wait that would pass the context's deadline is not started: the last
// error is returned at once.
//
// Each client supplies only a Classifier, which says whether an error is
// worth another attempt (and whether the server asked for a wait). Do runs
// one operation under the policy; Poll waits for a long-running change
// (an image import, a server order), tolerating transient errors between
// polls under the same policy.
//
// Why not a library: the well-kept Go retry modules (cenkalti/backoff,
// hashicorp/go-retryablehttp, avast/retry-go) each cover part of this, but
// none bounds a honoured Retry-After by a cap that ends the retries, stops
// before a wait that the context's deadline would cut short, and also
// offers a poll loop whose interval grows only while the observed state
// does not change. go-retryablehttp is already used inside
// keyprotect-go-client, and its process-wide knobs are the reason kms does
// its own retrying (see kms's package documentation). The loop is short;
// its rules are tested here once.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Defaults of a Policy's zero fields.
const (
	DefaultMaxAttempts   = 4
	DefaultMinWait       = time.Second
	DefaultMaxWait       = 30 * time.Second
	DefaultMaxRetryAfter = 60 * time.Second
)

// Policy bounds the retries of one operation. Zero fields take the
// defaults; a Policy is a value and safe to share.
type Policy struct {
	// MaxAttempts is the most attempts, the first included; 1 disables
	// retries. Default DefaultMaxAttempts.
	MaxAttempts int
	// MinWait is the first backoff; each later one doubles, up to MaxWait.
	MinWait time.Duration
	// MaxWait caps one backoff.
	MaxWait time.Duration
	// MaxRetryAfter caps the server-requested wait (Retry-After) that is
	// honoured; a longer request ends the retries. Default
	// DefaultMaxRetryAfter, and never less than MaxWait.
	MaxRetryAfter time.Duration
	// MaxElapsed, when positive, bounds the time from the first attempt
	// to the start of the last one: a retry that would start later is not
	// made.
	MaxElapsed time.Duration

	// OnRetry, when set, is called before each wait (for logging); attempt
	// is the attempt that failed.
	OnRetry func(attempt int, err error, wait time.Duration)
	// Sleep replaces the wait (tests); nil means Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now replaces the clock of MaxElapsed and Retry-After dates (tests).
	Now func() time.Time
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
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
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.MaxRetryAfter < p.MaxWait {
		p.MaxRetryAfter = p.MaxWait
	}
	if p.Sleep == nil {
		p.Sleep = Sleep
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// Backoff is the wait before retry number n (1 for the first retry):
// MinWait·2^(n-1) capped at MaxWait, with equal jitter, so the result lies
// in [d/2, d] for that capped d. p must have its defaults set.
func (p Policy) Backoff(n int) time.Duration {
	d := p.MinWait
	for i := 1; i < n && d < p.MaxWait; i++ {
		d *= 2
	}
	d = min(d, p.MaxWait)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// Decision is a Classifier's verdict on one error.
type Decision struct {
	// Retry says the operation may be tried again.
	Retry bool
	// After is the wait the server asked for (Retry-After); zero means
	// the policy's backoff.
	After time.Duration
}

// Classifier decides whether an error is worth another attempt. It is
// never called with a nil error.
type Classifier func(err error) Decision

// Retryable is a Decision to retry after the policy's backoff.
var Retryable = Decision{Retry: true}

// Permanent is a Decision not to retry.
var Permanent = Decision{}

// StopReason says why Do stopped retrying an error that its Classifier
// called retryable.
type StopReason string

// The reasons.
const (
	StopAttempts   StopReason = "attempts exhausted"
	StopRetryAfter StopReason = "the server asked for a wait longer than the maximum"
	StopDeadline   StopReason = "the context's deadline comes before the next attempt"
	StopElapsed    StopReason = "the total retry time is used up"
)

// GaveUpError is returned by Do when a retryable error persisted past the
// policy's bounds. It unwraps to the last error, so errors.Is and errors.As
// see through it, and its message is the last error's.
type GaveUpError struct {
	Attempts int
	Reason   StopReason
	Last     error
}

func (e *GaveUpError) Error() string { return e.Last.Error() }

// Unwrap returns the last attempt's error.
func (e *GaveUpError) Unwrap() error { return e.Last }

// CanceledError is returned when the context ended during a wait between
// attempts. It matches both the context's cause and the last error.
type CanceledError struct {
	Cause error
	Last  error
}

func (e *CanceledError) Error() string {
	return fmt.Sprintf("%v (while waiting to retry after: %v)", e.Cause, e.Last)
}

// Unwrap returns the context's cause and the last attempt's error.
func (e *CanceledError) Unwrap() []error { return []error{e.Cause, e.Last} }

// Do runs op until it succeeds, classify calls its error permanent, or the
// policy's bounds are reached. attempt counts from 1. A permanent error is
// returned as it is; a retryable one past the bounds as a *GaveUpError; a
// context that ends during a wait as a *CanceledError. An error returned
// while ctx is already done is returned as it is.
func Do(ctx context.Context, p Policy, classify Classifier, op func(attempt int) error) error {
	p = p.WithDefaults()
	start := p.Now()
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		d := classify(err)
		if !d.Retry {
			return err
		}
		wait, stop := p.next(ctx, d, attempt, start)
		if stop != "" {
			return &GaveUpError{Attempts: attempt, Reason: stop, Last: err}
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return &CanceledError{Cause: serr, Last: err}
		}
	}
}

// next returns the wait before the attempt after attempt, or why none is
// to be made.
func (p Policy) next(ctx context.Context, d Decision, attempt int, start time.Time) (time.Duration, StopReason) {
	if attempt >= p.MaxAttempts {
		return 0, StopAttempts
	}
	wait := d.After
	if wait > p.MaxRetryAfter {
		return 0, StopRetryAfter
	}
	if wait <= 0 {
		wait = p.Backoff(attempt)
	}
	now := p.Now()
	if p.MaxElapsed > 0 && now.Add(wait).Sub(start) > p.MaxElapsed {
		return 0, StopElapsed
	}
	if dl, ok := ctx.Deadline(); ok && dl.Sub(now) < wait {
		return 0, StopDeadline
	}
	return wait, ""
}

// Sleep waits d, or until ctx ends (returning its cause).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), relative to now. ok is false when v is absent or
// malformed.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(n, maxSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Interval bounds the time between two polls: it starts at Min, doubles
// after each poll that saw no change, is capped at Max, starts again at Min
// when the state changes, and is jittered by up to a half downwards.
type Interval struct {
	Min, Max time.Duration
}

// PollFunc checks once. state describes what the poll saw (an unchanged
// state lengthens the interval); done ends the poll with err (nil for
// success). An error with done false is classified: a retryable one is
// tolerated under the policy, a permanent one ends the poll.
type PollFunc func() (state string, done bool, err error)

// Poll calls check until it reports done, it fails with an error classify
// calls permanent, transient errors persist past p's bounds (counted in a
// row: a successful poll resets them), or ctx ends. Between successful
// polls it waits per iv; after a transient error, per p's backoff.
func Poll(ctx context.Context, p Policy, iv Interval, classify Classifier, check PollFunc) error {
	p = p.WithDefaults()
	if iv.Min <= 0 {
		iv.Min = time.Second
	}
	iv.Max = max(iv.Max, iv.Min)
	interval := iv.Min
	last, first := "", true
	failures := 0
	var failStart time.Time
	for {
		state, done, err := check()
		var wait time.Duration
		switch {
		case done:
			return err
		case err != nil:
			if ctx.Err() != nil {
				return err
			}
			d := classify(err)
			if !d.Retry {
				return err
			}
			failures++
			if failures == 1 {
				failStart = p.Now()
			}
			w, stop := p.next(ctx, d, failures, failStart)
			if stop != "" {
				return &GaveUpError{Attempts: failures, Reason: stop, Last: err}
			}
			if p.OnRetry != nil {
				p.OnRetry(failures, err, w)
			}
			wait = w
		default:
			failures = 0
			if first || state != last {
				interval = iv.Min
			} else {
				interval = min(2*interval, iv.Max)
			}
			last, first = state, false
			wait = jitter(interval)
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			if err != nil {
				return &CanceledError{Cause: serr, Last: err}
			}
			return serr
		}
	}
}

// jitter returns a duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// IsCanceled reports whether err ended because a context did.
func IsCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
