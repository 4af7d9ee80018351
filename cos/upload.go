package cos

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/e2eimage/e2eimage/internal/retry"
	"golang.org/x/sync/errgroup"
)

// MetadataSHA256 is the user-metadata name under which the object's hex
// SHA-256 is stored (the header x-amz-meta-sha256).
const MetadataSHA256 = "sha256"

// abortTimeout bounds the AbortMultipartUpload sent after a failure, which
// runs even when the caller's context is already cancelled.
const abortTimeout = 30 * time.Second

// scratchSize is the buffer used to hash zero-copy parts.
const scratchSize = 256 << 10

// Result describes a finished, verified upload.
type Result struct {
	Bucket string
	Key    string
	// Size is the number of bytes uploaded.
	Size int64
	// ETag is the object's ETag as the server reported it, without quotes.
	ETag string
	// SHA256 is the hex SHA-256 of the bytes uploaded.
	SHA256 string
	// UploadID is the multipart upload's ID, "" for a single PUT.
	UploadID string
	// PartSize is the part size used (0 for a single PUT).
	PartSize int64
	// Parts is the number of parts of the object (0 for a single PUT).
	Parts int
	// PartsSent counts the parts this call sent; PartsSkipped the parts
	// Resume found on the server with the right content and did not resend.
	PartsSent    int
	PartsSkipped int
	// ETagVerified reports that the server's ETag equals the MD5 (for a
	// multipart upload, the MD5 of the parts' MD5s followed by "-N")
	// computed here. It is false when the server's ETags are not MD5-based,
	// as with some server-side encryption schemes; integrity then rests on
	// the Content-MD5 the server checked for every part, and the size.
	ETagVerified bool
	// SHA256Stored reports that x-amz-meta-sha256 was stored at creation
	// and read back equal to SHA256.
	SHA256Stored bool
	// Verified is true when every check that applies passed: Content-MD5 on
	// every request body, the object's size, the ETag when MD5-based, and
	// the stored SHA-256. Upload and Resume return an error rather than an
	// unverified Result.
	Verified bool
}

// Upload stores size bytes read from r as bucket/key. size may be
// SizeUnknown.
//
// An input smaller than the part size goes as one PutObject; anything else
// as a multipart upload whose parts are sent in parallel (WithConcurrency).
// When r is an io.ReaderAt and an io.Seeker (an *os.File, a bytes.Reader,
// an io.SectionReader) and size is known, parts are sections of it read
// from its current offset, without copies or part buffers, and its offset
// is left unchanged. Any other reader is read sequentially into at most
// concurrency+1 pooled part buffers.
//
// Every request body carries a Content-MD5 the server checks. A part that
// fails is resent from its own bytes, up to WithPartAttempts times. When
// every part is in, the upload is completed and verified (see Result), and
// the SHA-256 of the bytes read is returned. A single PUT stores it as
// x-amz-meta-sha256; a multipart upload stores it only when it is known
// before the upload is created (WithSHA256), because the metadata of a
// multipart object is fixed at CreateMultipartUpload and the digest of a
// stream exists only once the stream has been read. Rewriting it afterwards
// would take a server-side copy of the whole object (and CopyObject stops
// at 5 GB), so instead the whole-object check of a multipart upload is the
// composite ETag, which the server derives from the MD5 of each stored part.
//
// On failure the error is an *UploadError. By default the multipart upload
// is aborted, leaving no parts behind; WithResumable and WithKeepOnCancel
// keep it for Resume. If r blocks in Read, cancellation takes effect when
// Read returns: close the reader (the write end of a pipe) to stop it.
func (c *Client) Upload(ctx context.Context, bucket, key string, r io.Reader, size int64, opts ...Option) (*Result, error) {
	u, err := c.newUploader(bucket, key, r, size, opts)
	if err != nil {
		return nil, &UploadError{UploadState: UploadState{Bucket: bucket, Key: key, Size: size}, Err: err}
	}
	return u.run(ctx, nil)
}

// Resume continues the multipart upload st describes, reading the same
// input again from the start: it must yield the same bytes (a file, or a
// deterministic stream). size is the input size, or SizeUnknown.
//
// Resume asks the server which parts it holds (ListParts), so st may come
// from an *UploadError, a WithCheckpoint state file, or RecoverState given
// only the upload ID. For each part the server holds, Resume re-reads the
// part's bytes (it must, to compute the whole-object SHA-256) and skips
// sending them when their MD5 matches the MD5 recorded in st or the part's
// ETag; a part whose bytes differ is sent again, replacing the stored one.
// Parts are never trusted unchecked. The options are those of Upload, and a
// Resume that fails can be resumed again.
//
// When the upload no longer exists, an earlier attempt may have completed
// it and been killed before it could record that. Resume then reads the
// whole input without sending it and compares it with the object at the
// key (multipart ETag and size, and the stored SHA-256 when there is one):
// if they match it returns the verified Result with nothing sent; if not
// (the upload was aborted or expired, or the key holds another object) its
// error wraps ErrUploadGone, and the input has been read.
func (c *Client) Resume(ctx context.Context, st UploadState, r io.Reader, size int64, opts ...Option) (*Result, error) {
	fail := func(err error) (*Result, error) { return nil, &UploadError{UploadState: st.clone(), Err: err} }
	if st.Bucket == "" || st.Key == "" || st.UploadID == "" {
		return fail(fmt.Errorf("%w: resume state needs a bucket, a key and an upload ID", ErrConfig))
	}
	if st.Size >= 0 && size >= 0 && st.Size != size {
		return fail(fmt.Errorf("%w: the upload was started for %d bytes, resumed with %d", ErrSizeMismatch, st.Size, size))
	}
	if size < 0 && st.Size >= 0 {
		size = st.Size
	}
	if st.PartSize > 0 {
		opts = append(opts, WithPartSize(st.PartSize))
	}
	if st.SHA256 != "" {
		opts = append(opts, WithSHA256(st.SHA256))
	}
	u, err := c.newUploader(st.Bucket, st.Key, r, size, opts)
	if err != nil {
		return fail(err)
	}
	if st.PartSize > 0 && u.partSize != st.PartSize {
		return fail(fmt.Errorf("%w: part size %d recorded for this upload does not fit %d bytes in %d parts",
			ErrTooLarge, st.PartSize, size, MaxParts))
	}
	server, err := c.listParts(ctx, st.Bucket, st.Key, st.UploadID)
	if errors.Is(err, ErrUploadGone) && u.partSize > 0 {
		// Completed (by an attempt killed before it could record that)
		// or aborted: only the object can tell.
		res, aerr := u.adoptCompleted(ctx, st)
		if aerr != nil {
			return fail(fmt.Errorf("%w; %w", err, aerr))
		}
		if res != nil {
			return res, nil
		}
	}
	if err != nil {
		return fail(err)
	}
	if st.PartSize == 0 && u.o.partSize == 0 {
		// Only the server's list tells where the parts were cut.
		for _, p := range server {
			u.partSize = max(u.partSize, p.Size)
		}
	}
	recorded := make(map[int]CompletedPart, len(st.Completed))
	for _, p := range st.Completed {
		recorded[p.Number] = p
	}
	skip := make(map[int]CompletedPart, len(server))
	for _, sp := range server {
		want := sp.MD5
		if rec, ok := recorded[sp.Number]; ok && rec.ETag == sp.ETag && rec.Size == sp.Size && rec.MD5 != "" {
			want = rec.MD5
		}
		if want != "" {
			sp.MD5 = want
			skip[sp.Number] = sp
		}
	}
	u.uploadID = st.UploadID
	return u.run(ctx, skip)
}

// uploader is the state of one Upload or Resume call.
type uploader struct {
	c        *Client
	o        options
	log      *slog.Logger
	bucket   string
	key      string
	size     int64
	partSize int64

	// The input: a stream, or a ReaderAt read from base.
	r    io.Reader
	ra   io.ReaderAt
	base int64

	// Producer-only state.
	sha      hash.Hash
	free     chan []byte
	bufsMade int
	scratch  []byte

	uploadID  string
	completed bool // CompleteMultipartUpload succeeded

	mu           sync.Mutex
	parts        map[int]CompletedPart
	done         int64
	partsSent    int
	partsSkipped int
}

func (c *Client) newUploader(bucket, key string, r io.Reader, size int64, opts []Option) (*uploader, error) {
	if bucket == "" || key == "" {
		return nil, fmt.Errorf("%w: bucket and key are required", ErrConfig)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrConfig)
	}
	if size < SizeUnknown {
		return nil, fmt.Errorf("%w: size %d (use SizeUnknown for an input of unknown length)", ErrConfig, size)
	}
	o := c.options(opts)
	if o.sha256 != "" {
		if b, err := hex.DecodeString(o.sha256); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%w: WithSHA256 wants 64 hex digits", ErrConfig)
		}
		o.sha256 = strings.ToLower(o.sha256)
	}
	for k := range o.metadata {
		if strings.EqualFold(k, MetadataSHA256) {
			return nil, fmt.Errorf("%w: metadata name %q is reserved", ErrConfig, MetadataSHA256)
		}
	}
	ps, err := choosePartSize(size, o.partSize)
	if err != nil {
		return nil, err
	}
	u := &uploader{
		c: c, o: o, log: o.logger.With("bucket", bucket, "key", key),
		bucket: bucket, key: key, size: size, partSize: ps, r: r,
		sha:   sha256.New(),
		parts: make(map[int]CompletedPart),
	}
	if ra, ok := r.(io.ReaderAt); ok && size >= 0 {
		if sk, ok := r.(io.Seeker); ok {
			if pos, err := sk.Seek(0, io.SeekCurrent); err == nil {
				u.ra, u.base = ra, pos
			}
		}
	}
	return u, nil
}

// part is one part on its way to the server.
type part struct {
	num    int
	size   int64
	last   bool              // no part follows
	buf    []byte            // pooled buffer holding the bytes, or nil
	sec    *io.SectionReader // the bytes in the input, when zero-copy
	md5    [md5.Size]byte
	hasMD5 bool
}

func (p *part) body() io.ReadSeeker {
	if p.sec != nil {
		return io.NewSectionReader(p.sec, 0, p.size)
	}
	return bytes.NewReader(p.buf[:p.size])
}

// sourceError marks a failure to read the input, which a Resume may fix.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading input: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// run uploads; skip lists parts the server already holds (Resume).
func (u *uploader) run(ctx context.Context, skip map[int]CompletedPart) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, u.fail(ctx, err)
	}
	u.free = make(chan []byte, u.o.concurrency+1)
	u.scratch = make([]byte, scratchSize)

	var first *part
	if u.uploadID == "" {
		small := u.size >= 0 && u.size < u.partSize
		if !small && u.ra == nil {
			// A stream's first part decides: shorter than a part means
			// the whole input fits in one PUT.
			p, err := u.readPart(ctx, 1)
			if err != nil {
				return nil, u.fail(ctx, err)
			}
			if p.last && p.size < u.partSize {
				small = true
			}
			first = p
		}
		if small {
			return u.putSingle(ctx, first)
		}
		if err := u.create(ctx); err != nil {
			return nil, u.fail(ctx, err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *part)
	for range u.o.concurrency {
		g.Go(func() error {
			scratch := make([]byte, scratchSize)
			for p := range work {
				err := u.sendPart(gctx, p, scratch)
				u.release(p)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	// A producer failure (the input) does not cancel the parts in flight:
	// they finish, so that a resumed upload need not send them again.
	var lastNum int
	var prodErr error
	g.Go(func() error {
		defer close(work)
		lastNum, prodErr = u.produce(gctx, work, first, skip)
		return nil
	})
	err := g.Wait()
	if err == nil {
		err = prodErr
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, u.fail(ctx, err)
	}
	res, err := u.complete(ctx, lastNum)
	if err != nil {
		return nil, u.fail(ctx, err)
	}
	return res, nil
}

// produce reads the input part by part in order, hashing it, and hands the
// parts to the workers. It returns the number of the last part.
func (u *uploader) produce(ctx context.Context, work chan<- *part, first *part, skip map[int]CompletedPart) (int, error) {
	for num := 1; ; num++ {
		p := first
		if num > 1 || p == nil {
			var err error
			if p, err = u.readPart(ctx, num); err != nil {
				return num, err
			}
		}
		if p == nil { // a stream that ended exactly on a part boundary
			return num - 1, nil
		}
		last := p.last
		if sp, ok := skip[num]; ok {
			if !p.hasMD5 {
				u.hashMD5(p, u.scratch)
			}
			if hex.EncodeToString(p.md5[:]) == sp.MD5 && p.size == sp.Size {
				u.skipped(sp)
				u.release(p)
				if last {
					return num, nil
				}
				continue
			}
			u.log.Warn("cos: stored part differs from the input; sending it again", "part", num)
		}
		select {
		case work <- p:
		case <-ctx.Done():
			u.release(p)
			return num, ctx.Err()
		}
		if last {
			return num, nil
		}
	}
}

// readPart reads part num of the input and adds it to the whole-object
// SHA-256. For a stream that ends exactly after the previous part it
// returns a nil part.
func (u *uploader) readPart(ctx context.Context, num int) (*part, error) {
	if num > MaxParts {
		return nil, fmt.Errorf("%w: more than %d parts of %d bytes", ErrTooLarge, MaxParts, u.partSize)
	}
	off := int64(num-1) * u.partSize
	want := u.partSize
	if u.size >= 0 {
		want = min(u.partSize, u.size-off)
	}
	if u.ra != nil {
		sec := io.NewSectionReader(u.ra, u.base+off, want)
		n, err := io.CopyBuffer(u.sha, io.NewSectionReader(sec, 0, want), u.scratch)
		if err != nil {
			return nil, &sourceError{err}
		}
		if n != want {
			return nil, fmt.Errorf("%w: input ends at %d bytes, expected %d", ErrSizeMismatch, off+n, u.size)
		}
		last := off+want >= u.size
		if last {
			if err := u.checkEnd(); err != nil {
				return nil, err
			}
		}
		return &part{num: num, size: want, sec: sec, last: last}, nil
	}

	buf, err := u.getBuf(ctx)
	if err != nil {
		return nil, err
	}
	var last bool
	n, err := io.ReadFull(u.r, buf[:want])
	switch {
	case err == nil:
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if u.size >= 0 {
			u.putBuf(buf)
			return nil, fmt.Errorf("%w: input ends at %d bytes, expected %d", ErrSizeMismatch, off+int64(n), u.size)
		}
		last = true
	default:
		u.putBuf(buf)
		return nil, &sourceError{err}
	}
	if n == 0 && num > 1 {
		u.putBuf(buf)
		return nil, nil
	}
	u.sha.Write(buf[:n])
	if u.size >= 0 && off+int64(n) == u.size {
		last = true
	}
	if last && u.size >= 0 {
		if err := u.checkEnd(); err != nil {
			u.putBuf(buf)
			return nil, err
		}
	}
	if !last && u.size < 0 && num == MaxParts {
		// The last part the limit allows is full: the input must end here.
		if err := u.checkEnd(); err != nil {
			u.putBuf(buf)
			return nil, fmt.Errorf("%w: a stream longer than %d parts of %d bytes (use a larger WithPartSize)",
				ErrTooLarge, MaxParts, u.partSize)
		}
		last = true
	}
	return &part{num: num, size: int64(n), buf: buf, last: last}, nil
}

// checkEnd makes sure the input holds nothing past the end.
func (u *uploader) checkEnd() error {
	var one [1]byte
	var n int
	var err error
	if u.ra != nil {
		n, err = u.ra.ReadAt(one[:], u.base+u.size)
	} else {
		n, err = io.ReadFull(u.r, one[:])
	}
	if n > 0 {
		return fmt.Errorf("%w: input is longer than %d bytes", ErrSizeMismatch, u.size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return &sourceError{err}
	}
	return nil
}

func (u *uploader) getBuf(ctx context.Context) ([]byte, error) {
	select {
	case b := <-u.free:
		return b, nil
	default:
	}
	if u.bufsMade < cap(u.free) {
		u.bufsMade++
		return make([]byte, u.partSize), nil
	}
	select {
	case b := <-u.free:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (u *uploader) putBuf(b []byte) {
	select {
	case u.free <- b:
	default: // cannot happen: at most cap(free) buffers exist
	}
}

func (u *uploader) release(p *part) {
	if p != nil && p.buf != nil {
		u.putBuf(p.buf)
		p.buf = nil
	}
}

func (u *uploader) hashMD5(p *part, scratch []byte) {
	if p.sec != nil {
		h := md5.New()
		// A read error here shows again when the part is sent.
		_, _ = io.CopyBuffer(h, p.body(), scratch)
		h.Sum(p.md5[:0])
	} else {
		p.md5 = md5.Sum(p.buf[:p.size])
	}
	p.hasMD5 = true
}

func (u *uploader) metadata() map[string]*string {
	m := make(map[string]*string, len(u.o.metadata)+1)
	for k, v := range u.o.metadata {
		m[k] = aws.String(v)
	}
	if u.o.sha256 != "" {
		m[MetadataSHA256] = aws.String(u.o.sha256)
	}
	return m
}

// unsignedPayload tells the SigV4 signer not to hash the body: the body is
// covered by Content-MD5, which the server checks, and the connection by
// TLS (or loopback), so a second pass over every byte buys nothing.
// IAM-token requests are not signed at all.
func unsignedPayload(r *request.Request) {
	r.HTTPRequest.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
}

func (u *uploader) sendPart(ctx context.Context, p *part, scratch []byte) error {
	if !p.hasMD5 {
		u.hashMD5(p, scratch)
	}
	md5hex := hex.EncodeToString(p.md5[:])
	var etag string
	err := u.c.attempt(ctx, u.o, u.log, fmt.Sprintf("part %d", p.num), func() error {
		body := &guardedBody{r: p.body()}
		defer body.close()
		out, err := u.c.s3.UploadPartWithContext(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(u.bucket),
			Key:           aws.String(u.key),
			UploadId:      aws.String(u.uploadID),
			PartNumber:    aws.Int64(int64(p.num)),
			Body:          body,
			ContentLength: aws.Int64(p.size),
			ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(p.md5[:])),
		}, unsignedPayload)
		if err != nil {
			return err
		}
		etag = trimETag(aws.StringValue(out.ETag))
		return nil
	})
	if err != nil {
		return fmt.Errorf("uploading part %d: %w", p.num, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.parts[p.num] = CompletedPart{Number: p.num, ETag: etag, Size: p.size, MD5: md5hex}
	u.partsSent++
	u.done += p.size
	u.log.Debug("cos: part uploaded", "part", p.num, "size", p.size)
	u.progressLocked()
	u.checkpointLocked()
	return nil
}

func (u *uploader) skipped(sp CompletedPart) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.parts[sp.Number] = sp
	u.partsSkipped++
	u.done += sp.Size
	u.progressLocked()
	u.checkpointLocked()
}

func (u *uploader) progressLocked() {
	if u.o.progress != nil {
		u.o.progress(u.done, u.size)
	}
}

func (u *uploader) checkpointLocked() {
	if u.o.checkpoint != nil {
		u.o.checkpoint(u.stateLocked())
	}
}

func (u *uploader) stateLocked() UploadState {
	st := UploadState{
		Bucket: u.bucket, Key: u.key, UploadID: u.uploadID,
		PartSize: u.partSize, Size: u.size, SHA256: u.o.sha256,
		Completed: make([]CompletedPart, 0, len(u.parts)),
	}
	for _, p := range u.parts {
		st.Completed = append(st.Completed, p)
	}
	return st.clone()
}

// attempt runs fn up to o.partAttempts times while its error is retryable,
// waiting between attempts.
func (c *Client) attempt(ctx context.Context, o options, log *slog.Logger, what string, fn func() error) error {
	err := retry.Do(ctx, o.retryPolicy(log, what), classifyRetry, func(int) error { return fn() })
	return lastError(err)
}

// retryPolicy is the library's one retry policy (internal/retry) with this
// package's bounds: o.partAttempts attempts, waits from retryBase doubling
// up to maxRetryDelay, logged as retries of what.
func (o options) retryPolicy(log *slog.Logger, what string) retry.Policy {
	return retry.Policy{MaxAttempts: o.partAttempts, MinWait: o.retryBase(), MaxWait: maxRetryDelay,
		OnRetry: func(n int, err error, wait time.Duration) {
			log.Info("cos: retrying", "what", what, "attempt", n+1, "of", o.partAttempts, "wait", wait, "err", err)
		}}
}

// classifyRetry is this package's error classifier for internal/retry.
func classifyRetry(err error) retry.Decision {
	if retryable(err) {
		return retry.Retryable
	}
	return retry.Permanent
}

// lastError is the error of the last attempt retry.Do made: the package's
// errors keep the shapes they had before the one policy.
func lastError(err error) error {
	var gu *retry.GaveUpError
	if errors.As(err, &gu) {
		return gu.Last
	}
	var ce *retry.CanceledError
	if errors.As(err, &ce) {
		return ce.Last
	}
	return err
}

// Delays between a part's attempts (the SDK's own retries come first).
const (
	baseRetryDelay = 500 * time.Millisecond
	maxRetryDelay  = 10 * time.Second
)

func (o options) retryBase() time.Duration {
	if o.retryDelay > 0 {
		return o.retryDelay
	}
	return baseRetryDelay
}

// complete finishes a multipart upload of parts 1..last and verifies it.
func (u *uploader) complete(ctx context.Context, last int) (*Result, error) {
	sum := hex.EncodeToString(u.sha.Sum(nil))
	if u.o.sha256 != "" && sum != u.o.sha256 {
		return nil, fmt.Errorf("%w: the input's SHA-256 is %s, expected %s", ErrVerify, sum, u.o.sha256)
	}
	u.mu.Lock()
	list := make([]*s3.CompletedPart, 0, last)
	composite := md5.New()
	var total int64
	md5ETags, otherETags := 0, 0
	for n := 1; n <= last; n++ {
		p, ok := u.parts[n]
		if !ok {
			u.mu.Unlock()
			return nil, fmt.Errorf("part %d missing before completion", n) // a bug, not an input problem
		}
		list = append(list, &s3.CompletedPart{PartNumber: aws.Int64(int64(n)), ETag: aws.String(`"` + p.ETag + `"`)})
		b, _ := hex.DecodeString(p.MD5)
		composite.Write(b)
		total += p.Size
		if p.ETag == p.MD5 {
			md5ETags++
		} else {
			otherETags++
		}
	}
	res := &Result{
		Bucket: u.bucket, Key: u.key, Size: total, SHA256: sum, UploadID: u.uploadID,
		PartSize: u.partSize, Parts: last, PartsSent: u.partsSent, PartsSkipped: u.partsSkipped,
	}
	u.mu.Unlock()
	if u.size >= 0 && total != u.size {
		return nil, fmt.Errorf("%w: parts hold %d bytes, expected %d", ErrSizeMismatch, total, u.size)
	}
	if md5ETags > 0 && otherETags > 0 {
		return nil, fmt.Errorf("%w: %d of %d part ETags differ from the MD5 of the bytes sent", ErrVerify, otherETags, last)
	}
	want := fmt.Sprintf("%x-%d", composite.Sum(nil), last)

	etag, lost, err := u.sendComplete(ctx, list)
	if err != nil {
		return nil, err
	}
	u.completed = true
	u.log.Debug("cos: multipart upload completed", "upload_id", u.uploadID, "parts", last)

	head, err := u.c.head(ctx, u.bucket, u.key)
	if err != nil {
		return nil, fmt.Errorf("checking the completed object: %w", err)
	}
	if lost && md5ETags == 0 && u.o.sha256 == "" {
		// Nothing identifies the object as ours: its ETag is not an MD5
		// and no digest was stored with it.
		return nil, fmt.Errorf("%w: the answer to completing upload %s was lost, and with ETags that are not MD5s (%q) and no stored SHA-256 (WithSHA256) the object cannot be recognised as the one sent",
			ErrVerify, u.uploadID, head.ETag)
	}
	if etag == "" {
		etag = head.ETag
	}
	if md5ETags > 0 {
		if etag != want {
			return nil, fmt.Errorf("%w: server ETag %q, computed %q", ErrVerify, etag, want)
		}
		// Some servers report the whole object's MD5 on HEAD instead of
		// the composite; compare composite forms only.
		if strings.Contains(head.ETag, "-") && head.ETag != want {
			return nil, fmt.Errorf("%w: HEAD ETag %q, computed %q", ErrVerify, head.ETag, want)
		}
		res.ETagVerified = true
	} else {
		u.log.Warn("cos: the server's ETags are not MD5s; relying on Content-MD5 and size", "etag", etag)
	}
	res.ETag = etag
	if err := u.verifyHead(head, total, sum, res); err != nil {
		return nil, err
	}
	return res, nil
}

// sendComplete sends CompleteMultipartUpload, each attempt retried by the
// SDK and failed attempts again up to WithPartAttempts times. It returns
// the ETag the server answered, or lost set when the answer was lost and
// the upload is gone: an earlier request (an SDK retry, or an attempt that
// failed with a transport error or a 5xx after the server did the work)
// may have completed it. The caller then recognises the object as ours by
// its HEAD (size, composite ETag, stored SHA-256) or fails with ErrVerify,
// never uploading it again unchecked. An upload that still exists after a
// failed attempt was not completed, and completing it is tried again.
func (u *uploader) sendComplete(ctx context.Context, list []*s3.CompletedPart) (etag string, lost bool, err error) {
	err = u.c.attempt(ctx, u.o, u.log, "complete", func() error {
		out, err := u.c.s3.CompleteMultipartUploadWithContext(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(u.bucket),
			Key:             aws.String(u.key),
			UploadId:        aws.String(u.uploadID),
			MultipartUpload: &s3.CompletedMultipartUpload{Parts: list},
		})
		switch {
		case err == nil:
			etag = trimETag(aws.StringValue(out.ETag))
			return nil
		case errorCode(err) == s3.ErrCodeNoSuchUpload:
			lost = true
			u.log.Info("cos: upload gone at completion; checking the object", "upload_id", u.uploadID)
			return nil
		case !retryable(err):
			return err
		}
		_, lerr := u.c.listParts(ctx, u.bucket, u.key, u.uploadID)
		if errors.Is(lerr, ErrUploadGone) {
			lost = true
			u.log.Info("cos: completion failed but the upload is gone; checking the object", "upload_id", u.uploadID, "err", err)
			return nil
		}
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("completing multipart upload: %w", err)
	}
	return etag, lost, nil
}

// verifyHead checks the object's size and stored SHA-256.
func (u *uploader) verifyHead(head *ObjectInfo, size int64, sum string, res *Result) error {
	if head.Size != size {
		return fmt.Errorf("%w: object holds %d bytes, %d were sent", ErrVerify, head.Size, size)
	}
	if u.o.sha256 != "" || res.UploadID == "" {
		if head.SHA256 != sum {
			return fmt.Errorf("%w: stored x-amz-meta-sha256 %q, bytes sent hash to %s", ErrVerify, head.SHA256, sum)
		}
		res.SHA256Stored = true
	}
	res.Verified = true
	return nil
}

// putSingle uploads an input smaller than a part with one PutObject. p is
// the input already read (streams), or nil.
func (u *uploader) putSingle(ctx context.Context, p *part) (*Result, error) {
	if p == nil {
		size := max(u.size, 0)
		if u.ra != nil {
			p = &part{num: 1, size: size, sec: io.NewSectionReader(u.ra, u.base, size)}
			n, err := io.CopyBuffer(u.sha, p.body(), u.scratch)
			if err != nil {
				return nil, u.fail(ctx, &sourceError{err})
			}
			if n != size {
				return nil, u.fail(ctx, fmt.Errorf("%w: input ends at %d bytes, expected %d", ErrSizeMismatch, n, size))
			}
		} else {
			buf := make([]byte, size)
			n, err := io.ReadFull(u.r, buf)
			if err != nil && !(size == 0 && errors.Is(err, io.EOF)) {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, u.fail(ctx, fmt.Errorf("%w: input ends at %d bytes, expected %d", ErrSizeMismatch, n, size))
				}
				return nil, u.fail(ctx, &sourceError{err})
			}
			u.sha.Write(buf)
			p = &part{num: 1, size: size, buf: buf}
		}
		if err := u.checkEnd(); err != nil {
			return nil, u.fail(ctx, err)
		}
	}
	defer u.release(p)
	u.hashMD5(p, u.scratch)
	sum := hex.EncodeToString(u.sha.Sum(nil))
	if u.o.sha256 != "" && sum != u.o.sha256 {
		return nil, u.fail(ctx, fmt.Errorf("%w: the input's SHA-256 is %s, expected %s", ErrVerify, sum, u.o.sha256))
	}
	meta := u.metadata()
	meta[MetadataSHA256] = aws.String(sum)
	var etag string
	err := u.c.attempt(ctx, u.o, u.log, "put", func() error {
		body := &guardedBody{r: p.body()}
		defer body.close()
		in := &s3.PutObjectInput{
			Bucket:        aws.String(u.bucket),
			Key:           aws.String(u.key),
			Body:          body,
			ContentLength: aws.Int64(p.size),
			ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(p.md5[:])),
			Metadata:      meta,
		}
		if u.o.contentType != "" {
			in.ContentType = aws.String(u.o.contentType)
		}
		out, err := u.c.s3.PutObjectWithContext(ctx, in, unsignedPayload)
		if err != nil {
			return err
		}
		etag = trimETag(aws.StringValue(out.ETag))
		return nil
	})
	if err != nil {
		return nil, u.fail(ctx, fmt.Errorf("putting object: %w", err))
	}
	res := &Result{Bucket: u.bucket, Key: u.key, Size: p.size, ETag: etag, SHA256: sum, PartsSent: 1}
	u.mu.Lock()
	u.done = p.size
	u.progressLocked()
	u.mu.Unlock()
	head, err := u.c.head(ctx, u.bucket, u.key)
	if err != nil {
		return nil, u.fail(ctx, fmt.Errorf("checking the stored object: %w", err))
	}
	if md5hex := hex.EncodeToString(p.md5[:]); etag == md5hex {
		res.ETagVerified = true
	} else {
		u.log.Warn("cos: the server's ETag is not the MD5 of the object; relying on Content-MD5, size and SHA-256 metadata", "etag", etag)
	}
	if err := u.verifyHead(head, p.size, sum, res); err != nil {
		return nil, u.fail(ctx, err)
	}
	return res, nil
}

// fail turns err into an *UploadError, aborting the multipart upload unless
// the options say to keep it.
func (u *uploader) fail(ctx context.Context, err error) error {
	if errorCode(err) == s3.ErrCodeNoSuchBucket && ctx.Err() == nil {
		// A bucket in another location answers 404 NoSuchBucket on this
		// endpoint: say where it is (*WrongRegionError).
		err = u.c.explainNoSuchBucket(ctx, u.bucket, err)
	}
	u.mu.Lock()
	ue := &UploadError{UploadState: u.stateLocked(), Err: err}
	u.mu.Unlock()
	if u.uploadID == "" || u.completed {
		return ue
	}
	canceled := ctx.Err() != nil
	keep := u.o.resumable && ((canceled && u.o.keepOnCancel) || (!canceled && resumable(err)))
	if keep {
		ue.Resumable = true
		u.log.Info("cos: upload failed; kept for resume", "upload_id", u.uploadID, "parts", len(ue.Completed), "err", err)
		return ue
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if aerr := u.c.abortFully(actx, u.bucket, u.key, u.uploadID); aerr != nil {
		ue.Err = errors.Join(err, aerr)
		u.log.Warn("cos: upload failed and could not be aborted", "upload_id", u.uploadID, "err", aerr)
		return ue
	}
	ue.Aborted = true
	ue.Completed = nil
	u.log.Info("cos: upload failed; aborted", "upload_id", u.uploadID, "err", err)
	return ue
}

// abortFully aborts an upload and makes sure it stays gone. A part whose
// request was cancelled may still be being stored by the server when the
// abort arrives, and land after it (S3 documents this; versitygw even
// recreates the upload for it). So after each abort the part list is
// checked at once and again after a pause, and the abort repeated until the
// server no longer knows the upload on both checks.
func (c *Client) abortFully(ctx context.Context, bucket, key, uploadID string) error {
	pause := func(d time.Duration) error { return retry.Sleep(ctx, d) }
	delay := abortSettle
	for aborts := 1; ; aborts++ {
		if err := c.Abort(ctx, bucket, key, uploadID); err != nil {
			return err
		}
		gone := true
		for check := range 2 {
			if check > 0 {
				if err := pause(delay); err != nil {
					return err
				}
			}
			_, err := c.listParts(ctx, bucket, key, uploadID)
			if errors.Is(err, ErrUploadGone) {
				continue
			}
			if err != nil {
				return err
			}
			gone = false
			break
		}
		if gone {
			return nil
		}
		if aborts == abortChecks {
			return fmt.Errorf("cos: upload %s still has parts after %d aborts", uploadID, aborts)
		}
		delay *= 2
	}
}

// abortChecks is how many times abortFully aborts before giving up, and
// abortSettle its first pause before checking that an abort held.
const (
	abortChecks = 5
	abortSettle = 200 * time.Millisecond
)

// guardedBody is a request body that stops serving reads once closed. The
// SDK does not close a request's body when it gives up, and net/http may
// still be reading it from another goroutine; closing the guard before the
// part's buffer goes back to the pool keeps those reads off the buffer.
type guardedBody struct {
	mu     sync.Mutex
	r      io.ReadSeeker
	closed bool
}

var errBodyClosed = errors.New("cos: request body read after the request ended")

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errBodyClosed
	}
	return g.r.Read(p)
}

func (g *guardedBody) Seek(off int64, whence int) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errBodyClosed
	}
	return g.r.Seek(off, whence)
}

func (g *guardedBody) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
