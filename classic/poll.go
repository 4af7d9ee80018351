package classic

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WaitOption configures one call of a waiting method (WaitTemplate,
// WaitServer, OrderServer, Export).
type WaitOption func(*waitOptions)

type waitOptions struct {
	min, max     time.Duration
	unknownBound time.Duration
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
	wo := waitOptions{min: c.opts.minPoll, max: c.opts.maxPoll, unknownBound: c.opts.unknownBound}
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

// poll calls check until it reports done, an error, or ctx ends. The
// interval starts at wo.min, doubles while the state key check returns does
// not change, is capped at wo.max, resets when the state changes, and is
// jittered. Transient errors (timeouts, rate limiting, 5xx) are tolerated
// maxPollFailures times in a row.
func (c *Client) poll(ctx context.Context, wo waitOptions, what string, check func() (state string, done bool, err error)) error {
	interval := wo.min
	last, failures, first := "", 0, true
	for {
		state, done, err := check()
		switch {
		case err != nil && !done && isTransient(err) && failures+1 < maxPollFailures && ctx.Err() == nil:
			failures++
			c.opts.logger.DebugContext(ctx, "classic: poll failed, will retry", "what", what, "failures", failures, "err", err)
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("classic: waiting for %s (last state %q): %w", what, last, err)
		case err != nil || done:
			return err
		default:
			failures = 0
			if first || state != last {
				c.opts.logger.DebugContext(ctx, "classic: state", "what", what, "state", state)
				interval = wo.min
			} else {
				interval = min(2*interval, wo.max)
			}
			last, first = state, false
		}
		if err := sleep(ctx, jitter(interval)); err != nil {
			return fmt.Errorf("classic: waiting for %s (last state %q): %w", what, last, err)
		}
	}
}

// isTransient reports whether a poll error is worth polling through.
func isTransient(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	if ae.Timeout() {
		return true
	}
	switch ae.StatusCode {
	case 429, 502, 503, 504:
		return true
	}
	return ae.Code == "SoftLayer_Exception_WebService_RateLimitExceeded"
}
