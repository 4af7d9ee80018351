package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// Compressed qcow2 clusters.
//
// go-qcow2reader reads a compressed cluster by calling the registered
// decompressor on an io.SectionReader over the compressed bytes, then
// calling the returned reader's Read once for what it wants of the
// cluster. A streaming inflater returns a part of the cluster per Read
// (flate: at most 32 KiB), so the library reopened the cluster and inflated
// it again from the start for each part, read the compressed bytes through
// 4 KiB buffered reads and built a new inflater per cluster.
//
// The decompressors registered here do the whole cluster at once instead:
// one ReadAt of the compressed bytes (exactly the sectors the cluster
// descriptor names), one inflate into a cluster-sized buffer (io.ReadFull),
// and a reader that serves the library's Reads from that buffer. Inflaters
// and buffers are pooled, so a read allocates nothing in the steady state.
// The library takes no lock around the decompressor (its only lock guards
// its L2 table cache), so the encryptor's workers inflate clusters in
// parallel; TestQCOW2ParallelInflate checks it.
//
// Bounds, for crafted images: the compressed bytes read are at most what
// the descriptor can name (under three clusters, at most 6 MiB with 2 MiB
// clusters), and a cluster inflates to at most one cluster, its size taken
// from the header this package has checked (readerAtOnly carries it):
// inflating stops there, whatever the stream says. A stream that ends
// before a whole cluster is a *MalformedError, as QEMU refuses it.
//
// Which inflater: klauspost/compress's flate (already a dependency, for
// zstd), measured against the standard library's compress/flate by
// BenchmarkInflate in qcow2inflate_test.go and by bench/qcow2.sh; see
// bench/README.md for the figures.

func init() {
	qcow2.SetDecompressor(qcow2.CompressionTypeZlib, inflateZlib)
	qcow2.SetDecompressor(qcow2.CompressionTypeZstd, inflateZstd)
}

// inflateStats counts inflated clusters, for tests: the calls in progress
// and the most seen at once (parallel decompression), and the total.
var inflateStats struct {
	running, peak, total atomic.Int64
}

func inflateEnter() func() {
	n := inflateStats.running.Add(1)
	for {
		p := inflateStats.peak.Load()
		if n <= p || inflateStats.peak.CompareAndSwap(p, n) {
			break
		}
	}
	inflateStats.total.Add(1)
	return func() { inflateStats.running.Add(-1) }
}

// bufPool keeps byte slices for compressed input and inflated clusters.
var bufPool sync.Pool

func getBuf(n int) *[]byte {
	if b, ok := bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func putBuf(b *[]byte) {
	if b != nil {
		bufPool.Put(b)
	}
}

var (
	flatePool sync.Pool // io.ReadCloser that are flate.Resetter
	zstdPool  sync.Pool // *zstd.Decoder
)

// compressedCluster reads the compressed bytes go-qcow2reader points at
// with one ReadAt. The library gives an io.SectionReader over the image
// (readerAtOnly) that starts at the compressed data and is one cluster plus
// the descriptor's additional sectors long; the data itself ends with the
// last of those sectors: (512 - off%512) + 512*additional bytes, which is
// what is read. It returns the buffer, the cluster size and the data's file
// offset.
func compressedCluster(r io.Reader) (*[]byte, int, int64, error) {
	sr, ok := r.(*io.SectionReader)
	if !ok {
		return nil, 0, 0, fmt.Errorf("disk: the qcow2 reader passed a %T, not an io.SectionReader", r)
	}
	outer, off, n := sr.Outer()
	src, ok := outer.(readerAtOnly)
	if !ok || src.cluster <= 0 {
		return nil, 0, 0, fmt.Errorf("disk: the qcow2 reader passed a section of a %T", outer)
	}
	additional := (n - int64(src.cluster)) / 512
	if additional < 0 || n > 4*int64(src.cluster) {
		return nil, 0, 0, &MalformedError{Format: QCOW2, Offset: off, Field: "compressed cluster descriptor",
			Reason: fmt.Sprintf("a %d-byte span for %d-byte clusters", n, src.cluster)}
	}
	size := 512 - off%512 + 512*additional
	b := getBuf(int(size))
	k, err := src.r.ReadAt(*b, off)
	if k == 0 && err != nil || err != nil && !errors.Is(err, io.EOF) {
		putBuf(b)
		return nil, 0, 0, fmt.Errorf("disk: reading the compressed qcow2 cluster at %d: %w", off, err)
	}
	*b = (*b)[:k] // a cluster at the end of the file may end before its last sector does
	return b, src.cluster, off, nil
}

// inflated is the reader handed back to go-qcow2reader: one inflated
// cluster, served from its buffer.
type inflated struct {
	buf  *[]byte
	data []byte
}

func (c *inflated) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *inflated) Close() error {
	putBuf(c.buf)
	c.buf, c.data = nil, nil
	return nil
}

// inflateInto fills one cluster from dec, and makes the reader over it.
func inflateInto(dec io.Reader, cluster int, off int64, kind string) (io.ReadCloser, error) {
	out := getBuf(cluster)
	n, err := io.ReadFull(dec, *out)
	if err != nil {
		putBuf(out)
		return nil, &MalformedError{Format: QCOW2, Offset: off, Field: "compressed cluster",
			Reason: fmt.Sprintf("%s data inflates to %d of the cluster's %d bytes: %v", kind, n, cluster, err)}
	}
	return &inflated{buf: out, data: *out}, nil
}

// byteReader is a plain io.Reader over a slice, for zstd. It hides
// bytes.Reader's extra methods, on which zstd's Reset takes a shortcut
// meant for whole inputs (it decodes every frame of a *bytes.Reader up
// front, and a compressed qcow2 cluster may be followed by the next one's
// bytes in its last sector).
type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// inflateZlib is the decompressor for compression type 0: raw deflate
// (RFC 1951), no zlib header, as QEMU writes it.
func inflateZlib(r io.Reader) (io.ReadCloser, error) {
	defer inflateEnter()()
	in, cluster, off, err := compressedCluster(r)
	if err != nil {
		return nil, err
	}
	defer putBuf(in)
	// flate stops at the end of the deflate stream, whatever follows, and
	// reads a *bytes.Reader without copying it into a buffer of its own.
	src := bytes.NewReader(*in)
	fr, _ := flatePool.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else if err := fr.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	defer flatePool.Put(fr)
	return inflateInto(fr, cluster, off, "deflate")
}

// inflateZstd is the decompressor for compression type 1 (zstd). The
// decoder is bounded: a compressed cluster expands to at most one cluster
// (2 MiB), so a frame asking for a larger window is malformed.
func inflateZstd(r io.Reader) (io.ReadCloser, error) {
	defer inflateEnter()()
	in, cluster, off, err := compressedCluster(r)
	if err != nil {
		return nil, err
	}
	defer putBuf(in)
	src := &byteReader{b: *in}
	d, _ := zstdPool.Get().(*zstd.Decoder)
	if d == nil {
		d, err = zstd.NewReader(src,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(8<<20),
			zstd.WithDecoderMaxMemory(8<<20))
		if err != nil {
			return nil, err
		}
	} else if err := d.Reset(src); err != nil {
		d.Close()
		return nil, err
	}
	rc, err := inflateInto(d, cluster, off, "zstd")
	if err != nil {
		d.Close() // a decoder that failed mid-frame is not reused
		return nil, err
	}
	zstdPool.Put(d) // it reads nothing more until the next Reset
	return rc, nil
}
