package iam

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/e2eimage/e2eimage/internal/httppolicy/policytest"
	"github.com/e2eimage/e2eimage/secret"
)

// A token endpoint that redirects (307/308 keep the method and the body,
// so the form body with apikey= would go along) to a second host: the
// second host receives nothing, and the caller gets an error.
func TestTokenRedirectToAnotherHostSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		r := policytest.NewRedirect(t, code, `{"access_token":"x","expires_in":3600,"expiration":9999999999}`)
		a, err := NewAuthenticator(secret.NewString("api-key-that-must-stay-home"), WithURL(r.First.URL))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.AccessToken(context.Background()); err == nil {
			t.Errorf("%d: a redirected token request succeeded", code)
		}
		r.Check(t)
	}
}

func TestIdentityRedirectToAnotherHostSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{302, 307, 308} {
		iamURL := newFakeIAM(t, &fakeIAM{apiKey: "api-key-0123456789"})
		a, err := NewAuthenticator(secret.NewString("api-key-0123456789"), WithURL(iamURL))
		if err != nil {
			t.Fatal(err)
		}
		r := policytest.NewRedirect(t, code, `{"serviceids":[]}`)
		c, err := NewClient(a, "acct-1", WithIdentityURL(r.First.URL), WithPolicyURL(r.First.URL), WithRetries(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.FindServiceID(context.Background(), "e2e-import"); err == nil {
			t.Errorf("%d: a redirected identity request succeeded", code)
		}
		r.Check(t)
	}
}

func TestUnreachableTokenEndpointUnwraps(t *testing.T) {
	t.Parallel()
	a, err := NewAuthenticator(secret.NewString("api-key-0123456789"), WithURL(policytest.DeadURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.AccessToken(context.Background())
	var oe *net.OpError
	var ue *url.Error
	if !errors.As(err, &oe) || !errors.As(err, &ue) {
		t.Fatalf("err %v (%T): want it to unwrap to *url.Error and *net.OpError", err, err)
	}
}
