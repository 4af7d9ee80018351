// Package secrets checks, across packages, how the SDK keeps secrets and
// transport security: every client constructor refuses
// plain http to anything but loopback and a transport that skips TLS
// verification, before any connection; TLS is verified against a server
// whose certificate is not trusted; DEKs and API keys reach no log (at any
// level), error, panic trace, state file, process argument list or file
// readable by others; key material is zeroed where the API allows it; and
// the example programs take secrets only from files and the environment.
package secrets

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

const testCRN = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:01234567-89ab-cdef-0123-456789abcdef:key:fedcba98-7654-3210-fedc-ba9876543210"

// hostileURLs must all be refused: plain http to hosts that are not
// loopback, however they are dressed up, and schemes other than https.
var hostileURLs = []string{
	"http://example.com",
	"http://example.com:80/",
	"HTTP://EXAMPLE.COM",
	"http://localhost.example.com",
	"http://127.0.0.1.nip.io",
	"http://127.0.0.1@example.com",
	"http://example.com#@127.0.0.1",
	"http://[::ffff:8.8.8.8]",
	"http://0.0.0.0:8080",
	"http://2130706433",
	"http://10.0.0.1",
	"ftp://example.com",
	"ws://example.com",
	"example.com",
	"//example.com",
	"https://user:password@example.com",
}

// loopbackURLs must be accepted: a local simulator.
var loopbackURLs = []string{"http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:7000", "https://example.com"}

// insecureTransport skips certificate verification; every constructor that
// takes a transport or an HTTP client must refuse it.
func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}

// failingTransport fails the test if anything is sent through it.
type failingTransport struct{ calls *atomic.Int64 }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.calls.Add(1)
	return nil, errors.New("no request may be sent by a constructor")
}

// tokens is a kms.TokenSource that is never asked (constructors make no
// request).
type tokens struct{}

func (tokens) AccessToken(context.Context) (*secret.String, error) {
	return nil, errors.New("constructors must not ask for tokens")
}

// constructor makes one client from a URL or a transport; it returns the
// error of the constructor.
type constructor struct {
	name      string
	url       func(u string, rt http.RoundTripper) error
	transport func(rt http.RoundTripper) error // nil: the API takes no transport
}

func constructors() []constructor {
	key := secret.NewString("not-a-real-api-key-0123456789")
	return []constructor{
		{
			name: "kms.New",
			url: func(u string, rt http.RoundTripper) error {
				_, err := kms.New(testCRN, tokens{}, kms.WithURL(u), kms.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
			transport: func(rt http.RoundTripper) error {
				_, err := kms.New(testCRN, tokens{}, kms.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
		},
		{
			name: "iam.NewAuthenticator",
			url: func(u string, rt http.RoundTripper) error {
				_, err := iam.NewAuthenticator(key, iam.WithURL(u), iam.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
			transport: func(rt http.RoundTripper) error {
				_, err := iam.NewAuthenticator(key, iam.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
		},
		{
			name: "iam.NewClient(identity)",
			url: func(u string, rt http.RoundTripper) error {
				auth, err := iam.NewAuthenticator(key, iam.WithHTTPClient(&http.Client{Transport: rt}))
				if err != nil {
					return err
				}
				_, err = iam.NewClient(auth, "0123456789abcdef0123456789abcdef", iam.WithIdentityURL(u))
				return err
			},
		},
		{
			name: "iam.NewClient(policy)",
			url: func(u string, rt http.RoundTripper) error {
				auth, err := iam.NewAuthenticator(key, iam.WithHTTPClient(&http.Client{Transport: rt}))
				if err != nil {
					return err
				}
				_, err = iam.NewClient(auth, "0123456789abcdef0123456789abcdef", iam.WithPolicyURL(u))
				return err
			},
		},
		{
			name: "cos.New(endpoint)",
			url: func(u string, rt http.RoundTripper) error {
				// The COS SDK wants an *http.Transport of its own; the
				// constructor makes no request either way.
				_, err := cos.New(cos.Config{Region: "us-south", Endpoint: u, APIKey: key})
				return err
			},
			transport: func(rt http.RoundTripper) error {
				_, err := cos.New(cos.Config{Region: "us-south", APIKey: key, HTTPClient: &http.Client{Transport: rt}})
				return err
			},
		},
		{
			name: "cos.New(iam token URL)",
			url: func(u string, rt http.RoundTripper) error {
				_, err := cos.New(cos.Config{Region: "us-south", APIKey: key, IAMTokenURL: u + "/identity/token"})
				return err
			},
		},
		{
			name: "classic.New",
			url: func(u string, rt http.RoundTripper) error {
				_, err := classic.New(classic.IBMCloudAPIKey(key), classic.WithEndpoint(u+"/rest/v3.1"), classic.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
			transport: func(rt http.RoundTripper) error {
				_, err := classic.New(classic.IBMCloudAPIKey(key), classic.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
		},
		{
			name: "audit.NewCloudLogs",
			url: func(u string, rt http.RoundTripper) error {
				_, err := audit.NewCloudLogs(u, staticAuth{}, audit.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
			transport: func(rt http.RoundTripper) error {
				_, err := audit.NewCloudLogs("https://x.api.us-south.logs.cloud.ibm.com", staticAuth{}, audit.WithHTTPClient(&http.Client{Transport: rt}))
				return err
			},
		},
	}
}

// connectEndpoints covers ibmcloud.Connect: each endpoint field in turn.
func connectEndpoints() map[string]func(*ibmcloud.Endpoints, string) {
	return map[string]func(*ibmcloud.Endpoints, string){
		"IAM":             func(e *ibmcloud.Endpoints, u string) { e.IAM = u },
		"IAMIdentity":     func(e *ibmcloud.Endpoints, u string) { e.IAMIdentity = u },
		"IAMPolicy":       func(e *ibmcloud.Endpoints, u string) { e.IAMPolicy = u },
		"KMS":             func(e *ibmcloud.Endpoints, u string) { e.KMS = u },
		"S3":              func(e *ibmcloud.Endpoints, u string) { e.S3 = u },
		"SoftLayer":       func(e *ibmcloud.Endpoints, u string) { e.SoftLayer = u + "/rest/v3.1" },
		"ActivityTracker": func(e *ibmcloud.Endpoints, u string) { e.ActivityTracker = u },
	}
}

func TestConstructorsRefusePlainHTTP(t *testing.T) {
	var calls atomic.Int64
	rt := failingTransport{&calls}
	refused := 0
	for _, c := range constructors() {
		for _, u := range hostileURLs {
			if err := c.url(u, rt); err == nil {
				t.Errorf("%s accepted the endpoint %q", c.name, u)
			} else {
				refused++
				if strings.Contains(err.Error(), "password") {
					t.Errorf("%s: the error repeats the URL's password: %v", c.name, err)
				}
			}
		}
		for _, u := range loopbackURLs {
			if err := c.url(u, rt); err != nil {
				t.Errorf("%s refused %q: %v", c.name, u, err)
			}
		}
	}
	apiKey := secret.NewString("not-a-real-api-key-0123456789")
	for field, set := range connectEndpoints() {
		for _, u := range hostileURLs {
			var ep ibmcloud.Endpoints
			set(&ep, u)
			if _, err := ibmcloud.Connect(ibmcloud.Config{APIKey: apiKey, RootKeyCRN: testCRN, Endpoints: ep}); err == nil {
				t.Errorf("ibmcloud.Connect accepted Endpoints.%s = %q", field, u)
			} else {
				refused++
			}
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("constructors sent %d requests", n)
	}
	t.Logf("HARDEN tls refused_urls=%d requests_sent=%d", refused, calls.Load())
}

// TestConstructorsRefuseSkipVerify: every API that takes a transport or an
// HTTP client refuses one that skips certificate verification.
func TestConstructorsRefuseSkipVerify(t *testing.T) {
	refused, accepted := 0, 0
	for _, c := range constructors() {
		if c.transport == nil {
			continue
		}
		for _, rt := range []http.RoundTripper{insecureTransport(), &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}} {
			if err := c.transport(rt); err == nil {
				accepted++
				t.Errorf("%s accepted a transport with InsecureSkipVerify", c.name)
			} else {
				refused++
			}
		}
	}
	t.Logf("HARDEN tls refused_transports=%d accepted_insecure=%d", refused, accepted)
}

// TestTLSIsVerified points every client at a local https server whose
// certificate no system root trusts: each call must fail on the
// certificate, and the server must never see a request.
func TestTLSIsVerified(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "must not be reached", http.StatusTeapot)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	u := srv.URL // https://127.0.0.1:port, self-signed
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := secret.NewString("not-a-real-api-key-0123456789")
	clients, verified := 0, 0
	certErr := func(name string, err error) {
		t.Helper()
		clients++
		if err == nil {
			t.Errorf("%s: succeeded against an untrusted certificate", name)
			return
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: failed, but not on the certificate: %v", name, err)
			return
		}
		verified++
	}

	auth, err := iam.NewAuthenticator(key, iam.WithURL(u))
	if err != nil {
		t.Fatal(err)
	}
	_, err = auth.AccessToken(ctx)
	certErr("iam.Authenticator.AccessToken", err)

	kc, err := kms.New(testCRN, staticToken{}, kms.WithURL(u), kms.WithRetryPolicy(kms.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.Describe(ctx)
	certErr("kms.Client.Describe", err)

	cc, err := cos.New(cos.Config{Region: "us-south", Endpoint: u, HMAC: &cos.HMAC{AccessKeyID: "a", SecretAccessKey: secret.NewString("s")}, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cc.Stat(ctx, "bucket", "key")
	certErr("cos.Client.Stat", err)

	sl, err := classic.New(classic.IBMCloudAPIKey(key), classic.WithEndpoint(u+"/rest/v3.1"), classic.WithReadAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sl.GetTemplate(ctx, 1)
	certErr("classic.Client.GetTemplate", err)

	cl, err := audit.NewCloudLogs(u, staticAuth{}, audit.WithQueryAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Search(ctx, "*", time.Now().Add(-time.Hour), time.Now(), 10)
	certErr("audit.CloudLogs.Search", err)

	if n := hits.Load(); n != 0 {
		t.Errorf("the untrusted server answered %d requests", n)
	}
	if verified != clients {
		t.Errorf("%d of %d clients refused the untrusted certificate", verified, clients)
	}
	t.Logf("HARDEN tls clients=%d verified_clients=%d requests_reached=%d", clients, verified, hits.Load())
}

type staticToken struct{}

func (staticToken) AccessToken(context.Context) (*secret.String, error) {
	return secret.NewString("token"), nil
}

// staticAuth is a go-sdk-core Authenticator with a fixed token.
type staticAuth struct{}

func (staticAuth) AuthenticationType() string { return "bearerToken" }
func (staticAuth) Authenticate(r *http.Request) error {
	r.Header.Set("Authorization", "Bearer token")
	return nil
}
func (staticAuth) Validate() error { return nil }
