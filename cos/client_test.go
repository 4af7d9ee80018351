package cos

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/secret"
)

func TestEndpointURL(t *testing.T) {
	cases := []struct {
		region string
		typ    EndpointType
		want   string
	}{
		{"us-south", Public, "https://s3.us-south.cloud-object-storage.appdomain.cloud"},
		{"eu-de", Private, "https://s3.private.eu-de.cloud-object-storage.appdomain.cloud"},
		{"jp-tok", Direct, "https://s3.direct.jp-tok.cloud-object-storage.appdomain.cloud"},
		{"us", Public, "https://s3.us.cloud-object-storage.appdomain.cloud"},
		{"ams03", Private, "https://s3.private.ams03.cloud-object-storage.appdomain.cloud"},
	}
	for _, tc := range cases {
		got, err := EndpointURL(tc.region, tc.typ)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	for _, bad := range []string{"", "US-South", "us_south", "us-south.evil.com", "-us"} {
		_, err := EndpointURL(bad, Public)
		require.ErrorIs(t, err, ErrConfig, bad)
	}
	_, err := EndpointURL("us-south", EndpointType(9))
	require.ErrorIs(t, err, ErrConfig)
}

func TestNewChecksConfig(t *testing.T) {
	key := secret.NewString("api-key-value")
	hmac := &HMAC{AccessKeyID: "id", SecretAccessKey: secret.NewString("s")}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	cases := []struct {
		name string
		cfg  Config
		want error // nil: New succeeds
	}{
		{"api key", Config{Region: "us-south", APIKey: key}, nil},
		{"hmac", Config{Region: "us-south", HMAC: hmac}, nil},
		{"loopback http", Config{Region: "us-south", HMAC: hmac, Endpoint: "http://127.0.0.1:9000"}, nil},
		{"localhost http", Config{Region: "us-south", HMAC: hmac, Endpoint: "http://localhost:9000"}, nil},
		{"ipv6 loopback http", Config{Region: "us-south", HMAC: hmac, Endpoint: "http://[::1]:9000"}, nil},
		{"https endpoint", Config{Region: "us-south", HMAC: hmac, Endpoint: "https://s3.example.com"}, nil},
		{"loopback token URL", Config{Region: "us-south", APIKey: key, IAMTokenURL: "http://127.0.0.1:1/identity/token"}, nil},
		{"no region", Config{HMAC: hmac}, ErrConfig},
		{"no credentials", Config{Region: "us-south"}, ErrConfig},
		{"both credentials", Config{Region: "us-south", APIKey: key, HMAC: hmac}, ErrConfig},
		{"empty hmac", Config{Region: "us-south", HMAC: &HMAC{AccessKeyID: "id"}}, ErrConfig},
		{"remote http", Config{Region: "us-south", HMAC: hmac, Endpoint: "http://s3.example.com"}, ErrInsecureEndpoint},
		{"remote http by IP", Config{Region: "us-south", HMAC: hmac, Endpoint: "http://10.0.0.1:80"}, ErrInsecureEndpoint},
		{"loopback lookalike", Config{Region: "us-south", HMAC: hmac, Endpoint: "http://localhost.example.com"}, ErrInsecureEndpoint},
		{"remote http token URL", Config{Region: "us-south", APIKey: key, IAMTokenURL: "http://iam.example.com/identity/token"}, ErrInsecureEndpoint},
		{"skip verify", Config{Region: "us-south", HMAC: hmac, HTTPClient: insecure}, ErrInsecureEndpoint},
		{"ftp", Config{Region: "us-south", HMAC: hmac, Endpoint: "ftp://127.0.0.1"}, ErrConfig},
		{"no host", Config{Region: "us-south", HMAC: hmac, Endpoint: "https://"}, ErrConfig},
		{"bad region", Config{Region: "us south", HMAC: hmac}, ErrConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.want == nil {
				require.NoError(t, err)
				require.NotNil(t, c.SDK())
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), "api-key-value")
		})
	}
	c, err := New(Config{Region: "eu-de", EndpointType: Private, HMAC: hmac})
	require.NoError(t, err)
	require.Equal(t, "https://s3.private.eu-de.cloud-object-storage.appdomain.cloud", c.Endpoint())
	require.Equal(t, "eu-de", c.Region())
}

// fakeIAM answers the IAM token grant for one API key.
type fakeIAM struct {
	key, token string
	grants     atomic.Int32
}

func (f *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/identity/token" || r.ParseForm() != nil ||
		r.PostForm.Get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("apikey") != f.key {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}`)
		return
	}
	f.grants.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": f.token, "refresh_token": "not_supported", "token_type": "Bearer",
		"expires_in": 3600, "expiration": time.Now().Add(time.Hour).Unix(),
	})
}

// requireBearer refuses requests without the token and instance ID.
func requireBearer(token, instance string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("ibm-service-instance-id") != instance {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestAPIKeyCredentials(t *testing.T) {
	const apiKey, token, instance = "the-api-key-0123456789", "iam-token-abc", "crn:v1:bluemix:public:cloud-object-storage:global:a/1::"
	iam := &fakeIAM{key: apiKey, token: token}
	iamSrv := httptest.NewServer(iam)
	t.Cleanup(iamSrv.Close)
	s3Srv := httptest.NewServer(requireBearer(token, instance)(gofakes3.New(s3mem.New()).Server()))
	t.Cleanup(s3Srv.Close)

	c, err := New(Config{
		Region: "us-south", Endpoint: s3Srv.URL,
		APIKey: secret.NewString(apiKey), ServiceInstanceID: instance,
		IAMTokenURL: iamSrv.URL + "/identity/token",
	})
	require.NoError(t, err)
	require.NoError(t, c.CreateBucket(t.Context(), "iam-bucket", BucketSpec{}))
	data := prngBytes(t, 20, 2*ps+5)
	res, err := c.Upload(t.Context(), "iam-bucket", "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps))
	require.NoError(t, err)
	require.True(t, res.Verified)
	downloadBoth(t, c, "iam-bucket", "k", data)
	require.Equal(t, int32(1), iam.grants.Load(), "the token is fetched once and reused")

	// A wrong key: the call fails, and nothing prints the key.
	bad, err := New(Config{
		Region: "us-south", Endpoint: s3Srv.URL, MaxRetries: -1,
		APIKey: secret.NewString("wrong-key-9876543210"), ServiceInstanceID: instance,
		IAMTokenURL: iamSrv.URL + "/identity/token",
	})
	require.NoError(t, err)
	_, err = bad.Upload(t.Context(), "iam-bucket", "k2", bytes.NewReader(data[:10]), 10)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "wrong-key-9876543210")
	require.NotContains(t, fmt.Sprintf("%+v %#v", err, err), "wrong-key-9876543210")
}

func TestConfigDoesNotPrintSecrets(t *testing.T) {
	cfg := Config{Region: "us-south", APIKey: secret.NewString("k-123456"),
		HMAC: &HMAC{AccessKeyID: "id", SecretAccessKey: secret.NewString("s-654321")}}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		fmt.Sprintf("%+v", *cfg.HMAC)} {
		require.False(t, strings.Contains(s, "k-123456") || strings.Contains(s, "s-654321"), s)
	}
}
