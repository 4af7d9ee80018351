package cos

import (
	"log/slog"
	"maps"
	"time"
)

// Option configures one Upload, Resume, Download or DownloadStream call.
type Option func(*options)

type options struct {
	partSize     int64
	concurrency  int
	partAttempts int
	progress     func(done, total int64)
	logger       *slog.Logger
	metadata     map[string]string
	contentType  string
	resumable    bool
	keepOnCancel bool
	checkpoint   func(UploadState)
	sha256       string
	retryDelay   time.Duration // first wait between attempts; tests shorten it
}

func (c *Client) options(opts []Option) options {
	o := options{
		concurrency:  DefaultConcurrency,
		partAttempts: DefaultPartAttempts,
		logger:       c.logger,
	}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	if o.concurrency > MaxConcurrency {
		o.concurrency = MaxConcurrency
	}
	if o.partAttempts < 1 {
		o.partAttempts = 1
	}
	return o
}

// WithPartSize sets the part size in bytes (between MinPartSize and
// MaxPartSize). Default: DefaultPartSize for streams of unknown length; for
// a known size, DefaultPartSize or, when that would need more than MaxParts
// parts, the smallest whole number of MiB that fits (a size-derived raise
// also applies to a value set here). For downloads it is the size of each
// ranged GET.
func WithPartSize(n int64) Option { return func(o *options) { o.partSize = n } }

// WithConcurrency sets how many parts (or ranges, for downloads) are in
// flight at once. Default DefaultConcurrency; values are clamped to
// [1, MaxConcurrency]. An upload from a plain io.Reader holds n+1 part
// buffers.
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithPartAttempts sets how many times a part (or a download range) is
// sent before the transfer fails. Each attempt is itself retried by the SDK
// (Config.MaxRetries). CreateMultipartUpload, which is not idempotent, is
// sent this many times without SDK retries (see the package doc on lost
// answers). Default DefaultPartAttempts.
func WithPartAttempts(n int) Option { return func(o *options) { o.partAttempts = n } }

// WithProgress reports progress. For uploads done is the number of bytes
// the server has acknowledged (whole parts, parts Resume found already
// uploaded included) and total the input size, or -1 when unknown; for
// downloads, the bytes written so far and the object size. Calls are
// serialised and done never decreases; keep fn quick, it runs on the
// transfer's goroutines. It has the same shape as the encryptor's progress
// callback, so one function can report both.
func WithProgress(fn func(done, total int64)) Option { return func(o *options) { o.progress = fn } }

// WithLogger overrides the client's logger for one call.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithMetadata adds user metadata (x-amz-meta-<name>) to the object. The
// name "sha256" is reserved for the digest this package stores.
func WithMetadata(m map[string]string) Option {
	return func(o *options) {
		if o.metadata == nil {
			o.metadata = make(map[string]string, len(m))
		}
		maps.Copy(o.metadata, m)
	}
}

// WithContentType sets the object's Content-Type. Default: none (the
// server's default, binary/octet-stream on COS).
func WithContentType(ct string) Option { return func(o *options) { o.contentType = ct } }

// WithResumable keeps a multipart upload on the server when the upload
// fails for a reason a later retry can fix (network errors, 5xx and
// throttling once every attempt is spent, an IAM token that could not be
// had, an error reading the input), so that Resume can finish it. The *UploadError then has Resumable set and carries the
// state Resume needs. Failures a retry cannot fix (access denied, the
// upload gone, an input of the wrong length) and cancellation still abort
// it; add WithKeepOnCancel to keep it on cancellation too. A kept upload
// costs storage until it is resumed or aborted (Client.Abort).
func WithResumable() Option { return func(o *options) { o.resumable = true } }

// WithKeepOnCancel keeps the multipart upload when the context is
// cancelled (implies WithResumable): a program that is being stopped and
// will resume later. Without it, cancellation aborts the upload.
func WithKeepOnCancel() Option {
	return func(o *options) {
		o.resumable = true
		o.keepOnCancel = true
	}
}

// WithCheckpoint calls fn with the upload's state after the multipart upload
// is created and after every part completes, so that a caller can save it
// (as JSON) and resume even after the process is killed. Calls are
// serialised; fn receives its own copy.
func WithCheckpoint(fn func(UploadState)) Option { return func(o *options) { o.checkpoint = fn } }

// WithSHA256 declares the hex SHA-256 the bytes must have. For an upload it
// is stored as x-amz-meta-sha256 at creation (for multipart uploads too,
// which otherwise cannot carry the digest of a stream, known only at the
// end), and the upload fails with ErrVerify, before completing, when the
// bytes read differ. DownloadStream checks what it wrote against it.
func WithSHA256(hexDigest string) Option { return func(o *options) { o.sha256 = hexDigest } }
