package kms

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/e2eimage/e2eimage/internal/httppolicy/policytest"
)

// A key service that redirects a wrap (the body holds the DEK, the header
// the token) to a second host: the second host receives nothing.
func TestRedirectToAnotherHostSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		r := policytest.NewRedirect(t, code, `{"ciphertext":"Y2lwaGVydGV4dA==","keyVersion":{"id":"v1"}}`)
		c, err := New(testKPCRN, &staticTokens{}, WithURL(r.First.URL), WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))
		if err != nil {
			t.Fatal(err)
		}
		dek := testDEK(t)
		if _, err := c.Wrap(context.Background(), dek); err == nil {
			t.Errorf("%d: a redirected wrap succeeded", code)
		}
		if _, err := c.Describe(context.Background()); err == nil {
			t.Errorf("%d: a redirected key read succeeded", code)
		}
		r.Check(t)
	}
}

func TestUnreachableUnwraps(t *testing.T) {
	t.Parallel()
	c, err := New(testKPCRN, &staticTokens{}, WithURL(policytest.DeadURL(t)), WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Describe(context.Background())
	var oe *net.OpError
	var ue *url.Error
	if !errors.As(err, &oe) || !errors.As(err, &ue) {
		t.Fatalf("err %v (%T): want it to unwrap to *url.Error and *net.OpError", err, err)
	}
}
