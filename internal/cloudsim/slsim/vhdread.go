package slsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// This file is the simulated import backplane's own reader of VHD images.
// It shares no code with the module's vhd, xts or vhdcrypt packages: it
// exists to check their output, and a checker built on them would repeat
// their mistakes. It was written from the format descriptions, not from
// those packages:
//
//   - footer, dynamic header, BAT and sector bitmaps: Microsoft's "Virtual
//     Hard Disk Image Format Specification" 1.0 (October 2006), sections
//     "Hard Disk Footer Format", "Dynamic Disk Header Format" and "Block
//     Allocation Table and Data Blocks";
//   - the batmap and the key hash stored after it: blktap
//     (github.com/xapi-project/blktap), include/libvhd.h (struct
//     dd_batmap_hdr, struct vhd_keyhash) and vhd/lib/libvhd.c
//     (vhd_batmap_header_offset, vhd_has_batmap), as summarised in
//     ../../../docs/FORMAT.md.
//
// It reads only what it is asked for, through an io.ReaderAt, so that the
// simulator verifies an image with a handful of ranged GETs. Integers in the
// file are big-endian.

const (
	vhdSectorSize = 512
	vhdFooterSize = 512
	vhdHeaderSize = 1024

	vhdDiskFixed        = 2
	vhdDiskDynamic      = 3
	vhdDiskDifferencing = 4

	// vhdMaxSize is the largest virtual size the specification allows
	// (2040 GiB); a larger one is a damaged footer.
	vhdMaxSize = 2040 << 30
	// vhdMinBlock and vhdMaxBlock bound the dynamic header's block size. The
	// specification's default, and the only size tapdisk writes, is 2 MiB;
	// the bounds only keep a damaged header from asking for absurd reads.
	vhdMinBlock = 1 << 12
	vhdMaxBlock = 1 << 28

	vhdUnallocated = 0xFFFFFFFF
)

// errNotVHD: the object has no VHD footer at its end.
var errNotVHD = errors.New("no VHD footer (cookie \"conectix\") in the last 512 bytes")

// vhdFormatError reports a structure of the file that breaks the format.
type vhdFormatError struct {
	what   string // structure and field
	offset int64  // file offset of the structure
	detail string
}

func (e *vhdFormatError) Error() string {
	return fmt.Sprintf("%s at file offset %d: %s", e.what, e.offset, e.detail)
}

func badVHD(what string, off int64, format string, a ...any) error {
	return &vhdFormatError{what: what, offset: off, detail: fmt.Sprintf(format, a...)}
}

// errVHDDifferencing: the disk needs a parent image.
var errVHDDifferencing = errors.New("differencing VHD (it needs its parent image)")

// vhdKeyHash is the key check tapdisk keeps in the batmap header of an
// encrypted image: hash = SHA-256(nonce || DEK).
type vhdKeyHash struct {
	nonce [32]byte
	hash  [32]byte
}

// vhdFile is an opened VHD: fixed or dynamic.
type vhdFile struct {
	ra       io.ReaderAt
	fileSize int64
	diskType uint32
	size     int64 // virtual size: the footer's current size

	// Dynamic disks only.
	batOffset    int64
	batEntries   uint32
	blockSize    int64
	bitmapBytes  int64  // sector bitmap size, whole sectors
	batmap       []byte // nil when the image has no (usable) batmap
	keyHash      *vhdKeyHash
	dataEnd      int64 // blocks must end before the closing footer
	creator      string
	creatorMinor uint32

	// blocks keeps the allocation of the blocks read last, so that
	// reading a block piece by piece reads its BAT entry and sector
	// bitmap once.
	blocks map[int64]*vhdBlock
}

// maxCachedBlocks bounds vhdFile.blocks (a bitmap is 512 bytes).
const maxCachedBlocks = 256

// readFull reads len(p) bytes at off; a short read is an error naming what
// was read.
func readFull(ra io.ReaderAt, p []byte, off int64, what string) error {
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return badVHD(what, off, "the file ends after %d of %d bytes", n, len(p))
	}
	return err
}

// vhdChecksum is the specification's checksum: the ones' complement of the
// sum of all bytes of the structure, its own checksum field counted as zero.
func vhdChecksum(b []byte, field int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= field && i < field+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// openVHD reads and checks the footer and, for a dynamic disk, the dynamic
// header and the batmap (with the key hash). Block allocation and sector
// bitmaps are read later, on demand.
func openVHD(ra io.ReaderAt, fileSize int64) (*vhdFile, error) {
	if fileSize < vhdFooterSize {
		return nil, errNotVHD
	}
	v := &vhdFile{ra: ra, fileSize: fileSize}
	footerOff := fileSize - vhdFooterSize
	f := make([]byte, vhdFooterSize)
	if err := readFull(ra, f, footerOff, "footer"); err != nil {
		return nil, err
	}
	if string(f[0:8]) != "conectix" {
		return nil, errNotVHD
	}
	if got, want := binary.BigEndian.Uint32(f[64:]), vhdChecksum(f, 64); got != want {
		return nil, badVHD("footer checksum", footerOff, "stored %#08x, computed %#08x", got, want)
	}
	if major := binary.BigEndian.Uint32(f[12:]) >> 16; major != 1 {
		return nil, badVHD("footer file format version", footerOff, "major version %d, want 1", major)
	}
	cur := binary.BigEndian.Uint64(f[48:])
	if cur > vhdMaxSize {
		return nil, badVHD("footer current size", footerOff, "%d bytes is more than the format's 2040 GiB", cur)
	}
	v.size = int64(cur)
	v.creator = string(f[28:32])
	v.creatorMinor = binary.BigEndian.Uint32(f[32:])
	v.diskType = binary.BigEndian.Uint32(f[60:])
	switch v.diskType {
	case vhdDiskFixed:
		if v.size > footerOff {
			return nil, badVHD("footer current size", footerOff, "a fixed disk of %d bytes needs a file of at least %d bytes", v.size, v.size+vhdFooterSize)
		}
		return v, nil
	case vhdDiskDynamic:
	case vhdDiskDifferencing:
		return nil, errVHDDifferencing
	default:
		return nil, badVHD("footer disk type", footerOff, "type %d is none of fixed (2), dynamic (3), differencing (4)", v.diskType)
	}

	// Dynamic header.
	hOff := binary.BigEndian.Uint64(f[16:])
	if hOff > uint64(footerOff) || uint64(footerOff)-hOff < vhdHeaderSize {
		return nil, badVHD("footer data offset", footerOff, "the dynamic header at %d does not fit in the file", hOff)
	}
	h := make([]byte, vhdHeaderSize)
	if err := readFull(ra, h, int64(hOff), "dynamic header"); err != nil {
		return nil, err
	}
	if string(h[0:8]) != "cxsparse" {
		return nil, badVHD("dynamic header cookie", int64(hOff), "%q, want \"cxsparse\"", h[0:8])
	}
	if got, want := binary.BigEndian.Uint32(h[36:]), vhdChecksum(h, 36); got != want {
		return nil, badVHD("dynamic header checksum", int64(hOff), "stored %#08x, computed %#08x", got, want)
	}
	if major := binary.BigEndian.Uint32(h[24:]) >> 16; major != 1 {
		return nil, badVHD("dynamic header version", int64(hOff), "major version %d, want 1", major)
	}
	bs := binary.BigEndian.Uint32(h[32:])
	if bs < vhdMinBlock || bs > vhdMaxBlock || bits.OnesCount32(bs) != 1 {
		return nil, badVHD("dynamic header block size", int64(hOff), "%d is not a power of two from %d to %d", bs, vhdMinBlock, vhdMaxBlock)
	}
	v.blockSize = int64(bs)
	sectorsPerBlock := v.blockSize / vhdSectorSize
	v.bitmapBytes = roundUp((sectorsPerBlock+7)/8, vhdSectorSize)
	v.batEntries = binary.BigEndian.Uint32(h[28:])
	if need := (v.size + v.blockSize - 1) / v.blockSize; int64(v.batEntries) < need {
		return nil, badVHD("dynamic header max table entries", int64(hOff), "%d entries cannot map %d bytes in blocks of %d", v.batEntries, v.size, v.blockSize)
	}
	bat := binary.BigEndian.Uint64(h[16:])
	batBytes := roundUp(int64(v.batEntries)*4, vhdSectorSize)
	if bat > uint64(footerOff) || uint64(footerOff)-bat < uint64(batBytes) {
		return nil, badVHD("dynamic header table offset", int64(hOff), "a BAT of %d bytes at %d does not fit in the file", batBytes, bat)
	}
	v.batOffset = int64(bat)
	v.dataEnd = footerOff
	if err := v.readBatmap(batBytes); err != nil {
		return nil, err
	}
	return v, nil
}

// readBatmap reads tapdisk's batmap, which sits in the sector after the BAT,
// and the key hash kept in its header. tapdisk looks for it only in images
// it created, version 1.2 or later (libvhd.c, vhd_has_batmap); any other
// image has neither batmap nor key hash.
func (v *vhdFile) readBatmap(batBytes int64) error {
	if v.creator != "tap\x00" || v.creatorMinor < 0x00010002 {
		return nil
	}
	hOff := v.batOffset + batBytes
	if hOff > v.dataEnd || v.dataEnd-hOff < vhdSectorSize {
		return nil // no room for a batmap header: the image has none
	}
	h := make([]byte, vhdSectorSize)
	if err := readFull(v.ra, h, hOff, "batmap header"); err != nil {
		return err
	}
	if string(h[0:8]) != "tdbatmap" {
		return nil
	}
	mapOff := binary.BigEndian.Uint64(h[8:])
	mapSectors := binary.BigEndian.Uint32(h[16:])
	version := binary.BigEndian.Uint32(h[20:])
	need := roundUp((int64(v.batEntries)+7)/8, vhdSectorSize) / vhdSectorSize
	if int64(mapSectors) < need {
		return badVHD("batmap size", hOff, "%d sectors cannot hold %d bits", mapSectors, v.batEntries)
	}
	mapBytes := int64(mapSectors) * vhdSectorSize
	if mapOff > uint64(v.dataEnd) || uint64(v.dataEnd)-mapOff < uint64(mapBytes) {
		return badVHD("batmap offset", hOff, "a batmap of %d bytes at %d does not fit in the file", mapBytes, mapOff)
	}
	m := make([]byte, mapBytes)
	if err := readFull(v.ra, m, int64(mapOff), "batmap"); err != nil {
		return err
	}
	var sum uint32
	for _, c := range m {
		sum += uint32(c)
	}
	if got := binary.BigEndian.Uint32(h[24:]); got != ^sum {
		return badVHD("batmap checksum", hOff, "stored %#08x, computed %#08x", got, ^sum)
	}
	v.batmap = m
	// The key hash fields exist from batmap version 1.2 on; cookie 1 marks
	// an encrypted disk.
	if version >= 0x00010002 && h[29] == 1 {
		kh := &vhdKeyHash{}
		copy(kh.nonce[:], h[30:62])
		copy(kh.hash[:], h[62:94])
		v.keyHash = kh
	}
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// vhdBlock is one block's allocation.
type vhdBlock struct {
	allocated bool
	full      bool   // the batmap marks every sector present
	bitmap    []byte // sector bitmap (nil when full or unallocated)
	dataOff   int64  // file offset of the block's first data sector
}

// block returns the allocation of block i of a dynamic disk.
func (v *vhdFile) block(i int64) (*vhdBlock, error) {
	if b, ok := v.blocks[i]; ok {
		return b, nil
	}
	b, err := v.readBlock(i)
	if err != nil {
		return nil, err
	}
	if v.blocks == nil || len(v.blocks) >= maxCachedBlocks {
		v.blocks = map[int64]*vhdBlock{}
	}
	v.blocks[i] = b
	return b, nil
}

// readBlock reads the allocation of block i of a dynamic disk.
func (v *vhdFile) readBlock(i int64) (*vhdBlock, error) {
	if i < 0 || i >= int64(v.batEntries) {
		return nil, fmt.Errorf("block %d out of range", i)
	}
	var e [4]byte
	entOff := v.batOffset + 4*i
	if err := readFull(v.ra, e[:], entOff, "BAT entry"); err != nil {
		return nil, err
	}
	sector := binary.BigEndian.Uint32(e[:])
	if sector == vhdUnallocated {
		return &vhdBlock{}, nil
	}
	start := int64(sector) * vhdSectorSize
	if start > v.dataEnd || v.dataEnd-start < v.bitmapBytes+v.blockSize {
		return nil, badVHD("BAT entry", entOff, "block %d at sector %d runs past the closing footer", i, sector)
	}
	b := &vhdBlock{allocated: true, dataOff: start + v.bitmapBytes}
	if v.batmap != nil && v.batmap[i/8]&(0x80>>(i%8)) != 0 {
		b.full = true
		return b, nil
	}
	b.bitmap = make([]byte, v.bitmapBytes)
	if err := readFull(v.ra, b.bitmap, start, "sector bitmap"); err != nil {
		return nil, err
	}
	return b, nil
}

// present reports whether sector s (counted from the start of the block)
// is stored in the file. Bit 0 of the bitmap is the most significant bit of
// its first byte.
func (b *vhdBlock) present(s int64) bool {
	if !b.allocated {
		return false
	}
	return b.full || b.bitmap[s/8]&(0x80>>(s%8)) != 0
}

// readSectors reads n sectors of the virtual disk from sector lba, as
// stored (ciphertext for an encrypted image), into dst (n*512 bytes). Absent
// sectors read as zeros; present[k] says whether sector lba+k is stored.
// The range must lie within one block of a dynamic disk.
func (v *vhdFile) readSectors(dst []byte, lba int64) (present []bool, err error) {
	n := int64(len(dst)) / vhdSectorSize
	if int64(len(dst)) != n*vhdSectorSize || n == 0 {
		return nil, fmt.Errorf("readSectors: %d bytes is not a whole number of sectors", len(dst))
	}
	if lba < 0 || (lba+n)*vhdSectorSize > roundUp(v.size, vhdSectorSize) {
		return nil, fmt.Errorf("readSectors: sectors %d-%d are outside the %d-byte disk", lba, lba+n-1, v.size)
	}
	present = make([]bool, n)
	if v.diskType == vhdDiskFixed {
		// The data is the file's first size bytes; a last partial sector
		// reads as zeros past the end of the disk.
		clear(dst)
		end := min(int64(len(dst)), v.size-lba*vhdSectorSize)
		if err := readFull(v.ra, dst[:end], lba*vhdSectorSize, "disk data"); err != nil {
			return nil, err
		}
		for k := range present {
			present[k] = true
		}
		return present, nil
	}
	spb := v.blockSize / vhdSectorSize
	bi, first := lba/spb, lba%spb
	if first+n > spb {
		return nil, fmt.Errorf("readSectors: sectors %d-%d cross a block boundary", lba, lba+n-1)
	}
	clear(dst)
	blk, err := v.block(bi)
	if err != nil {
		return nil, err
	}
	if !blk.allocated {
		return present, nil
	}
	if err := readFull(v.ra, dst, blk.dataOff+first*vhdSectorSize, "block data"); err != nil {
		return nil, err
	}
	for k := int64(0); k < n; k++ {
		if present[k] = blk.present(first + k); !present[k] {
			clear(dst[k*vhdSectorSize : (k+1)*vhdSectorSize])
		}
	}
	return present, nil
}
