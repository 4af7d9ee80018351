package disk

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"

	"github.com/e2eimage/e2eimage/internal/imagetest"
	"github.com/e2eimage/e2eimage/vhd"
)

// compressibleDisk is an 8 MiB MBR disk whose data compresses (text with
// varying lines) with a zero run in the middle; Convert makes it a
// compressed qcow2 with the given options.
func compressibleDisk(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := 0; b.Len() < 3<<20; i++ {
		b.WriteString(strings.Repeat("x", i%61))
		b.WriteString(" line of a compressible guest file\n")
	}
	fs := imagetest.Ext4(t, imagetest.WriteTree(t, []imagetest.Entry{imagetest.File("a.txt", b.String())}), 6<<20, "root")
	return imagetest.Disk(t, "dos", 12<<20, imagetest.Part{Type: "L", Size: 6 << 20, Image: fs})
}

func openFile(t *testing.T, path string) *Disk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestQCOW2InflateOnce reads compressed qcow2 images made by qemu-img
// convert -c (zlib and zstd, 4 KiB, 64 KiB and 2 MiB clusters) block by
// block, checks the bytes against qemu-img's own raw conversion, and checks
// with the decompressors' counter that each compressed cluster was inflated
// exactly once: the library's reader used to inflate a cluster again for
// every 32 KiB that flate returned per Read.
func TestQCOW2InflateOnce(t *testing.T) {
	base := compressibleDisk(t)
	for _, c := range []struct{ name, opts string }{
		{"zlib-64k", "cluster_size=65536"},
		{"zlib-4k", "cluster_size=4096"},
		{"zlib-2m", "cluster_size=2M"},
		{"zstd-64k", "compression_type=zstd"},
		{"zstd-2m", "compression_type=zstd,cluster_size=2M"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := imagetest.Convert(t, base, "qcow2", "-c", "-o", c.opts)
			want := imagetest.RawOf(t, q, "qcow2")
			d := openFile(t, q)
			clusters := compressedClusterCount(t, d)
			if clusters == 0 {
				t.Fatal("qemu-img compressed no cluster")
			}
			before := inflateStats.total.Load()
			buf := make([]byte, vhd.BlockSize)
			for i := range d.NumBlocks() {
				if err := d.ReadBlock(i, buf); err != nil {
					t.Fatal(err)
				}
				start := i * vhd.BlockSize
				end := min(start+vhd.BlockSize, len(want))
				if !bytes.Equal(buf[:end-start], want[start:end]) {
					t.Fatalf("block %d differs from qemu-img convert -O raw", i)
				}
			}
			if got := inflateStats.total.Load() - before; got != clusters {
				t.Fatalf("%d compressed clusters inflated %d times, want once each", clusters, got)
			}
			t.Logf("%d compressed clusters, each inflated once", clusters)
		})
	}
}

// compressedClusterCount counts the image's compressed clusters through
// the library's extents.
func compressedClusterCount(t *testing.T, d *Disk) int64 {
	t.Helper()
	cluster := int64(1) << d.qcow.img.(*qcow2.Qcow2).ClusterBits
	var n int64
	for off := int64(0); off < d.srcSize; {
		e, err := d.qcow.Extent(off, d.srcSize-off)
		if err != nil {
			t.Fatal(err)
		}
		if e.Compressed {
			n += (e.Length + cluster - 1) / cluster
		}
		off += e.Length
	}
	return n
}

// meetingReader makes the first two concurrent ReadAt calls wait for each
// other once armed: if go-qcow2reader serialised its cluster reads (a lock
// around the decompressor), the two could never meet and the wait would
// time out.
type meetingReader struct {
	r     io.ReaderAt
	armed atomic.Bool
	in    chan struct{}
	met   atomic.Bool
}

func (m *meetingReader) ReadAt(p []byte, off int64) (int, error) {
	if m.armed.Load() && !m.met.Load() {
		select {
		case m.in <- struct{}{}: // the other one is waiting
			m.met.Store(true)
		case <-m.in:
			m.met.Store(true)
		case <-time.After(10 * time.Second):
		}
	}
	return m.r.ReadAt(p, off)
}

// TestQCOW2ParallelInflate reads a zlib qcow2 image's blocks from two
// goroutines and checks that two compressed-cluster reads were in progress
// at the same moment: the library takes no lock around decompression, so
// the encryptor's workers inflate in parallel.
func TestQCOW2ParallelInflate(t *testing.T) {
	q := imagetest.Convert(t, compressibleDisk(t), "qcow2", "-c")
	f, err := os.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m := &meetingReader{r: f, in: make(chan struct{})}
	d, err := Open(m, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, vhd.BlockSize)
	for i := range d.NumBlocks() { // loads the L2 tables: from here on only cluster data is read
		if err := d.ReadBlock(i, buf); err != nil {
			t.Fatal(err)
		}
	}
	m.armed.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			buf := make([]byte, vhd.BlockSize)
			for i := w; i < d.NumBlocks(); i += 2 {
				if err := d.ReadBlock(i, buf); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !m.met.Load() {
		t.Fatal("no two compressed-cluster reads were in progress at once: the reads are serialised")
	}
}

// damagingReader, once armed, returns what the image holds with its bytes
// zeroed (zero) or nothing and io.EOF (cut).
type damagingReader struct {
	r     io.ReaderAt
	armed atomic.Bool
	cut   bool
}

func (d *damagingReader) ReadAt(p []byte, off int64) (int, error) {
	if !d.armed.Load() {
		return d.r.ReadAt(p, off)
	}
	if d.cut {
		return 0, io.EOF
	}
	clear(p)
	return len(p), nil
}

// TestQCOW2DamagedCluster reads a zlib qcow2 image whose compressed data
// reads back as zeros, or not at all (the file cut short), once the cluster
// tables are loaded: every block with compressed clusters fails with an
// error (a *MalformedError naming the cluster for data that does not
// inflate to a whole cluster), never with a short or zero-filled block.
func TestQCOW2DamagedCluster(t *testing.T) {
	q := imagetest.Convert(t, compressibleDisk(t), "qcow2", "-c")
	b, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []bool{false, true} {
		dr := &damagingReader{r: bytes.NewReader(b), cut: cut}
		d, err := Open(dr, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, vhd.BlockSize)
		for i := range d.NumBlocks() { // loads the L2 tables
			if err := d.ReadBlock(i, buf); err != nil {
				t.Fatal(err)
			}
		}
		dr.armed.Store(true)
		failed := 0
		for i := range d.NumBlocks() {
			info, err := d.Block(i)
			if err != nil {
				t.Fatal(err)
			}
			err = d.ReadBlock(i, buf)
			switch {
			case err == nil && info.Allocated():
				t.Fatalf("cut=%v: block %d read without error from damaged compressed data", cut, i)
			case err == nil:
				continue
			}
			failed++
			var me *MalformedError
			if !cut && (!errors.As(err, &me) || !strings.Contains(err.Error(), "compressed cluster")) {
				t.Fatalf("block %d: %v, want a *MalformedError naming the compressed cluster", i, err)
			}
		}
		if failed == 0 {
			t.Fatalf("cut=%v: no block failed", cut)
		}
		t.Logf("cut=%v: %d blocks failed", cut, failed)
	}
}

// BenchmarkInflate compares the inflaters on 64 KiB clusters of the kind
// qemu-img convert -c writes (raw deflate of text): the standard library's
// compress/flate and klauspost/compress/flate, each reset and reused as
// the decompressor does.
func BenchmarkInflate(b *testing.B) {
	var raw bytes.Buffer
	for i := 0; raw.Len() < 64<<10; i++ {
		raw.WriteString(strings.Repeat("x", i%61))
		raw.WriteString(" line of a compressible guest file\n")
	}
	cluster := raw.Bytes()[:64<<10]
	var c bytes.Buffer
	w, _ := stdflate.NewWriter(&c, stdflate.DefaultCompression)
	w.Write(cluster)
	w.Close()
	out := make([]byte, len(cluster))
	type resetter interface {
		io.Reader
		Reset(io.Reader, []byte) error
	}
	for _, impl := range []struct {
		name string
		r    resetter
	}{
		{"stdlib", stdflate.NewReader(bytes.NewReader(c.Bytes())).(resetter)},
		{"klauspost", flate.NewReader(bytes.NewReader(c.Bytes())).(resetter)},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(cluster)))
			for b.Loop() {
				if err := impl.r.Reset(bytes.NewReader(c.Bytes()), nil); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(impl.r, out); err != nil {
					b.Fatal(err)
				}
			}
			if !bytes.Equal(out, cluster) {
				b.Fatal("inflated bytes differ")
			}
		})
	}
}
