// Package hvhd builds hostile VHD files for the hardening tests: valid base
// images made with package vhd's Writer and e2e's encryptor, then mutated
// with the checksums fixed up so that each mutation reaches the check it
// targets instead of stopping at a checksum.
//
// Nothing here is a hand-edited binary: every case is computed from a base
// image by a named mutation, so the corpus can be regenerated and read.
//
// What this package does NOT do: it does not judge the results; the tests
// in test/hostile and test/fuzzall do.
package hvhd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/vhd"
)

// Offsets of fields inside the structures (VHD specification; ../../../docs/FORMAT.md).
const (
	FooterDataOffset   = 0x10
	FooterCreator      = 0x1C
	FooterCreatorVer   = 0x20
	FooterOrigSize     = 0x28
	FooterCurSize      = 0x30
	FooterDiskType     = 0x3C
	FooterChecksum     = 0x40
	HeaderDataOffset   = 0x08
	HeaderTableOffset  = 0x10
	HeaderVersion      = 0x18
	HeaderMaxEntries   = 0x1C
	HeaderBlockSize    = 0x20
	HeaderChecksum     = 0x24
	HeaderParentName   = 0x40
	BatmapOffsetField  = 8
	BatmapSizeField    = 16
	BatmapVersionField = 20
	BatmapChecksum     = 24
	BatmapKeyCookie    = 29
	BatmapNonce        = 30
	BatmapHash         = 62
)

// DEKBytes is the 64-byte key the encrypted base image is encrypted with.
// Its bytes are distinctive so that a leak is easy to find in any output.
func DEKBytes() []byte {
	k := make([]byte, 64)
	for i := range k {
		k[i] = byte(0xA0 ^ i*7)
	}
	return k
}

// BaseSize is the virtual size of the base images: three BlockSize blocks,
// the last one only 3 sectors long.
const BaseSize = 2*vhd.BlockSize + 3*vhd.SectorSize

// BaseGuest returns the guest bytes of the base images: block 0 partly
// written (sectors 0..99 and 4000), block 1 empty, block 2 (3 sectors) full.
func BaseGuest() []byte {
	g := make([]byte, BaseSize)
	for s := 0; s < 100; s++ {
		fillSector(g[s*vhd.SectorSize:], byte(s)|1)
	}
	fillSector(g[4000*vhd.SectorSize:], 0x40)
	for s := 0; s < 3; s++ {
		fillSector(g[2*vhd.BlockSize+s*vhd.SectorSize:], byte(0x80+s))
	}
	return g
}

func fillSector(b []byte, v byte) {
	for i := range vhd.SectorSize {
		b[i] = v ^ byte(i)
	}
}

// BaseLayout is the allocation of BaseGuest with partial bitmaps.
func BaseLayout() *vhd.Layout {
	bm0 := make(vhd.Bitmap, vhd.BitmapSize)
	for s := 0; s < 100; s++ {
		bm0.Set(s)
	}
	bm0.Set(4000)
	bm2 := make(vhd.Bitmap, vhd.BitmapSize)
	for s := 0; s < 3; s++ {
		bm2.Set(s)
	}
	return &vhd.Layout{
		Size:      BaseSize,
		Allocated: []vhd.Bitmap{bm0, nil, bm2},
		UniqueID:  [16]byte{0xE2, 0xE0},
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// PlainBase writes BaseGuest as an unencrypted tapdisk-style dynamic VHD.
func PlainBase() ([]byte, error) {
	return WriteDynamic(BaseLayout(), BaseGuest())
}

// WriteDynamic writes guest (len must be l.Size) as a dynamic VHD with
// layout l.
func WriteDynamic(l *vhd.Layout, guest []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := vhd.NewWriter(&buf, l)
	if err != nil {
		return nil, err
	}
	blk := make([]byte, vhd.BlockSize)
	for i, bm := range l.Allocated {
		if bm == nil {
			continue
		}
		clear(blk)
		copy(blk, guest[int64(i)*vhd.BlockSize:min(int64(i+1)*vhd.BlockSize, int64(len(guest)))])
		if err := w.WriteBlock(i, blk); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// EncryptedBase encrypts PlainBase with DEKBytes (fixed nonce, id and
// timestamp, so the bytes are the same on every run).
func EncryptedBase() ([]byte, error) {
	plain, err := PlainBase()
	if err != nil {
		return nil, err
	}
	dek, err := vhdcrypt.DEKFromBytes(DEKBytes())
	if err != nil {
		return nil, err
	}
	defer dek.Zero()
	var out bytes.Buffer
	err = vhdcrypt.EncryptImage(context.Background(), &out, bytes.NewReader(plain), dek,
		vhdcrypt.WithNonce([32]byte{9, 9, 9}), vhdcrypt.WithUniqueID([16]byte{0xE2, 0xE1}),
		vhdcrypt.WithTimestamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), vhdcrypt.WithWorkers(1))
	if err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Map is where the structures of a tapdisk-style image lie.
type Map struct {
	Header, BAT   int64 // offsets
	Entries       int   // BAT entries
	BatmapHeader  int64
	Batmap        int64
	BlockBitmaps  []int64 // file offset of each block's bitmap, -1 if unallocated
	End           int64   // offset of the end footer
	HasBatmapCopy bool
}

// Locate reads the map of b, a tapdisk-style dynamic VHD.
func Locate(b []byte) (Map, error) {
	if len(b) < 0x600 {
		return Map{}, fmt.Errorf("hvhd: %d bytes is too small for a dynamic VHD", len(b))
	}
	m := Map{Header: int64(be64(b[FooterDataOffset:])), End: int64(len(b) - vhd.FooterSize)}
	if m.Header+vhd.HeaderSize > int64(len(b)) {
		return Map{}, fmt.Errorf("hvhd: header offset %#x out of range", m.Header)
	}
	h := b[m.Header:]
	m.BAT = int64(be64(h[HeaderTableOffset:]))
	m.Entries = int(be32(h[HeaderMaxEntries:]))
	m.BatmapHeader = m.BAT + pad(int64(m.Entries)*4)
	m.Batmap = int64(be64(b[m.BatmapHeader+BatmapOffsetField:]))
	for j := range m.Entries {
		e := be32(b[m.BAT+4*int64(j):])
		if e == 0xFFFFFFFF {
			m.BlockBitmaps = append(m.BlockBitmaps, -1)
		} else {
			m.BlockBitmaps = append(m.BlockBitmaps, int64(e)*vhd.SectorSize)
		}
	}
	return m, nil
}

func pad(n int64) int64 { return (n + vhd.SectorSize - 1) / vhd.SectorSize * vhd.SectorSize }

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// Put32 and Put64 write big-endian integers.
func Put32(b []byte, off int64, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }

// Put64 writes a big-endian uint64 at off.
func Put64(b []byte, off int64, v uint64) { binary.BigEndian.PutUint64(b[off:], v) }

// Checksum is the VHD checksum of s: the ones' complement of the byte sum,
// with the 4 bytes at skip counted as zero.
func Checksum(s []byte, skip int) uint32 {
	var sum uint32
	for i, c := range s {
		if i >= skip && i < skip+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// FixFooterAt recomputes the checksum of the footer at off.
func FixFooterAt(b []byte, off int64) {
	f := b[off : off+vhd.FooterSize]
	Put32(f, FooterChecksum, Checksum(f, FooterChecksum))
}

// FixFooters recomputes the checksums of the footer copy at 0 and of the
// footer at the end.
func FixFooters(b []byte) {
	FixFooterAt(b, 0)
	if len(b) >= 2*vhd.FooterSize {
		FixFooterAt(b, int64(len(b)-vhd.FooterSize))
	}
}

// EditFooters applies edit to both footers (the copy at 0 and the one at the
// end) and fixes their checksums.
func EditFooters(b []byte, edit func(f []byte)) {
	edit(b[:vhd.FooterSize])
	if len(b) >= 2*vhd.FooterSize {
		edit(b[len(b)-vhd.FooterSize:])
	}
	FixFooters(b)
}

// FixHeader recomputes the dynamic header's checksum at off.
func FixHeader(b []byte, off int64) {
	h := b[off : off+vhd.HeaderSize]
	Put32(h, HeaderChecksum, Checksum(h, HeaderChecksum))
}

// FixBatmap recomputes the batmap checksum from the map the header at hdr
// points to.
func FixBatmap(b []byte, hdr int64) {
	off := int64(be64(b[hdr+BatmapOffsetField:]))
	n := int64(be32(b[hdr+BatmapSizeField:])) * vhd.SectorSize
	if off < 0 || off+n > int64(len(b)) || n < 0 {
		return
	}
	var s uint32
	for _, c := range b[off : off+n] {
		s += uint32(c)
	}
	Put32(b, hdr+BatmapChecksum, ^s)
}

// Sparse is a file of Size bytes that exists mostly as a fill byte: Parts
// are placed at their offsets over it. It stands for a huge file (a header
// that claims terabytes) without the memory; ReadAt allocates nothing.
type Sparse struct {
	Size  int64
	Fill  byte
	Parts []Part
}

// Part is a run of real bytes inside a Sparse file.
type Part struct {
	Off int64
	B   []byte
}

// ReadAt implements io.ReaderAt.
func (s *Sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("hvhd: negative offset %d", off)
	}
	if off >= s.Size {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if int64(n) > s.Size-off {
		n = int(s.Size - off)
		err = io.EOF
	}
	q := p[:n]
	for i := range q {
		q[i] = s.Fill
	}
	for _, pt := range s.Parts {
		lo := max(off, pt.Off)
		hi := min(off+int64(n), pt.Off+int64(len(pt.B)))
		if lo < hi {
			copy(q[lo-off:hi-off], pt.B[lo-pt.Off:hi-pt.Off])
		}
	}
	return n, err
}

// Typed reports whether err is one of the errors callers of vhd and e2e can
// branch on: a *vhd.FormatError with its field and reason filled, or an error
// wrapping one of the packages' sentinels.
func Typed(err error) bool {
	var fe *vhd.FormatError
	if errors.As(err, &fe) {
		return fe.Field != "" && fe.Reason != ""
	}
	for _, s := range []error{
		vhd.ErrNotVHD, vhd.ErrDifferencing, vhd.ErrNotStreamable, vhd.ErrTruncated, vhd.ErrUnsupported,
		vhdcrypt.ErrAlreadyEncrypted, vhdcrypt.ErrNotEncrypted, vhdcrypt.ErrWrongKey, vhdcrypt.ErrNeedSize, vhdcrypt.ErrStreamSize,
		vhdcrypt.ErrFixedVHDStream, vhdcrypt.ErrTooLarge, vhdcrypt.ErrEmpty,
		disk.ErrUnsupportedFormat, disk.ErrNoPartitionTable, disk.ErrBackingFile, disk.ErrEncrypted,
		disk.ErrUnsupportedFeature, disk.ErrNeedRandomAccess, disk.ErrMalformed, disk.ErrTooLarge, disk.ErrEmpty,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// NativeBase writes guest as a dynamic VHD with native block size nb and
// creator app (no batmap unless app is "tap"), the way qemu-img,
// VirtualBox or Hyper-V lay one out: footer copy, header at 0x200, BAT at
// 0x600, then each block holding a non-zero sector (bitmap marking the
// non-zero sectors, then nb bytes of data), in block order.
func NativeBase(guest []byte, nb int64, app string) ([]byte, error) {
	size := (int64(len(guest)) + vhd.SectorSize - 1) / vhd.SectorSize * vhd.SectorSize
	g := make([]byte, size)
	copy(g, guest)
	n := (size + nb - 1) / nb
	cyl, heads, spt := vhd.Geometry(size)
	f := vhd.Footer{
		Cookie: "conectix", Features: 2, FormatVersion: 0x00010000, DataOffset: 0x200, Creator: app,
		CreatorVersion: 0x00050003, CreatorHostOS: 0x5769326B, OriginalSize: uint64(size), CurrentSize: uint64(size),
		Cylinders: cyl, Heads: heads, SectorsPerTrack: spt, DiskType: vhd.Dynamic, UniqueID: [16]byte{0xE2, 0xE3},
	}
	fb, err := f.MarshalBinary()
	if err != nil {
		return nil, err
	}
	h := vhd.Header{Cookie: "cxsparse", DataOffset: ^uint64(0), TableOffset: 0x600, Version: 0x00010000,
		MaxTableEntries: uint32(n), BlockSize: uint32(nb)}
	hb, err := h.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bat := make([]byte, pad(n*4))
	for i := range bat {
		bat[i] = 0xFF
	}
	out := append(append(append([]byte(nil), fb...), hb...), bat...)
	bmLen := pad((nb/vhd.SectorSize + 7) / 8) // one bit per sector, whole sectors
	for j := int64(0); j < n; j++ {
		blk := make([]byte, nb)
		copy(blk, g[j*nb:min((j+1)*nb, size)])
		bm := make(vhd.Bitmap, bmLen)
		for s := range int(nb / vhd.SectorSize) {
			if !bytes.Equal(blk[s*vhd.SectorSize:(s+1)*vhd.SectorSize], make([]byte, vhd.SectorSize)) {
				bm.Set(s)
			}
		}
		if bm.Empty() {
			continue
		}
		Put32(out, 0x600+4*j, uint32(len(out)/vhd.SectorSize))
		out = append(append(out, bm...), blk...)
	}
	return append(out, fb...), nil
}
