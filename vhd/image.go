package vhd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
)

// Image is an opened fixed or dynamic VHD read as a virtual disk. It is
// immutable after Open and safe for concurrent use (as far as the underlying
// io.ReaderAt is, which the io.ReaderAt contract requires).
//
// Blocks are always presented in BlockSize (2 MiB) units, whatever the
// native block size of the file: a fixed disk is a sequence of allocated,
// full blocks; a dynamic disk with larger native blocks (Hyper-V) is split,
// one with smaller native blocks is merged.
type Image struct {
	r         io.ReaderAt
	fileSize  int64
	footer    Footer
	footerOff int64
	header    Header
	typ       DiskType
	size      int64
	limit     int64 // blocks must end at or before this offset (the end footer)

	// Dynamic disks only.
	nb          int64    // native block size
	bitmapBytes int64    // on-disk bitmap of one native block, padded to sectors
	bat         []uint32 // the entries that map the virtual size
	batmap      []byte   // tapdisk's batmap; nil when there is none
	batmapOff   int64    // offset of the batmap header
	keyHash     KeyHash
	encrypted   bool

	problems []FormatError // findings that did not stop Open; reported by Check
}

// Open reads the metadata of a fixed or dynamic VHD of fileSize bytes and
// validates it: footer, dynamic header, BAT, tapdisk's batmap and key hash.
// Every problem that would make reads wrong or unbounded is an error: a
// *FormatError naming the field and its offset. Open reads O(BAT) bytes and
// allocates at most that much; it never reads past fileSize.
//
// A raw image (no footer) gives an error wrapping ErrNotVHD; a differencing
// disk gives one wrapping ErrDifferencing that names the parent. A dynamic
// disk whose last footer is damaged or missing but whose footer copy at
// offset 0 is valid is opened with the copy (this is what the copy is for);
// Check reports the damage.
//
// The virtual size is the footer's current size, as Hyper-V, tapdisk and
// qemu (for its own and tapdisk's images) read it, even where an old
// Virtual PC image's CHS geometry would imply less.
func Open(r io.ReaderAt, fileSize int64) (*Image, error) {
	if fileSize < 0 {
		return nil, fmt.Errorf("vhd: invalid file size %d", fileSize)
	}
	if fileSize == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotVHD)
	}
	img := &Image{r: r, fileSize: fileSize}
	if fileSize < FooterSize {
		b := make([]byte, fileSize)
		if err := img.readFile(b, 0, named("footer")); err != nil {
			return nil, err
		}
		if bytes.HasPrefix(b, []byte(footerCookie)) {
			return nil, formatErr(0, "footer", ErrTruncated, "the file is %d bytes, shorter than the %d-byte footer it starts", fileSize, FooterSize)
		}
		return nil, fmt.Errorf("%w: the file of %d bytes is smaller than a footer", ErrNotVHD, fileSize)
	}
	if err := img.openFooter(); err != nil {
		return nil, err
	}
	if err := img.checkFooter(); err != nil {
		return nil, err
	}
	switch img.typ {
	case Fixed:
		if avail := fileSize - FooterSize; avail < img.size {
			return nil, formatErr(img.footerOff+0x30, "footer.current_size", ErrTruncated,
				"a fixed disk of %d bytes needs a file of %d bytes, the file has %d", img.size, img.size+FooterSize, fileSize)
		} else if avail > img.size {
			img.note(0, "file", "%d bytes between the fixed disk's data and its footer are not part of the disk", avail-img.size)
		}
		return img, nil
	default:
		if err := img.openDynamic(); err != nil {
			return nil, err
		}
		return img, nil
	}
}

// rebase moves the offset of a *FormatError from ParseFooter/ParseHeader to
// the structure's place in the file.
func rebase(err error, base int64) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		c := *fe
		c.Offset += base
		return &c
	}
	return err
}

func (img *Image) note(off int64, field, format string, args ...any) {
	img.problems = append(img.problems, FormatError{Offset: off, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// openFooter finds the footer: at the end of the file, or (dynamic disks)
// its copy at offset 0.
func (img *Image) openFooter() error {
	fileSize := img.fileSize
	endOff := fileSize - FooterSize
	var endB, startB [FooterSize]byte
	if err := img.readFile(endB[:], endOff, named("footer")); err != nil {
		return err
	}
	endF, endErr := ParseFooter(endB[:])
	startF, startErr := endF, endErr
	if endOff > 0 {
		if err := img.readFile(startB[:], 0, named("footer copy")); err != nil {
			return err
		}
		startF, startErr = ParseFooter(startB[:])
	} else {
		startB = endB
	}
	endCookie := string(endB[:8]) == footerCookie || string(endB[:8]) == poisonCookie
	startCookie := string(startB[:8]) == footerCookie || string(startB[:8]) == poisonCookie
	img.limit = endOff
	switch {
	case endErr == nil:
		img.footer, img.footerOff = endF, endOff
		if endF.DiskType != Fixed && endOff > 0 {
			if startErr != nil {
				img.note(0, "footer copy", "the footer copy at offset 0 is damaged (%v); the footer at the end is used", rebase(startErr, 0))
			} else if startB != endB {
				img.note(0, "footer copy", "the footer copy at offset 0 differs from the footer at the end; the one at the end is used")
			}
		}
	case startErr == nil && (startF.DiskType == Dynamic || startF.DiskType == Differencing):
		img.footer, img.footerOff = startF, 0
		if !endCookie {
			img.limit = fileSize
		}
		img.note(endOff, "footer", "the footer at the end of the file is damaged or missing (%v); the copy at offset 0 is used", rebase(endErr, endOff))
	case endCookie:
		return rebase(endErr, endOff)
	case startErr == nil:
		return formatErr(endOff, "footer", ErrTruncated, "no footer at the end of the file; the footer at offset 0 describes a %s disk, which needs one there", startF.DiskType)
	case startCookie:
		return rebase(startErr, 0)
	default:
		return fmt.Errorf("%w: no %q cookie at offset 0 or at the end of the file", ErrNotVHD, footerCookie)
	}
	return nil
}

// checkFooter validates the chosen footer's fields.
func (img *Image) checkFooter() error {
	f, off := &img.footer, img.footerOff
	if f.FormatVersion>>16 != formatVersion>>16 {
		return formatErr(off+0x0C, "footer.format_version", ErrUnsupported, "version %#08x, this reader knows 1.x (%#08x)", f.FormatVersion, formatVersion)
	}
	switch f.DiskType {
	case Fixed, Dynamic, Differencing:
	default:
		return formatErr(off+0x3C, "footer.disk_type", ErrUnsupported, "disk type %d, want 2 (fixed), 3 (dynamic) or 4 (differencing)", uint32(f.DiskType))
	}
	if f.CurrentSize > MaxSize {
		return formatErr(off+0x30, "footer.current_size", nil, "virtual size %d bytes exceeds the VHD maximum of %d (2040 GiB)", f.CurrentSize, int64(MaxSize))
	}
	if f.CurrentSize%SectorSize != 0 {
		return formatErr(off+0x30, "footer.current_size", nil, "virtual size %d bytes is not a multiple of the %d-byte sector", f.CurrentSize, SectorSize)
	}
	img.typ = f.DiskType
	img.size = int64(f.CurrentSize)
	return nil
}

// region is a span of file bytes that blocks must not overlap.
type region struct {
	name     string
	off, end int64
}

func (img *Image) openDynamic() error {
	ho, err := img.headerOffset()
	if err != nil {
		return err
	}
	hb := make([]byte, HeaderSize)
	if err := img.readFile(hb, ho, named("header")); err != nil {
		return err
	}
	d, err := img.useHeader(hb, ho)
	if err != nil {
		return err
	}
	if img.limit < img.fileSize {
		d.regions = append(d.regions, region{"footer", img.limit, img.fileSize})
	}
	raw := make([]byte, d.needed*4)
	if err := img.readFile(raw, d.to, named("BAT")); err != nil {
		return err
	}
	img.useBAT(raw)
	if d.batmapAt >= 0 && d.batmapAt <= img.limit-BatmapHeaderSize {
		b := make([]byte, BatmapHeaderSize)
		if err := img.readFile(b, d.batmapAt, named("batmap header")); err != nil {
			return err
		}
		bh, err := img.parseBatmapHeader(b, d.batmapAt, d.needed)
		if err != nil {
			return err
		}
		if bh != nil {
			m := make([]byte, bh.mapLen)
			if err := img.readFile(m, bh.mapOff, named("batmap")); err != nil {
				return err
			}
			if err := img.useBatmap(bh, m); err != nil {
				return err
			}
			d.regions = append(d.regions, bh.regions()...)
		}
	}
	return img.checkBlocks(d.to, d.regions)
}

// headerOffset validates the footer's pointer to the dynamic header.
func (img *Image) headerOffset() (int64, error) {
	f, foff, limit := &img.footer, img.footerOff, img.limit
	if f.DataOffset < FooterSize {
		return 0, formatErr(foff+0x10, "footer.data_offset", nil, "dynamic header offset %#x overlaps the footer copy at offset 0", f.DataOffset)
	}
	if f.DataOffset > uint64(limit) || uint64(limit)-f.DataOffset < HeaderSize {
		return 0, formatErr(foff+0x10, "footer.data_offset", ErrTruncated, "the %d-byte dynamic header at %#x extends past the end of the file (%d bytes)", HeaderSize, f.DataOffset, img.fileSize)
	}
	return int64(f.DataOffset), nil
}

// dynLayout is where a dynamic disk's metadata lies, from its header.
type dynLayout struct {
	to       int64 // BAT offset
	batLen   int64 // BAT bytes (all MaxTableEntries)
	needed   int64 // BAT entries that map the virtual size
	batmapAt int64 // where tapdisk's batmap header would be; -1 if not a tapdisk image
	regions  []region
}

// useHeader parses and validates the dynamic header read at ho and sets up
// the image's block geometry.
func (img *Image) useHeader(hb []byte, ho int64) (dynLayout, error) {
	var d dynLayout
	limit := img.limit
	h, herr := ParseHeader(hb)
	if img.typ == Differencing {
		if herr != nil {
			return d, fmt.Errorf("%w: the parent is unknown because the dynamic header is unreadable (%v)", ErrDifferencing, rebase(herr, ho))
		}
		return d, fmt.Errorf("%w: this disk stores only changes to its parent %q (parent unique id %x); merge it into a standalone disk first (qemu-img convert, vhd-util coalesce)",
			ErrDifferencing, h.ParentName(), h.ParentUniqueID)
	}
	if herr != nil {
		return d, rebase(herr, ho)
	}
	img.header = h
	if h.Version>>16 != headerVersion>>16 {
		return d, formatErr(ho+0x18, "header.version", ErrUnsupported, "version %#08x, this reader knows 1.x (%#08x)", h.Version, headerVersion)
	}
	bs := int64(h.BlockSize)
	if bs == 0 || bs&(bs-1) != 0 {
		return d, formatErr(ho+0x20, "header.block_size", nil, "block size %d is not a power of two", bs)
	}
	if bs < MinNativeBlockSize || bs > MaxNativeBlockSize {
		return d, formatErr(ho+0x20, "header.block_size", ErrUnsupported, "block size %d is outside %d..%d bytes", bs, MinNativeBlockSize, MaxNativeBlockSize)
	}
	img.nb = bs
	img.bitmapBytes = nativeBitmapBytes(bs)
	d.needed = (img.size + bs - 1) / bs
	if d.needed > MaxBATEntries {
		return d, formatErr(ho+0x20, "header.block_size", ErrUnsupported, "a %d-byte disk of %d-byte blocks needs %d BAT entries, more than the %d this reader accepts", img.size, bs, d.needed, MaxBATEntries)
	}
	if int64(h.MaxTableEntries) < d.needed {
		return d, formatErr(ho+0x1C, "header.max_table_entries", nil, "%d BAT entries cannot map a %d-byte disk of %d-byte blocks, which needs %d", h.MaxTableEntries, img.size, bs, d.needed)
	}
	d.batLen = int64(h.MaxTableEntries) * 4
	if h.TableOffset < FooterSize || h.TableOffset > uint64(limit) {
		return d, formatErr(ho+0x10, "header.table_offset", ErrTruncated, "BAT offset %#x is outside the file's metadata area %#x..%#x", h.TableOffset, FooterSize, limit)
	}
	d.to = int64(h.TableOffset)
	if d.batLen > limit-d.to {
		return d, formatErr(ho+0x1C, "header.max_table_entries", ErrTruncated, "a BAT of %d entries (%d bytes) at %#x does not fit in the file (%d bytes)", h.MaxTableEntries, d.batLen, d.to, img.fileSize)
	}
	if d.to < ho+HeaderSize && ho < d.to+d.batLen {
		return d, formatErr(ho+0x10, "header.table_offset", nil, "the BAT at %#x..%#x overlaps the dynamic header at %#x..%#x", d.to, d.to+d.batLen, ho, ho+HeaderSize)
	}
	d.regions = []region{
		{"footer copy", 0, FooterSize},
		{"dynamic header", ho, ho + HeaderSize},
		{"BAT", d.to, d.to + d.batLen},
	}
	d.batmapAt = -1
	if f := &img.footer; f.Creator == tapCreator && f.CreatorVersion >= batmapMinCreator {
		d.batmapAt = d.to + padSector(d.batLen)
	}
	return d, nil
}

// useBAT decodes the entries that map the virtual size.
func (img *Image) useBAT(raw []byte) {
	img.bat = make([]uint32, len(raw)/4)
	for i := range img.bat {
		img.bat[i] = be32(raw[4*i:])
	}
}

// batmapHeader is a decoded tapdisk batmap header.
type batmapHeader struct {
	off     int64 // of the header
	mapOff  int64
	mapLen  int64
	version uint32
	sum     uint32
	raw     []byte
}

func (bh *batmapHeader) regions() []region {
	return []region{
		{"batmap header", bh.off, bh.off + BatmapHeaderSize},
		{"batmap", bh.mapOff, bh.mapOff + bh.mapLen},
	}
}

// parseBatmapHeader decodes the batmap header b read at off; it returns nil
// without error when there is no batmap cookie (tapdisk itself probes).
func (img *Image) parseBatmapHeader(b []byte, off, needed int64) (*batmapHeader, error) {
	if string(b[:8]) != batmapCookie {
		return nil, nil
	}
	mapOff := be64(b[8:])
	secs := int64(be32(b[16:]))
	bh := &batmapHeader{off: off, version: be32(b[20:]), sum: be32(b[24:]), raw: b}
	if bh.version>>16 != batmapVersion>>16 || bh.version > batmapVersion {
		return nil, formatErr(off+20, "batmap.version", ErrUnsupported, "batmap version %#08x, this reader knows up to %#08x", bh.version, batmapVersion)
	}
	bh.mapLen = secs * SectorSize
	if bh.mapLen > maxBatmapBytes {
		return nil, formatErr(off+16, "batmap.size", nil, "batmap of %d sectors is larger than the %d bytes %d blocks need", secs, maxBatmapBytes, MaxBATEntries)
	}
	if bh.mapLen*8 < needed {
		return nil, formatErr(off+16, "batmap.size", nil, "batmap of %d sectors maps %d blocks, the disk has %d", secs, bh.mapLen*8, needed)
	}
	if mapOff < FooterSize || mapOff > uint64(img.limit) || int64(mapOff) > img.limit-bh.mapLen {
		return nil, formatErr(off+8, "batmap.offset", ErrTruncated, "batmap of %d bytes at %#x extends past the end of the file (%d bytes)", bh.mapLen, mapOff, img.fileSize)
	}
	bh.mapOff = int64(mapOff)
	if c := b[29]; bh.version >= batmapVersion && c != 0 && c != keyHashCookieValue {
		return nil, formatErr(off+29, "batmap.key_hash_cookie", ErrUnsupported, "key hash cookie %d, want 0 (plain) or 1 (encrypted)", c)
	}
	return bh, nil
}

// useBatmap verifies the batmap m against its header and adopts both.
func (img *Image) useBatmap(bh *batmapHeader, m []byte) error {
	var s uint32
	for _, c := range m {
		if bh.version == batmapVersionOld {
			s += uint32(int32(int8(c))) // version 1.1 summed signed chars
		} else {
			s += uint32(c)
		}
	}
	if ^s != bh.sum {
		return formatErr(bh.off+24, "batmap.checksum", nil, "stored %#08x, computed %#08x over the %d-byte batmap", bh.sum, ^s, bh.mapLen)
	}
	if bh.version >= batmapVersion && bh.raw[29] == keyHashCookieValue {
		img.encrypted = true
		copy(img.keyHash.Nonce[:], bh.raw[30:62])
		copy(img.keyHash.Hash[:], bh.raw[62:94])
	}
	img.batmap = m
	img.batmapOff = bh.off
	return nil
}

// checkBlocks validates every allocated BAT entry: inside the file, clear of
// the metadata and of every other block.
func (img *Image) checkBlocks(to int64, regions []region) error {
	for i, a := range regions {
		for _, b := range regions[i+1:] {
			if a.off < b.end && b.off < a.end {
				return formatErr(b.off, b.name, nil, "the %s at %#x..%#x overlaps the %s at %#x..%#x", b.name, b.off, b.end, a.name, a.off, a.end)
			}
		}
	}
	var sorted []uint64 // sector<<32 | index
	for j, e := range img.bat {
		if e == unusedBAT {
			continue
		}
		off := int64(e) * SectorSize
		end := off + img.extent(j)
		field := fmt.Sprintf("bat[%d]", j)
		if end > img.limit {
			return formatErr(to+4*int64(j), field, ErrTruncated, "block %d at %#x..%#x extends past the end of the data area at %#x", j, off, end, img.limit)
		}
		for _, r := range regions {
			if off < r.end && r.off < end {
				return formatErr(to+4*int64(j), field, nil, "block %d at %#x..%#x overlaps the %s at %#x..%#x", j, off, end, r.name, r.off, r.end)
			}
		}
		sorted = append(sorted, uint64(e)<<32|uint64(j))
	}
	slices.Sort(sorted)
	for k := 1; k < len(sorted); k++ {
		pj := int(uint32(sorted[k-1]))
		j := int(uint32(sorted[k]))
		poff := int64(sorted[k-1]>>32) * SectorSize
		off := int64(sorted[k]>>32) * SectorSize
		if pend := poff + img.extent(pj); off < pend {
			return formatErr(to+4*int64(j), fmt.Sprintf("bat[%d]", j), nil, "block %d at %#x overlaps block %d at %#x..%#x", j, off, pj, poff, pend)
		}
	}
	return nil
}

// extent is the number of file bytes native block j occupies: its bitmap
// and the data sectors that map the virtual size.
func (img *Image) extent(j int) int64 {
	return img.bitmapBytes + min(img.nb, img.size-int64(j)*img.nb)
}

// field names what is being read, formatted only for an error message (the
// read paths make no allocation).
type field struct {
	name  string
	block int // >= 0: name is a part of this native block
}

func named(s string) field { return field{name: s, block: -1} }

func blockPart(j int, part string) field { return field{name: part, block: j} }

func (f field) String() string {
	if f.block >= 0 {
		return fmt.Sprintf("block %d %s", f.block, f.name)
	}
	return f.name
}

// readFile reads exactly len(b) bytes at off, naming f in errors.
func (img *Image) readFile(b []byte, off int64, f field) error {
	if len(b) == 0 {
		return nil
	}
	if off < 0 || off > img.fileSize || int64(len(b)) > img.fileSize-off {
		return formatErr(off, f.String(), ErrTruncated, "reading %d bytes past the end of the file (%d bytes)", len(b), img.fileSize)
	}
	n, err := img.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return formatErr(off, f.String(), err, "read %d of %d bytes", n, len(b))
}

// Type returns the disk type (Fixed or Dynamic).
func (img *Image) Type() DiskType { return img.typ }

// Size returns the virtual size in bytes.
func (img *Image) Size() int64 { return img.size }

// Footer returns the footer in use (the one at the end of the file, or its
// copy at offset 0 when the end one is damaged).
func (img *Image) Footer() Footer { return img.footer }

// Header returns the dynamic disk header; ok is false for a fixed disk.
func (img *Image) Header() (h Header, ok bool) { return img.header, img.typ == Dynamic }

// Creator returns the creator application with NULs and spaces trimmed
// ("tap", "qem2", "win", "vpc").
func (img *Image) Creator() string {
	return string(bytes.TrimRight([]byte(img.footer.Creator), "\x00 "))
}

// NativeBlockSize returns the file's own block size (the dynamic header's),
// or BlockSize for a fixed disk.
func (img *Image) NativeBlockSize() int64 {
	if img.typ == Fixed {
		return BlockSize
	}
	return img.nb
}

// KeyHash returns the key hash of an encrypted disk; ok is true when the
// batmap's key hash cookie marks the disk encrypted.
func (img *Image) KeyHash() (KeyHash, bool) { return img.keyHash, img.encrypted }

// NumBlocks returns the number of BlockSize blocks of the virtual disk,
// ceil(Size/BlockSize), allocated or not.
func (img *Image) NumBlocks() int { return int((img.size + BlockSize - 1) / BlockSize) }

// BlockInfo describes one BlockSize block of the virtual disk.
type BlockInfo struct {
	Index int // block number; the block maps guest bytes [Index*BlockSize, (Index+1)*BlockSize)
	// Bitmap is the block's sector bitmap (BitmapSize bytes, MSB first),
	// all ones for fixed disks and for blocks tapdisk's batmap marks full;
	// nil when the block is not allocated.
	Bitmap Bitmap
	Full   bool // every sector present
	// DataOffset is the file offset of the block's first data sector, or -1
	// when the block is unallocated or its data is not contiguous in the
	// file (native blocks smaller than BlockSize).
	DataOffset int64
}

// Allocated reports whether the block is allocated in the file.
func (b BlockInfo) Allocated() bool { return b.Bitmap != nil }

// Block returns the description of block i (allocated or not).
func (img *Image) Block(i int) (BlockInfo, error) {
	if i < 0 || i >= img.NumBlocks() {
		return BlockInfo{Index: i, DataOffset: -1}, fmt.Errorf("vhd: block %d out of range (the disk has %d)", i, img.NumBlocks())
	}
	if !img.allocated(i) {
		return BlockInfo{Index: i, DataOffset: -1}, nil
	}
	bm := make(Bitmap, BitmapSize)
	off, err := img.blockBitmap(i, bm)
	if err != nil {
		return BlockInfo{Index: i, DataOffset: -1}, err
	}
	return BlockInfo{Index: i, Bitmap: bm, Full: bm.Full(), DataOffset: off}, nil
}

// Blocks iterates over the allocated blocks in ascending block order. After
// an error (a failed read) it yields that error once and stops. Each
// BlockInfo has its own Bitmap.
func (img *Image) Blocks() iter.Seq2[BlockInfo, error] {
	return func(yield func(BlockInfo, error) bool) {
		for i := range img.NumBlocks() {
			if !img.allocated(i) {
				continue
			}
			b, err := img.Block(i)
			if !yield(b, err) || err != nil {
				return
			}
		}
	}
}

// Allocated reports whether block i is allocated (has any allocated native
// block), from the block table alone: unlike Block, it reads nothing. A
// fixed VHD's blocks are all allocated.
func (img *Image) Allocated(i int) bool {
	return i >= 0 && i < img.NumBlocks() && img.allocated(i)
}

// allocated reports whether BlockSize block i has any allocated native block.
func (img *Image) allocated(i int) bool {
	if img.typ == Fixed {
		return true
	}
	if img.nb >= BlockSize {
		return img.bat[int64(i)*BlockSize/img.nb] != unusedBAT
	}
	k := int(BlockSize / img.nb)
	for j := i * k; j < (i+1)*k && j < len(img.bat); j++ {
		if img.bat[j] != unusedBAT {
			return true
		}
	}
	return false
}

// batmapFull reports whether the batmap marks native block j full.
func (img *Image) batmapFull(j int) bool {
	return img.batmap != nil && j>>3 < len(img.batmap) && img.batmap[j>>3]&(0x80>>(j&7)) != 0
}

// blockBitmap fills bm (BitmapSize bytes) with the bitmap of allocated
// block i and returns its data offset (-1 when not contiguous).
func (img *Image) blockBitmap(i int, bm Bitmap) (int64, error) {
	bm = bm[:BitmapSize]
	if img.typ == Fixed {
		fillOnes(bm)
		return int64(i) * BlockSize, nil
	}
	if img.nb >= BlockSize {
		k := int(img.nb / BlockSize)
		j, sub := i/k, int64(i%k)
		base := int64(img.bat[j]) * SectorSize
		data := base + img.bitmapBytes + sub*BlockSize
		if img.batmapFull(j) {
			fillOnes(bm)
			return data, nil
		}
		return data, img.readFile(bm, base+sub*BitmapSize, blockPart(j, "bitmap"))
	}
	clear(bm)
	spn := int(img.nb / SectorSize) // sectors per native block
	k := int(BlockSize / img.nb)
	var nbm []byte
	for t := range k {
		j := i*k + t
		if j >= len(img.bat) {
			break
		}
		if img.bat[j] == unusedBAT {
			continue
		}
		if img.batmapFull(j) {
			for s := range spn {
				bm.Set(t*spn + s)
			}
			continue
		}
		if nbm == nil {
			nbm = make([]byte, (spn+7)/8)
		}
		if err := img.readFile(nbm, int64(img.bat[j])*SectorSize, blockPart(j, "bitmap")); err != nil {
			return -1, err
		}
		for s := range spn {
			if Bitmap(nbm).Present(s) {
				bm.Set(t*spn + s)
			}
		}
	}
	return -1, nil
}

func fillOnes(b []byte) {
	for i := range b {
		b[i] = 0xFF
	}
}

// ReadBlock fills dst[:BlockSize] with block i's stored bytes: the file's
// bytes for present sectors (ciphertext for an encrypted disk), zeros for
// absent sectors, unallocated blocks and bytes past the virtual size.
func (img *Image) ReadBlock(i int, dst []byte) error {
	if i < 0 || i >= img.NumBlocks() {
		return fmt.Errorf("vhd: block %d out of range (the disk has %d)", i, img.NumBlocks())
	}
	if len(dst) < BlockSize {
		return fmt.Errorf("vhd: ReadBlock needs a buffer of %d bytes, got %d", BlockSize, len(dst))
	}
	start := int64(i) * BlockSize
	n := min(BlockSize, img.size-start)
	if err := img.read(dst[:n], start); err != nil {
		return fmt.Errorf("vhd: reading block %d: %w", i, err)
	}
	clear(dst[n:BlockSize])
	return nil
}

// ReadAt reads guest bytes as stored (ciphertext for an encrypted disk;
// zeros where nothing is stored). It returns io.EOF at or past Size.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vhd: ReadAt at negative offset %d", off)
	}
	if off >= img.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	short := false
	if int64(n) > img.size-off {
		n = int(img.size - off)
		short = true
	}
	if err := img.read(p[:n], off); err != nil {
		return 0, err
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

// read fills p with guest bytes at off; the range is within the disk.
func (img *Image) read(p []byte, off int64) error {
	if img.typ == Fixed {
		return img.readFile(p, off, named("disk data"))
	}
	var scratch [BitmapSize + 8]byte
	for len(p) > 0 {
		j := int(off / img.nb)
		in := off - int64(j)*img.nb
		// At most BlockSize per step keeps the bitmap span within scratch.
		n := min(int64(len(p)), img.nb-in, BlockSize-off%BlockSize)
		chunk := p[:n]
		if e := img.bat[j]; e == unusedBAT {
			clear(chunk)
		} else {
			base := int64(e) * SectorSize
			data := base + img.bitmapBytes
			if img.batmapFull(j) {
				if err := img.readFile(chunk, data+in, blockPart(j, "data")); err != nil {
					return err
				}
			} else if err := img.readSparse(chunk, j, base, in, scratch[:]); err != nil {
				return err
			}
		}
		p = p[n:]
		off += n
	}
	return nil
}

// readSparse fills chunk with native block j's bytes at in (relative to the
// block), reading present sectors and zeroing absent ones.
func (img *Image) readSparse(chunk []byte, j int, base, in int64, scratch []byte) error {
	n := int64(len(chunk))
	s0 := int(in / SectorSize)
	s1 := int((in+n-1)/SectorSize) + 1
	b0, b1 := s0/8, (s1+7)/8
	bm := Bitmap(scratch[:b1-b0])
	if err := img.readFile(bm, base+int64(b0), blockPart(j, "bitmap")); err != nil {
		return err
	}
	data := base + img.bitmapBytes
	for s := s0; s < s1; {
		rel := s - b0*8
		e := bm.run(rel, s1-b0*8) + b0*8
		from := max(int64(s)*SectorSize, in)
		to := min(int64(e)*SectorSize, in+n)
		dst := chunk[from-in : to-in]
		if bm.Present(rel) {
			if err := img.readFile(dst, data+from, blockPart(j, "data")); err != nil {
				return err
			}
		} else {
			clear(dst)
		}
		s = e
	}
	return nil
}
