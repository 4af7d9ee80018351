package hvhd

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/e2eimage/e2eimage/vhd"
)

// Expect is what vhd.Open must do with a case.
type Expect int

const (
	// Fails: Open must return a typed error (a *vhd.FormatError, or an
	// error wrapping vhd.ErrNotVHD or vhd.ErrDifferencing).
	Fails Expect = iota
	// Opens: the file is strange but readable (a damaged footer copy, a
	// batmap that contradicts a bitmap); Open succeeds and Check reports
	// the damage.
	Opens
	// Either: the specification leaves room; Open may succeed or give a
	// typed error, but nothing else.
	Either
)

func (e Expect) String() string {
	switch e {
	case Fails:
		return "fails"
	case Opens:
		return "opens"
	}
	return "either"
}

// Case is one hostile input.
type Case struct {
	Name string
	// Data is the file. Huge replaces it for files larger than memory.
	Data []byte
	Huge *Sparse
	// Encrypted: the case derives from the encrypted base, whose key is
	// DEKBytes.
	Encrypted bool
	// Guest, when set, is what the disk must read as (the valid bases).
	Guest  []byte
	Expect Expect
	// CheckFinds: when Open succeeds, Check must report a problem.
	CheckFinds bool
}

// Size is the file size.
func (c *Case) Size() int64 {
	if c.Huge != nil {
		return c.Huge.Size
	}
	return int64(len(c.Data))
}

// ReaderAt returns the file for random access.
func (c *Case) ReaderAt() io.ReaderAt {
	if c.Huge != nil {
		return c.Huge
	}
	return bytes.NewReader(c.Data)
}

// File returns the file as an *io.SectionReader: e2e reads it with random
// access (it has ReadAt and Size).
func (c *Case) File() *io.SectionReader { return io.NewSectionReader(c.ReaderAt(), 0, c.Size()) }

// Stream returns the file as a plain io.Reader (no ReadAt), read once.
func (c *Case) Stream() io.Reader { return struct{ io.Reader }{c.File()} }

// Cases builds the hostile corpus from the two base images. Every case is a
// named mutation; there are more than 60.
func Cases() ([]Case, error) {
	plain, err := PlainBase()
	if err != nil {
		return nil, fmt.Errorf("hvhd: plain base: %w", err)
	}
	enc, err := EncryptedBase()
	if err != nil {
		return nil, fmt.Errorf("hvhd: encrypted base: %w", err)
	}
	pm, err := Locate(plain)
	if err != nil {
		return nil, err
	}
	em, err := Locate(enc)
	if err != nil {
		return nil, err
	}
	var cs []Case
	add := func(name string, encrypted bool, exp Expect, finds bool, mut func(b []byte, m Map) []byte) {
		base, m := plain, pm
		if encrypted {
			base, m = enc, em
		}
		cs = append(cs, Case{Name: name, Data: mut(bytes.Clone(base), m), Encrypted: encrypted, Expect: exp, CheckFinds: finds})
	}
	both := func(name string, exp Expect, finds bool, mut func(b []byte, m Map) []byte) {
		add(name, false, exp, finds, mut)
		add("enc/"+name, true, exp, finds, mut)
	}
	end := func(b []byte) int64 { return int64(len(b) - vhd.FooterSize) }
	editHeader := func(b []byte, m Map, edit func(h []byte)) []byte {
		edit(b[m.Header : m.Header+vhd.HeaderSize])
		FixHeader(b, m.Header)
		return b
	}

	// Sanity: the bases themselves.
	cs = append(cs, Case{Name: "base-plain", Data: plain, Expect: Opens, Guest: BaseGuest()})
	add("base-encrypted", true, Opens, false, func(b []byte, _ Map) []byte { return b })

	// Whole-file shapes.
	add("zero-length", false, Fails, false, func(b []byte, _ Map) []byte { return b[:0] })
	add("one-byte", false, Fails, false, func(b []byte, _ Map) []byte { return b[:1] })
	add("footer-cookie-only", false, Fails, false, func(b []byte, _ Map) []byte { return []byte("conectix") })
	add("all-ff-8k", false, Either, false, func(b []byte, _ Map) []byte { return bytes.Repeat([]byte{0xFF}, 8192) })
	add("random-64k", false, Either, false, func(b []byte, _ Map) []byte {
		r := rand.New(rand.NewPCG(1, 2))
		out := make([]byte, 64<<10)
		for i := range out {
			out[i] = byte(r.Uint32())
		}
		copy(out[len(out)-512:], "conectix") // a cookie with a wrong checksum
		return out
	})
	add("lone-dynamic-footer", false, Fails, false, func(b []byte, _ Map) []byte { return b[:vhd.FooterSize] })
	add("two-footers-no-header", false, Fails, false, func(b []byte, _ Map) []byte {
		return append(bytes.Clone(b[:vhd.FooterSize]), b[:vhd.FooterSize]...)
	})

	// Footer fields.
	both("footer-checksum-both", Fails, false, func(b []byte, _ Map) []byte {
		b[FooterChecksum] ^= 1
		b[end(b)+FooterChecksum] ^= 1
		return b
	})
	both("footer-copy-damaged", Opens, true, func(b []byte, _ Map) []byte { b[FooterChecksum] ^= 1; return b })
	both("footer-end-damaged", Opens, true, func(b []byte, _ Map) []byte { b[end(b)+FooterChecksum] ^= 1; return b })
	both("footer-copy-size-mismatch", Opens, true, func(b []byte, _ Map) []byte {
		Put64(b, FooterCurSize, BaseSize+vhd.BlockSize)
		FixFooterAt(b, 0)
		return b
	})
	both("footer-copy-says-fixed", Either, true, func(b []byte, _ Map) []byte {
		Put32(b, FooterDiskType, uint32(vhd.Fixed))
		FixFooterAt(b, 0)
		return b
	})
	for _, sz := range []struct {
		name string
		v    uint64
	}{{"2^63", 1 << 63}, {"2^64-512", math.MaxUint64 - 511}, {"maxsize+512", vhd.MaxSize + 512}, {"odd", BaseSize + 1}, {"zero", 0}} {
		both("current-size-"+sz.name, Either, false, func(b []byte, _ Map) []byte {
			EditFooters(b, func(f []byte) { Put64(f, FooterCurSize, sz.v); Put64(f, FooterOrigSize, sz.v) })
			return b
		})
	}
	both("disk-type-99", Fails, false, func(b []byte, _ Map) []byte {
		EditFooters(b, func(f []byte) { Put32(f, FooterDiskType, 99) })
		return b
	})
	both("disk-type-fixed-in-dynamic-file", Fails, false, func(b []byte, _ Map) []byte {
		// A fixed disk of BaseSize needs BaseSize+512 bytes: this file
		// is shorter, or the disk data would be the metadata.
		EditFooters(b, func(f []byte) { Put32(f, FooterDiskType, uint32(vhd.Fixed)); Put64(f, FooterCurSize, 1<<40) })
		return b
	})
	add("fixed-file-footer-says-dynamic", false, Fails, false, func(_ []byte, _ Map) []byte {
		var buf bytes.Buffer
		_ = vhd.WriteFixed(&buf, bytes.NewReader(BaseGuest()[:8192]), 8192)
		b := buf.Bytes()
		f := b[len(b)-vhd.FooterSize:]
		Put32(f, FooterDiskType, uint32(vhd.Dynamic))
		FixFooterAt(b, int64(len(b)-vhd.FooterSize))
		return b
	})
	add("fixed-file-data-offset-zero-dynamic", false, Fails, false, func(_ []byte, _ Map) []byte {
		var buf bytes.Buffer
		_ = vhd.WriteFixed(&buf, bytes.NewReader(BaseGuest()[:8192]), 8192)
		b := buf.Bytes()
		f := b[len(b)-vhd.FooterSize:]
		Put32(f, FooterDiskType, uint32(vhd.Dynamic))
		Put64(f, FooterDataOffset, 0)
		FixFooterAt(b, int64(len(b)-vhd.FooterSize))
		return b
	})
	both("differencing-garbage-parent", Fails, false, func(b []byte, m Map) []byte {
		EditFooters(b, func(f []byte) { Put32(f, FooterDiskType, uint32(vhd.Differencing)) })
		return editHeader(b, m, func(h []byte) {
			for i := HeaderParentName; i < HeaderParentName+512; i++ {
				h[i] = 0xD8 // unpaired UTF-16 surrogates
			}
		})
	})
	both("poison-cookie", Either, false, func(b []byte, _ Map) []byte {
		EditFooters(b, func(f []byte) { copy(f, "v_poison") })
		return b
	})
	both("format-version-2", Fails, false, func(b []byte, _ Map) []byte {
		EditFooters(b, func(f []byte) { Put32(f, 0x0C, 0x00020000) })
		return b
	})

	// Footer -> header pointer.
	for _, d := range []struct {
		name string
		off  func(b []byte) uint64
	}{
		{"zero", func([]byte) uint64 { return 0 }},
		{"into-footer-copy", func([]byte) uint64 { return 0x100 }},
		{"into-end-footer", func(b []byte) uint64 { return uint64(end(b)) + 16 }},
		{"past-eof", func(b []byte) uint64 { return uint64(len(b)) + 1<<20 }},
		{"all-ones", func([]byte) uint64 { return math.MaxUint64 }},
		{"2^63", func([]byte) uint64 { return 1 << 63 }},
		{"unaligned", func([]byte) uint64 { return 0x201 }},
	} {
		both("data-offset-"+d.name, Fails, false, func(b []byte, _ Map) []byte {
			v := d.off(b)
			EditFooters(b, func(f []byte) { Put64(f, FooterDataOffset, v) })
			return b
		})
	}

	// Dynamic header fields.
	both("header-checksum", Fails, false, func(b []byte, m Map) []byte { b[m.Header+HeaderChecksum] ^= 0x10; return b })
	both("header-cookie", Fails, false, func(b []byte, m Map) []byte {
		return editHeader(b, m, func(h []byte) { copy(h, "cxspars!") })
	})
	both("header-version-2", Fails, false, func(b []byte, m Map) []byte {
		return editHeader(b, m, func(h []byte) { Put32(h, HeaderVersion, 0x00020000) })
	})
	both("header-data-offset-loop", Either, false, func(b []byte, m Map) []byte {
		// The (unused) next-structure pointer points back at the header.
		return editHeader(b, m, func(h []byte) { Put64(h, HeaderDataOffset, uint64(m.Header)) })
	})
	for _, t := range []struct {
		name string
		off  func(b []byte, m Map) uint64
	}{
		{"zero", func([]byte, Map) uint64 { return 0 }},
		{"into-footer-copy", func([]byte, Map) uint64 { return 0x100 }},
		{"into-header", func(_ []byte, m Map) uint64 { return uint64(m.Header) + 0x10 }},
		{"into-end-footer", func(b []byte, _ Map) uint64 { return uint64(end(b)) }},
		{"past-eof", func(b []byte, _ Map) uint64 { return uint64(len(b)) + 4096 }},
		{"all-ones", func([]byte, Map) uint64 { return math.MaxUint64 }},
		{"into-block-data", func(_ []byte, m Map) uint64 { return uint64(m.BlockBitmaps[0]) + 512 }},
	} {
		both("table-offset-"+t.name, Fails, false, func(b []byte, m Map) []byte {
			v := t.off(b, m)
			return editHeader(b, m, func(h []byte) { Put64(h, HeaderTableOffset, v) })
		})
	}
	for _, n := range []struct {
		name string
		v    uint32
	}{{"0", 0}, {"1", 1}, {"2^31", 1 << 31}, {"2^32-1", math.MaxUint32}} {
		both("max-table-entries-"+n.name, Fails, false, func(b []byte, m Map) []byte {
			return editHeader(b, m, func(h []byte) { Put32(h, HeaderMaxEntries, n.v) })
		})
	}
	for _, s := range []struct {
		name string
		v    uint32
		exp  Expect
	}{{"0", 0, Fails}, {"3", 3, Fails}, {"256", 256, Fails}, {"2^31", 1 << 31, Fails}, {"2^32-1", math.MaxUint32, Fails}, {"512", 512, Either}, {"4M", 4 << 20, Either}} {
		both("block-size-"+s.name, s.exp, false, func(b []byte, m Map) []byte {
			return editHeader(b, m, func(h []byte) { Put32(h, HeaderBlockSize, s.v) })
		})
	}

	// BAT entries.
	bat := func(j int, v func(b []byte, m Map) uint32) func(b []byte, m Map) []byte {
		return func(b []byte, m Map) []byte {
			Put32(b, m.BAT+4*int64(j), v(b, m))
			return b
		}
	}
	sector := func(off int64) uint32 { return uint32(off / vhd.SectorSize) }
	both("bat-loop-same-block", Fails, false, bat(2, func(_ []byte, m Map) uint32 { return sector(m.BlockBitmaps[0]) }))
	both("bat-overlap-one-sector", Fails, false, bat(2, func(_ []byte, m Map) uint32 { return sector(m.BlockBitmaps[0]) + 1 }))
	both("bat-unallocated-points-into-block", Fails, false, bat(1, func(_ []byte, m Map) uint32 { return sector(m.BlockBitmaps[0]) + 100 }))
	both("bat-past-eof", Fails, false, bat(2, func(b []byte, _ Map) uint32 { return sector(int64(len(b))) + 8 }))
	both("bat-into-end-footer", Fails, false, bat(2, func(b []byte, _ Map) uint32 { return sector(end(b)) }))
	both("bat-0xfffffffe", Fails, false, bat(0, func([]byte, Map) uint32 { return 0xFFFFFFFE }))
	both("bat-zero-bitmap-in-footer-copy", Fails, false, bat(0, func([]byte, Map) uint32 { return 0 }))
	both("bat-bitmap-in-header", Fails, false, bat(0, func(_ []byte, m Map) uint32 { return sector(m.Header) }))
	both("bat-bitmap-in-bat", Fails, false, bat(0, func(_ []byte, m Map) uint32 { return sector(m.BAT) }))
	both("bat-bitmap-in-batmap-header", Fails, false, bat(0, func(_ []byte, m Map) uint32 { return sector(m.BatmapHeader) }))
	both("bat-bitmap-in-batmap", Fails, false, bat(0, func(_ []byte, m Map) uint32 { return sector(m.Batmap) }))
	both("bat-swapped-order", Either, false, func(b []byte, m Map) []byte {
		// Valid for files (blocks need not be in order), not streamable.
		e0, e2 := be32(b[m.BAT:]), be32(b[m.BAT+8:])
		Put32(b, m.BAT, e2)
		Put32(b, m.BAT+8, e0)
		return b
	})

	// Batmap.
	batmapHdr := func(edit func(b []byte, m Map)) func(b []byte, m Map) []byte {
		return func(b []byte, m Map) []byte { edit(b, m); FixBatmap(b, m.BatmapHeader); return b }
	}
	both("batmap-lie-bit-set-bitmap-partial", Opens, true, batmapHdr(func(b []byte, m Map) { b[m.Batmap] |= 0x80 }))
	both("batmap-bit-for-unallocated-block", Either, false, batmapHdr(func(b []byte, m Map) { b[m.Batmap] |= 0x40 }))
	both("batmap-all-ones", Opens, true, batmapHdr(func(b []byte, m Map) {
		for i := m.Batmap; i < m.Batmap+vhd.SectorSize; i++ {
			b[i] = 0xFF
		}
	}))
	both("batmap-checksum", Fails, false, func(b []byte, m Map) []byte { b[m.BatmapHeader+BatmapChecksum] ^= 4; return b })
	both("batmap-size-0", Fails, false, batmapHdr(func(b []byte, m Map) { Put32(b, m.BatmapHeader+BatmapSizeField, 0) }))
	both("batmap-size-2^32-1", Fails, false, batmapHdr(func(b []byte, m Map) { Put32(b, m.BatmapHeader+BatmapSizeField, math.MaxUint32) }))
	both("batmap-size-past-eof", Fails, false, batmapHdr(func(b []byte, m Map) { Put32(b, m.BatmapHeader+BatmapSizeField, uint32(len(b)/512)) }))
	both("batmap-offset-past-eof", Fails, false, batmapHdr(func(b []byte, m Map) { Put64(b, m.BatmapHeader+BatmapOffsetField, uint64(len(b))) }))
	both("batmap-offset-all-ones", Fails, false, batmapHdr(func(b []byte, m Map) {
		Put64(b, m.BatmapHeader+BatmapOffsetField, math.MaxUint64)
	}))
	both("batmap-in-header", Fails, false, batmapHdr(func(b []byte, m Map) { Put64(b, m.BatmapHeader+BatmapOffsetField, uint64(m.Header)) }))
	both("batmap-in-block-data", Fails, false, batmapHdr(func(b []byte, m Map) {
		Put64(b, m.BatmapHeader+BatmapOffsetField, uint64(m.BlockBitmaps[0]+4096))
	}))
	both("batmap-version-2", Fails, false, batmapHdr(func(b []byte, m Map) { Put32(b, m.BatmapHeader+BatmapVersionField, 0x00020000) }))
	both("batmap-version-1.1-signed-sum", Either, false, batmapHdr(func(b []byte, m Map) {
		Put32(b, m.BatmapHeader+BatmapVersionField, 0x00010001)
	}))
	both("key-hash-cookie-garbage", Fails, false, batmapHdr(func(b []byte, m Map) { b[m.BatmapHeader+BatmapKeyCookie] = 0x7F }))
	both("key-hash-cookie-ff", Fails, false, batmapHdr(func(b []byte, m Map) { b[m.BatmapHeader+BatmapKeyCookie] = 0xFF }))
	add("key-hash-garbage-hash", true, Opens, false, func(b []byte, m Map) []byte {
		for i := m.BatmapHeader + BatmapHash; i < m.BatmapHeader+BatmapHash+32; i++ {
			b[i] ^= 0x5A
		}
		return b
	})
	add("key-hash-cookie-on-plain-image", false, Opens, false, func(b []byte, m Map) []byte {
		// Claims encryption over plaintext data, with a hash of no key.
		b[m.BatmapHeader+BatmapKeyCookie] = 1
		return b
	})
	add("key-hash-cookie-cleared", true, Opens, false, func(b []byte, m Map) []byte {
		b[m.BatmapHeader+BatmapKeyCookie] = 0
		return b
	})
	both("creator-not-tap-hides-batmap", Opens, false, func(b []byte, _ Map) []byte {
		EditFooters(b, func(f []byte) { copy(f[FooterCreator:], "qem2") })
		return b
	})

	// Sector bitmaps.
	both("bitmap-empty-block-allocated", Opens, false, func(b []byte, m Map) []byte {
		clear(b[m.BlockBitmaps[0] : m.BlockBitmaps[0]+vhd.SectorSize])
		return b
	})
	both("bitmap-all-ones-past-size", Either, false, func(b []byte, m Map) []byte {
		for i := m.BlockBitmaps[2]; i < m.BlockBitmaps[2]+vhd.SectorSize; i++ {
			b[i] = 0xFF
		}
		return b
	})
	add("encrypted-present-sectors-zero", true, Opens, true, func(b []byte, m Map) []byte {
		// The copy defect: a present sector stored as plaintext zeros.
		d := m.BlockBitmaps[0] + vhd.SectorSize
		clear(b[d+50*vhd.SectorSize : d+51*vhd.SectorSize])
		return b
	})

	// Truncation in every region.
	for _, t := range []struct {
		name string
		at   func(b []byte, m Map) int64
	}{
		{"in-footer-copy", func([]byte, Map) int64 { return 100 }},
		{"after-footer-copy", func([]byte, Map) int64 { return vhd.FooterSize }},
		{"in-header", func(_ []byte, m Map) int64 { return m.Header + 100 }},
		{"after-header", func(_ []byte, m Map) int64 { return m.Header + vhd.HeaderSize }},
		{"in-bat", func(_ []byte, m Map) int64 { return m.BAT + 6 }},
		{"in-batmap-header", func(_ []byte, m Map) int64 { return m.BatmapHeader + 40 }},
		{"in-batmap", func(_ []byte, m Map) int64 { return m.Batmap + 1 }},
		{"before-first-bitmap", func(_ []byte, m Map) int64 { return m.BlockBitmaps[0] }},
		{"in-first-bitmap", func(_ []byte, m Map) int64 { return m.BlockBitmaps[0] + 77 }},
		{"in-first-block-data", func(_ []byte, m Map) int64 { return m.BlockBitmaps[0] + 512 + 4096 + 3 }},
		{"in-last-block-data", func(_ []byte, m Map) int64 { return m.BlockBitmaps[2] + 512 + 700 }},
		{"in-last-block-past-disk-end", func(b []byte, _ Map) int64 { return int64(len(b)) - 512 - 700 }},
		{"in-end-footer", func(b []byte, _ Map) int64 { return int64(len(b)) - 1 }},
		{"without-end-footer", func(b []byte, _ Map) int64 { return int64(len(b)) - 512 }},
	} {
		exp := Fails
		if t.name == "without-end-footer" || t.name == "in-end-footer" || t.name == "in-last-block-past-disk-end" {
			exp = Opens // the footer copy at 0 is what it is for
		}
		both("truncated-"+t.name, exp, exp == Opens, func(b []byte, m Map) []byte { return b[:t.at(b, m)] })
	}
	both("trailing-garbage-after-footer", Either, true, func(b []byte, _ Map) []byte {
		return append(b, bytes.Repeat([]byte{0xAB}, 4096)...)
	})

	cs = append(cs, hugeCases(plain, pm)...)
	for _, nb := range []struct {
		nb  int64
		app string
	}{{4096, "win "}, {4 << 20, "vpc "}} {
		nc, err := NativeCases(nb.nb, nb.app)
		if err != nil {
			return nil, err
		}
		cs = append(cs, nc...)
	}
	return cs, nil
}

// NativeCases mutate an image of native block size nb (blocks smaller than
// 2 MiB are merged into 2 MiB blocks by the readers, larger ones split)
// written by creator app without a batmap, as qemu-img, Hyper-V and
// VirtualBox write them.
func NativeCases(nb int64, app string) ([]Case, error) {
	var cs []Case
	nbc := struct {
		name string
		nb   int64
		app  string
	}{fmt.Sprintf("%d-%s", nb, strings.TrimSpace(app)), nb, app}
	base, err := NativeBase(BaseGuest(), nbc.nb, nbc.app)
	if err != nil {
		return nil, fmt.Errorf("hvhd: native base %s: %w", nbc.name, err)
	}
	n := int((BaseSize + nbc.nb - 1) / nbc.nb)
	var alloc []int // allocated BAT entries
	for j := range n {
		if be32(base[0x600+4*j:]) != 0xFFFFFFFF {
			alloc = append(alloc, j)
		}
	}
	if len(alloc) < 2 {
		return nil, fmt.Errorf("hvhd: native base %s has %d blocks", nbc.name, len(alloc))
	}
	first, second := alloc[0], alloc[len(alloc)-1]
	entry := func(b []byte, j int) int64 { return 0x600 + 4*int64(j) }
	add := func(name string, exp Expect, finds bool, mut func(b []byte) []byte) {
		cs = append(cs, Case{Name: "native-" + nbc.name + "/" + name, Data: mut(bytes.Clone(base)), Expect: exp, CheckFinds: finds})
	}
	setBAT := func(j int, v func(b []byte) uint32) func(b []byte) []byte {
		return func(b []byte) []byte { Put32(b, entry(b, j), v(b)); return b }
	}
	editHeader := func(edit func(h []byte)) func(b []byte) []byte {
		return func(b []byte) []byte { edit(b[0x200:0x600]); FixHeader(b, 0x200); return b }
	}
	cs = append(cs, Case{Name: "native-" + nbc.name + "/base", Data: base, Expect: Opens, Guest: BaseGuest()})
	add("bat-loop", Fails, false, setBAT(second, func(b []byte) uint32 { return be32(b[entry(b, first):]) }))
	add("bat-overlap", Fails, false, setBAT(second, func(b []byte) uint32 { return be32(b[entry(b, first):]) + 1 }))
	add("bat-past-eof", Fails, false, setBAT(second, func(b []byte) uint32 { return uint32(len(b)/vhd.SectorSize) + 1 }))
	add("bat-into-header", Fails, false, setBAT(first, func([]byte) uint32 { return 1 }))
	add("bat-into-bat", Fails, false, setBAT(first, func([]byte) uint32 { return 0x600 / vhd.SectorSize }))
	add("bat-into-end-footer", Fails, false, setBAT(second, func(b []byte) uint32 { return uint32(len(b)/vhd.SectorSize) - 1 }))
	add("bat-swapped", Either, false, func(b []byte) []byte {
		e0, e1 := be32(b[entry(b, first):]), be32(b[entry(b, second):])
		Put32(b, entry(b, first), e1)
		Put32(b, entry(b, second), e0)
		return b
	})
	add("max-table-entries-2^32-1", Fails, false, editHeader(func(h []byte) { Put32(h, HeaderMaxEntries, math.MaxUint32) }))
	add("max-table-entries-short", Fails, false, editHeader(func(h []byte) { Put32(h, HeaderMaxEntries, uint32(n-1)) }))
	add("block-size-doubled", Either, false, editHeader(func(h []byte) { Put32(h, HeaderBlockSize, uint32(2*nbc.nb)) }))
	add("block-size-halved", Either, false, editHeader(func(h []byte) { Put32(h, HeaderBlockSize, uint32(nbc.nb/2)) }))
	add("bitmap-all-ones", Opens, false, func(b []byte) []byte {
		off := int64(be32(b[entry(b, first):])) * vhd.SectorSize
		for i := off; i < off+pad((nbc.nb/vhd.SectorSize+7)/8); i++ {
			b[i] = 0xFF
		}
		return b
	})
	add("truncated-in-last-block", Fails, false, func(b []byte) []byte {
		off := int64(be32(b[entry(b, second):])) * vhd.SectorSize
		return b[:off+pad((nbc.nb/vhd.SectorSize+7)/8)+100]
	})
	add("without-end-footer", Opens, true, func(b []byte) []byte { return b[:len(b)-vhd.FooterSize] })
	return cs, nil
}

// hugeCases are files that claim to be far larger than memory: the reader
// must look only at what the metadata needs.
func hugeCases(plain []byte, m Map) []Case {
	meta := bytes.Clone(plain[:m.BlockBitmaps[0]])
	foot := bytes.Clone(plain[len(plain)-vhd.FooterSize:])
	huge := func(name string, size int64, fill byte, exp Expect, edit func(meta, foot []byte)) Case {
		mb, fb := bytes.Clone(meta), bytes.Clone(foot)
		edit(mb, fb)
		FixFooterAt(mb, 0)
		FixFooterAt(fb, 0)
		FixHeader(mb, m.Header)
		return Case{Name: "huge/" + name, Expect: exp, Huge: &Sparse{Size: size, Fill: fill, Parts: []Part{{0, mb}, {size - vhd.FooterSize, fb}}}}
	}
	sizeBoth := func(v uint64) func(mb, fb []byte) {
		return func(mb, fb []byte) {
			Put64(mb, FooterCurSize, v)
			Put64(fb, FooterCurSize, v)
		}
	}
	var cs []Case
	// A 2^62-byte file whose header asks for a 2^31-entry BAT: the entries
	// beyond what the virtual size needs must not be read or allocated.
	cs = append(cs, huge("max-table-entries-2^31-in-2^62-file", 1<<62, 0xFF, Fails, func(mb, fb []byte) {
		Put32(mb[m.Header:], HeaderMaxEntries, 1<<31)
	}))
	// The largest legal disk with 2 MiB blocks in a file claiming 2^62
	// bytes, every BAT entry 0xFFFFFFFF (unallocated) through the fill: it
	// opens (the BAT is 4 MiB, which is the metadata size), nothing else.
	cs = append(cs, huge("maxsize-disk-unallocated", 1<<62, 0xFF, Either, func(mb, fb []byte) {
		sizeBoth(vhd.MaxSize)(mb, fb)
		Put32(mb[m.Header:], HeaderMaxEntries, vhd.MaxSize/vhd.BlockSize)
		// The batmap header would lie inside the huge BAT: hide it.
		copy(mb[0x1C:], "qem2")
		copy(fb[0x1C:], "qem2")
	}))
	// A size of 2^63 in a file of 2^63-1 bytes.
	cs = append(cs, huge("size-2^63-file-2^63-1", math.MaxInt64, 0, Fails, sizeBoth(1<<63)))
	// A 512-byte block size at the maximum disk size needs 2^32 entries:
	// refused before any allocation.
	cs = append(cs, huge("block-512-at-maxsize", 1<<62, 0xFF, Fails, func(mb, fb []byte) {
		sizeBoth(vhd.MaxSize)(mb, fb)
		Put32(mb[m.Header:], HeaderBlockSize, 512)
		Put32(mb[m.Header:], HeaderMaxEntries, math.MaxUint32)
	}))
	// BAT at the far end of a 2^62 file, BAT entries as zeros.
	cs = append(cs, huge("table-at-end-of-huge-file", 1<<62, 0, Fails, func(mb, fb []byte) {
		Put64(mb[m.Header:], HeaderTableOffset, 1<<62-vhd.FooterSize-4096)
	}))
	return cs
}
