package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
)

// Sizes and limits of the format.
const (
	// SectorSize is the VHD sector size in bytes (VHD specification).
	SectorSize = 512
	// BlockSize is the dynamic block size written by tapdisk, vhd-util and
	// qemu-img, and the unit in which Image, StreamReader and Writer present
	// every disk (fixed disks and other native block sizes included).
	BlockSize = 2 << 20
	// SectorsPerBlock is the number of sectors in a BlockSize block.
	SectorsPerBlock = BlockSize / SectorSize
	// BitmapSize is the size in bytes of the sector bitmap of one BlockSize
	// block (one bit per sector, exactly one sector).
	BitmapSize = SectorsPerBlock / 8
	// MaxSize is the largest virtual size the VHD specification allows
	// (2040 GiB; "Virtual Hard Disk Image Format Specification", v1.0).
	MaxSize = 2040 << 30

	// FooterSize is the size of the hard disk footer.
	FooterSize = 512
	// HeaderSize is the size of the dynamic disk header.
	HeaderSize = 1024
	// BatmapHeaderSize is the size of tapdisk's batmap header (one sector).
	BatmapHeaderSize = 512

	// MinNativeBlockSize and MaxNativeBlockSize bound the block size of a
	// dynamic VHD that Open accepts. The specification only asks for a power
	// of two; tapdisk, qemu-img, VirtualBox and Hyper-V use 512 KiB to
	// 32 MiB. The upper bound keeps one block's bitmap at 64 KiB.
	MinNativeBlockSize = SectorSize
	MaxNativeBlockSize = 256 << 20
	// MaxBATEntries bounds the BAT entries that Open reads into memory
	// (64 MiB of table). A MaxSize disk with 2 MiB blocks needs 1,044,480;
	// the bound admits blocks down to 128 KiB at the maximum size.
	MaxBATEntries = 1 << 24
	// maxBatmapBytes bounds the batmap (one bit per block for MaxBATEntries).
	maxBatmapBytes = MaxBATEntries / 8
)

// Cookies and fixed values of the format (VHD specification; tapdisk's
// libvhd for the batmap).
const (
	footerCookie       = "conectix"
	poisonCookie       = "v_poison" // tapdisk marks a VHD it is rewriting
	headerCookie       = "cxsparse"
	batmapCookie       = "tdbatmap"
	footerFeatures     = 2
	formatVersion      = 0x00010000
	headerVersion      = 0x00010000
	tapCreator         = "tap\x00"
	tapCreatorVersion  = 0x00010003 // written by vhd-util 4.0.8 (../docs/FORMAT.md)
	batmapMinCreator   = 0x00010002 // tapdisk reads a batmap from creator version 1.2 on
	batmapVersion      = 0x00010002
	batmapVersionOld   = 0x00010001 // checksum summed as signed chars
	unusedBAT          = 0xFFFFFFFF
	noDataOffset       = ^uint64(0)
	tapHeaderOffset    = 0x200
	tapTableOffset     = 0x600
	dataAlign          = 4096 // tapdisk starts block data on a 4 KiB boundary
	keyHashCookieValue = 1
)

// vhdEpoch is the origin of VHD timestamps: 2000-01-01 00:00:00 UTC.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// DiskType is the footer's disk type.
type DiskType uint32

// Disk types of the VHD specification.
const (
	Fixed        DiskType = 2
	Dynamic      DiskType = 3
	Differencing DiskType = 4
)

// String returns "fixed", "dynamic", "differencing" or "type(N)".
func (t DiskType) String() string {
	switch t {
	case Fixed:
		return "fixed"
	case Dynamic:
		return "dynamic"
	case Differencing:
		return "differencing"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Sentinel errors callers branch on.
var (
	// ErrNotVHD means the input has no VHD footer (at its end, or for a
	// dynamic disk at its start): it may be a raw image.
	ErrNotVHD = errors.New("vhd: not a VHD (no footer)")
	// ErrDifferencing is returned, wrapped in an error naming the parent,
	// for differencing disks, which need their parent to be read.
	ErrDifferencing = errors.New("vhd: differencing disks are not supported")
	// ErrUnsupported marks a valid-looking field whose value this package
	// does not handle (a format version, a block size, a disk type).
	ErrUnsupported = errors.New("unsupported")
	// ErrTruncated marks a structure that extends past the end of the file.
	ErrTruncated = errors.New("truncated")
	// ErrNotStreamable is returned by NewStreamReader for a VHD that cannot
	// be read front to back (blocks out of order, metadata after data);
	// open it as a file with Open instead.
	ErrNotStreamable = errors.New("vhd: not streamable")
)

// FormatError reports a malformed or unsupported field of a VHD.
type FormatError struct {
	Offset int64  // file offset of the field or structure
	Field  string // e.g. "footer.checksum", "bat[17]"
	Reason string // what is wrong, in words
	Err    error  // an underlying cause or category (ErrUnsupported, ErrTruncated, io errors); may be nil
}

// Error says which field at which offset is wrong and why:
// "vhd: header.checksum at offset 548 (0x224): stored ..., computed ...".
func (e *FormatError) Error() string {
	s := fmt.Sprintf("vhd: %s at offset %d (%#x): %s", e.Field, e.Offset, e.Offset, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(off int64, field string, err error, format string, args ...any) *FormatError {
	return &FormatError{Offset: off, Field: field, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Footer is the 512-byte hard disk footer.
type Footer struct {
	Cookie          string   // "conectix"
	Features        uint32   // 2 (reserved bit always set)
	FormatVersion   uint32   // 0x00010000
	DataOffset      uint64   // dynamic header offset; all ones for fixed disks
	Timestamp       uint32   // seconds since 2000-01-01 00:00 UTC; see Time
	Creator         string   // creator application, exactly 4 bytes ("tap\x00", "qem2", "win ")
	CreatorVersion  uint32   // e.g. 0x00010003
	CreatorHostOS   uint32   // "Wi2k" = 0x5769326B, "Mac " = 0x4D616320, 0 for tapdisk
	OriginalSize    uint64   // size at creation, bytes
	CurrentSize     uint64   // virtual size, bytes
	Cylinders       uint16   // CHS geometry
	Heads           uint8    //
	SectorsPerTrack uint8    //
	DiskType        DiskType // Fixed, Dynamic or Differencing
	Checksum        uint32   // ones' complement of the byte sum with this field zero
	UniqueID        [16]byte // identifies the disk
	SavedState      uint8    // 1 while a saved state exists
	Hidden          uint8    // tapdisk's hidden flag
}

// Time returns the footer's timestamp as a time.
func (f *Footer) Time() time.Time {
	return vhdEpoch.Add(time.Duration(f.Timestamp) * time.Second)
}

// vhdTimestamp converts t to seconds since 2000-01-01 UTC, clamped to the
// field's range.
func vhdTimestamp(t time.Time) uint32 {
	d := t.Unix() - vhdEpoch.Unix()
	switch {
	case d < 0:
		return 0
	case d > 0xFFFFFFFF:
		return 0xFFFFFFFF
	}
	return uint32(d)
}

// checksum is the VHD checksum: the ones' complement of the sum of the bytes
// of b, where the 4 bytes at skip (if skip >= 0) count as zero.
func checksum(b []byte, skip int) uint32 {
	var s uint32
	for i, c := range b {
		if skip >= 0 && i >= skip && i < skip+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

const footerChecksumAt = 0x40

// ParseFooter decodes a footer and checks its cookie and checksum. It does
// not judge the other fields; Open does.
func ParseFooter(b []byte) (Footer, error) {
	var f Footer
	if len(b) < FooterSize {
		return f, formatErr(0, "footer", ErrTruncated, "need %d bytes, have %d", FooterSize, len(b))
	}
	b = b[:FooterSize]
	f.Cookie = string(b[0:8])
	switch f.Cookie {
	case footerCookie:
	case poisonCookie:
		return f, formatErr(0, "footer.cookie", nil, "cookie %q: tapdisk poisoned this VHD while rewriting it, its contents are inconsistent", f.Cookie)
	default:
		return f, formatErr(0, "footer.cookie", ErrNotVHD, "cookie %q, want %q", printable(b[0:8]), footerCookie)
	}
	f.Features = be32(b[0x08:])
	f.FormatVersion = be32(b[0x0C:])
	f.DataOffset = be64(b[0x10:])
	f.Timestamp = be32(b[0x18:])
	f.Creator = string(b[0x1C:0x20])
	f.CreatorVersion = be32(b[0x20:])
	f.CreatorHostOS = be32(b[0x24:])
	f.OriginalSize = be64(b[0x28:])
	f.CurrentSize = be64(b[0x30:])
	f.Cylinders = binary.BigEndian.Uint16(b[0x38:])
	f.Heads = b[0x3A]
	f.SectorsPerTrack = b[0x3B]
	f.DiskType = DiskType(be32(b[0x3C:]))
	f.Checksum = be32(b[0x40:])
	copy(f.UniqueID[:], b[0x44:0x54])
	f.SavedState = b[0x54]
	f.Hidden = b[0x55]
	if sum := checksum(b, footerChecksumAt); sum != f.Checksum {
		return f, formatErr(footerChecksumAt, "footer.checksum", nil, "stored %#08x, computed %#08x", f.Checksum, sum)
	}
	return f, nil
}

// MarshalBinary encodes the footer into 512 bytes, computing the checksum
// (the Checksum field is ignored). Creator is padded or cut to 4 bytes.
func (f *Footer) MarshalBinary() ([]byte, error) {
	b := make([]byte, FooterSize)
	f.put(b)
	return b, nil
}

// put encodes the footer into b[:FooterSize] with a fresh checksum.
func (f *Footer) put(b []byte) {
	b = b[:FooterSize]
	clear(b)
	cookie := f.Cookie
	if cookie == "" {
		cookie = footerCookie
	}
	copy(b[0:8], cookie)
	put32(b[0x08:], f.Features)
	put32(b[0x0C:], f.FormatVersion)
	put64(b[0x10:], f.DataOffset)
	put32(b[0x18:], f.Timestamp)
	copy(b[0x1C:0x20], f.Creator)
	put32(b[0x20:], f.CreatorVersion)
	put32(b[0x24:], f.CreatorHostOS)
	put64(b[0x28:], f.OriginalSize)
	put64(b[0x30:], f.CurrentSize)
	binary.BigEndian.PutUint16(b[0x38:], f.Cylinders)
	b[0x3A] = f.Heads
	b[0x3B] = f.SectorsPerTrack
	put32(b[0x3C:], uint32(f.DiskType))
	copy(b[0x44:0x54], f.UniqueID[:])
	b[0x54] = f.SavedState
	b[0x55] = f.Hidden
	put32(b[0x40:], checksum(b, footerChecksumAt))
}

// ParentLocator is one of the dynamic header's eight parent locator entries.
type ParentLocator struct {
	PlatformCode       uint32 // "W2ku", "W2ru", "Mac ", "MacX", ... or 0
	PlatformDataSpace  uint32 // sectors (or bytes, for some writers) reserved
	PlatformDataLength uint32 // bytes of locator data
	PlatformDataOffset uint64 // file offset of the locator data
}

// Header is the 1024-byte dynamic disk header.
type Header struct {
	Cookie            string // "cxsparse"
	DataOffset        uint64 // unused, all ones
	TableOffset       uint64 // file offset of the BAT
	Version           uint32 // 0x00010000
	MaxTableEntries   uint32 // BAT entries
	BlockSize         uint32 // bytes of data per block
	Checksum          uint32
	ParentUniqueID    [16]byte
	ParentTimestamp   uint32
	ParentUnicodeName [512]byte // UTF-16 big-endian, NUL padded; see ParentName
	ParentLocators    [8]ParentLocator
}

// ParentName decodes the parent's unicode name (UTF-16 big-endian).
func (h *Header) ParentName() string {
	u := make([]uint16, 0, len(h.ParentUnicodeName)/2)
	for i := 0; i+1 < len(h.ParentUnicodeName); i += 2 {
		c := binary.BigEndian.Uint16(h.ParentUnicodeName[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

const headerChecksumAt = 0x24

// ParseHeader decodes a dynamic disk header and checks its cookie and
// checksum. Offsets in errors are relative to the header's start.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, formatErr(0, "header", ErrTruncated, "need %d bytes, have %d", HeaderSize, len(b))
	}
	b = b[:HeaderSize]
	h.Cookie = string(b[0:8])
	if h.Cookie != headerCookie {
		return h, formatErr(0, "header.cookie", nil, "cookie %q, want %q", printable(b[0:8]), headerCookie)
	}
	h.DataOffset = be64(b[0x08:])
	h.TableOffset = be64(b[0x10:])
	h.Version = be32(b[0x18:])
	h.MaxTableEntries = be32(b[0x1C:])
	h.BlockSize = be32(b[0x20:])
	h.Checksum = be32(b[0x24:])
	copy(h.ParentUniqueID[:], b[0x28:0x38])
	h.ParentTimestamp = be32(b[0x38:])
	copy(h.ParentUnicodeName[:], b[0x40:0x240])
	for i := range h.ParentLocators {
		e := b[0x240+24*i:]
		h.ParentLocators[i] = ParentLocator{
			PlatformCode:       be32(e[0:]),
			PlatformDataSpace:  be32(e[4:]),
			PlatformDataLength: be32(e[8:]),
			PlatformDataOffset: be64(e[16:]),
		}
	}
	if sum := checksum(b, headerChecksumAt); sum != h.Checksum {
		return h, formatErr(headerChecksumAt, "header.checksum", nil, "stored %#08x, computed %#08x", h.Checksum, sum)
	}
	return h, nil
}

// MarshalBinary encodes the header into 1024 bytes, computing the checksum
// (the Checksum field is ignored).
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	h.put(b)
	return b, nil
}

func (h *Header) put(b []byte) {
	b = b[:HeaderSize]
	clear(b)
	cookie := h.Cookie
	if cookie == "" {
		cookie = headerCookie
	}
	copy(b[0:8], cookie)
	put64(b[0x08:], h.DataOffset)
	put64(b[0x10:], h.TableOffset)
	put32(b[0x18:], h.Version)
	put32(b[0x1C:], h.MaxTableEntries)
	put32(b[0x20:], h.BlockSize)
	copy(b[0x28:0x38], h.ParentUniqueID[:])
	put32(b[0x38:], h.ParentTimestamp)
	copy(b[0x40:0x240], h.ParentUnicodeName[:])
	for i, l := range h.ParentLocators {
		e := b[0x240+24*i:]
		put32(e[0:], l.PlatformCode)
		put32(e[4:], l.PlatformDataSpace)
		put32(e[8:], l.PlatformDataLength)
		put64(e[16:], l.PlatformDataOffset)
	}
	put32(b[0x24:], checksum(b, headerChecksumAt))
}

// Geometry returns the CHS geometry the VHD specification's algorithm
// ("CHS Calculation", appendix) assigns to a disk of size bytes. Sizes
// beyond the largest geometry (65535/16/255) get that geometry.
func Geometry(size int64) (cyl uint16, heads, sectors uint8) {
	if size < 0 {
		size = 0
	}
	total := (size + SectorSize - 1) / SectorSize
	const maxCHS = 65535 * 16 * 255
	if total > maxCHS {
		total = maxCHS
	}
	var spt, hd, cth int64
	if total >= 65535*16*63 {
		spt, hd = 255, 16
		cth = total / spt
	} else {
		spt = 17
		cth = total / spt
		hd = (cth + 1023) / 1024
		if hd < 4 {
			hd = 4
		}
		if cth >= hd*1024 || hd > 16 {
			spt, hd = 31, 16
			cth = total / spt
		}
		if cth >= hd*1024 {
			spt, hd = 63, 16
			cth = total / spt
		}
	}
	return uint16(cth / hd), uint8(hd), uint8(spt)
}

func be32(b []byte) uint32     { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64     { return binary.BigEndian.Uint64(b) }
func put32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func put64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

// printable renders a cookie for an error message without control bytes.
func printable(b []byte) string {
	r := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		r[i] = c
	}
	return string(r)
}

// padSector rounds n up to a multiple of SectorSize.
func padSector(n int64) int64 { return (n + SectorSize - 1) &^ (SectorSize - 1) }

// nativeBitmapBytes is the size in the file of the sector bitmap that
// precedes the data of a native block of bs bytes: one bit per sector,
// rounded up to whole bytes, then padded to a whole sector (VHD
// specification, "Block Format"; tapdisk's libvhd never rounds it to zero
// either). A native block below 4 KiB has fewer than 8 sectors, so its
// bitmap is less than a byte yet still takes one sector before the data.
func nativeBitmapBytes(bs int64) int64 { return padSector((bs/SectorSize + 7) / 8) }
