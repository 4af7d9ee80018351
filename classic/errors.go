package classic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/sl"

	"github.com/e2eimage/e2eimage/internal/retry"
	"github.com/e2eimage/e2eimage/secret"
)

// Sentinel errors that callers branch on.
var (
	// ErrInvalidImportRequest is matched (errors.Is) by every
	// *InvalidImportError: the request would be refused by the backplane
	// and was not sent.
	ErrInvalidImportRequest = errors.New("classic: invalid import request")
	// ErrInvalidServerSpec is matched by every *InvalidServerError.
	ErrInvalidServerSpec = errors.New("classic: invalid server order")
	// ErrNotFound is matched by an *APIError for
	// SoftLayer_Exception_ObjectNotFound and returned by the Find methods
	// when nothing matches.
	ErrNotFound = errors.New("classic: not found")
	// ErrAmbiguous is returned by the Find methods when more than one
	// object matches.
	ErrAmbiguous = errors.New("classic: more than one match")
	// ErrTemplateNotActive is returned when a server is ordered from a
	// template whose status is not Active.
	ErrTemplateNotActive = errors.New("classic: image template is not Active")
	// ErrImportFailed is matched by every *ImportFailedError.
	ErrImportFailed = errors.New("classic: image import failed")
	// ErrTemplateGone is matched by every *TemplateGoneError: the
	// template a wait was watching no longer exists.
	ErrTemplateGone = errors.New("classic: image template no longer exists")
	// ErrTemplateStateUnknown is matched by a *TemplateStateError for a
	// template that stayed in a state no documented signal explains.
	ErrTemplateStateUnknown = errors.New("classic: image template state unknown")
	// ErrNoProgress is matched by every *NoProgressError: a wait saw the
	// same transaction status for longer than its no-progress bound.
	ErrNoProgress = errors.New("classic: no progress")
)

// InvalidImportError says which field of an ImportRequest the backplane
// would reject, and why. It matches ErrInvalidImportRequest.
type InvalidImportError struct {
	Field  string // ImportRequest field name, e.g. "URI", "DiskSize"
	Reason string
}

func (e *InvalidImportError) Error() string {
	return "classic: invalid import request: " + e.Field + ": " + e.Reason
}

// Is matches ErrInvalidImportRequest.
func (e *InvalidImportError) Is(target error) bool { return target == ErrInvalidImportRequest }

// InvalidServerError says which field of a ServerSpec is missing or wrong.
// It matches ErrInvalidServerSpec.
type InvalidServerError struct {
	Field  string
	Reason string
}

func (e *InvalidServerError) Error() string {
	return "classic: invalid server order: " + e.Field + ": " + e.Reason
}

// Is matches ErrInvalidServerSpec.
func (e *InvalidServerError) Is(target error) bool { return target == ErrInvalidServerSpec }

// ImportFailedError reports an image template that ended in an error status
// instead of Active. It matches ErrImportFailed.
type ImportFailedError struct {
	TemplateID int
	Status     string // the status key name (or name) that reported the failure
	Reason     string // what the backplane said, when it said something
	// Transaction is the transaction the last poll saw, if any.
	Transaction Transaction
}

func (e *ImportFailedError) Error() string {
	msg := fmt.Sprintf("classic: image template %d import failed: status %s", e.TemplateID, e.Status)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Transaction.Status != "" {
		msg += " (transaction " + e.Transaction.String() + ")"
	}
	return msg
}

// Is matches ErrImportFailed.
func (e *ImportFailedError) Is(target error) bool { return target == ErrImportFailed }

// NoProgressError reports a wait that saw the same transaction status for
// longer than its no-progress bound (WithNoProgressBound,
// NoProgressAfter): a transaction stuck in a failing status, or one the
// backplane no longer moves. It matches ErrNoProgress.
type NoProgressError struct {
	// What names what was waited for ("template 2200100").
	What string
	// Transaction is the status that did not change; its For is how long
	// the wait saw it.
	Transaction Transaction
	// Bound is the no-progress bound that was passed.
	Bound time.Duration
	// State describes the object as the last poll saw it.
	State string
}

func (e *NoProgressError) Error() string {
	return fmt.Sprintf("classic: %s made no progress: transaction %s unchanged for %s (bound %s; %s)",
		e.What, e.Transaction.String(), e.Transaction.For.Round(time.Second), e.Bound, e.State)
}

// Is matches ErrNoProgress.
func (e *NoProgressError) Is(target error) bool { return target == ErrNoProgress }

// TemplateGoneError reports that the image template a wait was watching
// was not found any more (SoftLayer_Exception_ObjectNotFound): the import
// was deleted, or removed after failing. It matches ErrTemplateGone and
// ErrNotFound, and unwraps to the *APIError.
type TemplateGoneError struct {
	TemplateID int
	// Last is the template as the last successful poll saw it; nil when
	// none succeeded.
	Last  *Template
	cause error
}

func (e *TemplateGoneError) Error() string {
	msg := fmt.Sprintf("classic: image template %d no longer exists", e.TemplateID)
	if e.Last != nil {
		msg += " (last seen: " + e.Last.progress() + ")"
	}
	return msg
}

// Is matches ErrTemplateGone and ErrNotFound.
func (e *TemplateGoneError) Is(target error) bool {
	return target == ErrTemplateGone || target == ErrNotFound
}

// Unwrap returns the API error that said the template is gone.
func (e *TemplateGoneError) Unwrap() error { return e.cause }

// TemplateStateError reports an image template whose state ends a wait
// without being Active: Deprecated (documented, but servers cannot be
// ordered from it), or a state no documented signal explains (no
// transaction running, yet not Active with its disks in place) that lasted
// longer than the unknown-state bound. It matches ErrTemplateNotActive and,
// for the latter, ErrTemplateStateUnknown.
type TemplateStateError struct {
	TemplateID int
	// State describes the template as the last poll saw it.
	State string
	// Deprecated is set for a Deprecated template.
	Deprecated bool
	// For is how long the unknown state lasted.
	For time.Duration
}

func (e *TemplateStateError) Error() string {
	if e.Deprecated {
		return fmt.Sprintf("classic: image template %d is Deprecated; servers cannot be ordered from it (%s)", e.TemplateID, e.State)
	}
	return fmt.Sprintf("classic: image template %d stayed in an unknown state for %s: no transaction runs, yet it is not Active with its disks in place (%s)",
		e.TemplateID, e.For.Round(time.Second), e.State)
}

// Is matches ErrTemplateNotActive and, unless the template is Deprecated,
// ErrTemplateStateUnknown.
func (e *TemplateStateError) Is(target error) bool {
	return target == ErrTemplateNotActive || (target == ErrTemplateStateUnknown && !e.Deprecated)
}

// APIError is an error answered by the SoftLayer API, or a failure to reach
// it. Every string in it has had the API keys of the call removed:
// softlayer-go's own errors may carry response text, and a server may echo
// what it was sent.
type APIError struct {
	Op         string // the service method, e.g. "SoftLayer_Virtual_Guest::createObject"
	StatusCode int    // HTTP status; 0 when no response arrived
	Code       string // the SoftLayer exception, e.g. "SoftLayer_Exception_ObjectNotFound"
	Message    string
	cause      error
	timedOut   bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("classic: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Code != "" {
		b.WriteString(e.Code)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	return b.String()
}

// Unwrap returns the context error when the call was cancelled, or the
// transport error when it holds no secret.
func (e *APIError) Unwrap() error { return e.cause }

// Is matches ErrNotFound for SoftLayer_Exception_ObjectNotFound (and for an
// HTTP 404 without an exception code).
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == "SoftLayer_Exception_ObjectNotFound" || (e.StatusCode == 404 && e.Code == ""))
}

// Timeout reports whether the call timed out (the net.Error convention).
func (e *APIError) Timeout() bool {
	if e.timedOut || e.StatusCode == 408 || e.StatusCode == 504 {
		return true
	}
	var ne net.Error
	return errors.As(e.cause, &ne) && ne.Timeout()
}

// apiError turns an error from softlayer-go into an *APIError with every
// secret of the call removed.
func (c *Client) apiError(ctx context.Context, op string, err error, extra ...*secret.String) error {
	if err == nil {
		return nil
	}
	secrets := c.secrets(extra...)
	e := &APIError{Op: op}
	var slErr sl.Error
	if errors.As(err, &slErr) {
		e.StatusCode = slErr.StatusCode
		e.Code = scrub(slErr.Exception, secrets)
		if slErr.Wrapped != nil {
			msg := slErr.Wrapped.Error()
			e.Message = scrub(msg, secrets)
			if e.Message == msg {
				e.cause = slErr.Wrapped
			} else {
				e.cause = errors.New(e.Message)
			}
		} else {
			e.Message = scrub(slErr.Message, secrets)
		}
		if e.StatusCode == 599 || e.StatusCode == 520 {
			// softlayer-go's markers for "no response" (599: timed out),
			// not statuses a server sent.
			e.timedOut = e.StatusCode == 599
			e.StatusCode = 0
		}
	} else {
		msg := err.Error()
		e.Message = scrub(msg, secrets)
		if e.Message == msg {
			e.cause = err
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		e.cause = ctxErr
	}
	return e
}

// scrub replaces every occurrence of each secret in s.
func scrub(s string, secrets []string) string {
	for _, k := range secrets {
		if len(k) >= 4 && strings.Contains(s, k) {
			s = strings.ReplaceAll(s, k, secret.Redacted)
		}
	}
	return s
}

// classify is the classic API's error classifier for internal/retry.
func classify(err error) retry.Decision {
	if transient(err) {
		return retry.Retryable
	}
	return retry.Permanent
}

// transient reports whether an error of the classic API is worth another
// attempt: no answer in time, rate limiting (429 or
// SoftLayer_Exception_WebService_RateLimitExceeded), 408/502/503/504, and
// the HTTP 500 answers that say the fault is passing.
//
// SoftLayer answers every exception at HTTP 500, its own faults and the
// caller's alike (SLDN article "Exception Handling with the SoftLayer
// API": an exception is an HTTP 500 whose body is {"error", "code"}). A
// 500 is therefore retried only when its message says the fault is on the
// server's side and passing ("Internal Error", a timeout, "try again",
// "temporarily unavailable"), and never when its code or message says
// not found, not permitted or invalid (SoftLayer_Exception_ObjectNotFound,
// the permission and access-denied exceptions, invalid parameters): those
// answers do not change by asking again.
func transient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Timeout() || transientAnswer(ae.StatusCode, ae.Code, ae.Message)
	}
	var slErr sl.Error
	if errors.As(err, &slErr) {
		if slErr.StatusCode == 599 {
			return true // softlayer-go's marker for a timed-out request
		}
		msg := slErr.Message
		if slErr.Wrapped != nil {
			msg = slErr.Wrapped.Error()
		}
		if transientAnswer(slErr.StatusCode, slErr.Exception, msg) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Exception codes and message words that make a 500 permanent, and words
// that make it transient (matched case-insensitively).
var (
	permanentWords = []string{"objectnotfound", "not found", "notfound", "permission", "access denied",
		"accessdenied", "not authorized", "notauthorized", "authentication", "invalid"}
	transientWords = []string{"internal error", "timed out", "timeout", "try again", "temporarily unavailable",
		"service unavailable"}
)

func transientAnswer(status int, code, msg string) bool {
	switch status {
	case 408, 429, 502, 503, 504:
		return true
	}
	if code == "SoftLayer_Exception_WebService_RateLimitExceeded" {
		return true
	}
	if status != 500 {
		return false
	}
	lc, lm := strings.ToLower(code), strings.ToLower(msg)
	for _, w := range permanentWords {
		if strings.Contains(lc, w) || strings.Contains(lm, w) {
			return false
		}
	}
	for _, w := range transientWords {
		if strings.Contains(lm, w) {
			return true
		}
	}
	return false
}

func statusOf(err error) int {
	var slErr sl.Error
	if errors.As(err, &slErr) {
		return slErr.StatusCode
	}
	return 0
}
