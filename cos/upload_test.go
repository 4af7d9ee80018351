package cos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/e2eimage/e2eimage/internal/faults"
)

const ps = MinPartSize // the part size of most tests: small, so they stay quick

// roundTripCases are the object shapes every backend must store intact.
var roundTripCases = []struct {
	name    string
	size    int64
	unknown bool // pass SizeUnknown and a plain reader
	at      bool // pass an io.ReaderAt (zero-copy parts)
	parts   int  // expected parts, 0 for a single PUT
}{
	{"empty", 0, false, false, 0},
	{"empty-unknown", 0, true, false, 0},
	{"one-byte", 1, false, false, 0},
	{"one-byte-unknown", 1, true, false, 0},
	{"one-byte-readerat", 1, false, true, 0},
	{"just-under-a-part-unknown", ps - 1, true, false, 0},
	{"exactly-one-part", ps, false, false, 1},
	{"exactly-one-part-unknown", ps, true, false, 1},
	{"exactly-one-part-readerat", ps, false, true, 1},
	{"many-parts", 3*ps + 12345, false, false, 4},
	{"many-parts-unknown", 3*ps + 12345, true, false, 4},
	{"many-parts-readerat", 3*ps + 12345, false, true, 4},
	{"part-boundary-unknown", 2 * ps, true, false, 2},
}

func TestUploadRoundTrip(t *testing.T) {
	backends := map[string]func(testing.TB) *backend{
		"gofakes3":  func(t testing.TB) *backend { return newFake(t) },
		"versitygw": func(t testing.TB) *backend { return newVersity(t, nil) },
	}
	for name, mk := range backends {
		t.Run(name, func(t *testing.T) {
			be := mk(t)
			bucket := mkBucket(t, be.client)
			for i, tc := range roundTripCases {
				t.Run(tc.name, func(t *testing.T) {
					data := prngBytes(t, uint64(i), tc.size)
					var r io.Reader = onlyReader{bytes.NewReader(data)}
					size := tc.size
					if tc.unknown {
						size = SizeUnknown
					}
					if tc.at {
						r = bytes.NewReader(data)
					}
					var lastDone, lastTotal int64 = -2, -2
					res, err := be.client.Upload(t.Context(), bucket, tc.name, r, size, WithPartSize(ps),
						WithMetadata(map[string]string{"origin": "test"}),
						WithProgress(func(done, total int64) {
							require.GreaterOrEqual(t, done, lastDone)
							lastDone, lastTotal = done, total
						}))
					require.NoError(t, err)
					require.True(t, res.Verified)
					require.True(t, res.ETagVerified, "both servers use MD5 ETags")
					require.Equal(t, tc.size, res.Size)
					require.Equal(t, sha256Hex(data), res.SHA256)
					require.Equal(t, tc.parts, res.Parts)
					require.Equal(t, tc.parts == 0, res.UploadID == "")
					require.Equal(t, tc.parts == 0, res.SHA256Stored, "only a single PUT knows the digest at creation")
					if tc.size > 0 || tc.parts > 0 {
						require.Equal(t, tc.size, lastDone)
					}
					if lastTotal != -2 {
						require.Equal(t, size, lastTotal)
					}

					info, err := be.client.Stat(t.Context(), bucket, tc.name)
					require.NoError(t, err)
					require.Equal(t, "test", info.Metadata["origin"])
					if tc.parts == 0 || be.name != "gofakes3" {
						// gofakes3 answers HEAD with the whole object's MD5
						// where S3 gives the multipart ETag.
						require.Equal(t, res.ETag, info.ETag)
					}
					downloadBoth(t, be.client, bucket, tc.name, data)
				})
			}
			pending, err := be.client.PendingUploads(t.Context(), bucket, "")
			require.NoError(t, err)
			require.Empty(t, pending)
		})
	}
}

func TestUploadReaderAtFromOffset(t *testing.T) {
	be := newFake(t)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 7, 2*ps+100)
	r := bytes.NewReader(data)
	_, err := r.Seek(100, io.SeekStart)
	require.NoError(t, err)
	res, err := be.client.Upload(t.Context(), bucket, "k", r, int64(len(data)-100), WithPartSize(ps))
	require.NoError(t, err)
	require.Equal(t, 2, res.Parts)
	pos, _ := r.Seek(0, io.SeekCurrent)
	require.Equal(t, int64(100), pos, "the reader's offset is left alone")
	downloadBoth(t, be.client, bucket, "k", data[100:])
}

func TestUploadWithSHA256(t *testing.T) {
	be := newFake(t)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 8, 2*ps+1)

	res, err := be.client.Upload(t.Context(), bucket, "ok", onlyReader{bytes.NewReader(data)}, SizeUnknown,
		WithPartSize(ps), WithSHA256(strings.ToUpper(sha256Hex(data))))
	require.NoError(t, err)
	require.True(t, res.SHA256Stored)
	info, err := be.client.Stat(t.Context(), bucket, "ok")
	require.NoError(t, err)
	require.Equal(t, sha256Hex(data), info.SHA256)

	// A declared digest the bytes do not have: nothing is completed.
	_, err = be.client.Upload(t.Context(), bucket, "bad", onlyReader{bytes.NewReader(data)}, SizeUnknown,
		WithPartSize(ps), WithSHA256(sha256Hex([]byte("something else"))))
	require.ErrorIs(t, err, ErrVerify)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Aborted)
	_, err = be.client.Stat(t.Context(), bucket, "bad")
	require.ErrorIs(t, err, ErrNotFound)

	_, err = be.client.Upload(t.Context(), bucket, "bad", bytes.NewReader(data), int64(len(data)),
		WithSHA256("not hex"))
	require.ErrorIs(t, err, ErrConfig)
	_, err = be.client.Upload(t.Context(), bucket, "bad", bytes.NewReader(data), int64(len(data)),
		WithMetadata(map[string]string{"SHA256": "x"}))
	require.ErrorIs(t, err, ErrConfig)
}

func TestUploadSizeMismatch(t *testing.T) {
	be := newFake(t)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 9, 2*ps+10)
	cases := []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"stream-short", onlyReader{bytes.NewReader(data)}, int64(len(data)) + 1},
		{"stream-long", onlyReader{bytes.NewReader(data)}, int64(len(data)) - 1},
		{"stream-long-single", onlyReader{bytes.NewReader(data)}, 10},
		{"stream-short-single", onlyReader{bytes.NewReader(data[:5])}, 10},
		{"readerat-short", bytes.NewReader(data), int64(len(data)) + ps},
		{"readerat-long", bytes.NewReader(data), int64(len(data)) - 1},
		{"readerat-long-single", bytes.NewReader(data), 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := be.client.Upload(t.Context(), bucket, tc.name, tc.r, tc.size, WithPartSize(ps), WithResumable())
			require.ErrorIs(t, err, ErrSizeMismatch)
			var ue *UploadError
			require.ErrorAs(t, err, &ue)
			require.False(t, ue.Resumable, "a wrong size is not fixed by resuming")
			_, err = be.client.Stat(t.Context(), bucket, tc.name)
			require.ErrorIs(t, err, ErrNotFound)
		})
	}
	pending, err := be.client.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Empty(t, pending, "failed uploads are aborted")
}

// errAfter is a stream that fails after n bytes.
type errAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	k, err := e.r.Read(p)
	e.n -= int64(k)
	return k, err
}

func TestUploadInputErrorIsResumable(t *testing.T) {
	be := newFake(t)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 10, 3*ps)
	boom := errors.New("disk on fire")
	_, err := be.client.Upload(t.Context(), bucket, "k", &errAfter{r: bytes.NewReader(data), n: 2*ps + 5, err: boom},
		int64(len(data)), WithPartSize(ps), WithResumable())
	require.ErrorIs(t, err, boom)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Resumable)
	require.False(t, ue.Aborted)
	require.Len(t, ue.Completed, 2)

	res, err := be.client.Resume(t.Context(), ue.UploadState, bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, 2, res.PartsSkipped)
	require.Equal(t, 1, res.PartsSent)
	downloadBoth(t, be.client, bucket, "k", data)

	// Without WithResumable the same failure aborts.
	_, err = be.client.Upload(t.Context(), bucket, "k2", &errAfter{r: bytes.NewReader(data), n: 2*ps + 5, err: boom},
		int64(len(data)), WithPartSize(ps))
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Aborted)
	require.Empty(t, ue.Completed)
	pending, err := be.client.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Empty(t, pending)
}

// corruptFirstParts flips a byte in the body of the first n UploadPart
// requests, as a faulty network would.
func corruptFirstParts(n int) func(http.Handler) http.Handler {
	var mu sync.Mutex
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hit := opName(r) == "UploadPart" && n > 0
			if hit {
				n--
			}
			mu.Unlock()
			if hit {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				body[len(body)/2] ^= 0x40
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestCorruptedPartIsRejectedAndResent(t *testing.T) {
	be := newFake(t, corruptFirstParts(2))
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 11, 2*ps+3)
	res, err := be.client.Upload(t.Context(), bucket, "k", onlyReader{bytes.NewReader(data)}, SizeUnknown,
		WithPartSize(ps), WithConcurrency(1), fastRetries)
	require.NoError(t, err)
	require.True(t, res.Verified)
	// The server refused the two damaged bodies (BadDigest) and the parts
	// were sent again from their own bytes.
	require.Equal(t, 3+2, be.reqs.count("UploadPart"))
	downloadBoth(t, be.client, bucket, "k", data)
}

func TestCancelAbortsUpload(t *testing.T) {
	be := newVersity(t, nil)
	bucket := mkBucket(t, be.client)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := be.client.Upload(ctx, bucket, "k", prng(12, 20*ps), SizeUnknown, WithPartSize(ps),
		WithProgress(func(done, _ int64) {
			if done >= 2*ps {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Aborted)
	require.NotEmpty(t, ue.UploadID)
	// versitygw may answer 500 to an abort that races with the cancelled
	// parts it is still receiving; the SDK retries it.
	require.GreaterOrEqual(t, be.reqs.count("AbortMultipartUpload"), 1)
	_, err = be.client.RecoverState(t.Context(), bucket, "k", ue.UploadID)
	require.ErrorIs(t, err, ErrUploadGone)

	pending, err := be.client.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Empty(t, pending, "a cancelled upload leaves no multipart upload behind")
	_, err = be.client.Stat(t.Context(), bucket, "k")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestResumeAfterKillSendsOnlyMissingParts(t *testing.T) {
	// Requests that reached the proxy are carried to the server whole,
	// whatever the client does meanwhile, and counted until answered.
	flight := newInFlight()
	be := newVersity(t, nil, flight.detach)
	bucket := mkBucket(t, be.client)
	const total = 12
	size := int64(total*ps - 1000)
	src := func() io.Reader { return prng(13, size) }

	// The "kill": cancel mid-way, keeping the upload, with the state saved
	// as JSON by the checkpoint callback as a state file would be.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var saved []byte
	_, err := be.client.Upload(ctx, bucket, "k", src(), SizeUnknown, WithPartSize(ps), WithKeepOnCancel(),
		WithCheckpoint(func(st UploadState) {
			b, err := json.Marshal(st)
			if err == nil {
				saved = b
			}
			if len(st.Completed) >= 5 {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Resumable)
	require.False(t, ue.Aborted)
	pending, err := be.client.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, ue.UploadID, pending[0].UploadID)

	var st UploadState
	require.NoError(t, json.Unmarshal(saved, &st))
	require.Equal(t, ue.UploadID, st.UploadID)
	require.GreaterOrEqual(t, len(st.Completed), 5)

	// Parts in flight at the kill may land after the last checkpoint (the
	// server finishes storing a body it has received); Resume asks the
	// server, so those are not resent either. Wait until the server has
	// answered every request, so that the count below is exact.
	flight.waitIdle(t)
	onServer, err := be.client.listParts(t.Context(), bucket, "k", st.UploadID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(onServer), len(st.Completed))

	be.reqs.reset()
	res, err := be.client.Resume(t.Context(), st, src(), SizeUnknown)
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Equal(t, total, res.Parts)
	require.Equal(t, len(onServer), res.PartsSkipped)
	require.Equal(t, total-len(onServer), res.PartsSent)
	require.Equal(t, total-len(onServer), be.reqs.count("UploadPart"), "only the missing parts cross the wire")
	require.Equal(t, 0, be.reqs.count("CreateMultipartUpload"))

	require.Equal(t, sha256Reader(t, src()), res.SHA256)
	var buf bytes.Buffer
	_, err = be.client.DownloadStream(t.Context(), bucket, "k", &buf)
	require.NoError(t, err)
	require.Equal(t, res.SHA256, sha256Hex(buf.Bytes()))
	pending, err = be.client.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Empty(t, pending)
}

func TestResumeFromUploadIDOnly(t *testing.T) {
	be := newFake(t)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 14, 5*ps+77)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var id string
	_, err := be.client.Upload(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps),
		WithKeepOnCancel(), WithConcurrency(1),
		WithCheckpoint(func(st UploadState) {
			id = st.UploadID
			if len(st.Completed) == 3 {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled)

	st, err := be.client.RecoverState(t.Context(), bucket, "k", id)
	require.NoError(t, err)
	require.Len(t, st.Completed, 3)
	require.Equal(t, int64(ps), st.PartSize)
	for _, p := range st.Completed {
		require.NotEmpty(t, p.MD5, "MD5 taken from the part's ETag")
	}

	// Damage the source inside part 2: Resume must notice that the stored
	// part no longer matches and send it again.
	changed := bytes.Clone(data)
	changed[ps+10] ^= 1
	be.reqs.reset()
	res, err := be.client.Resume(t.Context(), st, bytes.NewReader(changed), int64(len(changed)))
	require.NoError(t, err)
	require.Equal(t, 2, res.PartsSkipped)
	require.Equal(t, 4, res.PartsSent) // part 2 again, then 4, 5, 6
	require.Equal(t, 4, be.reqs.count("UploadPart"))
	downloadBoth(t, be.client, bucket, "k", changed)

	// The upload is gone now.
	_, err = be.client.Resume(t.Context(), st, bytes.NewReader(changed), int64(len(changed)))
	require.ErrorIs(t, err, ErrUploadGone)
}

func TestResumeStateMismatch(t *testing.T) {
	be := newFake(t)
	st := UploadState{Bucket: "b", Key: "k", UploadID: "u", PartSize: ps, Size: 100}
	_, err := be.client.Resume(t.Context(), st, bytes.NewReader(nil), 99)
	require.ErrorIs(t, err, ErrSizeMismatch)
	_, err = be.client.Resume(t.Context(), UploadState{Bucket: "b"}, bytes.NewReader(nil), 0)
	require.ErrorIs(t, err, ErrConfig)
}

func TestPermanentFailureAborts(t *testing.T) {
	inj := faults.New(2)
	id := inj.Add(faults.Rule{Service: "s3", Method: http.MethodPut, QueryContains: "partNumber=3&", Kind: faults.Status,
		Status: http.StatusForbidden, Body: `<Error><Code>AccessDenied</Code><Message>no</Message></Error>`})
	be := newVersity(t, inj)
	bucket := mkBucket(t, be.client)
	_, err := be.client.Upload(t.Context(), bucket, "k", prng(15, 4*ps), SizeUnknown, WithPartSize(ps),
		WithResumable(), fastRetries)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, http.StatusForbidden, statusCode(err))
	require.True(t, ue.Aborted, "a client error is not retried or kept")
	require.False(t, ue.Resumable)
	require.Equal(t, 1, inj.Hits(id), "a refused part is not sent again")
	pending, err := be.client.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Empty(t, pending)
}

func TestRetryableFailureKeptThenResumed(t *testing.T) {
	inj := faults.New(3)
	id := inj.Add(faults.Rule{Service: "s3", Method: http.MethodPut, QueryContains: "partNumber=2&",
		Kind: faults.Status, Status: http.StatusInternalServerError})
	be := newVersity(t, inj)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 16, 3*ps)
	_, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps),
		WithResumable(), WithPartAttempts(2), fastRetries)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Resumable)
	require.False(t, ue.Aborted)
	require.Equal(t, http.StatusInternalServerError, statusCode(err))
	// 2 attempts, each retried DefaultMaxRetries times by the SDK.
	require.Equal(t, 2*(1+DefaultMaxRetries), inj.Hits(id))

	inj.Remove(id)
	res, err := be.client.Resume(t.Context(), ue.UploadState, bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, 1, res.PartsSent)
	downloadBoth(t, be.client, bucket, "k", data)
}

// inFlight counts the requests a handler is serving and wakes waiters at
// every change.
type inFlight struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newInFlight() *inFlight { return &inFlight{changed: make(chan struct{})} }

func (f *inFlight) add(d int) {
	f.mu.Lock()
	f.n += d
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// detach serves each request with a context the client cannot cancel (and
// a ResponseWriter without CloseNotify), so that a request the proxy has
// started is finished at the server even if the client gives up, and
// counts it until it is answered.
func (f *inFlight) detach(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.add(1)
		defer f.add(-1)
		next.ServeHTTP(struct{ http.ResponseWriter }{w}, r.WithContext(context.WithoutCancel(r.Context())))
	})
}

// waitIdle waits until no request is being served (waking on each change;
// the limit is reached only when the test fails).
func (f *inFlight) waitIdle(t *testing.T) {
	t.Helper()
	limit := time.NewTimer(time.Minute)
	defer limit.Stop()
	for {
		f.mu.Lock()
		n, changed := f.n, f.changed
		f.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			t.Fatalf("%d requests still served after a minute", n)
		}
	}
}

func TestNoGoroutineOutlivesCalls(t *testing.T) {
	be := newFake(t)
	bucket := mkBucket(t, be.client)
	be.client.CloseIdleConnections()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	data := prngBytes(t, 21, 3*ps+1)
	_, err := be.client.Upload(t.Context(), bucket, "ok", onlyReader{bytes.NewReader(data)}, SizeUnknown, WithPartSize(ps))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	_, err = be.client.Upload(ctx, bucket, "cancelled", onlyReader{bytes.NewReader(data)}, SizeUnknown, WithPartSize(ps),
		WithProgress(func(int64, int64) { cancel() }))
	require.ErrorIs(t, err, context.Canceled)
	_, err = be.client.Upload(t.Context(), bucket, "short", onlyReader{bytes.NewReader(data)}, int64(len(data))+1, WithPartSize(ps))
	require.ErrorIs(t, err, ErrSizeMismatch)
	downloadBoth(t, be.client, bucket, "ok", data)
	be.client.CloseIdleConnections()
}
