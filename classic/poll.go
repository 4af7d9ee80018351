package classic

import (
	"context"
	"fmt"
	"time"

	"github.com/e2eimage/e2eimage/internal/retry"
)

// DefaultNoProgressBound is how long WaitTemplate accepts one transaction
// status (the same group, status name and friendly name on the same copy)
// before it gives up with a *NoProgressError. IBM documents an import as
// taking "several minutes to an hour" (../docs/CLOUD.md section 7.2) and
// documents no status for a failed one: a transaction that sits in one
// status for longer than a whole documented import is taken as stuck.
const DefaultNoProgressBound = time.Hour

// WaitOption configures one call of a waiting method (WaitTemplate,
// WaitServer, OrderServer, Export).
type WaitOption func(*waitOptions)

type waitOptions struct {
	min, max     time.Duration
	unknownBound time.Duration
	noProgress   time.Duration
	onTemplate   func(Template)
	onServer     func(Server)
}

// PollEvery overrides the Client's poll interval bounds (WithPollInterval)
// for one call.
func PollEvery(min, max time.Duration) WaitOption {
	return func(o *waitOptions) {
		if min > 0 {
			o.min = min
		}
		if max > 0 {
			o.max = max
		}
	}
}

// UnknownStateAfter overrides the Client's unknown-state bound
// (WithUnknownStateBound) for one WaitTemplate call.
func UnknownStateAfter(d time.Duration) WaitOption {
	return func(o *waitOptions) {
		if d > 0 {
			o.unknownBound = d
		}
	}
}

// NoProgressAfter overrides the Client's no-progress bound
// (WithNoProgressBound) for one WaitTemplate call.
func NoProgressAfter(d time.Duration) WaitOption {
	return func(o *waitOptions) {
		if d > 0 {
			o.noProgress = d
		}
	}
}

// TemplateProgress registers fn, called with the template after every poll
// of WaitTemplate or Export. It runs on the calling goroutine and should
// return quickly.
func TemplateProgress(fn func(Template)) WaitOption {
	return func(o *waitOptions) { o.onTemplate = fn }
}

// ServerProgress registers fn, called with the server after every poll of
// WaitServer or OrderServer.
func ServerProgress(fn func(Server)) WaitOption {
	return func(o *waitOptions) { o.onServer = fn }
}

func (c *Client) waitOptions(opts []WaitOption) waitOptions {
	wo := waitOptions{min: c.opts.minPoll, max: c.opts.maxPoll, unknownBound: c.opts.unknownBound,
		noProgress: c.opts.noProgress}
	for _, f := range opts {
		f(&wo)
	}
	if wo.max < wo.min {
		wo.max = wo.min
	}
	return wo
}

// maxPollFailures is how many polls in a row may fail with a transient
// error (each already retried by Client.read) before a wait gives up.
const maxPollFailures = 5

// poll calls check until it reports done, an error, or ctx ends, under the
// one retry policy (internal/retry): the interval starts at wo.min, doubles
// while the state check returns does not change, is capped at wo.max,
// resets when the state changes, and is jittered; transient errors
// (see transient) are tolerated maxPollFailures times in a row. An error
// check reports with done is returned as it is; any other names what was
// waited for and the last state seen (which includes the transaction).
func (c *Client) poll(ctx context.Context, wo waitOptions, what string, check func() (state string, done bool, err error)) error {
	last, first, finished := "", true, false
	p := retry.Policy{MaxAttempts: maxPollFailures, MinWait: wo.min, MaxWait: wo.max,
		OnRetry: func(n int, err error, wait time.Duration) {
			c.opts.logger.DebugContext(ctx, "classic: poll failed, will retry", "what", what, "failures", n, "wait", wait, "err", err)
		}}
	err := retry.Poll(ctx, p, retry.Interval{Min: wo.min, Max: wo.max}, classify, func() (string, bool, error) {
		state, done, err := check()
		finished = done
		if err == nil && !done && (first || state != last) {
			c.opts.logger.DebugContext(ctx, "classic: state", "what", what, "state", state)
			last, first = state, false
		}
		return state, done, err
	})
	if err == nil || finished {
		return err
	}
	return fmt.Errorf("classic: waiting for %s (last state %q): %w", what, last, err)
}

// progressClock tracks, across the polls of one wait, since when the wait
// has seen the current transaction status.
type progressClock struct {
	key   string
	since time.Time
}

// observe records x at now and returns how long x's status has been seen.
func (p *progressClock) observe(x Transaction, now time.Time) time.Duration {
	k := x.key()
	if x.Status == "" {
		k = ""
	}
	if k != p.key || p.since.IsZero() {
		p.key, p.since = k, now
	}
	return now.Sub(p.since)
}
