package iam

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/secret"
)

// fakeIAM answers the token grant for one API key, counting requests.
type fakeIAM struct {
	apiKey   string
	requests atomic.Int32
	delay    time.Duration
	release  chan struct{} // closing it ends every delay at once
	arrived  chan struct{} // if set, receives a value as each request arrives
	expires  int64         // expires_in seconds
}

func (f *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	if f.arrived != nil {
		f.arrived <- struct{}{}
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-f.release:
		case <-r.Context().Done():
			return
		}
	}
	b, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(b))
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/identity/token" || form.Get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if form.Get("apikey") != f.apiKey {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.","context":{"requestId":"r1"}}`)
		return
	}
	exp := f.expires
	if exp == 0 {
		exp = 3600
	}
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"iam_id":"iam-ServiceId-1234","sub":"x"}`))
	fmt.Fprintf(w, `{"access_token":"h.%s.sig%d","refresh_token":"not_supported","token_type":"Bearer","expires_in":%d,"expiration":%d}`,
		claims, n, exp, time.Now().Unix()+exp)
}

func newFakeIAM(t *testing.T, f *fakeIAM) string {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAuthenticatorCachesAndRefreshes(t *testing.T) {
	t.Parallel()
	f := &fakeIAM{apiKey: "good-key-0123456789"}
	u := newFakeIAM(t, f)
	a, err := NewAuthenticator(secret.NewString(f.apiKey), WithURL(u+"/identity/token"))
	if err != nil {
		t.Fatal(err)
	}
	if a.URL() != u {
		t.Errorf("URL %q: the token path must be stripped to the base", a.URL())
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	ctx := context.Background()
	t1, err := a.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := a.AccessToken(ctx)
	if t1.Reveal() != t2.Reveal() || f.requests.Load() != 1 {
		t.Fatalf("the token was not cached: %d requests", f.requests.Load())
	}
	// 59 minutes later the token is within the renewal margin.
	now = now.Add(59*time.Minute + time.Second)
	t3, _ := a.AccessToken(ctx)
	if t3.Reveal() == t1.Reveal() || f.requests.Load() != 2 {
		t.Errorf("the token was not renewed before expiry: %d requests", f.requests.Load())
	}
	a.InvalidateToken()
	if _, err := a.AccessToken(ctx); err != nil || f.requests.Load() != 3 {
		t.Errorf("InvalidateToken did not force a new token: %v, %d", err, f.requests.Load())
	}
	id, err := tokenIAMID(t3)
	if err != nil || id != "iam-ServiceId-1234" {
		t.Errorf("tokenIAMID = %q, %v", id, err)
	}
}

func TestAuthenticatorShortLivedToken(t *testing.T) {
	t.Parallel()
	f := &fakeIAM{apiKey: "good-key-0123456789", expires: 10}
	a, err := NewAuthenticator(secret.NewString(f.apiKey), WithURL(newFakeIAM(t, f)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	if _, err := a.AccessToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(8*time.Second + 100*time.Millisecond) // past 10s minus a fifth
	if _, err := a.AccessToken(context.Background()); err != nil || f.requests.Load() != 2 {
		t.Errorf("a 10s token must be renewed after 8s: %d requests", f.requests.Load())
	}
}

func TestAuthenticatorSharesOneRequest(t *testing.T) {
	t.Parallel()
	f := &fakeIAM{apiKey: "good-key-0123456789", delay: 100 * time.Millisecond}
	a, _ := NewAuthenticator(secret.NewString(f.apiKey), WithURL(newFakeIAM(t, f)))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := a.AccessToken(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d token requests for 8 concurrent callers, want 1", n)
	}
}

func TestAuthenticatorHonoursContext(t *testing.T) {
	t.Parallel()
	f := &fakeIAM{apiKey: "good-key-0123456789", delay: 10 * time.Second, release: make(chan struct{}), arrived: make(chan struct{}, 2)}
	a, _ := NewAuthenticator(secret.NewString(f.apiKey), WithURL(newFakeIAM(t, f)))
	// The request is cancelled once it reached IAM, which answers only
	// after 10 s: the caller must get its context's error at once.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := a.AccessToken(ctx)
		errc <- err
	}()
	<-f.arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("%v: the token request must stop with the context", err)
	}
	// A caller waiting for another's request gives up with its own context.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.AccessToken(context.Background()) // holds the request slot until release
	}()
	<-f.arrived // that request is in flight: it holds the slot
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := a.AccessToken(ctx2); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting caller: %v", err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d token requests, want 2: the waiting caller must not send its own", n)
	}
	close(f.release)
	<-done
}

func TestAuthenticatorRefusedKey(t *testing.T) {
	t.Parallel()
	f := &fakeIAM{apiKey: "good-key-0123456789"}
	bad := "bad-key-abcdefghijklmnop"
	a, _ := NewAuthenticator(secret.NewString(bad), WithURL(newFakeIAM(t, f)))
	_, err := a.AccessToken(context.Background())
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("%v, want ErrAuthentication", err)
	}
	if !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "Provided API key could not be found") {
		t.Errorf("the message lacks the status or IAM's reason: %v", err)
	}
	if strings.Contains(err.Error(), bad) {
		t.Errorf("the API key leaked into the error: %v", err)
	}
}

func TestAuthenticatorValidation(t *testing.T) {
	t.Parallel()
	if _, err := NewAuthenticator(nil); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := NewAuthenticator(secret.NewString("")); err == nil {
		t.Error("empty key accepted")
	}
	if _, err := NewAuthenticator(secret.NewString("k"), WithURL("http://iam.cloud.ibm.com")); !errors.Is(err, ErrInsecureEndpoint) {
		t.Errorf("plain http to a remote IAM: %v", err)
	}
	skip := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the test checks that it is refused
	if _, err := NewAuthenticator(secret.NewString("k"), WithHTTPClient(&http.Client{Transport: skip})); !errors.Is(err, endpoint.ErrSkipVerify) {
		t.Errorf("transport without TLS verification: %v", err)
	}
	a, err := NewAuthenticator(secret.NewString("k"))
	if err != nil || a.URL() != DefaultURL {
		t.Errorf("default URL: %v %v", a, err)
	}
	if err := a.Validate(); err != nil || a.AuthenticationType() != "iam" {
		t.Errorf("core.Authenticator: %v %q", err, a.AuthenticationType())
	}
	key := secret.NewString("zero-me-after")
	a, _ = NewAuthenticator(key, WithURL("http://127.0.0.1:1"))
	key.Zero()
	if a.apiKey.Reveal() != "zero-me-after" {
		t.Error("the authenticator must keep its own copy of the API key")
	}
}

func TestTokenIAMIDMalformed(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte(`{}`)) + ".c"} {
		if _, err := tokenIAMID(secret.NewString(tok)); err == nil {
			t.Errorf("tokenIAMID(%q) succeeded", tok)
		}
	}
}

func TestRoleCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		have []string
		want Role
		ok   bool
	}{
		{[]string{string(RoleReader)}, RoleReader, true},
		{[]string{string(RoleWriter)}, RoleReader, true},
		{[]string{string(RoleManager)}, RoleWriter, true},
		{[]string{string(RoleReader)}, RoleWriter, false},
		{[]string{"crn:v1:bluemix:public:cloud-object-storage::::serviceRole:ObjectReader"}, RoleReader, false},
		{nil, RoleReader, false},
	} {
		if got := covers(tc.have, tc.want); got != tc.ok {
			t.Errorf("covers(%v, %s) = %v", tc.have, tc.want.Name(), got)
		}
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	base := attrs{"accountId": "acct", "serviceName": "kms"}
	with := func(kv ...string) attrs {
		m := attrs{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		have attrs
		ok   bool
	}{
		{with("serviceInstance", "inst"), true},
		{base, true}, // every instance
		{with("serviceInstance", "other"), false},
		{with("serviceName", "hs-crypto", "serviceInstance", "inst"), false},
		{with("accountId", "elsewhere"), false},
		{with("serviceInstance", "inst", "resourceType", "key", "resource", "k1"), false}, // narrower than asked
		{with("region", "us-south"), false},
	} {
		if got := grants(tc.have, "acct", "kms", "inst", "", ""); got != tc.ok {
			t.Errorf("grants(%v) = %v", tc.have, got)
		}
	}
	if !grants(with("serviceInstance", "i", "resourceType", "bucket", "resource", "b"), "acct", "kms", "i", "bucket", "b") {
		t.Error("an exact bucket policy must grant the bucket")
	}
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "",
		"https://iam.cloud.ibm.com/v1/serviceids?account_id=a&pagetoken=abc%3D": "abc=",
		"https://iam.cloud.ibm.com/v1/apikeys?pagesize=100":                     "",
		"::not a url": "",
	} {
		if got := pageToken(&in); got != want {
			t.Errorf("pageToken(%q) = %q, want %q", in, got, want)
		}
	}
	if pageToken(nil) != "" {
		t.Error("nil next link")
	}
}

// An empty URL option keeps the default, so that a value read from an unset
// environment variable can be passed as it is.
func TestEmptyURLKeepsTheDefault(t *testing.T) {
	t.Parallel()
	a, err := NewAuthenticator(secret.NewString("k"), WithURL(""))
	if err != nil {
		t.Fatal(err)
	}
	if a.URL() != DefaultURL {
		t.Fatalf("URL() = %q, want %q", a.URL(), DefaultURL)
	}
	c, err := NewClient(a, "acct", WithIdentityURL(""), WithPolicyURL(""))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.identity.GetServiceURL(); got != DefaultURL {
		t.Fatalf("identity URL %q, want %q", got, DefaultURL)
	}
	if got := c.policy.GetServiceURL(); got != DefaultURL {
		t.Fatalf("policy URL %q, want %q", got, DefaultURL)
	}
	// A set URL is still used.
	c, err = NewClient(a, "acct", WithIdentityURL("http://127.0.0.1:9/"), WithPolicyURL(""))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.identity.GetServiceURL(); got != "http://127.0.0.1:9" {
		t.Fatalf("identity URL %q", got)
	}
}
