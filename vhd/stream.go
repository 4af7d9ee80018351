package vhd

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// StreamReader reads a dynamic VHD front to back from an io.Reader that
// cannot seek (a pipe, an HTTP body): metadata first, then the allocated
// blocks in order, skipping gaps by reading and discarding them. It works
// when the file stores its metadata before its blocks and its blocks in
// ascending block order, as tapdisk, vhd-util and qemu-img write them
// (qemu-img only for sequentially written disks). Otherwise
// NewStreamReader returns an error wrapping ErrNotStreamable before any
// block is read.
//
// A fixed VHD has no footer at its start, so a stream of one looks like a
// raw image (ErrNotVHD) whose last 512 bytes are the footer (ParseFooter
// decodes it). A StreamReader is not safe for concurrent use.
type StreamReader struct {
	r    io.Reader
	pos  int64  // bytes consumed
	img  *Image // the metadata (no ReaderAt)
	next int    // next BlockSize block to consider
	cur  int    // native block whose bitmap is in nbm, or -1
	nbm  []byte // bitmap of native block cur
	err  error  // sticky; io.EOF after the last block
}

// streamLimit stands for the unknown end of a stream in the bounds checks
// that Open makes against the file size.
const streamLimit = math.MaxInt64 / 4

// readChunk bounds the allocation made ahead of data actually arriving, so
// that a hostile header cannot make a short stream allocate a large BAT.
const readChunk = 1 << 20

// NewStreamReader reads and validates the footer copy, dynamic header, BAT
// and tapdisk batmap at the start of r. Errors are those of Open (with
// ErrTruncated when the stream ends early) plus ErrNotStreamable.
func NewStreamReader(r io.Reader) (*StreamReader, error) {
	s := &StreamReader{r: r, cur: -1}
	b := make([]byte, FooterSize)
	n, err := io.ReadFull(r, b)
	s.pos = int64(n)
	switch {
	case n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: the stream is empty", ErrNotVHD)
	case err == io.ErrUnexpectedEOF:
		if string(b[:min(n, 8)]) == footerCookie[:min(n, 8)] {
			return nil, formatErr(0, "footer", ErrTruncated, "the stream ended after %d bytes of its %d-byte footer copy", n, FooterSize)
		}
		return nil, fmt.Errorf("%w: the stream of %d bytes is smaller than a footer", ErrNotVHD, n)
	case err != nil:
		return nil, fmt.Errorf("vhd: reading the footer copy: %w", err)
	}
	f, err := ParseFooter(b)
	if err != nil {
		if errors.Is(err, ErrNotVHD) {
			return nil, fmt.Errorf("%w: the stream does not start with a dynamic VHD's footer copy (raw images and fixed VHDs have none)", ErrNotVHD)
		}
		return nil, err
	}
	img := &Image{footer: f, fileSize: streamLimit, limit: streamLimit}
	s.img = img
	if err := img.checkFooter(); err != nil {
		return nil, err
	}
	if img.typ == Fixed {
		return nil, formatErr(0x3C, "footer.disk_type", nil, "the stream starts with a fixed disk's footer; a fixed disk has its only footer at the end")
	}
	ho, err := img.headerOffset()
	if err != nil {
		return nil, err
	}
	hb := make([]byte, HeaderSize)
	if err := s.skipTo(ho, named("dynamic header")); err != nil {
		return nil, err
	}
	if err := s.readFull(hb, named("dynamic header")); err != nil {
		return nil, err
	}
	d, err := img.useHeader(hb, ho)
	if err != nil {
		return nil, err
	}
	if err := s.skipTo(d.to, named("BAT")); err != nil {
		return nil, err
	}
	raw, err := s.readGrow(d.needed*4, named("BAT"))
	if err != nil {
		return nil, err
	}
	img.useBAT(raw)

	first := int64(streamLimit) // first block's offset
	for _, e := range img.bat {
		if e != unusedBAT {
			first = min(first, int64(e)*SectorSize)
		}
	}
	var bh *batmapHeader
	if d.batmapAt >= 0 && d.batmapAt+BatmapHeaderSize <= first {
		b := make([]byte, BatmapHeaderSize)
		if err := s.skipTo(d.batmapAt, named("batmap header")); err != nil {
			return nil, err
		}
		if err := s.readFull(b, named("batmap header")); err != nil {
			return nil, err
		}
		if bh, err = img.parseBatmapHeader(b, d.batmapAt, d.needed); err != nil {
			return nil, err
		}
		if bh != nil {
			d.regions = append(d.regions, bh.regions()...)
		}
	}
	if err := img.checkBlocks(d.to, d.regions); err != nil {
		return nil, err
	}
	if err := s.checkOrder(); err != nil {
		return nil, err
	}
	if bh != nil {
		if err := s.skipTo(bh.mapOff, named("batmap")); err != nil {
			return nil, err
		}
		m, err := s.readGrow(bh.mapLen, named("batmap"))
		if err != nil {
			return nil, err
		}
		if err := img.useBatmap(bh, m); err != nil {
			return nil, err
		}
	}
	s.nbm = make([]byte, img.bitmapBytes)
	return s, nil
}

// checkOrder requires the allocated blocks to be stored in ascending block
// order (checkBlocks has already ruled out overlaps).
func (s *StreamReader) checkOrder() error {
	prev, prevOff := -1, int64(-1)
	for j, e := range s.img.bat {
		if e == unusedBAT {
			continue
		}
		off := int64(e) * SectorSize
		if off < prevOff {
			return fmt.Errorf("%w: block %d is stored at %#x, before block %d at %#x: the blocks are not in ascending order in the file, so it cannot be read front to back; save it to a file and use Open",
				ErrNotStreamable, j, off, prev, prevOff)
		}
		prev, prevOff = j, off
	}
	return nil
}

// skipTo discards input up to offset off.
func (s *StreamReader) skipTo(off int64, what field) error {
	if off < s.pos {
		return fmt.Errorf("%w: the %s at %#x lies before data already read (stream position %#x), so the VHD cannot be read front to back; save it to a file and use Open",
			ErrNotStreamable, what, off, s.pos)
	}
	if off == s.pos {
		return nil
	}
	n, err := io.CopyN(io.Discard, s.r, off-s.pos)
	s.pos += n
	if err == io.EOF {
		return formatErr(s.pos, what.String(), ErrTruncated, "the stream ended at %#x, before the %s at %#x", s.pos, what, off)
	}
	if err != nil {
		return fmt.Errorf("vhd: skipping to the %s at %#x: %w", what, off, err)
	}
	return nil
}

// readFull reads exactly len(b) bytes.
func (s *StreamReader) readFull(b []byte, what field) error {
	n, err := io.ReadFull(s.r, b)
	at := s.pos
	s.pos += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return formatErr(at, what.String(), ErrTruncated, "the stream ended after %d of the %d bytes of the %s", n, len(b), what)
	}
	if err != nil {
		return fmt.Errorf("vhd: reading the %s at %#x: %w", what, at, err)
	}
	return nil
}

// readGrow reads n bytes, allocating only as the data arrives.
func (s *StreamReader) readGrow(n int64, what field) ([]byte, error) {
	b := make([]byte, 0, min(n, readChunk))
	for int64(len(b)) < n {
		c := min(n-int64(len(b)), readChunk)
		b = append(b, make([]byte, c)...)
		if err := s.readFull(b[int64(len(b))-c:], what); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Size returns the virtual size in bytes.
func (s *StreamReader) Size() int64 { return s.img.size }

// Footer returns the footer copy at the start of the stream.
func (s *StreamReader) Footer() Footer { return s.img.footer }

// Header returns the dynamic header.
func (s *StreamReader) Header() Header { return s.img.header }

// Creator returns the creator application, trimmed as by Image.Creator.
func (s *StreamReader) Creator() string { return s.img.Creator() }

// NativeBlockSize returns the file's own block size.
func (s *StreamReader) NativeBlockSize() int64 { return s.img.nb }

// KeyHash returns the key hash of an encrypted disk; ok is true when the
// batmap's key hash cookie marks the disk encrypted.
func (s *StreamReader) KeyHash() (KeyHash, bool) { return s.img.KeyHash() }

// NumBlocks returns the number of BlockSize blocks, allocated or not.
func (s *StreamReader) NumBlocks() int { return s.img.NumBlocks() }

// Allocated reports whether block i is allocated, so a caller can build a
// Layout before reading any block.
func (s *StreamReader) Allocated(i int) bool {
	return i >= 0 && i < s.img.NumBlocks() && s.img.allocated(i)
}

// Next reads the next allocated block, in ascending block order, into
// dst[:BlockSize] (its stored bytes; absent sectors and bytes past the
// virtual size zeroed, as Image.ReadBlock) and describes it. It returns
// io.EOF after the last allocated block, without reading the rest of the
// stream (the gap and the footer). Errors are sticky.
func (s *StreamReader) Next(dst []byte) (BlockInfo, error) {
	if s.err != nil {
		return BlockInfo{Index: -1, DataOffset: -1}, s.err
	}
	if len(dst) < BlockSize {
		return BlockInfo{Index: -1, DataOffset: -1}, fmt.Errorf("vhd: Next needs a buffer of %d bytes, got %d", BlockSize, len(dst))
	}
	img := s.img
	for s.next < img.NumBlocks() && !img.allocated(s.next) {
		s.next++
	}
	if s.next >= img.NumBlocks() {
		s.err = io.EOF
		return BlockInfo{Index: -1, DataOffset: -1}, io.EOF
	}
	i := s.next
	s.next++
	var info BlockInfo
	var err error
	if img.nb >= BlockSize {
		info, err = s.readLarge(i, dst[:BlockSize])
	} else {
		info, err = s.readSmall(i, dst[:BlockSize])
	}
	if err != nil {
		s.err = fmt.Errorf("vhd: reading block %d: %w", i, err)
		return BlockInfo{Index: i, DataOffset: -1}, s.err
	}
	return info, nil
}

// readLarge reads block i of a disk whose native blocks are BlockSize or
// larger (each BlockSize block is a slice of one native block).
func (s *StreamReader) readLarge(i int, dst []byte) (BlockInfo, error) {
	img := s.img
	k := int(img.nb / BlockSize)
	j, sub := i/k, int64(i%k)
	base := int64(img.bat[j]) * SectorSize
	if s.cur != j {
		if err := s.skipTo(base, blockPart(j, "bitmap")); err != nil {
			return BlockInfo{}, err
		}
		if err := s.readFull(s.nbm, blockPart(j, "bitmap")); err != nil {
			return BlockInfo{}, err
		}
		s.cur = j
	}
	data := base + img.bitmapBytes + sub*BlockSize
	if err := s.skipTo(data, blockPart(j, "data")); err != nil {
		return BlockInfo{}, err
	}
	n := min(BlockSize, img.size-int64(i)*BlockSize)
	if err := s.readFull(dst[:n], blockPart(j, "data")); err != nil {
		return BlockInfo{}, err
	}
	clear(dst[n:])
	bm := make(Bitmap, BitmapSize)
	if img.batmapFull(j) {
		fillOnes(bm)
	} else {
		copy(bm, s.nbm[sub*BitmapSize:])
		zeroAbsent(dst, bm)
	}
	return BlockInfo{Index: i, Bitmap: bm, Full: bm.Full(), DataOffset: data}, nil
}

// readSmall reads block i of a disk whose native blocks are smaller than
// BlockSize (each BlockSize block gathers several native blocks).
func (s *StreamReader) readSmall(i int, dst []byte) (BlockInfo, error) {
	img := s.img
	k := int(BlockSize / img.nb)
	spn := int(img.nb / SectorSize)
	clear(dst)
	bm := make(Bitmap, BitmapSize)
	for t := range k {
		j := i*k + t
		if j >= len(img.bat) {
			break
		}
		if img.bat[j] == unusedBAT {
			continue
		}
		base := int64(img.bat[j]) * SectorSize
		what := j
		if err := s.skipTo(base, blockPart(what, "bitmap")); err != nil {
			return BlockInfo{}, err
		}
		if err := s.readFull(s.nbm, blockPart(what, "bitmap")); err != nil {
			return BlockInfo{}, err
		}
		n := min(img.nb, img.size-int64(j)*img.nb)
		if err := s.readFull(dst[int64(t)*img.nb:int64(t)*img.nb+n], blockPart(what, "data")); err != nil {
			return BlockInfo{}, err
		}
		full := img.batmapFull(j)
		for x := range spn {
			if full || Bitmap(s.nbm).Present(x) {
				bm.Set(t*spn + x)
			}
		}
	}
	zeroAbsent(dst, bm)
	return BlockInfo{Index: i, Bitmap: bm, Full: bm.Full(), DataOffset: -1}, nil
}

// zeroAbsent clears the sectors of block data dst that bm marks absent.
func zeroAbsent(dst []byte, bm Bitmap) {
	for x := 0; x < SectorsPerBlock; {
		e := bm.run(x, SectorsPerBlock)
		if !bm.Present(x) {
			clear(dst[x*SectorSize : e*SectorSize])
		}
		x = e
	}
}
