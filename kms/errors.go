package kms

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/e2eimage/e2eimage/crn"

	kp "github.com/IBM/keyprotect-go-client"
)

// Sentinel errors for what callers branch on. Errors returned by a Client
// are *Error values that match one of these with errors.Is (when the cause
// is known) and keep the SDK's error (*kp.Error, *kp.URLError, ...) as a
// wrapped cause for errors.As.
var (
	// ErrKeyNotFound: the key service has no such key in the instance
	// (HTTP 404; also what a purged key gives).
	ErrKeyNotFound = errors.New("kms: key not found")
	// ErrNotRootKey: the key is a standard key (extractable); only root keys
	// wrap and unwrap (HTTP 400 KEY_ROOT_REQ_ERR).
	ErrNotRootKey = errors.New("kms: key is not a root key")
	// ErrKeyNotActive: the key is disabled (Suspended) or expired
	// (Deactivated); *Error.State names the state (HTTP 409
	// KEY_ACTION_INVALID_STATE_ERR, 400 KEY_EXPIRED_ERR).
	ErrKeyNotActive = errors.New("kms: key is not active")
	// ErrKeyDeleted: the key was deleted (HTTP 410 KEY_DELETED_ERR, or state
	// Destroyed).
	ErrKeyDeleted = errors.New("kms: key has been deleted")
	// ErrUnauthorized: the credentials were refused or lack a role on the
	// instance (HTTP 401, 403, or an IAM token failure).
	ErrUnauthorized = errors.New("kms: not authorized")
	// ErrWrongInstance: the instance named by the CRN is not served at the
	// endpoint, or the key service returned a key of another instance. Key
	// Protect answers a request for an unknown instance with the same 401
	// UNAUTHORIZED_ERR as a request without access, so a 401 from the key
	// service matches both ErrUnauthorized and ErrWrongInstance; the message
	// names both causes.
	ErrWrongInstance = errors.New("kms: key does not belong to the instance in the CRN")
	// ErrBadCiphertext: the key service could not unwrap the ciphertext; it
	// is corrupted or was wrapped by another key (HTTP 422
	// UNPROCESSABLE_CIPHERTEXT_ERR).
	ErrBadCiphertext = errors.New("kms: ciphertext is invalid or was not wrapped by this key")
	// ErrRateLimited: the key service kept answering 429 until the retry
	// budget ran out.
	ErrRateLimited = errors.New("kms: rate limited by the key service")
	// ErrUnavailable: the key service kept failing (5xx or connection
	// errors) until the retry budget ran out.
	ErrUnavailable = errors.New("kms: key service unavailable")
)

// Error is a failed key service operation.
type Error struct {
	// Op is the operation: "describe", "wrap", "unwrap" or "generate".
	Op string
	// Key is the root key CRN the operation used.
	Key string
	// Kind is the sentinel error the failure matches (ErrKeyNotActive, ...),
	// or nil when the failure is not one of them.
	Kind error
	// Status is the HTTP status of the last response, 0 if none arrived.
	Status int
	// Reason is the key service's reason code, e.g. "KEY_DELETED_ERR".
	Reason string
	// State is the key's state when it is known (ErrKeyNotActive).
	State KeyState
	// CorrelationID identifies the request to IBM support.
	CorrelationID string
	// Attempts is how many requests the call made (retries included).
	Attempts int
	// Endpoint is the key service base URL the call was sent to, "" when
	// it sent nothing.
	Endpoint string
	// Err is the underlying error (from the SDK, IAM or the network).
	Err error

	// also is a second sentinel the failure matches: a 401 from the key
	// service matches ErrWrongInstance as well as ErrUnauthorized.
	also error
}

// Error says what was being done, what went wrong and what to do.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kms: %s with key %s", e.Op, e.Key)
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Problem())
		if fix := e.Fix(); fix != "" {
			b.WriteString("; ")
			b.WriteString(fix)
		}
		if e.Kind == ErrKeyNotFound && e.Endpoint != "" {
			// A Key Protect Dedicated key keeps CRN service "kms" but is
			// not served at the multi-tenant endpoint.
			fmt.Fprintf(&b, " (asked at %s; a Key Protect Dedicated instance is served at "+
				"https://<instance_ID>.api.<region>.kms.appdomain.cloud: see WithDedicated and WithURL)", e.Endpoint)
		}
	}
	var details []string
	if e.Status != 0 {
		details = append(details, fmt.Sprintf("HTTP %d", e.Status))
	}
	if e.Reason != "" {
		details = append(details, e.Reason)
	}
	if e.Attempts > 1 {
		details = append(details, fmt.Sprintf("%d attempts", e.Attempts))
	}
	if len(details) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(details, ", "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Problem says in a few words what is wrong ("key is not active (state
// Suspended)"), without the operation, the advice or the cause; "" when the
// failure has no known kind.
func (e *Error) Problem() string {
	if e.Kind == nil {
		return ""
	}
	p := strings.TrimPrefix(e.Kind.Error(), "kms: ")
	if e.Kind == ErrKeyNotActive && e.State != StateUnknown {
		p += fmt.Sprintf(" (state %s)", e.State)
	}
	return p
}

// Unwrap returns the sentinel kind and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.also != nil {
		errs = append(errs, e.also)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Fix says what to do about the failure, "" when there is no advice.
func (e *Error) Fix() string {
	switch e.Kind {
	case ErrKeyNotFound:
		return "check the key ID in the crn.Key and that the key is in this instance and region"
	case ErrNotRootKey:
		return "use a root key (extractable=false); standard keys cannot wrap"
	case ErrKeyNotActive:
		if e.State == StateDeactivated {
			return "the key has expired: wrap with another active root key (unwrap still works on expired keys)"
		}
		return "enable the key (kp key enable, or the console) or use an active root key"
	case ErrKeyDeleted:
		return "restore it within 30 days of its deletion, or use another root key"
	case ErrUnauthorized:
		if e.also == ErrWrongInstance {
			return "check that the API key's identity has the Reader role on the key service instance, " +
				"and that the instance GUID and region in the key crn.Key are right (the key service answers 401 alike for both)"
		}
		return "check the API key and that its identity has the Reader role on the key service instance"
	case ErrWrongInstance:
		return "check the instance GUID and region in the key CRN"
	case ErrBadCiphertext:
		return "pass the ciphertext exactly as the key service returned it, with the key that wrapped it"
	case ErrRateLimited, ErrUnavailable:
		return "try again later, or raise the retry budget (WithRetryPolicy)"
	}
	return ""
}

// Reason codes documented by Key Protect (../docs/CLOUD.md §1.6).
const (
	reasonRootRequired   = "KEY_ROOT_REQ_ERR"
	reasonExpired        = "KEY_EXPIRED_ERR"
	reasonInvalidState   = "KEY_ACTION_INVALID_STATE_ERR"
	reasonDeleted        = "KEY_DELETED_ERR"
	reasonBadCiphertext  = "UNPROCESSABLE_CIPHERTEXT_ERR"
	reasonBadBody        = "BAD_BODY_ERR"
	reasonUnauthorized   = "UNAUTHORIZED_ERR"
	reasonInstanceAbsent = "INSTANCE_NOT_FOUND_ERR" // not documented; matched by name
)

// errorBody is the key service's error envelope (../docs/CLOUD.md §1.6).
type errorBody struct {
	Resources []struct {
		ErrorMsg string `json:"errorMsg"`
		Reasons  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Status  int    `json:"status"`
		} `json:"reasons"`
	} `json:"resources"`
}

// parseErrorBody returns the message and the first reason code of an error
// body, or zero values when the body is not the key service's envelope.
func parseErrorBody(body []byte) (msg, reason string) {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || len(eb.Resources) == 0 {
		return "", ""
	}
	r := eb.Resources[0]
	if len(r.Reasons) > 0 {
		reason = r.Reasons[0].Code
	}
	return r.ErrorMsg, reason
}

// classify turns an error from the SDK into an *Error for op.
func classify(op string, crn crn.Key, err error) *Error {
	e := &Error{Op: op, Key: crn.String(), Err: err, State: StateUnknown}
	var ke *kp.Error
	var ue *kp.URLError
	switch {
	case errors.As(err, &ke):
		e.Status = ke.StatusCode
		e.CorrelationID = ke.CorrelationID
		_, e.Reason = parseErrorBody(ke.BodyContent)
		e.Kind = kindOf(op, e.Status, e.Reason)
		if e.Status == http.StatusUnauthorized {
			e.also = ErrWrongInstance
		}
	case errors.As(err, &ue):
		e.CorrelationID = ue.CorrelationID
		e.Err = transportError{ue}
	}
	return e
}

// transportError keeps a *kp.URLError reachable with errors.As while also
// exposing the network error inside it, which kp.URLError does not unwrap.
type transportError struct{ ue *kp.URLError }

func (t transportError) Error() string   { return t.ue.Error() }
func (t transportError) Unwrap() []error { return []error{t.ue, t.ue.Err} }

// kindOf maps an HTTP status and reason code to a sentinel.
func kindOf(op string, status int, reason string) error {
	switch reason {
	case reasonRootRequired:
		return ErrNotRootKey
	case reasonExpired, reasonInvalidState:
		return ErrKeyNotActive
	case reasonDeleted:
		return ErrKeyDeleted
	case reasonBadCiphertext:
		return ErrBadCiphertext
	case reasonUnauthorized:
		return ErrUnauthorized
	case reasonInstanceAbsent:
		return ErrWrongInstance
	case reasonBadBody:
		if op == "unwrap" {
			return ErrBadCiphertext
		}
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusNotFound:
		return ErrKeyNotFound
	case status == http.StatusGone:
		return ErrKeyDeleted
	case status == http.StatusUnprocessableEntity && op == "unwrap":
		return ErrBadCiphertext
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500 && status != http.StatusNotImplemented:
		return ErrUnavailable
	}
	return nil
}
