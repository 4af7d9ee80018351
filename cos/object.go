package cos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/e2eimage/e2eimage/internal/retry"
)

// smallRead is the largest ReadAt that Object serves from its page cache:
// a VHD's footer, header and sector bitmaps (512 bytes to a few KiB) cost
// one ranged GET of a page each at most, instead of one GET per call.
const smallRead = 16 << 10

// pageSize is the unit of Object's page cache, and pageSlots how many pages
// it keeps (least recently used out): 64 pages of 4 KiB, 256 KiB.
const (
	pageSize  = 4 << 10
	pageSlots = 64
)

// ObjectStats counts what an Object fetched from the object store.
type ObjectStats struct {
	// Requests is the number of ranged GETs sent (retries included).
	Requests int64
	// Bytes is the number of object bytes received.
	Bytes int64
	// CacheHits counts ReadAt calls served from the head or page cache
	// without a request.
	CacheHits int64
}

// Object is a remote object read with random access: an io.ReaderAt of
// known size (Size) whose every ReadAt is a ranged GET, so that parallel
// callers make parallel requests. Package vhdcrypt reads such an input
// with random access (see its "Inputs"): its workers fetch blocks in
// parallel and the encryption of a remote image keeps only the pipeline's
// buffers in memory.
//
// Every GET carries If-Match with the ETag seen by OpenObject, so an object
// replaced meanwhile fails with ErrObjectChanged instead of mixing
// versions. Small reads (at most 16 KiB: a VHD's footer, header, block
// table pages and sector bitmaps) are served from a page cache of 256 KiB;
// WithHeadCache keeps the object's first bytes once they are fetched, for
// callers that read the first blocks twice (an inspection, then the
// encryption). Reads that move forward through the object are read ahead
// in large windows, one GET each (WithReadAhead, readahead.go), so reading
// the object front to back costs about as many GETs as a copy of it in
// parts; other reads fetch what they ask for (a page for a small read).
// Either way, reading the object once transfers it about once.
//
// An Object is safe for concurrent use. It holds no connection: there is
// nothing to close.
type Object struct {
	ctx    context.Context
	c      *Client
	bucket string
	key    string
	info   ObjectInfo
	o      options
	log    *slog.Logger

	headSize int64
	headOnce sync.Once
	head     []byte
	headErr  error

	mu    sync.Mutex
	pages map[int64]*page // by page index
	clock int64           // LRU counter

	raWindow int64 // read-ahead window (readahead.go); 0: off
	raAhead  int   // windows fetched ahead
	ra       raState

	requests, bytes, hits atomic.Int64
}

type page struct {
	data []byte
	used int64
}

// ObjectOption configures OpenObject.
type ObjectOption func(*Object)

// WithHeadCache keeps the object's first n bytes in memory once any read
// touches them (fetched with one GET), so that reading them again costs no
// request: an image check that reads the first blocks before the
// encryption reads them again. Memory: n bytes. Zero (the default) keeps
// nothing.
func WithHeadCache(n int64) ObjectOption {
	return func(ob *Object) { ob.headSize = max(n, 0) }
}

// WithObjectOptions applies the package's Options that matter to reads:
// WithPartAttempts (how often a broken range is fetched again from where
// it stopped) and WithLogger.
func WithObjectOptions(opts ...Option) ObjectOption {
	return func(ob *Object) { ob.o = ob.c.options(opts) }
}

// OpenObject reads the object's size and ETag (HEAD) and returns it for
// random access. A missing object gives an error wrapping ErrNotFound.
// Reads (ReadAt) run under ctx: cancelling it cancels the requests in
// flight and fails later reads.
func (c *Client) OpenObject(ctx context.Context, bucket, key string, opts ...ObjectOption) (*Object, error) {
	info, err := c.Stat(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	ob := &Object{ctx: ctx, c: c, bucket: bucket, key: key, info: *info, o: c.options(nil), pages: make(map[int64]*page),
		raWindow: DefaultReadAheadWindow, raAhead: DefaultReadAhead}
	for _, f := range opts {
		f(ob)
	}
	ob.headSize = min(ob.headSize, info.Size)
	ob.log = ob.o.logger.With("bucket", bucket, "key", key)
	return ob, nil
}

// Size returns the object's size in bytes.
func (ob *Object) Size() int64 { return ob.info.Size }

// Info returns what HEAD said about the object when it was opened.
func (ob *Object) Info() ObjectInfo { return ob.info }

// Stats returns what the Object fetched so far.
func (ob *Object) Stats() ObjectStats {
	return ObjectStats{Requests: ob.requests.Load(), Bytes: ob.bytes.Load(), CacheHits: ob.hits.Load()}
}

// ReadAt reads len(p) bytes at off with a ranged GET (or from a cache). It
// returns io.EOF when the read reaches the end of the object, as
// io.ReaderAt requires. It runs under the context given to OpenObject.
func (ob *Object) ReadAt(p []byte, off int64) (int, error) {
	ctx := ob.ctx

	if off < 0 {
		return 0, fmt.Errorf("cos: ReadAt at negative offset %d", off)
	}
	size := ob.info.Size
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > size-off {
		n, eof = int(size-off), io.EOF
	}
	p = p[:n]
	if off < ob.headSize {
		// The cached head serves what it holds; the rest is fetched.
		if err := ob.loadHead(ctx); err != nil {
			return 0, err
		}
		k := copy(p, ob.head[off:])
		ob.hits.Add(1)
		p, off = p[k:], off+int64(k)
	}
	if served, err := ob.readAhead(ctx, p, off); served {
		if err != nil {
			return 0, err
		}
		return n, eof
	}
	switch {
	case len(p) == 0:
	case len(p) <= smallRead:
		if err := ob.readPages(ctx, p, off); err != nil {
			return 0, err
		}
	default:
		if err := ob.fetch(ctx, p, off); err != nil {
			return 0, err
		}
	}
	return n, eof
}

func (ob *Object) loadHead(ctx context.Context) error {
	ob.headOnce.Do(func() {
		b := make([]byte, ob.headSize)
		if err := ob.fetch(ctx, b, 0); err != nil {
			ob.headErr = err
			return
		}
		ob.head = b
	})
	if ob.headErr != nil {
		return ob.headErr
	}
	return nil
}

// readPages serves a small read from the page cache, fetching the missing
// pages (one GET for the run of them).
func (ob *Object) readPages(ctx context.Context, p []byte, off int64) error {
	first, last := off/pageSize, (off+int64(len(p))-1)/pageSize
	ob.mu.Lock()
	missing := false
	for i := first; i <= last; i++ {
		if ob.pages[i] == nil {
			missing = true
			break
		}
	}
	if !missing {
		ob.copyPages(p, off, first, last)
		ob.mu.Unlock()
		ob.hits.Add(1)
		return nil
	}
	ob.mu.Unlock()
	start := first * pageSize
	end := min((last+1)*pageSize, ob.info.Size)
	buf := make([]byte, end-start)
	if err := ob.fetch(ctx, buf, start); err != nil {
		return err
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	for i := first; i <= last; i++ {
		lo := (i - first) * pageSize
		hi := min(lo+pageSize, int64(len(buf)))
		ob.putPage(i, buf[lo:hi:hi])
	}
	copy(p, buf[off-start:])
	return nil
}

// copyPages copies cached pages first..last into p. Caller holds ob.mu.
func (ob *Object) copyPages(p []byte, off, first, last int64) {
	for i := first; i <= last; i++ {
		pg := ob.pages[i]
		ob.clock++
		pg.used = ob.clock
		pstart := i * pageSize
		lo := max(off, pstart)
		hi := min(off+int64(len(p)), pstart+int64(len(pg.data)))
		copy(p[lo-off:hi-off], pg.data[lo-pstart:hi-pstart])
	}
}

// putPage caches page i, evicting the least recently used page when the
// cache is full. Caller holds ob.mu.
func (ob *Object) putPage(i int64, data []byte) {
	if len(ob.pages) >= pageSlots && ob.pages[i] == nil {
		var oldest int64 = -1
		var used int64
		for k, pg := range ob.pages {
			if oldest < 0 || pg.used < used {
				oldest, used = k, pg.used
			}
		}
		delete(ob.pages, oldest)
	}
	ob.clock++
	ob.pages[i] = &page{data: data, used: ob.clock}
}

// fetch fills p with the bytes at off (within the object) with ranged GETs,
// continuing from where a broken body stopped.
func (ob *Object) fetch(ctx context.Context, p []byte, off int64) error {
	var got int
	pol := ob.o.retryPolicy(ob.log, "ranged read")
	pol.OnRetry = func(n int, err error, wait time.Duration) {
		ob.log.Info("cos: ranged read broke; retrying", "offset", off+int64(got), "attempt", n+1, "wait", wait, "err", err)
	}
	rerr := retry.Do(ctx, pol, classifyRange, func(int) error {
		return func() error {
			in := &s3.GetObjectInput{
				Bucket:  aws.String(ob.bucket),
				Key:     aws.String(ob.key),
				Range:   aws.String(fmt.Sprintf("bytes=%d-%d", off+int64(got), off+int64(len(p))-1)),
				IfMatch: aws.String(`"` + ob.info.ETag + `"`),
			}
			ob.requests.Add(1)
			out, err := ob.c.s3.GetObjectWithContext(ctx, in)
			if err != nil {
				return err
			}
			defer out.Body.Close()
			n, err := io.ReadFull(out.Body, p[got:])
			got += n
			ob.bytes.Add(int64(n))
			if err != nil {
				return fmt.Errorf("body ended at byte %d of %d: %w", off+int64(got), off+int64(len(p)), io.ErrUnexpectedEOF)
			}
			return nil
		}()
	})
	if rerr == nil {
		return nil
	}
	err := lastError(rerr)
	switch {
	case statusCode(err) == http.StatusPreconditionFailed:
		return fmt.Errorf("cos: reading %s/%s: %w: %w", ob.bucket, ob.key, ErrObjectChanged, err)
	case statusCode(err) == http.StatusNotFound:
		return fmt.Errorf("cos: reading %s/%s: %w: %w", ob.bucket, ob.key, ErrNotFound, err)
	case ctx.Err() != nil:
		return fmt.Errorf("cos: reading %s/%s: %w", ob.bucket, ob.key, ctx.Err())
	}
	return fmt.Errorf("cos: reading %s/%s bytes %d-%d: %w", ob.bucket, ob.key, off+int64(got), off+int64(len(p))-1, err)
}
