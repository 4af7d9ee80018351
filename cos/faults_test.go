package cos

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/faults"
)

// TestUploadGiBThroughFaults sends 1 GiB through a proxy that resets
// connections (before and during the body), answers 500 and stalls a part,
// and checks that the object arrives byte for byte. It is skipped with
// -short.
func TestUploadGiBThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB upload; run without -short")
	}
	const size = 1 << 30
	const seed = 1234
	inj := faults.New(seed)
	part := func(extra faults.Rule) faults.Rule {
		extra.Service, extra.Method, extra.QueryContains = "s3", http.MethodPut, "partNumber="
		return extra
	}
	resetMid := inj.Add(part(faults.Rule{Kind: faults.Reset, AfterBytes: 3 << 20, Probability: 0.1, Count: 4}))
	resetEarly := inj.Add(part(faults.Rule{Kind: faults.Reset, Probability: 0.05, Count: 3}))
	status500 := inj.Add(part(faults.Rule{Kind: faults.Status, Status: http.StatusInternalServerError, Probability: 0.1, Count: 4}))
	slow := inj.Add(faults.Rule{Service: "s3", Method: http.MethodPut, QueryContains: "partNumber=7&",
		Kind: faults.Latency, Delay: 3 * time.Second, Count: 1})
	getReset := inj.Add(faults.Rule{Service: "s3", Method: http.MethodGet, PathContains: "/big",
		Kind: faults.Reset, AfterBytes: 100 << 20, Count: 2})

	be := newVersity(t, inj)
	bucket := mkBucket(t, be.client)

	start := time.Now()
	res, err := be.client.Upload(t.Context(), bucket, "big", prng(seed, size), SizeUnknown, fastRetries)
	require.NoError(t, err)
	t.Logf("uploaded 1 GiB in %v through %d injected faults (%v)", time.Since(start).Round(time.Millisecond),
		inj.Injected(), inj.Counts())
	require.True(t, res.Verified)
	require.True(t, res.ETagVerified)
	require.Equal(t, int64(size), res.Size)
	require.Equal(t, size/DefaultPartSize, res.Parts)
	for name, id := range map[string]int{"reset mid-body": resetMid, "reset": resetEarly, "500": status500, "slow part": slow} {
		require.Positive(t, inj.Hits(id), "fault %q never fired", name)
	}
	require.Greater(t, be.reqs.count("UploadPart"), res.Parts, "some parts were sent more than once")

	want := sha256Reader(t, prng(seed, size))
	require.Equal(t, want, res.SHA256)

	// Download it again through two broken GETs, hashing as it streams.
	h := sha256.New()
	n, err := be.client.DownloadStream(t.Context(), bucket, "big", h, fastRetries)
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	require.Equal(t, 2, inj.Hits(getReset))
	require.Equal(t, want, hex.EncodeToString(h.Sum(nil)), "the stored object differs from what was sent")
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestDownloadThroughFaults checks both download forms against broken and
// refused GETs.
func TestDownloadThroughFaults(t *testing.T) {
	inj := faults.New(5)
	be := newVersity(t, inj)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 17, 4*ps+99)
	_, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps))
	require.NoError(t, err)

	brokenBody := inj.Add(faults.Rule{Service: "s3", Method: http.MethodGet, PathContains: "/k",
		Kind: faults.Reset, AfterBytes: 1 << 20, Count: 3})
	refused := inj.Add(faults.Rule{Service: "s3", Method: http.MethodGet, PathContains: "/k",
		Kind: faults.Status, Status: http.StatusServiceUnavailable, Count: 2})
	downloadBoth(t, be.client, bucket, "k", data)
	require.Equal(t, 3, inj.Hits(brokenBody))
	require.Equal(t, 2, inj.Hits(refused))
}
