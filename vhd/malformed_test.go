package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"
)

// baseRaw is a 6 MiB guest disk: block 0 full, block 1 empty, block 2 half
// written.
func baseRaw() []byte {
	raw := make([]byte, 3*BlockSize)
	for i := range BlockSize {
		raw[i] = byte(i%251) | 1
	}
	for i := 2 * BlockSize; i < 2*BlockSize+BlockSize/2; i++ {
		raw[i] = 0x22
	}
	return raw
}

// baseImage is baseRaw written by our Writer: BAT at 0x600 (blocks 0 and 2
// at sectors 7 and 0x100f), batmap header at 0x800, batmap at 0xa00.
func baseImage(t testing.TB) []byte {
	baseOnce.Do(func() { baseBytes = writeRaw(t, baseRaw()) })
	require.NotNil(t, baseBytes)
	return bytes.Clone(baseBytes)
}

var (
	baseOnce  sync.Once
	baseBytes []byte // written once: layoutOf scans every sector
)

const (
	batmapHdrAt = 0x800 // in baseImage
	block0At    = 0xE00
)

type malformed struct {
	name   string
	mutate func(t testing.TB, b []byte) []byte
	field  string // FormatError.Field; "" when the error is not a FormatError
	offset int64  // FormatError.Offset, when field is set
	is     error  // a sentinel the error must wrap, or nil
	msg    string // a substring of the message
}

func putBAT(j int, sector uint32) func(testing.TB, []byte) []byte {
	return func(_ testing.TB, b []byte) []byte {
		binary.BigEndian.PutUint32(b[tapTableOffset+4*j:], sector)
		return b
	}
}

func footerEdit(edit func(*Footer)) func(testing.TB, []byte) []byte {
	return func(t testing.TB, b []byte) []byte { editFooter(t, b, edit); return b }
}

func headerEdit(edit func(*Header)) func(testing.TB, []byte) []byte {
	return func(t testing.TB, b []byte) []byte { editHeader(t, b, edit); return b }
}

func malformedCases() []malformed {
	return []malformed{
		{name: "zero-length file", mutate: func(_ testing.TB, b []byte) []byte { return b[:0] },
			is: ErrNotVHD, msg: "vhd: not a VHD (no footer): the file is empty"},
		{name: "shorter than a footer", mutate: func(_ testing.TB, b []byte) []byte { return b[:300] },
			field: "footer", offset: 0, is: ErrTruncated, msg: "the file is 300 bytes, shorter than the 512-byte footer"},
		{name: "tiny raw image", mutate: func(_ testing.TB, b []byte) []byte { return baseRaw()[:511] },
			is: ErrNotVHD, msg: "the file of 511 bytes is smaller than a footer"},
		{name: "truncated in block data", mutate: func(_ testing.TB, b []byte) []byte { return b[:len(b)-BlockSize/2] },
			field: "bat[2]", offset: tapTableOffset + 8, is: ErrTruncated, msg: "block 2 at 0x201e00..0x402000 extends past the end of the data area at 0x302200"},
		{name: "bad footer cookie", mutate: func(_ testing.TB, b []byte) []byte {
			copy(b[len(b)-FooterSize:], "CONECTIX")
			copy(b, "CONECTIX")
			return b
		}, is: ErrNotVHD, msg: "no \"conectix\" cookie at offset 0 or at the end of the file"},
		{name: "poisoned footer", mutate: func(_ testing.TB, b []byte) []byte {
			copy(b[len(b)-FooterSize:], "v_poison")
			copy(b, "v_poison")
			return b
		}, field: "footer.cookie", offset: -1, msg: "tapdisk poisoned this VHD while rewriting it"},
		{name: "bad footer checksum", mutate: func(_ testing.TB, b []byte) []byte {
			b[len(b)-FooterSize+0x43] ^= 1
			b[0x43] ^= 1
			return b
		}, field: "footer.checksum", offset: -1, msg: "stored 0x"},
		{name: "unsupported footer version", mutate: footerEdit(func(f *Footer) { f.FormatVersion = 0x00020000 }),
			field: "footer.format_version", offset: -1, is: ErrUnsupported, msg: "version 0x00020000, this reader knows 1.x"},
		{name: "unknown disk type", mutate: footerEdit(func(f *Footer) { f.DiskType = 5 }),
			field: "footer.disk_type", offset: -1, is: ErrUnsupported, msg: "disk type 5"},
		{name: "size above 2040 GiB", mutate: footerEdit(func(f *Footer) { f.CurrentSize = MaxSize + BlockSize }),
			field: "footer.current_size", offset: -1, msg: "virtual size 2190435418112 bytes exceeds the VHD maximum"},
		{name: "size 2^63", mutate: footerEdit(func(f *Footer) { f.CurrentSize = 1 << 63 }),
			field: "footer.current_size", offset: -1, msg: "virtual size 9223372036854775808 bytes exceeds"},
		{name: "size not a sector multiple", mutate: footerEdit(func(f *Footer) { f.CurrentSize = 3*BlockSize - 1 }),
			field: "footer.current_size", offset: -1, msg: "is not a multiple of the 512-byte sector"},
		{name: "header offset past EOF", mutate: footerEdit(func(f *Footer) { f.DataOffset = 1 << 40 }),
			field: "footer.data_offset", offset: -1, is: ErrTruncated, msg: "dynamic header at 0x10000000000 extends past the end"},
		{name: "header offset inside the footer copy", mutate: footerEdit(func(f *Footer) { f.DataOffset = 0 }),
			field: "footer.data_offset", offset: -1, msg: "overlaps the footer copy"},
		{name: "differencing disk", mutate: func(t testing.TB, b []byte) []byte {
			editFooter(t, b, func(f *Footer) { f.DiskType = Differencing })
			editHeader(t, b, func(h *Header) {
				for i, c := range utf16.Encode([]rune("base-ubuntü.vhd")) {
					binary.BigEndian.PutUint16(h.ParentUnicodeName[2*i:], c)
				}
			})
			return b
		}, is: ErrDifferencing, msg: `its parent "base-ubuntü.vhd"`},
		{name: "bad header cookie", mutate: func(_ testing.TB, b []byte) []byte { copy(b[tapHeaderOffset:], "cxsparsE"); return b },
			field: "header.cookie", offset: tapHeaderOffset, msg: `cookie "cxsparsE", want "cxsparse"`},
		{name: "bad header checksum", mutate: func(_ testing.TB, b []byte) []byte { b[tapHeaderOffset+0x30] ^= 0x40; return b },
			field: "header.checksum", offset: tapHeaderOffset + 0x24, msg: "stored 0x"},
		{name: "unsupported header version", mutate: headerEdit(func(h *Header) { h.Version = 0x00020000 }),
			field: "header.version", offset: tapHeaderOffset + 0x18, is: ErrUnsupported, msg: "header.version at offset 536 (0x218): version 0x00020000"},
		{name: "block size not a power of two", mutate: headerEdit(func(h *Header) { h.BlockSize = 3 << 20 }),
			field: "header.block_size", offset: tapHeaderOffset + 0x20, msg: "block size 3145728 is not a power of two"},
		{name: "block size too large", mutate: headerEdit(func(h *Header) { h.BlockSize = 1 << 30 }),
			field: "header.block_size", offset: tapHeaderOffset + 0x20, is: ErrUnsupported, msg: "block size 1073741824 is outside 512..268435456"},
		{name: "BAT count below the size", mutate: headerEdit(func(h *Header) { h.MaxTableEntries = 2 }),
			field: "header.max_table_entries", offset: tapHeaderOffset + 0x1C, msg: "2 BAT entries cannot map a 6291456-byte disk"},
		{name: "BAT too large for the file", mutate: headerEdit(func(h *Header) { h.MaxTableEntries = 1 << 31 }),
			field: "header.max_table_entries", offset: tapHeaderOffset + 0x1C, is: ErrTruncated, msg: "a BAT of 2147483648 entries (8589934592 bytes) at 0x600 does not fit"},
		{name: "BAT offset past EOF", mutate: headerEdit(func(h *Header) { h.TableOffset = 1 << 50 }),
			field: "header.table_offset", offset: tapHeaderOffset + 0x10, is: ErrTruncated, msg: "BAT offset 0x4000000000000 is outside"},
		{name: "BAT overlapping the header", mutate: headerEdit(func(h *Header) { h.TableOffset = 0x400 }),
			field: "header.table_offset", offset: tapHeaderOffset + 0x10, msg: "the BAT at 0x400..0x40c overlaps the dynamic header"},
		{name: "BAT entry past EOF", mutate: putBAT(1, 0x7000000),
			field: "bat[1]", offset: tapTableOffset + 4, is: ErrTruncated, msg: "block 1 at 0xe00000000..0xe00200200 extends past the end of the data area at 0x402000"},
		{name: "overlapping blocks", mutate: putBAT(2, 7+8),
			field: "bat[2]", offset: tapTableOffset + 8, msg: "block 2 at 0x1e00 overlaps block 0 at 0xe00..0x201000"},
		{name: "block overlapping the header", mutate: putBAT(0, 1),
			field: "bat[0]", offset: tapTableOffset, msg: "block 0 at 0x200..0x200400 overlaps the dynamic header at 0x200..0x600"},
		{name: "block overlapping the batmap", mutate: putBAT(2, 4),
			field: "bat[2]", offset: tapTableOffset + 8, msg: "block 2 at 0x800..0x200a00 overlaps the batmap header at 0x800..0xa00"},
		{name: "block overlapping the BAT", mutate: putBAT(2, 3),
			field: "bat[2]", offset: tapTableOffset + 8, msg: "block 2 at 0x600..0x200800 overlaps the BAT at 0x600..0x60c"},
		{name: "bad batmap checksum", mutate: func(_ testing.TB, b []byte) []byte { b[batmapHdrAt+27] ^= 0x10; return b },
			field: "batmap.checksum", offset: batmapHdrAt + 24, msg: "computed 0xffffff7f over the 512-byte batmap"},
		{name: "unsupported batmap version", mutate: func(_ testing.TB, b []byte) []byte {
			binary.BigEndian.PutUint32(b[batmapHdrAt+20:], 0x00010003)
			return b
		}, field: "batmap.version", offset: batmapHdrAt + 20, is: ErrUnsupported, msg: "batmap version 0x00010003"},
		{name: "batmap too small", mutate: func(_ testing.TB, b []byte) []byte {
			binary.BigEndian.PutUint32(b[batmapHdrAt+16:], 0)
			return b
		}, field: "batmap.size", offset: batmapHdrAt + 16, msg: "batmap of 0 sectors maps 0 blocks, the disk has 3"},
		{name: "batmap past EOF", mutate: func(_ testing.TB, b []byte) []byte {
			binary.BigEndian.PutUint64(b[batmapHdrAt+8:], 1<<40)
			return b
		}, field: "batmap.offset", offset: batmapHdrAt + 8, is: ErrTruncated, msg: "batmap of 512 bytes at 0x10000000000"},
		{name: "unknown key hash cookie", mutate: func(_ testing.TB, b []byte) []byte { b[batmapHdrAt+29] = 7; return b },
			field: "batmap.key_hash_cookie", offset: batmapHdrAt + 29, is: ErrUnsupported, msg: "key hash cookie 7"},
		{name: "fixed disk shorter than its size", mutate: func(t testing.TB, _ []byte) []byte {
			var out bytes.Buffer
			require.NoError(t, WriteFixed(&out, bytes.NewReader(baseRaw()), 3*BlockSize))
			b := out.Bytes()
			f := append([]byte(nil), b[len(b)-FooterSize:]...)
			return append(b[:BlockSize], f...)
		}, field: "footer.current_size", offset: BlockSize + 0x30, is: ErrTruncated, msg: "a fixed disk of 6291456 bytes needs a file of 6291968 bytes"},
	}
}

// TestMalformed opens each hostile mutation of a valid image and requires
// its own error: the right type, field, offset, sentinel and message.
func TestMalformed(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(t, baseImage(t))
			img, err := Open(bytes.NewReader(b), int64(len(b)))
			require.Error(t, err)
			require.Nil(t, img)
			msg := err.Error()
			require.Contains(t, msg, c.msg)
			require.True(t, strings.HasPrefix(msg, "vhd: "), msg)
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
			}
			var fe *FormatError
			if c.field == "" {
				require.False(t, errors.As(err, &fe), "unexpected FormatError %v", err)
			} else {
				require.ErrorAs(t, err, &fe)
				require.Equal(t, c.field, fe.Field)
				off := c.offset
				if off < 0 { // relative to the footer at the end
					off = int64(len(b)) - FooterSize + fieldOffset(c.field)
				}
				require.Equal(t, off, fe.Offset, "offset of %s", c.field)
			}
			if prev, dup := seen[msg]; dup {
				t.Fatalf("same error as %q: %s", prev, msg)
			}
			seen[msg] = c.name
			t.Log(msg)
		})
	}
	require.GreaterOrEqual(t, len(malformedCases()), 15)
}

// fieldOffset is the offset of a footer field within the footer.
func fieldOffset(field string) int64 {
	switch field {
	case "footer.cookie":
		return 0
	case "footer.format_version":
		return 0x0C
	case "footer.data_offset":
		return 0x10
	case "footer.current_size":
		return 0x30
	case "footer.disk_type":
		return 0x3C
	case "footer.checksum":
		return 0x40
	}
	return 0
}

// TestMalformedStream feeds the same inputs to NewStreamReader and reads
// every block: each must fail with a typed error (a stream finds some of
// them only by reading, or reports them in another order), never panic.
func TestMalformedStream(t *testing.T) {
	t.Parallel()
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(t, baseImage(t))
			err := drainStream(b)
			require.Error(t, err)
			var fe *FormatError
			typed := errors.As(err, &fe) || errors.Is(err, ErrNotVHD) || errors.Is(err, ErrNotStreamable) || errors.Is(err, ErrDifferencing)
			require.True(t, typed, "untyped error %v", err)
			if fe != nil && c.field != "" && !errors.Is(err, ErrTruncated) && !strings.HasPrefix(c.field, "bat[") && !strings.HasPrefix(fe.Field, "bat[") {
				require.Equal(t, c.field, fe.Field, "%v", err)
			}
		})
	}
}

// blockPool spares the fuzzer a 2 MiB allocation per input.
var blockPool = sync.Pool{New: func() any { b := make([]byte, BlockSize); return &b }}

func drainStream(b []byte) error {
	sr, err := NewStreamReader(onlyReader{bytes.NewReader(b)})
	if err != nil {
		return err
	}
	buf := blockPool.Get().(*[]byte)
	defer blockPool.Put(buf)
	for {
		if _, err := sr.Next(*buf); err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
	}
}

// TestHostileBATAllocatesLittle: a 1 KiB file claiming a 2^31-entry BAT,
// or a 2040 GiB disk, fails before allocating anything large.
//
// Not parallel: the allocation figures are the whole process's.
func TestHostileBATAllocatesLittle(t *testing.T) {
	b := make([]byte, 3*SectorSize)
	f := Footer{Cookie: footerCookie, Features: 2, FormatVersion: formatVersion, DataOffset: 0x200, Creator: "tap\x00",
		CreatorVersion: tapCreatorVersion, CurrentSize: MaxSize, OriginalSize: MaxSize, DiskType: Dynamic}
	f.put(b)
	h := Header{Cookie: headerCookie, DataOffset: noDataOffset, TableOffset: 0x600, Version: headerVersion,
		MaxTableEntries: 1 << 31, BlockSize: BlockSize}
	hb := make([]byte, HeaderSize)
	h.put(hb)
	copy(b[0x200:], hb[:len(b)-0x200-FooterSize]) // the header is cut by the footer: make a proper file
	file := append(append(bytes.Clone(b[:0x200]), hb...), b[:FooterSize]...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Open(bytes.NewReader(file), int64(len(file)))
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrTruncated)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "Open allocated too much for a hostile BAT")

	runtime.ReadMemStats(&before)
	err = drainStream(file)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrTruncated)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "NewStreamReader allocated too much for a hostile BAT")
}

// TestDamagedFooterCopies: a dynamic disk with one of its two footers
// damaged opens with the other (the copy exists for this) and Check reports
// the damage; the data reads unchanged.
func TestDamagedFooterCopies(t *testing.T) {
	t.Parallel()
	raw := baseRaw()
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		field  string
	}{
		{"last footer checksum", func(b []byte) []byte { b[len(b)-FooterSize+0x50] ^= 1; return b }, "footer"},
		{"last footer missing", func(b []byte) []byte { return b[:len(b)-FooterSize] }, "footer"},
		{"footer copy at 0 damaged", func(b []byte) []byte { b[0x50] ^= 1; return b }, "footer copy"},
		{"footer copies differ", func(b []byte) []byte {
			f, err := ParseFooter(b)
			require.NoError(t, err)
			f.Timestamp++
			f.put(b)
			return b
		}, "footer copy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(baseImage(t))
			img, err := Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err)
			requireReads(t, img, raw)
			rep, err := img.Check(t.Context())
			require.NoError(t, err)
			require.False(t, rep.OK())
			require.Len(t, rep.Problems, 1)
			require.Equal(t, c.field, rep.Problems[0].Field)
			require.Contains(t, rep.String(), "problem: vhd: "+c.field)
		})
	}
}

// TestCheckBatmapContradiction: a batmap that marks a partial block full
// makes tapdisk read absent sectors as data; Check says so.
func TestCheckBatmapContradiction(t *testing.T) {
	t.Parallel()
	b := baseImage(t)
	// Mark block 2 (half written) full in the batmap and fix its checksum.
	b[0xA00] |= 0x20
	var s uint32
	for _, c := range b[0xA00:0xC00] {
		s += uint32(c)
	}
	binary.BigEndian.PutUint32(b[batmapHdrAt+24:], ^s)
	img, err := Open(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	rep, err := img.Check(t.Context())
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1)
	require.Equal(t, "batmap[2]", rep.Problems[0].Field)
	require.Contains(t, rep.Problems[0].Reason, "its bitmap has 2048 of 4096 sectors present")
	// Reads follow tapdisk: the batmap wins, so block 2 reads fully.
	blk, err := img.Block(2)
	require.NoError(t, err)
	require.True(t, blk.Full)
}
