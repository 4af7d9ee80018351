package vhd

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeImage writes a dynamic VHD of layout l whose block data comes from
// data (BlockSize bytes per block; blocks past len(data) are zeros).
func writeImage(t testing.TB, l *Layout, data func(i int) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, l)
	require.NoError(t, err)
	for i, b := range l.Allocated {
		if b != nil {
			require.NoError(t, w.WriteBlock(i, data(i)))
		}
	}
	require.NoError(t, w.Close())
	require.Equal(t, l.FileSize(), int64(out.Len()), "FileSize must predict the output")
	return out.Bytes()
}

// footerVolatile are the footer bytes that legitimately differ between two
// writes of the same disk: timestamp, checksum, unique id.
func footerVolatile(off int) bool {
	return (off >= 0x18 && off < 0x1C) || (off >= 0x40 && off < 0x54)
}

// TestWriterReproducesReference writes the reference encrypted images'
// stored bytes with their allocation and key hash and requires the result
// to equal the reference byte for byte, except the timestamp, unique id and
// checksum of both footers: same header, BAT, batmap header (nonce, hash),
// batmap, bitmaps, block placement and file size.
func TestWriterReproducesReference(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"enc-qemu-k64.vhd", "enc-qemu-k32.vhd", "enc-tap-sparse-k64.vhd", "enc-copybug-k64.vhd", "src-tap-sparse.vhd"} {
		t.Run(name, func(t *testing.T) {
			img, ref := openRef(t, name)
			l := &Layout{Size: img.Size(), Allocated: make([]Bitmap, img.NumBlocks())}
			for b, err := range img.Blocks() {
				require.NoError(t, err)
				l.Allocated[b.Index] = b.Bitmap
			}
			if kh, ok := img.KeyHash(); ok {
				l.KeyHash = &kh
			}
			got := writeImage(t, l, func(i int) []byte {
				buf := make([]byte, BlockSize)
				require.NoError(t, img.ReadBlock(i, buf))
				return buf
			})
			require.Equal(t, len(ref), len(got))
			// Bytes that belong to no structure (the gaps that align block
			// data to 4 KiB) are zeros in our output; vhd-util leaves stale
			// footers there, which nothing reads.
			used := make([]bool, len(got))
			_, _, metaEnd := metaLayout(img.NumBlocks())
			mark(used, 0, int(metaEnd))
			mark(used, len(got)-FooterSize, len(got))
			for i := range img.NumBlocks() {
				if e := be32(got[tapTableOffset+4*i:]); e != unusedBAT {
					mark(used, int(e)*SectorSize, int(e)*SectorSize+SectorSize+BlockSize)
				}
			}
			end := len(ref) - FooterSize
			for off := range ref {
				if !used[off] {
					require.Zero(t, got[off], "gap byte %#x", off)
					continue
				}
				if ref[off] == got[off] {
					continue
				}
				if off < FooterSize && footerVolatile(off) || off >= end && footerVolatile(off-end) {
					continue
				}
				t.Fatalf("byte %#x: reference %#02x, written %#02x", off, ref[off], got[off])
			}
			// And the output reads back as the same disk.
			back, err := Open(bytes.NewReader(got), int64(len(got)))
			require.NoError(t, err)
			require.Equal(t, "tap", back.Creator())
			require.Equal(t, img.Footer().Cylinders, back.Footer().Cylinders)
		})
	}
}

func TestWriterFooterFields(t *testing.T) {
	t.Parallel()
	ts := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	size := int64(5<<20 + 3*SectorSize)
	l := &Layout{Size: size, Allocated: []Bitmap{nil, nil, FullBitmap()}, UniqueID: id, Timestamp: ts}
	out := writeImage(t, l, func(int) []byte { return bytes.Repeat([]byte{7}, BlockSize) })
	f, err := ParseFooter(out[len(out)-FooterSize:])
	require.NoError(t, err)
	require.Equal(t, out[:FooterSize], out[len(out)-FooterSize:], "footer copy equals footer")
	require.Equal(t, uint64(size), f.CurrentSize)
	require.Equal(t, uint64(size), f.OriginalSize)
	require.Equal(t, ts, f.Time())
	require.Equal(t, id, f.UniqueID)
	require.Equal(t, "tap\x00", f.Creator)
	require.Equal(t, uint32(0x00010003), f.CreatorVersion)
	c, h, s := Geometry(size)
	require.Equal(t, []int{int(c), int(h), int(s)}, []int{int(f.Cylinders), int(f.Heads), int(f.SectorsPerTrack)})
	// The block's data is 4 KiB aligned and the bitmap sits just before it.
	img, err := Open(bytes.NewReader(out), int64(len(out)))
	require.NoError(t, err)
	b, err := img.Block(2)
	require.NoError(t, err)
	require.Zero(t, b.DataOffset%4096)
	require.True(t, b.Full)
}

func TestGeometry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		size    int64
		c, h, s int
	}{
		{8 << 20, 240, 4, 17},       // reference images (footer 0x00F00411)
		{0, 0, 4, 17},               // smallest
		{SectorSize, 0, 4, 17},      // one sector
		{127 << 30, 65278, 16, 255}, // >= 65535*16*63 sectors: 255 sectors per track
		{MaxSize, 65535, 16, 255},   // clamped to the largest geometry
		{1 << 30, 2080, 16, 63},     // 17 and 31 spt overflow 16 heads
		{20 << 20, 602, 4, 17},      // 40960 sectors / 17 = 2409 -> 3 heads, raised to 4
	}
	for _, c := range cases {
		cy, h, s := Geometry(c.size)
		require.Equal(t, []int{c.c, c.h, c.s}, []int{int(cy), int(h), int(s)}, "size %d", c.size)
	}
}

func TestWriterKeyHashMissingBlockAndOrder(t *testing.T) {
	t.Parallel()
	full := FullBitmap()
	l := &Layout{Size: 3 * BlockSize, Allocated: []Bitmap{full, nil, full}}
	data := make([]byte, BlockSize)

	var out bytes.Buffer
	w, err := NewWriter(&out, l)
	require.NoError(t, err)
	require.ErrorContains(t, w.WriteBlock(2, data), "allocated block 0 was skipped")
	require.ErrorContains(t, w.Close(), "allocated block 0 was skipped", "errors are sticky")

	out.Reset()
	w, err = NewWriter(&out, l)
	require.NoError(t, err)
	require.NoError(t, w.WriteBlock(0, data))
	require.ErrorContains(t, w.Close(), "allocated block 2 was not written")

	out.Reset()
	w, err = NewWriter(&out, l)
	require.NoError(t, err)
	require.ErrorContains(t, w.WriteBlock(1, data), "not an allocated block")

	out.Reset()
	w, err = NewWriter(&out, l)
	require.NoError(t, err)
	require.ErrorContains(t, w.WriteBlock(0, data[:10]), "10 bytes of data")

	_, err = NewWriter(&out, &Layout{Size: 100, Allocated: []Bitmap{nil}})
	require.ErrorContains(t, err, "not a multiple of 512")
	_, err = NewWriter(&out, &Layout{Size: BlockSize, Allocated: nil})
	require.ErrorContains(t, err, "0 block entries")
	_, err = NewWriter(&out, &Layout{Size: MaxSize + SectorSize})
	require.ErrorContains(t, err, "outside")
	require.Equal(t, int64(-1), (&Layout{Size: 1}).FileSize())
}

func mark(used []bool, from, to int) {
	for i := from; i < to; i++ {
		used[i] = true
	}
}
