package cos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/e2eimage/e2eimage/internal/retry"
	"golang.org/x/sync/errgroup"
)

// ErrObjectChanged means the object was replaced while it was being
// downloaded (its ETag no longer matches the one seen at the start).
var ErrObjectChanged = errors.New("cos: object changed during download")

// ObjectInfo is what HEAD says about an object.
type ObjectInfo struct {
	Size         int64
	ETag         string // without quotes
	ContentType  string
	LastModified time.Time
	// SHA256 is the x-amz-meta-sha256 this package stores, or "".
	SHA256 string
	// Metadata holds the user metadata, names in lower case.
	Metadata map[string]string
}

// Stat returns an object's size, ETag and metadata. A missing object gives
// an error wrapping ErrNotFound.
func (c *Client) Stat(ctx context.Context, bucket, key string) (*ObjectInfo, error) {
	info, err := c.head(ctx, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("cos: stat %s/%s: %w", bucket, key, err)
	}
	return info, nil
}

func (c *Client) head(ctx context.Context, bucket, key string) (*ObjectInfo, error) {
	out, err := c.s3.HeadObjectWithContext(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		switch statusCode(err) {
		case http.StatusNotFound:
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, fmt.Errorf("%w: %w", ErrAccessDenied, err)
		}
		return nil, err
	}
	info := &ObjectInfo{
		Size:         aws.Int64Value(out.ContentLength),
		ETag:         trimETag(aws.StringValue(out.ETag)),
		ContentType:  aws.StringValue(out.ContentType),
		LastModified: aws.TimeValue(out.LastModified),
		Metadata:     make(map[string]string, len(out.Metadata)),
	}
	for k, v := range out.Metadata {
		info.Metadata[strings.ToLower(k)] = aws.StringValue(v)
	}
	info.SHA256 = strings.ToLower(info.Metadata[MetadataSHA256])
	return info, nil
}

// progress serialises progress callbacks across goroutines.
type progress struct {
	mu    sync.Mutex
	fn    func(done, total int64)
	done  int64
	total int64
}

func (p *progress) add(n int64) {
	if p.fn == nil || n == 0 {
		return
	}
	p.mu.Lock()
	p.done += n
	p.fn(p.done, p.total)
	p.mu.Unlock()
}

// Download writes the object bucket/key to w with parallel ranged GETs
// (WithPartSize bytes each, WithConcurrency at once) and returns its size.
// Each range is fetched with If-Match on the ETag seen at the start, so a
// replaced object fails with ErrObjectChanged instead of mixing versions; a
// range whose body breaks is fetched again from where it stopped, up to
// WithPartAttempts times. Download checks the size but, unlike
// DownloadStream, cannot hash the object in order: use DownloadStream when
// the bytes must be verified against the stored digests.
func (c *Client) Download(ctx context.Context, bucket, key string, w io.WriterAt, opts ...Option) (int64, error) {
	o := c.options(opts)
	info, err := c.Stat(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	chunk := o.partSize
	if chunk <= 0 {
		chunk = DefaultPartSize
	}
	prog := &progress{fn: o.progress, total: info.Size}
	log := o.logger.With("bucket", bucket, "key", key)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	for off := int64(0); off < info.Size && gctx.Err() == nil; off += chunk {
		n := min(chunk, info.Size-off)
		g.Go(func() error {
			buf := make([]byte, scratchSize)
			return c.getRange(gctx, o, log, bucket, key, info.ETag, off, n, io.NewOffsetWriter(w, off), buf, prog, false)
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("cos: downloading %s/%s: %w", bucket, key, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("cos: downloading %s/%s: %w", bucket, key, err)
	}
	return info.Size, nil
}

// DownloadStream writes the object bucket/key to w in order, with one GET
// (and a ranged GET from where it stopped when the body breaks, up to
// WithPartAttempts times), and returns the number of bytes written. It
// checks the size, and the SHA-256 of what it wrote against WithSHA256 when
// given (a Result.SHA256 kept from the upload), else against the object's
// x-amz-meta-sha256 when it has one; a mismatch is an error wrapping
// ErrVerify (the bytes have been written to w by then). It does not compare
// with the ETag, which is not an MD5 of the content for multipart objects
// and, on some servers, for encrypted ones.
func (c *Client) DownloadStream(ctx context.Context, bucket, key string, w io.Writer, opts ...Option) (int64, error) {
	o := c.options(opts)
	info, err := c.Stat(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	want := o.sha256
	if want == "" {
		want = info.SHA256
	}
	dst := w
	var shaH hash.Hash
	if want != "" {
		shaH = sha256.New()
		dst = io.MultiWriter(w, shaH)
	}
	prog := &progress{fn: o.progress, total: info.Size}
	log := o.logger.With("bucket", bucket, "key", key)
	buf := make([]byte, 1<<20)
	if err := c.getRange(ctx, o, log, bucket, key, info.ETag, 0, info.Size, dst, buf, prog, true); err != nil {
		return 0, fmt.Errorf("cos: downloading %s/%s: %w", bucket, key, err)
	}
	if shaH != nil {
		if got := hex.EncodeToString(shaH.Sum(nil)); got != want {
			return info.Size, fmt.Errorf("cos: downloading %s/%s: %w: SHA-256 %s, expected %s", bucket, key, ErrVerify, got, want)
		}
	}
	return info.Size, nil
}

// writeError marks an error from the destination writer, which no retry
// can fix.
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

type errWriter struct{ w io.Writer }

func (e errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// getRange copies bytes [off, off+n) of the object to w, resuming after a
// broken body. With whole set the first request is a plain GET of the whole
// object (off is 0 and n its size), which also works for an empty object.
func (c *Client) getRange(ctx context.Context, o options, log *slog.Logger, bucket, key, etag string,
	off, n int64, w io.Writer, buf []byte, prog *progress, whole bool) error {
	var got int64
	pol := o.retryPolicy(log, "download range")
	pol.OnRetry = func(n int, err error, wait time.Duration) {
		log.Info("cos: download range broke; retrying", "offset", off+got, "attempt", n+1, "wait", wait, "err", err)
	}
	rerr := retry.Do(ctx, pol, classifyRange, func(int) error {
		in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
		if etag != "" {
			in.IfMatch = aws.String(`"` + etag + `"`)
		}
		if !whole || got > 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off+got, off+n-1))
		}
		err := func() error {
			out, err := c.s3.GetObjectWithContext(ctx, in)
			if err != nil {
				return err
			}
			defer out.Body.Close()
			r := io.LimitReader(out.Body, n-got)
			for {
				k, rerr := r.Read(buf)
				if k > 0 {
					if _, werr := (errWriter{w}).Write(buf[:k]); werr != nil {
						return werr
					}
					got += int64(k)
					prog.add(int64(k))
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					return rerr
				}
			}
			if got < n {
				return fmt.Errorf("body ended at byte %d of %d: %w", off+got, off+n, io.ErrUnexpectedEOF)
			}
			return nil
		}()
		return err
	})
	if rerr == nil {
		return nil
	}
	var ce *retry.CanceledError
	if errors.As(rerr, &ce) {
		return ctx.Err()
	}
	err := lastError(rerr)
	var we *writeError
	switch {
	case errors.As(err, &we):
		return err
	case statusCode(err) == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", ErrObjectChanged, err)
	case statusCode(err) == http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return fmt.Errorf("bytes %d-%d: %w", off+got, off+n-1, err)
}

// classifyRange classifies the error of a ranged read: a failed write, a
// changed object (412) and a missing one (404) are final; a broken body
// and the transient errors of retryable are tried again.
func classifyRange(err error) retry.Decision {
	var we *writeError
	switch {
	case errors.As(err, &we), statusCode(err) == http.StatusPreconditionFailed, statusCode(err) == http.StatusNotFound:
		return retry.Permanent
	case retryable(err) || errors.Is(err, io.ErrUnexpectedEOF):
		return retry.Retryable
	}
	return retry.Permanent
}
