package cos

import (
	"bytes"
	"io"
	"testing"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/stretchr/testify/require"
)

// TestResumeCompletedUpload: an attempt completed the upload and was killed
// before recording that, so its state still names the (now finished)
// multipart upload. Resume recognises the object as the input, by its
// multipart ETag and size, and sends nothing; an object that differs, or
// none, gives ErrUploadGone as before, and nothing is sent either.
func TestResumeCompletedUpload(t *testing.T) {
	be := newVersity(t, nil)
	bucket := mkBucket(t, be.client)
	data := prngBytes(t, 41, 3*ps+17)
	var last UploadState
	_, err := be.client.Upload(t.Context(), bucket, "k", bytes.NewReader(data), int64(len(data)),
		WithPartSize(ps), WithCheckpoint(func(st UploadState) { last = st }))
	require.NoError(t, err)
	require.Len(t, last.Completed, 4, "the last checkpoint before completion")

	for _, tc := range []struct {
		name string
		in   func() io.Reader
	}{
		{"ReaderAt", func() io.Reader { return bytes.NewReader(data) }},
		{"stream", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be.reqs.reset()
			res, err := be.client.Resume(t.Context(), last, tc.in(), int64(len(data)))
			require.NoError(t, err)
			require.True(t, res.Verified)
			require.True(t, res.ETagVerified)
			require.Equal(t, 4, res.Parts)
			require.Equal(t, 4, res.PartsSkipped)
			require.Equal(t, 0, res.PartsSent)
			require.Equal(t, int64(len(data)), res.Size)
			require.Equal(t, sha256Hex(data), res.SHA256)
			require.Equal(t, 0, be.reqs.count("UploadPart"))
			require.Equal(t, 0, be.reqs.count("CreateMultipartUpload"))
			require.Equal(t, 0, be.reqs.count("PutObject"))
		})
	}

	t.Run("other bytes", func(t *testing.T) {
		other := bytes.Clone(data)
		other[len(other)-1] ^= 1
		be.reqs.reset()
		_, err := be.client.Resume(t.Context(), last, bytes.NewReader(other), int64(len(other)))
		require.ErrorIs(t, err, ErrUploadGone)
		require.Equal(t, 0, be.reqs.count("UploadPart"))
	})
	t.Run("other size", func(t *testing.T) {
		st := last
		st.Size = SizeUnknown
		_, err := be.client.Resume(t.Context(), st, bytes.NewReader(data[:len(data)-1]), SizeUnknown)
		require.ErrorIs(t, err, ErrUploadGone)
	})
	t.Run("no object", func(t *testing.T) {
		_, err := be.client.SDK().DeleteObject(&s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
		require.NoError(t, err)
		_, err = be.client.Resume(t.Context(), last, bytes.NewReader(data), int64(len(data)))
		require.ErrorIs(t, err, ErrUploadGone)
	})
}
