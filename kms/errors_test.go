package kms

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/crn"

	kp "github.com/IBM/keyprotect-go-client"
)

func kpBody(status int, code, msg string) []byte {
	return fmt.Appendf(nil, `{"metadata":{"collectionType":"application/vnd.ibm.kms.error+json","collectionTotal":1},`+
		`"resources":[{"errorMsg":%q,"reasons":[{"code":%q,"message":%q,"status":%d,"moreInfo":"https://cloud.ibm.com/apidocs/key-protect"}]}]}`,
		msg, code, msg, status)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	crn, _ := crn.ParseKey(testKPCRN)
	for _, tc := range []struct {
		op     string
		status int
		reason string
		want   error
	}{
		{"wrap", 401, "UNAUTHORIZED_ERR", ErrUnauthorized},
		{"wrap", 403, "RESOURCE_OWNER_ERR", ErrUnauthorized},
		{"describe", 404, "KEY_NOT_FOUND_ERR", ErrKeyNotFound},
		{"wrap", 404, "", ErrKeyNotFound},
		{"wrap", 400, "KEY_ROOT_REQ_ERR", ErrNotRootKey},
		{"wrap", 400, "KEY_EXPIRED_ERR", ErrKeyNotActive},
		{"wrap", 409, "KEY_ACTION_INVALID_STATE_ERR", ErrKeyNotActive},
		{"unwrap", 410, "KEY_DELETED_ERR", ErrKeyDeleted},
		{"describe", 410, "", ErrKeyDeleted},
		{"unwrap", 422, "UNPROCESSABLE_CIPHERTEXT_ERR", ErrBadCiphertext},
		{"unwrap", 422, "", ErrBadCiphertext},
		{"unwrap", 400, "BAD_BODY_ERR", ErrBadCiphertext},
		{"wrap", 400, "BAD_BODY_ERR", nil},
		{"wrap", 429, "", ErrRateLimited},
		{"wrap", 503, "", ErrUnavailable},
		{"wrap", 501, "", nil},
		{"wrap", 400, "INSTANCE_NOT_FOUND_ERR", ErrWrongInstance},
	} {
		cause := &kp.Error{StatusCode: tc.status, Message: "msg", BodyContent: kpBody(tc.status, tc.reason, "msg"), CorrelationID: "corr-1"}
		e := classify(tc.op, crn, fmt.Errorf("sdk: %w", cause))
		if e.Kind != tc.want {
			t.Errorf("%s %d %s: kind %v, want %v", tc.op, tc.status, tc.reason, e.Kind, tc.want)
		}
		if tc.want != nil && !errors.Is(e, tc.want) {
			t.Errorf("%s %d %s: errors.Is(%v) false", tc.op, tc.status, tc.reason, tc.want)
		}
		var got *kp.Error
		if !errors.As(e, &got) || got != cause {
			t.Errorf("%s %d: the *kp.Error cause is not reachable with errors.As", tc.op, tc.status)
		}
		if e.Status != tc.status || e.Reason != tc.reason || e.CorrelationID != "corr-1" {
			t.Errorf("%s %d: status %d reason %q correlation %q", tc.op, tc.status, e.Status, e.Reason, e.CorrelationID)
		}
	}

	ue := classify("wrap", crn, &kp.URLError{Err: errors.New("dial tcp: refused"), CorrelationID: "c2"})
	if ue.Kind != nil || ue.CorrelationID != "c2" || !strings.Contains(ue.Error(), "dial tcp: refused") {
		t.Errorf("URLError: %+v", ue)
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	crn, _ := crn.ParseKey(testKPCRN)
	e := &Error{Op: "wrap", Key: crn.String(), Kind: ErrKeyNotActive, State: StateSuspended, Status: 409,
		Reason: "KEY_ACTION_INVALID_STATE_ERR", Attempts: 1, Err: errors.New("kp.Error: msg='Key is not in a valid state'")}
	want := "kms: wrap with key " + testKPCRN + ": key is not active (state Suspended); enable the key (kp key enable, or the console) or use an active root key" +
		" [HTTP 409, KEY_ACTION_INVALID_STATE_ERR]: kp.Error: msg='Key is not in a valid state'"
	if e.Error() != want {
		t.Errorf("message\n got %s\nwant %s", e.Error(), want)
	}
	e.State = StateDeactivated
	if !strings.Contains(e.Error(), "(state Deactivated); the key has expired") {
		t.Errorf("expired key message: %s", e)
	}
	e2 := &Error{Op: "unwrap", Key: crn.String(), Kind: ErrUnavailable, Status: 503, Attempts: 3}
	if want := "kms: unwrap with key " + testKPCRN + ": key service unavailable; try again later, or raise the retry budget (WithRetryPolicy) [HTTP 503, 3 attempts]"; e2.Error() != want {
		t.Errorf("message\n got %s\nwant %s", e2, want)
	}
	if len(e2.Unwrap()) != 1 {
		t.Errorf("Unwrap without cause: %v", e2.Unwrap())
	}
}

func TestKeyInfoUsable(t *testing.T) {
	t.Parallel()
	crn, _ := crn.ParseKey(testKPCRN)
	for _, tc := range []struct {
		info KeyInfo
		want error
	}{
		{KeyInfo{CRN: crn, Type: RootKey, State: StateActive}, nil},
		{KeyInfo{CRN: crn, Type: StandardKey, State: StateActive}, ErrNotRootKey},
		{KeyInfo{CRN: crn, Type: RootKey, State: StateSuspended}, ErrKeyNotActive},
		{KeyInfo{CRN: crn, Type: RootKey, State: StateDeactivated}, ErrKeyNotActive},
		{KeyInfo{CRN: crn, Type: RootKey, State: StateDestroyed}, ErrKeyDeleted},
		{KeyInfo{CRN: crn, Type: RootKey, State: StateActive, Deleted: true}, ErrKeyDeleted},
	} {
		err := tc.info.Usable()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%+v: %v", tc.info, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.info, err, tc.want)
		}
	}
	err := (&KeyInfo{CRN: crn, Type: RootKey, State: StateSuspended}).Usable()
	if !strings.Contains(err.Error(), "state Suspended") {
		t.Errorf("the state is not named: %v", err)
	}
}

func TestKeyStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[KeyState]string{StateActive: "Active", StateSuspended: "Suspended", StateDeactivated: "Deactivated",
		StateDestroyed: "Destroyed", StatePreActive: "Pre-activation", StateUnknown: "Unknown", 7: "State(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}

func TestClassifyTransportErrorUnwraps(t *testing.T) {
	t.Parallel()
	crn, _ := crn.ParseKey(testKPCRN)
	inner := errors.New("connection refused")
	ue := &kp.URLError{Err: inner, CorrelationID: "c"}
	e := classify("wrap", crn, ue)
	var got *kp.URLError
	if !errors.Is(e, inner) || !errors.As(e, &got) || got != ue {
		t.Errorf("the transport error and its cause must both be reachable: %v", e)
	}
}
