package vhd

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Report is the result of Check.
type Report struct {
	Type            DiskType
	Size            int64  // virtual size, bytes
	Creator         string // trimmed creator application
	NativeBlockSize int64
	Encrypted       bool  // the batmap carries a key hash
	AllocatedBlocks int   // allocated BlockSize blocks
	FullBlocks      int   // allocated blocks with every sector present
	PresentSectors  int64 // present sectors within the virtual size

	// Problems are structural findings that did not stop Open (a damaged
	// footer copy, a batmap that contradicts a bitmap, ...), in file order
	// of discovery. A clean image has none.
	Problems []FormatError

	// ZeroPresentSectors counts, for an encrypted disk only, the present
	// sectors whose stored bytes are all zero. Ciphertext is all zero with
	// negligible probability (2^-4096 per sector), so these are plaintext
	// zeros that tapdisk will "decrypt" into garbage: the damage vhd-util
	// copy does to partially allocated blocks. ZeroPresentBlocks lists the
	// affected blocks in ascending order.
	ZeroPresentSectors int64
	ZeroPresentBlocks  []int
}

// OK reports whether the check found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 && r.ZeroPresentSectors == 0 }

// String summarizes the report in a few lines.
func (r *Report) String() string {
	var b strings.Builder
	enc := "plain"
	if r.Encrypted {
		enc = "encrypted"
	}
	fmt.Fprintf(&b, "%s VHD (%s), %d bytes, creator %q, %d of %d blocks allocated (%d full), %d sectors present",
		r.Type, enc, r.Size, r.Creator, r.AllocatedBlocks, NumBlocks(r.Size), r.FullBlocks, r.PresentSectors)
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "\nproblem: %s", p.Error())
	}
	if r.ZeroPresentSectors > 0 {
		fmt.Fprintf(&b, "\ndamage: %d present sectors stored all-zero in an encrypted disk (blocks %v); they decrypt to garbage", r.ZeroPresentSectors, r.ZeroPresentBlocks)
	}
	if r.OK() {
		b.WriteString("\nno problems found")
	}
	return b.String()
}

// Check validates the image beyond what Open needs and, for an encrypted
// disk, scans every present sector for all-zero stored bytes (see
// Report.ZeroPresentSectors). It streams block by block with one BlockSize
// buffer. The error is for failures to check (I/O, ctx); findings are in
// the Report.
func (img *Image) Check(ctx context.Context) (*Report, error) {
	r := &Report{
		Type:            img.typ,
		Size:            img.size,
		Creator:         img.Creator(),
		NativeBlockSize: img.NativeBlockSize(),
		Encrypted:       img.encrypted,
		Problems:        append([]FormatError(nil), img.problems...),
	}
	if img.typ == Dynamic && img.batmap != nil {
		img.checkBatmap(r)
	}
	var buf []byte // one block, allocated at the first allocated block
	bm := make(Bitmap, BitmapSize)
	for i := range img.NumBlocks() {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		if !img.allocated(i) {
			continue
		}
		if _, err := img.blockBitmap(i, bm); err != nil {
			return r, fmt.Errorf("vhd: checking block %d: %w", i, err)
		}
		if !img.encrypted {
			r.addBlock(i, bm, nil, img.size)
			continue
		}
		if buf == nil {
			buf = make([]byte, BlockSize)
		}
		if err := img.ReadBlock(i, buf); err != nil {
			return r, fmt.Errorf("vhd: checking block %d: %w", i, err)
		}
		r.addBlock(i, bm, buf, img.size)
	}
	return r, nil
}

// addBlock accounts for allocated block i with bitmap bm; data, when not
// nil, is its stored bytes, scanned for present all-zero sectors.
func (r *Report) addBlock(i int, bm Bitmap, data []byte, size int64) {
	inSize := int(min(SectorsPerBlock, (size-int64(i)*BlockSize)/SectorSize))
	r.AllocatedBlocks++
	if bm.Full() {
		r.FullBlocks++
	}
	r.PresentSectors += int64(countBits(bm, inSize))
	if data == nil {
		return
	}
	var zeros int64
	for s := range inSize {
		if bm.Present(s) && allZero(data[s*SectorSize:(s+1)*SectorSize]) {
			zeros++
		}
	}
	if zeros > 0 {
		r.ZeroPresentSectors += zeros
		r.ZeroPresentBlocks = append(r.ZeroPresentBlocks, i)
	}
}

// Check reads the remaining blocks of the stream and reports on them as
// Image.Check does: the allocation and, for an encrypted disk, the present
// sectors stored as all zeros. The stream's structure was validated by
// NewStreamReader; what only a file shows (the footer at the end, batmap
// bits against bitmaps) is not checked. It uses one BlockSize buffer.
func (s *StreamReader) Check(ctx context.Context) (*Report, error) {
	img := s.img
	r := &Report{
		Type:            img.typ,
		Size:            img.size,
		Creator:         img.Creator(),
		NativeBlockSize: img.nb,
		Encrypted:       img.encrypted,
	}
	buf := make([]byte, BlockSize)
	for {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		b, err := s.Next(buf)
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return r, err
		}
		data := buf
		if !img.encrypted {
			data = nil
		}
		r.addBlock(b.Index, b.Bitmap, data, img.size)
	}
}

// checkBatmap compares tapdisk's batmap with the BAT and the bitmaps.
func (img *Image) checkBatmap(r *Report) {
	spn := int(img.nb / SectorSize)
	nbm := make(Bitmap, img.bitmapBytes)
	for j, e := range img.bat {
		if !img.batmapFull(j) {
			continue
		}
		field := fmt.Sprintf("batmap[%d]", j)
		if e == unusedBAT {
			r.Problems = append(r.Problems, FormatError{Offset: img.batmapOff, Field: field,
				Reason: fmt.Sprintf("the batmap marks block %d full but the BAT does not allocate it", j)})
			continue
		}
		off := int64(e) * SectorSize
		if err := img.readFile(nbm, off, blockPart(j, "bitmap")); err != nil {
			r.Problems = append(r.Problems, FormatError{Offset: off, Field: field, Reason: err.Error()})
			continue
		}
		if n := countBits(nbm, spn); n < spn {
			r.Problems = append(r.Problems, FormatError{Offset: off, Field: field,
				Reason: fmt.Sprintf("the batmap marks block %d full but its bitmap has %d of %d sectors present; tapdisk reads the absent ones as data", j, n, spn)})
		}
	}
}

// allZero reports whether b is all zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// countBits counts the present sectors among the first n of b.
func countBits(b Bitmap, n int) int {
	c := Bitmap(b[:n/8]).Count()
	for s := n &^ 7; s < n; s++ {
		if b.Present(s) {
			c++
		}
	}
	return c
}
