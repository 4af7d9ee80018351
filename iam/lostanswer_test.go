package iam_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/kms"
)

// loseAnswers is a loopback proxy to target that forwards every request,
// and for the first lose requests that match (method and path substring)
// lets the service finish, then closes the connection without a byte of
// the answer. internal/faults cannot do this: its resets stop a request
// before the service sees it.
type loseAnswers struct {
	target       *url.URL
	method, path string
	client       *http.Client

	mu         sync.Mutex
	lose, lost int
}

func (p *loseAnswers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	drop := r.Method == p.method && strings.Contains(r.URL.Path, p.path) && p.lost < p.lose
	if drop {
		p.lost++
	}
	p.mu.Unlock()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if drop {
		_, _ = io.Copy(io.Discard, resp.Body) // the service has finished
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestSimLostServiceIDCreateAnswer: IAM creates the service ID but its
// answer is lost, so go-sdk-core's retry creates a second one of the same
// name. Setup must converge on one service ID, the one FindServiceID
// returns, holding one API key.
func TestSimLostServiceIDCreateAnswer(t *testing.T) {
	t.Parallel()
	e := start(t, cloudsim.Options{Seed: 7})
	target, err := url.Parse(e.sim.URLs.IAMIdentity)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	lp := &loseAnswers{target: target, method: http.MethodPost, path: "/v1/serviceids", lose: 1, client: &http.Client{Transport: tr}}
	srv := httptest.NewServer(lp)
	t.Cleanup(srv.Close)
	c, err := iam.NewClient(e.auth, e.sim.Account.AccountID,
		iam.WithIdentityURL(srv.URL+target.Path), iam.WithPolicyURL(e.sim.URLs.IAMPolicy), iam.WithRetries(2, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	ctx := context.Background()
	plan := e.plan(t, false)

	res, err := c.Setup(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	lp.mu.Lock()
	lost := lp.lost
	lp.mu.Unlock()
	if lost != 1 {
		t.Fatalf("%d answers lost, want 1", lost)
	}
	want := counts{authorizations: 2, accessPolicies: 2, serviceIDs: 1, apiKeys: 1}
	if got := e.count(t, plan.ServiceID.Name); got != want {
		t.Fatalf("after Setup: %+v, want %+v", got, want)
	}
	found, err := e.client.FindServiceID(ctx, plan.ServiceID.Name)
	if err != nil || found == nil {
		t.Fatalf("FindServiceID: %v, %v", found, err)
	}
	if res.ServiceID.ID != found.ID || res.ServiceID.IAMID != found.IAMID || !res.ServiceID.Created {
		t.Fatalf("Setup used %+v, FindServiceID returns %+v", res.ServiceID.ServiceID, *found)
	}
	if !strings.Contains(res.ServiceID.Note, "deleted 1") {
		t.Errorf("the note does not report the duplicate: %q", res.ServiceID.Note)
	}

	// The policies belong to the surviving service ID, and its key can use
	// the root key.
	name := plan.ServiceID.Name
	rep := iam.Preflight(ctx, e.client.ServiceIDCheck(name),
		e.client.AccessPolicyCheck(name, iam.ServiceCOS, plan.COSPolicy),
		e.client.AccessPolicyCheck(name, iam.ServiceKeyProtect, plan.KeyPolicy))
	if !rep.OK() {
		t.Fatalf("preflight after Setup:\n%s", rep)
	}
	svc, err := iam.NewAuthenticator(res.ServiceID.APIKey, iam.WithURL(e.sim.URLs.IAM))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kms.New(plan.Key.String(), svc, kms.WithURL(e.sim.URLs.KMS))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Check(ctx); err != nil {
		t.Errorf("the service ID's key cannot use the root key: %v", err)
	}
}
