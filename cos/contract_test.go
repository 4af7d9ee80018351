package cos

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/secret"
)

// contract reads a fixture of testdata/contract (see its README for the
// published source of each).
func contract(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "contract", name))
	require.NoError(t, err)
	return b
}

// cosEndpoint answers like a COS regional endpoint for the buckets of its
// region only: "pretty" is here and answers GET ?location with IBM's
// pretty-printed form; "e2e-images-frankfurt" is in eu-de, so every request
// naming it gets 404 NoSuchBucket (a HEAD has no body), while the
// instance's extended listing, which any endpoint answers, shows where it
// is.
type cosEndpoint struct {
	t     *testing.T
	mu    sync.Mutex
	calls []string
}

func (e *cosEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	e.mu.Lock()
	e.calls = append(e.calls, r.Method+" /"+bucket+"?"+r.URL.RawQuery)
	e.mu.Unlock()
	xml := func(status int, name string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(contract(e.t, name))
		}
	}
	switch {
	case bucket == "" && q.Has("extended"):
		if q.Get("prefix") == "e2e-images-frankfurt" {
			xml(http.StatusOK, "list-buckets-extended.xml")
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated><Buckets/></ListAllMyBucketsResult>`))
	case bucket == "pretty" && key == "" && r.Method == http.MethodHead:
		w.WriteHeader(http.StatusOK)
	case bucket == "pretty" && key == "" && q.Has("location"):
		xml(http.StatusOK, "bucket-location-pretty.xml")
	default:
		xml(http.StatusNotFound, "no-such-bucket.xml")
	}
}

func (e *cosEndpoint) client(t *testing.T) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	c, err := New(Config{Region: "us-south", Endpoint: srv.URL, MaxRetries: -1,
		HMAC: &HMAC{AccessKeyID: "contract-access-key", SecretAccessKey: secret.NewString("contract-secret-key")}})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// IBM's example answer to GET ?location is pretty-printed: the constraint
// sits on its own line, indented. It is read as us-south-smart.
func TestContractBucketLocationPrettyPrinted(t *testing.T) {
	loc, err := ParseLocationConstraint("\n  us-south-smart\n")
	require.NoError(t, err)
	require.Equal(t, Location{Constraint: "us-south-smart", Location: "us-south", Class: "smart", Resiliency: Regional}, loc)

	e := &cosEndpoint{t: t}
	info, err := e.client(t).CheckBucket(t.Context(), "pretty", "us-south")
	require.NoError(t, err)
	require.Equal(t, "us-south", info.Location.Location)
	require.Equal(t, "us-south-smart", info.Location.Constraint)
	require.Equal(t, Regional, info.Location.Resiliency)
}

// A bucket in another region answers 404 NoSuchBucket on this endpoint, as
// COS does; CheckBucket and Upload report where the bucket actually is.
func TestContractBucketInAnotherRegion(t *testing.T) {
	e := &cosEndpoint{t: t}
	c := e.client(t)
	info, err := c.CheckBucket(t.Context(), "e2e-images-frankfurt", "us-south")
	require.Error(t, err)
	var wr *WrongRegionError
	require.ErrorAs(t, err, &wr)
	require.Equal(t, "e2e-images-frankfurt", wr.Bucket)
	require.Equal(t, "eu-de", wr.Location.Location, "the bucket's actual region")
	require.Equal(t, "eu-de-standard", wr.Location.Constraint)
	require.Equal(t, "us-south", wr.EndpointRegion)
	require.ErrorIs(t, err, ErrRegionMismatch)
	require.NotErrorIs(t, err, ErrNotRegional)
	require.NotErrorIs(t, err, ErrBucketNotFound)
	require.Contains(t, err.Error(), "is in eu-de")
	require.Equal(t, "eu-de", info.Location.Location)
	require.Contains(t, e.calls, "GET /?extended=&prefix=e2e-images-frankfurt")

	// An upload to it fails the same way, naming the region.
	_, err = c.Upload(t.Context(), "e2e-images-frankfurt", "image.vhd-0.vhd", bytes.NewReader([]byte("vhd")), 3)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.ErrorAs(t, err, &wr)
	require.Equal(t, "eu-de", wr.Location.Location)
	require.Equal(t, "NoSuchBucket", errorCode(err), "the endpoint's answer is kept")

	// A bucket that no listing knows does not exist.
	_, err = c.CheckBucket(t.Context(), "nowhere", "us-south")
	require.ErrorIs(t, err, ErrBucketNotFound)
	require.False(t, errors.As(err, &wr))
}
