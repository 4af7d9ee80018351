package vhd

import (
	"bytes"
	"io"
	"testing"
)

// fullLayout returns a layout of n full blocks sharing one bitmap.
func fullLayout(n int) *Layout {
	full := FullBitmap()
	l := &Layout{Size: int64(n) * BlockSize, Allocated: make([]Bitmap, n)}
	for i := range l.Allocated {
		l.Allocated[i] = full
	}
	return l
}

// TestWriteBlockAllocatesNothing: the Writer's per-block path makes no
// allocation (bitmap, padding and data go out in two Write calls from
// buffers made by NewWriter). Not parallel: AllocsPerRun counts the
// allocations of the whole process.
func TestWriteBlockAllocatesNothing(t *testing.T) {
	const n = 64
	w, err := NewWriter(io.Discard, fullLayout(n))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, BlockSize)
	i := 0
	allocs := testing.AllocsPerRun(n-1, func() {
		if err := w.WriteBlock(i, data); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("WriteBlock allocates %.1f times per call", allocs)
	}
}

// countingWriter counts Write calls and bytes.
type countingWriter struct{ calls, bytes int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls++
	c.bytes += len(p)
	return len(p), nil
}

func TestWriterCallsPerBlock(t *testing.T) {
	t.Parallel()
	var c countingWriter
	l := fullLayout(8)
	w, err := NewWriter(&c, l)
	if err != nil {
		t.Fatal(err)
	}
	if c.calls != 1 {
		t.Fatalf("metadata took %d writes, want 1", c.calls)
	}
	data := make([]byte, BlockSize)
	for i := range 8 {
		if err := w.WriteBlock(i, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if c.calls != 1+2*8+1 {
		t.Fatalf("%d writes for 8 blocks, want 2 per block", c.calls)
	}
	if int64(c.bytes) != l.FileSize() {
		t.Fatalf("wrote %d bytes, FileSize says %d", c.bytes, l.FileSize())
	}
}

// copySink stands for a page cache: it copies what it is given into one
// reused buffer, so each byte written costs a memory copy.
type copySink struct{ buf []byte }

func (c *copySink) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		p = p[copy(c.buf, p):]
	}
	return n, nil
}

// BenchmarkWriter measures WriteBlock throughput into a sink that copies
// every byte (the format's cost above a plain copy: padding, bitmap and two
// writes per 2 MiB block). One op is one WriteBlock; a new disk of 1024
// blocks starts every 1024 ops (outside the timer). Compare with
// BenchmarkCopyBaseline.
func BenchmarkWriter(b *testing.B) {
	const perDisk = 1024
	l := fullLayout(perDisk)
	sink := &copySink{buf: make([]byte, BlockSize)}
	data := make([]byte, BlockSize)
	var w *Writer
	b.SetBytes(BlockSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%perDisk == 0 {
			b.StopTimer()
			if w != nil {
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			var err error
			if w, err = NewWriter(sink, l); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if err := w.WriteBlock(i%perDisk, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyBaseline is the same bytes through the same sink without
// the VHD format: the floor BenchmarkWriter is measured against.
func BenchmarkCopyBaseline(b *testing.B) {
	sink := &copySink{buf: make([]byte, BlockSize)}
	data := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	b.ReportAllocs()
	for range b.N {
		if _, err := sink.Write(data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchImage is a 2 GiB virtual disk with every 16th block allocated
// (64 MiB of data), some of them partial.
func benchImage(b *testing.B) []byte {
	b.Helper()
	const n = 1024
	l := &Layout{Size: n * BlockSize, Allocated: make([]Bitmap, n)}
	for i := 0; i < n; i += 16 {
		if i%32 == 0 {
			l.Allocated[i] = FullBitmap()
		} else {
			l.Allocated[i] = bitmapOf([2]int{0, 1000}, [2]int{2000, 2100})
		}
	}
	data := make([]byte, BlockSize)
	var out bytes.Buffer
	w, err := NewWriter(&out, l)
	if err != nil {
		b.Fatal(err)
	}
	for i, bm := range l.Allocated {
		if bm != nil {
			if err := w.WriteBlock(i, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkOpenBlocks measures Open plus iterating the allocation map
// (reading every allocated block's bitmap) of a 1024-block disk.
func BenchmarkOpenBlocks(b *testing.B) {
	file := benchImage(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		img, err := Open(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, err := range img.Blocks() {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 64 {
			b.Fatalf("%d blocks", n)
		}
	}
}

// BenchmarkReadBlock measures reading allocated blocks, full and partial.
func BenchmarkReadBlock(b *testing.B) {
	file := benchImage(b)
	img, err := Open(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := img.ReadBlock((i%64)*16, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamReader measures reading a whole image front to back.
func BenchmarkStreamReader(b *testing.B) {
	file := benchImage(b)
	buf := make([]byte, BlockSize)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sr, err := NewStreamReader(onlyReader{bytes.NewReader(file)})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := sr.Next(buf); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
