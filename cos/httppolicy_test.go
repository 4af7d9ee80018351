package cos

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/e2eimage/e2eimage/internal/httppolicy/policytest"
	"github.com/e2eimage/e2eimage/secret"
)

// An object store that redirects (every request is signed; an upload
// carries the object's bytes) to a second host: the second host receives
// nothing.
func TestRedirectToAnotherHostSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		r := policytest.NewRedirect(t, code, "")
		c, err := New(Config{Region: "us-south", Endpoint: r.First.URL, MaxRetries: -1,
			HMAC: &HMAC{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret.NewString("secret-access-key")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(context.Background(), "bucket", "key"); err == nil {
			t.Errorf("%d: a redirected HEAD succeeded", code)
		}
		if _, err := c.List(context.Background(), "bucket", "p/"); err == nil {
			t.Errorf("%d: a redirected list succeeded", code)
		}
		r.Check(t)
	}
}

// The IAM exchange of an APIKey config (the SDK's token manager posts
// apikey=... to IAMTokenURL) follows the same policy.
func TestRedirectedIAMExchangeSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{307, 308} {
		iam := policytest.NewRedirect(t, code, `{"access_token":"x","expires_in":3600,"expiration":9999999999,"token_type":"Bearer"}`)
		store := policytest.NewRedirect(t, code, "")
		c, err := New(Config{Region: "us-south", Endpoint: store.First.URL, MaxRetries: -1,
			APIKey: secret.NewString("api-key-that-must-stay-home"), IAMTokenURL: iam.First.URL + "/identity/token", ServiceInstanceID: "inst"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(context.Background(), "bucket", "key"); err == nil {
			t.Errorf("%d: a request whose token exchange was redirected succeeded", code)
		}
		iam.Check(t)
		if store.SecondRequests() != 0 {
			t.Errorf("%d: the store's second host received %d requests", code, store.SecondRequests())
		}
	}
}

func TestUnreachableUnwraps(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Region: "us-south", Endpoint: policytest.DeadURL(t), MaxRetries: -1,
		HMAC: &HMAC{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret.NewString("secret-access-key")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stat(context.Background(), "bucket", "key")
	var oe *net.OpError
	var ue *url.Error
	if !errors.As(err, &oe) || !errors.As(err, &ue) {
		t.Fatalf("err %v (%T): want it to unwrap to *url.Error and *net.OpError", err, err)
	}
}
