package vhd

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sparseRaw returns a guest disk of size bytes with a mix of empty blocks,
// full blocks and partially written blocks (runs of random sectors).
func sparseRaw(seed uint64, size int64) []byte {
	r := rand.New(rand.NewPCG(seed, 0xE2E))
	raw := make([]byte, size)
	sectors := int(size / SectorSize)
	for s := 0; s < sectors; {
		run := 1 + r.IntN(600)
		if r.IntN(3) == 0 { // about a third written
			end := min(s+run, sectors)
			for i := s * SectorSize; i < end*SectorSize; i++ {
				raw[i] = byte(r.Uint32()) | 1
			}
		}
		s += run + r.IntN(3000)
	}
	if sectors > 0 { // always write the last sector, the edge cases live there
		for i := size - SectorSize; i < size; i++ {
			raw[i] = 0x5A
		}
	}
	return raw
}

// layoutOf returns the Layout of raw with one bit per non-zero sector, so
// blocks are partial where the guest wrote partially.
func layoutOf(raw []byte) *Layout {
	size := int64(len(raw))
	l := &Layout{Size: size, Allocated: make([]Bitmap, NumBlocks(size)), Timestamp: time.Unix(1_700_000_000, 0)}
	for i := range l.Allocated {
		var bm Bitmap
		for s := range SectorsPerBlock {
			off := int64(i)*BlockSize + int64(s)*SectorSize
			if off >= size {
				break
			}
			if !allZero(raw[off : off+SectorSize]) {
				if bm == nil {
					bm = make(Bitmap, BitmapSize)
				}
				bm.Set(s)
			}
		}
		l.Allocated[i] = bm
	}
	return l
}

// blockOf returns BlockSize bytes of raw's block i, zero padded.
func blockOf(raw []byte, i int) []byte {
	b := make([]byte, BlockSize)
	if off := i * BlockSize; off < len(raw) {
		copy(b, raw[off:])
	}
	return b
}

// writeRaw writes raw as a dynamic VHD with our Writer.
func writeRaw(t testing.TB, raw []byte) []byte {
	t.Helper()
	return writeImage(t, layoutOf(raw), func(i int) []byte { return blockOf(raw, i) })
}

// buildVHD writes raw as a dynamic VHD the simple way other tools do (no
// batmap, bitmaps all ones, blocks back to back right after the BAT) with
// native block size bs and the blocks stored in the given order of block
// numbers (nil: ascending). Blocks with no non-zero byte are unallocated.
// It is an independent writer for the reader's tests (other block sizes,
// out-of-order blocks) and the base of the malformed inputs.
func buildVHD(t testing.TB, raw []byte, bs int, creator string, order []int) []byte {
	t.Helper()
	size := int64(len(raw))
	n := int((size + int64(bs) - 1) / int64(bs))
	bitmapBytes := int(padSector(int64((bs/SectorSize + 7) / 8))) // one bit per sector, whole bytes, whole sectors
	batLen := int(padSector(int64(n) * 4))
	if order == nil {
		for j := range n {
			order = append(order, j)
		}
	}
	bat := make([]uint32, n)
	for j := range bat {
		bat[j] = unusedBAT
	}
	pos := tapTableOffset + batLen
	var body bytes.Buffer
	for _, j := range order {
		from := min(int64(j)*int64(bs), size)
		to := min(from+int64(bs), size)
		if allZero(raw[from:to]) {
			continue
		}
		bat[j] = uint32(pos / SectorSize)
		bm := bytes.Repeat([]byte{0xFF}, bitmapBytes)
		data := make([]byte, bs)
		copy(data, raw[from:to])
		body.Write(bm)
		body.Write(data)
		pos += bitmapBytes + bs
	}
	f := Footer{Cookie: footerCookie, Features: 2, FormatVersion: formatVersion, DataOffset: tapHeaderOffset,
		Creator: creator, CreatorVersion: 0x00050003, CreatorHostOS: 0x5769326B,
		OriginalSize: uint64(size), CurrentSize: uint64(size), DiskType: Dynamic, UniqueID: [16]byte{9, 9, 9}}
	f.Cylinders, f.Heads, f.SectorsPerTrack = Geometry(size)
	h := Header{Cookie: headerCookie, DataOffset: noDataOffset, TableOffset: tapTableOffset, Version: headerVersion,
		MaxTableEntries: uint32(n), BlockSize: uint32(bs)}
	out := make([]byte, tapTableOffset+batLen)
	f.put(out)
	h.put(out[tapHeaderOffset:])
	for j, e := range bat {
		put32(out[tapTableOffset+4*j:], e)
	}
	out = append(out, body.Bytes()...)
	fb := make([]byte, FooterSize)
	f.put(fb)
	return append(out, fb...)
}

// editFooter changes both footers of a dynamic VHD (or the only one of a
// fixed VHD) and recomputes their checksums.
func editFooter(t testing.TB, b []byte, edit func(*Footer)) {
	t.Helper()
	end := len(b) - FooterSize
	f, err := ParseFooter(b[end:])
	require.NoError(t, err)
	edit(&f)
	f.put(b[end:])
	if f.DiskType != Fixed && string(b[:8]) == footerCookie {
		f.put(b[:FooterSize])
	}
}

// editHeader changes the dynamic header at 0x200 and recomputes its
// checksum.
func editHeader(t testing.TB, b []byte, edit func(*Header)) {
	t.Helper()
	h, err := ParseHeader(b[tapHeaderOffset:])
	require.NoError(t, err)
	edit(&h)
	h.put(b[tapHeaderOffset:])
}
