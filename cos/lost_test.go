package cos

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/stretchr/testify/require"
)

// loseAnswers is a middleware that lets the server fully process the
// requests op selects, n of them, then drops the connection without a byte
// of the answer: the client sees a transport error although the work was
// done. after, when set, runs between the two (another client acting).
type loseAnswers struct {
	op    string
	n     int
	after func()

	mu   sync.Mutex
	lost int
}

func (l *loseAnswers) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		lose := opName(r) == l.op && l.lost < l.n
		if lose {
			l.lost++
		}
		l.mu.Unlock()
		if !lose {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(httptest.NewRecorder(), r)
		if l.after != nil {
			l.after()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic("loseAnswers: " + err.Error()) // the test servers speak HTTP/1.1
		}
		_ = conn.Close()
	})
}

// arm sets how many answers to lose from now on.
func (l *loseAnswers) arm(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n, l.lost = n, 0
}

func (l *loseAnswers) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// lostBackends are the servers the lost-answer tests run against.
var lostBackends = map[string]func(testing.TB, func(http.Handler) http.Handler) *backend{
	"gofakes3":  func(t testing.TB, w func(http.Handler) http.Handler) *backend { return newFake(t, w) },
	"versitygw": func(t testing.TB, w func(http.Handler) http.Handler) *backend { return newVersity(t, nil, w) },
}

// createUpload creates a multipart upload directly, as another uploader.
func createUpload(t testing.TB, c *Client, bucket, key string) string {
	t.Helper()
	out, err := c.SDK().CreateMultipartUpload(&s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	return aws.StringValue(out.UploadId)
}

func pendingIDList(t testing.TB, c *Client, bucket string) []string {
	t.Helper()
	list, err := c.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	var ids []string
	for _, p := range list {
		ids = append(ids, p.Key+"/"+p.UploadID)
	}
	slices.Sort(ids)
	return ids
}

// TestLostCreateAnswerAbortsOrphan: the server creates an upload but the
// answer is lost; the retry creates a second one, and the first, whose ID
// the client never saw, is found and aborted. Uploads that existed before,
// of the same key or of a longer key with the same prefix, are left alone.
func TestLostCreateAnswerAbortsOrphan(t *testing.T) {
	for name, mk := range lostBackends {
		t.Run(name, func(t *testing.T) {
			lose := &loseAnswers{op: "CreateMultipartUpload"}
			be := mk(t, lose.middleware)
			bucket := mkBucket(t, be.client)
			same := createUpload(t, be.client, bucket, "k")
			longer := createUpload(t, be.client, bucket, "k-longer")
			keep := pendingIDList(t, be.client, bucket)
			be.reqs.reset()
			lose.arm(1)

			data := prngBytes(t, 31, 2*ps+7)
			res, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps), fastRetries)
			require.NoError(t, err)
			require.True(t, res.Verified)
			require.NotContains(t, []string{same, longer}, res.UploadID)
			require.Equal(t, 1, lose.count())
			require.Equal(t, 2, be.reqs.count("CreateMultipartUpload"), "sent once, lost, sent again (no SDK retry on top)")
			require.Equal(t, 1, be.reqs.count("AbortMultipartUpload"), "the orphan, and only it, is aborted")
			require.Equal(t, keep, pendingIDList(t, be.client, bucket), "only the uploads that existed before remain")
			downloadBoth(t, be.client, bucket, "k", data)
		})
	}
}

// TestLostCreateAnswersAbortedOnFailure: every create answer is lost, so
// the upload fails; the uploads the attempts made are all aborted.
func TestLostCreateAnswersAbortedOnFailure(t *testing.T) {
	lose := &loseAnswers{op: "CreateMultipartUpload", n: 100}
	be := newFake(t, lose.middleware)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 32, 2*ps)
	_, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps),
		WithPartAttempts(3), WithResumable(), fastRetries)
	var ue *UploadError
	require.ErrorAs(t, err, &ue)
	require.Empty(t, ue.UploadID)
	require.True(t, retryable(err), "a transport error: %v", err)
	require.Equal(t, 3, lose.count())
	require.Equal(t, 3, be.reqs.count("AbortMultipartUpload"))
	require.Empty(t, pendingIDList(t, be.client, bucket))
}

// TestCancelDuringCreateAbortsIt: the caller cancels while the server is
// creating the upload; the upload it made is aborted all the same.
func TestCancelDuringCreateAbortsIt(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lose := &loseAnswers{op: "CreateMultipartUpload", n: 1, after: cancel}
	be := newFake(t, lose.middleware)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 37, 2*ps)
	_, err := be.client.Upload(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps), WithKeepOnCancel())
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, be.reqs.count("CreateMultipartUpload"))
	require.Equal(t, 1, be.reqs.count("AbortMultipartUpload"))
	require.Empty(t, pendingIDList(t, be.client, bucket), "an upload whose ID was never seen cannot be kept for resume")
}

// TestLostCreateAnswerWithConcurrentUploader: while our create's answer is
// lost, another client creates an upload of the same key. Two new uploads
// for one uncertain attempt cannot all be ours, and which one is cannot be
// told, so none is aborted and a warning names them.
func TestLostCreateAnswerWithConcurrentUploader(t *testing.T) {
	lose := &loseAnswers{op: "CreateMultipartUpload", n: 1}
	be := newFake(t, lose.middleware)
	bucket := mkBucket(t, be.client)
	other := testClient(t, be.url)
	lose.after = func() { // on the server's goroutine: t.Errorf, not require
		if _, err := other.SDK().CreateMultipartUpload(&s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("k")}); err != nil {
			t.Errorf("the other uploader's create: %v", err)
		}
	}
	var logs syncBuffer
	data := prngBytes(t, 33, 2*ps)
	res, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), fastRetries)
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Zero(t, be.reqs.count("AbortMultipartUpload"))
	require.Len(t, pendingIDList(t, be.client, bucket), 2, "ours from the lost answer and the other uploader's")
	require.Contains(t, logs.String(), "another uploader is writing it, so none is aborted")
}

// TestLostCompleteAnswer: the server completes the upload but the answer
// is lost. The SDK's retry meets NoSuchUpload (or, when every answer is
// lost, the engine finds the upload gone), and the object is accepted once
// its HEAD matches what was sent, without sending any part again.
func TestLostCompleteAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose int
		sha  bool
	}{
		{"first-answer", 1, false},
		{"every-answer", 100, false},
		{"with-sha256", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lose := &loseAnswers{op: "CompleteMultipartUpload", n: tc.lose}
			be := newVersity(t, nil, lose.middleware)
			bucket := mkBucket(t, be.client)
			data := prngBytes(t, 34, 2*ps+11)
			opts := []Option{WithPartSize(ps), fastRetries}
			if tc.sha {
				opts = append(opts, WithSHA256(sha256Hex(data)))
			}
			res, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), opts...)
			require.NoError(t, err)
			require.True(t, res.Verified)
			require.True(t, res.ETagVerified)
			require.Equal(t, tc.sha, res.SHA256Stored)
			require.True(t, strings.HasSuffix(res.ETag, "-3"), res.ETag)
			require.Equal(t, 3, be.reqs.count("UploadPart"), "no part is sent twice")
			require.Equal(t, min(tc.lose, 1+DefaultMaxRetries), lose.count())
			require.Empty(t, pendingIDList(t, be.client, bucket))
			downloadBoth(t, be.client, bucket, "k", data)
		})
	}
}

// TestLostCompleteAnswerNotOurObject: the answer to completing is lost and
// by the time the client looks, the key holds another object (or, on
// gofakes3, whose HEAD gives the whole object's MD5 instead of the
// composite ETag, an object that cannot be recognised): the upload is not
// accepted.
func TestLostCompleteAnswerNotOurObject(t *testing.T) {
	t.Run("replaced", func(t *testing.T) {
		lose := &loseAnswers{op: "CompleteMultipartUpload", n: 1}
		be := newVersity(t, nil, lose.middleware)
		bucket := mkBucket(t, be.client)
		other := testClient(t, be.url)
		lose.after = func() { // on the server's goroutine: t.Errorf, not require
			_, err := other.SDK().PutObject(&s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("someone else's object")})
			if err != nil {
				t.Errorf("replacing the object: %v", err)
			}
		}
		data := prngBytes(t, 35, 2*ps)
		_, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps), fastRetries)
		require.ErrorIs(t, err, ErrVerify)
	})
	t.Run("gofakes3", func(t *testing.T) {
		lose := &loseAnswers{op: "CompleteMultipartUpload", n: 1}
		be := newFake(t, lose.middleware)
		bucket := mkBucket(t, be.client)
		data := prngBytes(t, 36, 2*ps)
		_, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)), WithPartSize(ps), fastRetries)
		require.ErrorIs(t, err, ErrVerify)
	})
}

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMayHaveCreated(t *testing.T) {
	status := func(code int, s3code string) error {
		return awserr.NewRequestFailure(awserr.New(s3code, "test", nil), code, "req")
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", awserr.New(request.ErrCodeSerialization, "x", syscall.ECONNRESET), true},
		{"send failed", awserr.New("RequestError", "send request failed", io.EOF), true},
		{"cancelled", awserr.New(request.CanceledErrorCode, "x", context.Canceled), true},
		{"deadline", context.DeadlineExceeded, true},
		{"500", status(500, "InternalError"), true},
		{"502", status(502, "BadGateway"), true},
		{"504", status(504, "GatewayTimeout"), true},
		{"503 slow down", status(503, "SlowDown"), false},
		{"429", status(429, "TooManyRequests"), false},
		{"403", status(403, "AccessDenied"), false},
		{"400 request timeout", status(400, "RequestTimeout"), false},
		{"no token", awserr.New("TokenManagerRetrieveError", "x", nil), false},
		{"invalid parameter", awserr.New(request.InvalidParameterErrCode, "x", nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, mayHaveCreated(tc.err))
		})
	}
}
