package kms

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/crn"
)

func TestDedicatedEndpointURL(t *testing.T) {
	t.Parallel()
	kp, _ := crn.ParseKey(testKPCRN)
	hs, _ := crn.ParseKey(testHPCSCRN)
	for _, tc := range []struct {
		key     crn.Key
		private bool
		want    string
	}{
		{kp, false, "https://" + testInstance + ".api.us-south.kms.appdomain.cloud"},
		{kp, true, "https://" + testInstance + ".api.private.us-south.kms.appdomain.cloud"},
	} {
		got, err := DedicatedEndpointURL(tc.key, tc.private)
		if err != nil || got != tc.want {
			t.Errorf("DedicatedEndpointURL(private=%v) = %q, %v; want %q", tc.private, got, err, tc.want)
		}
	}
	if _, err := DedicatedEndpointURL(hs, false); err == nil {
		t.Error("an HPCS CRN was given a Key Protect Dedicated endpoint")
	}

	c, err := New(testKPCRN, &staticTokens{}, WithDedicated())
	if err != nil || c.Endpoint() != "https://"+testInstance+".api.us-south.kms.appdomain.cloud" {
		t.Errorf("New(WithDedicated()) endpoint %q, %v", c.Endpoint(), err)
	}
	c, err = New(testKPCRN, &staticTokens{}, WithDedicated(), WithPrivateEndpoint())
	if err != nil || c.Endpoint() != "https://"+testInstance+".api.private.us-south.kms.appdomain.cloud" {
		t.Errorf("New(WithDedicated(), WithPrivateEndpoint()) endpoint %q, %v", c.Endpoint(), err)
	}
	c, err = New(testKPCRN, &staticTokens{})
	if err != nil || c.Endpoint() != "https://us-south.kms.cloud.ibm.com" {
		t.Errorf("the default stays the multi-tenant endpoint: %q, %v", c.Endpoint(), err)
	}
	if _, err := New(testKPCRN, &staticTokens{}, WithDedicated(), WithHPCSPort(9000)); err == nil {
		t.Error("WithDedicated with an HPCS port accepted")
	}
}

// A key the service does not know: the error names the endpoint that was
// asked, so a Dedicated key looked up at the multi-tenant endpoint shows.
func TestKeyNotFoundNamesTheEndpoint(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(kpBody(404, "KEY_NOT_FOUND_ERR", "Key does not exist"))
	}))
	t.Cleanup(srv.Close)
	c, err := New(testKPCRN, &staticTokens{}, WithURL(srv.URL), WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Describe(context.Background())
	var e *Error
	if !errors.Is(err, ErrKeyNotFound) || !errors.As(err, &e) {
		t.Fatalf("err %v: want ErrKeyNotFound", err)
	}
	if e.Endpoint != srv.URL || !strings.Contains(err.Error(), "asked at "+srv.URL) || !strings.Contains(err.Error(), "kms.appdomain.cloud") {
		t.Errorf("err %q (Endpoint %q): want the endpoint tried and the Dedicated form named", err, e.Endpoint)
	}
}
