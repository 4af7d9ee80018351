package audit

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/httppolicy/policytest"
)

// A Cloud Logs endpoint that redirects the query (bearer token in the
// header, the query in the body) to a second host: the second host
// receives nothing.
func TestCloudLogsRedirectToAnotherHostSendsNothing(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 303, 307, 308} {
		r := policytest.NewRedirect(t, code, "")
		c, err := NewCloudLogs(r.First.URL, bearer(t), WithQueryAttempts(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10); err == nil {
			t.Errorf("%d: a redirected query succeeded", code)
		}
		r.Check(t)
	}
}

func TestCloudLogsUnreachableUnwraps(t *testing.T) {
	t.Parallel()
	c, err := NewCloudLogs(policytest.DeadURL(t), bearer(t), WithQueryAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	var oe *net.OpError
	var ue *url.Error
	if !errors.As(err, &oe) || !errors.As(err, &ue) {
		t.Fatalf("err %v (%T): want it to unwrap to *url.Error and *net.OpError", err, err)
	}
}
