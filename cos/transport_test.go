package cos

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/secret"
)

// countingTransport is a RoundTripper that is not an *http.Transport.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

// AWS_CA_BUNDLE makes the SDK load a CA bundle into the HTTP client's
// transport, which it can only do for an *http.Transport. A caller's own
// RoundTripper must still work, and still carry every request.
func TestWrappingTransportWithCABundle(t *testing.T) {
	var served atomic.Int64
	b := newFake(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	tls := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tls.Close)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw}), 0o600))
	t.Setenv("AWS_CA_BUNDLE", bundle)

	rt := &countingTransport{}
	c, err := New(Config{
		Region: "us-south", Endpoint: b.url, HTTPClient: &http.Client{Transport: rt},
		HMAC: &HMAC{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret.NewString("secret")},
	})
	require.NoError(t, err)
	require.NoError(t, c.CreateBucket(t.Context(), "bundle-test", BucketSpec{LocationConstraint: "us-south-standard"}))
	_, err = c.Stat(t.Context(), "bundle-test", "missing")
	require.ErrorIs(t, err, ErrNotFound)
	require.GreaterOrEqual(t, rt.n.Load(), int64(2))
	require.Equal(t, served.Load(), rt.n.Load(), "every request the server saw came through the caller's transport")
}
