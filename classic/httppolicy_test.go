package classic

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/e2eimage/e2eimage/internal/httppolicy/policytest"
	"github.com/e2eimage/e2eimage/secret"
)

// A SoftLayer endpoint that redirects (the request carries the API key as
// Basic credentials, a POST also the service ID's key in its body) to a
// second host: the second host receives nothing.
func TestRedirectToAnotherHostSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		r := policytest.NewRedirect(t, code, `{"id":2200100}`)
		c, err := New(ClassicAPIKey("SL123", secret.NewString(testClassicKey)), WithEndpoint(r.First.URL+"/rest/v3.1"), WithReadAttempts(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetTemplate(context.Background(), 2200100); err == nil {
			t.Errorf("%d: a redirected read succeeded", code)
		}
		r.Check(t)
	}
}

// The same with a POST that carries a body.
func TestRedirectedImportSendsNothing(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	r := policytest.NewRedirect(t, 307, `{"id":2200100}`)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(fakeReq) (int, any) {
		return 200, `{"id":2200100}`
	})
	// The OS codes come from the fake; createFromIcos from the redirector.
	c := newTestClient(t, f)
	if _, err := c.OSReferenceCodes(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.endpoint = r.First.URL + "/rest/v3.1"
	if _, err := c.Import(context.Background(), goodImport()); err == nil {
		t.Error("a redirected createFromIcos succeeded")
	}
	r.Check(t)
}

func TestUnreachableUnwraps(t *testing.T) {
	t.Parallel()
	c, err := New(ClassicAPIKey("SL123", secret.NewString(testClassicKey)), WithEndpoint(policytest.DeadURL(t)+"/rest/v3.1"), WithReadAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetTemplate(context.Background(), 1)
	var oe *net.OpError
	var ue *url.Error
	if !errors.As(err, &oe) || !errors.As(err, &ue) {
		t.Fatalf("err %v (%T): want it to unwrap to *url.Error and *net.OpError", err, err)
	}
}
