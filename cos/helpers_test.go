package cos

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/internal/versitygw"
	"github.com/e2eimage/e2eimage/secret"
)

// backend is an S3 server the tests talk to, with a log of the requests
// that reached it.
type backend struct {
	name   string
	url    string
	client *Client
	reqs   *requestLog
}

// requestLog counts requests by S3 operation.
type requestLog struct {
	mu     sync.Mutex
	counts map[string]int
}

func (l *requestLog) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		if l.counts == nil {
			l.counts = make(map[string]int)
		}
		l.counts[opName(r)]++
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// count returns how many requests of an operation arrived.
func (l *requestLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[op]
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts = nil
}

// opName names the S3 operation of a path-style request, for the
// operations these tests count.
func opName(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case r.Method == http.MethodPut && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1:
		return "PutObject"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload"
	case r.Method == http.MethodGet && q.Has("uploadId"):
		return "ListParts"
	case r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1:
		return "GetObject"
	}
	return r.Method
}

// testClient returns an HMAC client for url.
func testClient(t testing.TB, url string) *Client {
	t.Helper()
	c, err := New(Config{
		Region:   versitygw.Region,
		Endpoint: url,
		HMAC:     &HMAC{AccessKeyID: versitygw.AccessKey, SecretAccessKey: secret.NewString(versitygw.SecretKey)},
	})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// newFake runs gofakes3 (in-memory backend) on an httptest server, with
// the request log and then wrap applied in front of it.
func newFake(t testing.TB, wrap ...func(http.Handler) http.Handler) *backend {
	t.Helper()
	fake := gofakes3.New(s3mem.New(), gofakes3.WithTimeSkewLimit(0))
	var h http.Handler = fake.Server()
	b := &backend{name: "gofakes3", reqs: &requestLog{}}
	h = b.reqs.middleware(h)
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	b.client = testClient(t, srv.URL)
	return b
}

// newVersity starts versitygw and, when inj is not nil, a fault-injecting
// proxy in front of it; the client talks to the proxy. The request log
// counts what reaches the proxy; wrap goes in front of it.
func newVersity(t testing.TB, inj *faults.Injector, wrap ...func(http.Handler) http.Handler) *backend {
	t.Helper()
	s := versitygw.Start(t)
	b := &backend{name: "versitygw", reqs: &requestLog{}}
	if inj == nil {
		inj = faults.New(1) // no rules: a plain proxy, so requests can be counted
	}
	target, err := url.Parse(s.URL)
	require.NoError(t, err)
	proxy := faults.NewProxy(target, inj, "s3")
	t.Cleanup(proxy.Close)
	h := b.reqs.middleware(proxy)
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	b.client = testClient(t, srv.URL)
	return b
}

var bucketSeq atomic.Int64

// mkBucket creates a fresh bucket.
func mkBucket(t testing.TB, c *Client) string {
	t.Helper()
	name := fmt.Sprintf("test-bucket-%d", bucketSeq.Add(1))
	require.NoError(t, c.CreateBucket(t.Context(), name, BucketSpec{LocationConstraint: versitygw.Region}))
	return name
}

// prng returns n bytes of a seeded ChaCha8 stream, generated as read: large
// inputs need no buffer. It is a plain io.Reader (no ReaderAt).
func prng(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func prngBytes(t testing.TB, seed uint64, n int64) []byte {
	t.Helper()
	b, err := io.ReadAll(prng(seed, n))
	require.NoError(t, err)
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sha256Reader(t testing.TB, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	_, err := io.Copy(h, r)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// onlyReader hides every method but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// downloadBoth fetches an object with DownloadStream and with Download and
// checks that both give want.
func downloadBoth(t *testing.T, c *Client, bucket, key string, want []byte) {
	t.Helper()
	var buf bytes.Buffer
	n, err := c.DownloadStream(t.Context(), bucket, key, &buf, WithPartSize(MinPartSize), fastRetries)
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), n)
	require.True(t, bytes.Equal(want, buf.Bytes()), "DownloadStream bytes differ")
	// Checked against a digest given by the caller, right and wrong.
	_, err = c.DownloadStream(t.Context(), bucket, key, io.Discard, WithSHA256(sha256Hex(want)))
	require.NoError(t, err)
	_, err = c.DownloadStream(t.Context(), bucket, key, io.Discard, WithSHA256(sha256Hex(append(want, 0))))
	require.ErrorIs(t, err, ErrVerify)

	f, err := os.CreateTemp(t.TempDir(), "download")
	require.NoError(t, err)
	defer f.Close()
	n, err = c.Download(t.Context(), bucket, key, f, WithPartSize(MinPartSize), WithConcurrency(3), fastRetries)
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), n)
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "Download bytes differ")
}

// fastRetries shortens the wait between part attempts.
func fastRetries(o *options) { o.retryDelay = 10 * time.Millisecond }
