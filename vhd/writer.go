package vhd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Layout describes the tapdisk-style dynamic VHD a Writer produces. The
// allocation is known up front, so every offset is fixed before the first
// byte and the file is written front to back.
type Layout struct {
	// Size is the virtual size in bytes: a multiple of SectorSize, at most
	// MaxSize. It need not be a multiple of BlockSize.
	Size int64
	// Allocated has one entry per BlockSize block (ceil(Size/BlockSize)):
	// nil for an unallocated block, else its BitmapSize-byte sector bitmap
	// (written as given; a full bitmap also sets the block's batmap bit).
	Allocated []Bitmap
	// KeyHash, when non-nil, marks the disk encrypted (batmap key hash
	// cookie 1) and stores the nonce and hash.
	KeyHash *KeyHash
	// UniqueID is the footer's unique id; zero means random.
	UniqueID [16]byte
	// Timestamp is the footer's timestamp; zero means now.
	Timestamp time.Time
}

// NumBlocks returns ceil(size/BlockSize), the number of blocks of a disk of
// size bytes.
func NumBlocks(size int64) int {
	if size <= 0 {
		return 0
	}
	return int((size + BlockSize - 1) / BlockSize)
}

// validate checks the layout's fields.
func (l *Layout) validate() error {
	if l.Size < 0 || l.Size > MaxSize {
		return fmt.Errorf("vhd: layout size %d is outside 0..%d (2040 GiB)", l.Size, int64(MaxSize))
	}
	if l.Size%SectorSize != 0 {
		return fmt.Errorf("vhd: layout size %d is not a multiple of %d", l.Size, SectorSize)
	}
	if n := NumBlocks(l.Size); len(l.Allocated) != n {
		return fmt.Errorf("vhd: layout has %d block entries, a %d-byte disk has %d blocks", len(l.Allocated), l.Size, n)
	}
	for i, b := range l.Allocated {
		if b != nil && len(b) != BitmapSize {
			return fmt.Errorf("vhd: layout block %d bitmap is %d bytes, want %d", i, len(b), BitmapSize)
		}
	}
	return nil
}

// geometry of the metadata a Writer emits (../docs/FORMAT.md).
func batBytes(n int) int64 { return padSector(int64(n) * 4) }

func batmapSectors(n int) int64 { return max(1, (int64(n+7)/8+SectorSize-1)/SectorSize) }

// metaEnd returns the batmap header offset and the end of the metadata.
func metaLayout(n int) (batmapHdr, batmapOff, end int64) {
	batmapHdr = tapTableOffset + batBytes(n)
	batmapOff = batmapHdr + BatmapHeaderSize
	end = batmapOff + batmapSectors(n)*SectorSize
	return
}

// nextBitmap returns where a block's bitmap goes when the previous
// structure ends at pos: the sector just before the next 4 KiB boundary
// that leaves room for it, so the block's data starts 4 KiB aligned.
func nextBitmap(pos int64) int64 {
	return (pos+SectorSize+dataAlign-1)&^(dataAlign-1) - SectorSize
}

// FileSize returns the exact size in bytes of the file a Writer produces for
// this layout, or -1 if the layout is invalid.
func (l *Layout) FileSize() int64 {
	if l.validate() != nil {
		return -1
	}
	_, _, pos := metaLayout(len(l.Allocated))
	for _, b := range l.Allocated {
		if b != nil {
			pos = nextBitmap(pos) + SectorSize + BlockSize
		}
	}
	return pos + FooterSize
}

// Writer writes a tapdisk-style dynamic VHD (creator "tap", version 1.3,
// with a batmap and, for encrypted disks, a key hash) as a pure stream:
// footer copy, dynamic header, BAT, batmap header and batmap in one write,
// then each allocated block (bitmap and data) in ascending order, then the
// footer. It never seeks. Errors are sticky: after one, every call returns it.
type Writer struct {
	w       io.Writer
	n       int      // blocks
	alloc   []Bitmap // copy of the layout's slice header; bitmaps not copied
	offsets []int64  // bitmap offset of each allocated block, else -1
	footer  [FooterSize]byte
	pad     []byte // zeros before a bitmap, then the bitmap
	pos     int64  // bytes written
	next    int    // lowest block index that may be written next
	err     error  // sticky
	closed  bool
}

// NewWriter validates l, writes the VHD's metadata to w and returns a Writer
// for the blocks. It keeps a reference to l.Allocated's bitmaps: they must
// not change until Close.
func NewWriter(w io.Writer, l *Layout) (*Writer, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	n := len(l.Allocated)
	hdrOff, mapOff, end := metaLayout(n)
	wr := &Writer{w: w, n: n, alloc: l.Allocated, offsets: make([]int64, n), pad: make([]byte, dataAlign+SectorSize)}

	f := Footer{
		Cookie:         footerCookie,
		Features:       footerFeatures,
		FormatVersion:  formatVersion,
		DataOffset:     tapHeaderOffset,
		Timestamp:      vhdTimestamp(l.Timestamp),
		Creator:        tapCreator,
		CreatorVersion: tapCreatorVersion,
		OriginalSize:   uint64(l.Size),
		CurrentSize:    uint64(l.Size),
		DiskType:       Dynamic,
		UniqueID:       l.UniqueID,
	}
	if l.Timestamp.IsZero() {
		f.Timestamp = vhdTimestamp(time.Now())
	}
	if f.UniqueID == ([16]byte{}) {
		if _, err := rand.Read(f.UniqueID[:]); err != nil {
			return nil, fmt.Errorf("vhd: generating a unique id: %w", err)
		}
	}
	f.Cylinders, f.Heads, f.SectorsPerTrack = Geometry(l.Size)
	f.put(wr.footer[:])

	meta := make([]byte, end)
	copy(meta, wr.footer[:])
	h := Header{
		Cookie:          headerCookie,
		DataOffset:      noDataOffset,
		TableOffset:     tapTableOffset,
		Version:         headerVersion,
		MaxTableEntries: uint32(n),
		BlockSize:       BlockSize,
	}
	h.put(meta[tapHeaderOffset:])

	bm := meta[mapOff:end]
	pos := end
	for i, b := range l.Allocated {
		e := uint32(unusedBAT)
		wr.offsets[i] = -1
		if b != nil {
			off := nextBitmap(pos)
			wr.offsets[i] = off
			e = uint32(off / SectorSize)
			pos = off + SectorSize + BlockSize
			if b.Full() {
				bm[i>>3] |= 0x80 >> (i & 7)
			}
		}
		put32(meta[tapTableOffset+4*int64(i):], e)
	}
	bh := meta[hdrOff:mapOff]
	copy(bh, batmapCookie)
	put64(bh[8:], uint64(mapOff))
	put32(bh[16:], uint32(batmapSectors(n)))
	put32(bh[20:], batmapVersion)
	var s uint32
	for _, c := range bm {
		s += uint32(c)
	}
	put32(bh[24:], ^s)
	if l.KeyHash != nil {
		bh[29] = keyHashCookieValue
		copy(bh[30:62], l.KeyHash.Nonce[:])
		copy(bh[62:94], l.KeyHash.Hash[:])
	}
	if err := wr.write(meta); err != nil {
		return nil, err
	}
	return wr, nil
}

func (wr *Writer) write(b []byte) error {
	n, err := wr.w.Write(b)
	wr.pos += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		wr.err = fmt.Errorf("vhd: writing at offset %d: %w", wr.pos, err)
	}
	return wr.err
}

// errWriterClosed is returned by calls on a closed Writer.
var errWriterClosed = errors.New("vhd: writer is closed")

// WriteBlock writes allocated block i: its bitmap (from the Layout) and
// data, BlockSize bytes as they are to be stored (already encrypted, for
// an encrypted disk). Allocated blocks must be written in ascending order,
// each exactly once; skipping one is an error.
func (wr *Writer) WriteBlock(i int, data []byte) error {
	if wr.err != nil {
		return wr.err
	}
	if wr.closed {
		return errWriterClosed
	}
	if i < 0 || i >= wr.n || wr.alloc[i] == nil {
		wr.err = fmt.Errorf("vhd: WriteBlock(%d): not an allocated block of the layout", i)
		return wr.err
	}
	if len(data) != BlockSize {
		wr.err = fmt.Errorf("vhd: WriteBlock(%d): %d bytes of data, want %d", i, len(data), BlockSize)
		return wr.err
	}
	if i < wr.next {
		wr.err = fmt.Errorf("vhd: WriteBlock(%d): blocks must be written once each in ascending order (next is %d or later)", i, wr.next)
		return wr.err
	}
	for j := wr.next; j < i; j++ {
		if wr.alloc[j] != nil {
			wr.err = fmt.Errorf("vhd: WriteBlock(%d): allocated block %d was skipped", i, j)
			return wr.err
		}
	}
	gap := wr.offsets[i] - wr.pos
	if gap < 0 || gap > dataAlign {
		wr.err = fmt.Errorf("vhd: WriteBlock(%d): internal layout error (gap %d)", i, gap)
		return wr.err
	}
	buf := wr.pad[:gap+SectorSize]
	clear(buf[:gap])
	copy(buf[gap:], wr.alloc[i])
	if wr.write(buf) != nil || wr.write(data) != nil {
		return wr.err
	}
	wr.next = i + 1
	return nil
}

// Close writes the footer copy at the end. It fails if an allocated block
// was not written. Close does not close the underlying writer.
func (wr *Writer) Close() error {
	if wr.err != nil {
		return wr.err
	}
	if wr.closed {
		return errWriterClosed
	}
	for j := wr.next; j < wr.n; j++ {
		if wr.alloc[j] != nil {
			wr.err = fmt.Errorf("vhd: Close: allocated block %d was not written", j)
			return wr.err
		}
	}
	if err := wr.write(wr.footer[:]); err != nil {
		return err
	}
	wr.closed = true
	return nil
}

// WriteFixed writes a fixed VHD: size bytes from r (the guest disk) followed
// by a footer. size must be a positive multiple of SectorSize, at most
// MaxSize (a 0-byte fixed VHD is a lone footer, which qemu-img cannot open);
// r must supply at least size bytes.
func WriteFixed(w io.Writer, r io.Reader, size int64) error {
	if size <= 0 || size > MaxSize || size%SectorSize != 0 {
		return fmt.Errorf("vhd: fixed disk size %d must be a multiple of %d in %d..%d", size, SectorSize, SectorSize, int64(MaxSize))
	}
	f := Footer{
		Cookie:         footerCookie,
		Features:       footerFeatures,
		FormatVersion:  formatVersion,
		DataOffset:     noDataOffset,
		Timestamp:      vhdTimestamp(time.Now()),
		Creator:        tapCreator,
		CreatorVersion: tapCreatorVersion,
		OriginalSize:   uint64(size),
		CurrentSize:    uint64(size),
		DiskType:       Fixed,
	}
	if _, err := rand.Read(f.UniqueID[:]); err != nil {
		return fmt.Errorf("vhd: generating a unique id: %w", err)
	}
	f.Cylinders, f.Heads, f.SectorsPerTrack = Geometry(size)
	n, err := io.CopyN(w, r, size)
	if err == io.EOF {
		return fmt.Errorf("vhd: fixed disk source ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return fmt.Errorf("vhd: writing fixed disk data at offset %d: %w", n, err)
	}
	var b [FooterSize]byte
	f.put(b[:])
	if _, err := w.Write(b[:]); err != nil {
		return fmt.Errorf("vhd: writing fixed disk footer: %w", err)
	}
	return nil
}
