package kms

import (
	"errors"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/crn"
)

func TestEndpointURL(t *testing.T) {
	t.Parallel()
	kp, _ := crn.ParseKey(testKPCRN)
	hs, _ := crn.ParseKey(testHPCSCRN)
	for _, tc := range []struct {
		name    string
		crn     crn.Key
		private bool
		port    int
		want    string
	}{
		{"kp public", kp, false, 0, "https://us-south.kms.cloud.ibm.com"},
		{"kp private", kp, true, 0, "https://private.us-south.kms.cloud.ibm.com"},
		{"hpcs instance public", hs, false, 0, "https://" + testInstance + ".api.eu-de.hs-crypto.appdomain.cloud"},
		{"hpcs instance private", hs, true, 0, "https://" + testInstance + ".api.private.eu-de.hs-crypto.appdomain.cloud"},
		{"hpcs port public", hs, false, 8443 + 1000, "https://api.eu-de.hs-crypto.cloud.ibm.com:9443"},
		{"hpcs port private", hs, true, 19999, "https://api.private.eu-de.hs-crypto.cloud.ibm.com:19999"},
	} {
		got, err := EndpointURL(tc.crn, tc.private, tc.port)
		if err != nil || got != tc.want {
			t.Errorf("%s: EndpointURL = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		crn  crn.Key
		port int
		want string
	}{
		{"port for kp", kp, 9000, "kms: an crn.HPCS port (9000) was given for a Key Protect key; Key Protect endpoints have no port"},
		{"port too low", hs, 443, "kms: crn.HPCS port 443 is outside 8000-19999 (see the instance's key management endpoint URL)"},
		{"port too high", hs, 20000, "kms: crn.HPCS port 20000 is outside 8000-19999 (see the instance's key management endpoint URL)"},
		{"no service", crn.Key{}, 0, `kms: unknown key service ""`},
	} {
		if _, err := EndpointURL(tc.crn, false, tc.port); err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://us-south.kms.cloud.ibm.com", "https://us-south.kms.cloud.ibm.com"},
		{"https://us-south.kms.cloud.ibm.com/", "https://us-south.kms.cloud.ibm.com"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.9.9.9:1/", "http://127.9.9.9:1"},
		{"http://[::1]:9000", "http://[::1]:9000"},
		{"http://localhost:9000", "http://localhost:9000"},
		{"https://example.com/prefix", "https://example.com/prefix"},
	} {
		got, err := CheckURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CheckURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in       string
		insecure bool
		want     string
	}{
		{"http://us-south.kms.cloud.ibm.com", true, "plain http is allowed only to a loopback host"},
		{"http://10.0.0.1:80", true, "plain http is allowed only to a loopback host"},
		{"http://localhost.example.com", true, "plain http is allowed only to a loopback host"},
		{"ftp://127.0.0.1", true, `has scheme "ftp"`},
		{"us-south.kms.cloud.ibm.com", false, "want an absolute URL"},
		{"https://user:pass@host", false, "must not contain user information"},
		{"https://host/?a=b", false, "must not have a query or fragment"},
		{"https://host/#frag", false, "must not have a query or fragment"},
		{"https://ho st", false, "invalid character"},
	} {
		_, err := CheckURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckURL(%q) error %v, want one containing %q", tc.in, err, tc.want)
			continue
		}
		if errors.Is(err, ErrInsecureEndpoint) != tc.insecure {
			t.Errorf("CheckURL(%q): errors.Is(ErrInsecureEndpoint) = %v, want %v", tc.in, !tc.insecure, tc.insecure)
		}
		if strings.Contains(err.Error(), "pass") {
			t.Errorf("CheckURL(%q) echoes user information: %v", tc.in, err)
		}
	}
}

// WithURL("") keeps the endpoint derived from the CRN.
func TestEmptyURLKeepsTheCRNEndpoint(t *testing.T) {
	t.Parallel()
	k, _ := crn.ParseKey(testKPCRN)
	want, err := EndpointURL(k, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(testKPCRN, &staticTokens{}, WithURL(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != want {
		t.Fatalf("Endpoint() = %q, want %q", c.Endpoint(), want)
	}
}
