package doctor_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/internal/hostimg"
	"github.com/e2eimage/e2eimage/internal/imagetest"
)

// The budget of one examination (issue 22): what one fuzz input may
// allocate in all (a transient allocation counts: the heap's cumulative
// allocation counter is read before and after) and how long it may take.
const (
	fuzzAllocBudget = 256 << 20
	fuzzTimeBudget  = 10 * time.Second
)

// region is a structure of a seed image the mutator aims at.
type region struct {
	name   string
	off, n int64
}

// seed is a real image (made by mkfs.ext4 -d, mkfs.xfs -p, sfdisk and
// qemu-img) and where its structures are.
type seed struct {
	name    string
	b       []byte
	regions []region
	ext4    *hostimg.Ext4 // for the inode checksums, when it holds ext4
	gpt     bool
}

var (
	seedsOnce sync.Once
	seeds     []*seed
)

func fuzzSeeds(tb testing.TB) []*seed {
	seedsOnce.Do(func() { seeds = buildSeeds(tb) })
	if len(seeds) == 0 {
		tb.Fatal("no seed images")
	}
	return seeds
}

func buildSeeds(tb testing.TB) []*seed {
	tree := hostimg.Tree(tb)
	var out []*seed
	for _, kind := range []string{"dos", "gpt"} {
		p := hostimg.Ext4Disk(tb, tree, 8<<20, 12<<20, kind)
		s := &seed{name: "ext4-" + kind, b: readAll(tb, p), gpt: kind == "gpt"}
		s.ext4Regions(tb)
		if s.gpt {
			s.gptRegions()
		}
		out = append(out, s)
		if kind == "dos" {
			q := imagetest.Convert(tb, p, "qcow2")
			qs := &seed{name: "qcow2-ext4", b: readAll(tb, q)}
			qs.regions = []region{{"qcow2 header", 0, 512}, {"qcow2 tables", 512, min(int64(len(qs.b))-512, 256<<10)}}
			out = append(out, qs)
		}
	}
	xfsImg := imagetest.XFS(tb, tree, 20<<20, "root")
	p := imagetest.Disk(tb, "gpt", 24<<20, imagetest.Part{Type: "L", Image: xfsImg})
	s := &seed{name: "xfs-gpt", b: readAll(tb, p), gpt: true}
	s.xfsRegions()
	s.gptRegions()
	out = append(out, s)
	return out
}

func readAll(tb testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// ext4Regions: superblock, group descriptors, the first inodes (the root
// directory is inode 2), the root and /etc directory blocks, and a free
// block where a crafted extent node can go.
func (s *seed) ext4Regions(tb testing.TB) {
	e, err := hostimg.ReadExt4(s.b, hostimg.PartStart)
	if err != nil {
		tb.Fatal(err)
	}
	s.ext4 = e
	s.regions = append(s.regions,
		region{"mbr", 0, 512},
		region{"ext4 superblock", e.Start + 1024, 1024},
		region{"ext4 group descriptors", e.BlockOffset(1), e.BlockSize},
		region{"ext4 inode table", e.InodeOffset(1), 32 * e.InodeSize},
		region{"ext4 root extent tree", e.InodeOffset(2) + 0x28, 60},
		region{"ext4 spare block", e.BlockOffset(e.Blocks - 8), e.BlockSize},
	)
	le := binary.LittleEndian
	if etc, err := e.Lookup(s.b, 2, "etc"); err == nil {
		s.regions = append(s.regions, region{"ext4 /etc inode", e.InodeOffset(etc), e.InodeSize})
	}
	for _, ino := range []uint32{2} {
		ib := s.b[e.InodeOffset(ino)+0x28:]
		if le.Uint16(ib) == 0xF30A && le.Uint16(ib[2:]) > 0 {
			phys := int64(le.Uint32(ib[12+8:])) | int64(le.Uint16(ib[12+6:]))<<32
			s.regions = append(s.regions, region{"ext4 root directory", e.BlockOffset(phys), e.BlockSize})
		}
	}
}

// gptRegions: both GPT headers and the first entries of both arrays.
func (s *seed) gptRegions() {
	last := int64(len(s.b)) - 512
	s.regions = append(s.regions,
		region{"gpt primary header", 512, 512},
		region{"gpt primary entries", 1024, 512},
		region{"gpt backup header", last, 512},
		region{"gpt backup entries", last - 32*512, 512},
	)
}

// xfsRegions: the superblock and AG headers of AG 0 and 1, the root inode
// and the inode and free-space btree roots of AG 0.
func (s *seed) xfsRegions() {
	const start = hostimg.PartStart
	be := binary.BigEndian
	sb := s.b[start:]
	bs := int64(be.Uint32(sb[4:]))
	agblocks := int64(be.Uint32(sb[84:]))
	inodeSize := int64(be.Uint16(sb[104:]))
	inopblog := uint(sb[123])
	agblklog := uint(sb[124])
	root := be.Uint64(sb[56:])
	ag, rel := int64(root>>(inopblog+agblklog)), int64(root&(1<<(inopblog+agblklog)-1))
	rootOff := start + (ag*agblocks+rel>>inopblog)*bs + (rel&(1<<inopblog-1))*inodeSize
	agf, agi := s.b[start+512:], s.b[start+1024:]
	s.regions = append(s.regions,
		region{"xfs superblock", start, 512},
		region{"xfs agf", start + 512, 512},
		region{"xfs agi", start + 1024, 512},
		region{"xfs agfl", start + 1536, 512},
		region{"xfs ag1 headers", start + agblocks*bs, 2048},
		region{"xfs root inode", rootOff, inodeSize},
		region{"xfs inobt root", start + int64(be.Uint32(agi[20:]))*bs, bs},
		region{"xfs bnobt root", start + int64(be.Uint32(agf[16:]))*bs, bs},
		region{"xfs cntbt root", start + int64(be.Uint32(agf[20:]))*bs, bs},
	)
}

// overlay is a seed image with a few bytes changed, read without copying
// the image.
type overlay struct {
	base  []byte
	patch map[int64]byte
	offs  []int64 // sorted keys of patch
}

func (o *overlay) set(off int64, v byte) {
	if off < 0 || off >= int64(len(o.base)) {
		return
	}
	if _, ok := o.patch[off]; !ok {
		i, _ := slices.BinarySearch(o.offs, off)
		o.offs = slices.Insert(o.offs, i, off)
	}
	o.patch[off] = v
}

func (o *overlay) get(off int64) byte {
	if v, ok := o.patch[off]; ok {
		return v
	}
	return o.base[off]
}

func (o *overlay) bytes(off, n int64) []byte {
	b := make([]byte, n)
	_, _ = o.ReadAt(b, off)
	return b
}

func (o *overlay) put(off int64, b []byte) {
	for i, v := range b {
		o.set(off+int64(i), v)
	}
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("overlay: negative offset")
	}
	if off >= int64(len(o.base)) {
		return 0, io.EOF
	}
	n := copy(p, o.base[off:])
	i := sort.Search(len(o.offs), func(k int) bool { return o.offs[k] >= off })
	for ; i < len(o.offs) && o.offs[i] < off+int64(n); i++ {
		p[o.offs[i]-off] = o.patch[o.offs[i]]
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Values a mutation writes: the edges of each width, and the numbers the
// structures use (extent magic, extent lengths, GPT entry sizes).
var interesting = []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x3ff, 0x400, 0x1000,
	0x7fff, 0x8000, 0x8001, 0xffff, 0x10000, 0xF30A, 340, 4096, 32768, 1 << 20, 1 << 24, 0x7fffffff, 0x80000000,
	0xffffffff, 1 << 32, 1 << 40, 1<<63 - 1, 1 << 63, ^uint64(0)}

// mutate decodes data as (seed, flags, edits...) and returns the edited
// image. Each edit is 8 bytes: the region (mod the seed's regions), a
// 32-bit offset in it (mod its size), an operation and a 16-bit value:
// set a byte, set a little-endian 16-bit word, set a little- or big-endian
// 32- or 64-bit word to an interesting value, or xor a byte. Flag bit 0
// recomputes the checksums the readers verify (GPT header CRCs, ext4 inode
// checksums), so that an edit reaches past them.
func mutate(ss []*seed, data []byte) (*seed, *overlay) {
	if len(data) < 2 {
		data = append(data, 0, 0)
	}
	s := ss[int(data[0])%len(ss)]
	fix := data[1]&1 != 0
	o := &overlay{base: s.b, patch: map[int64]byte{}}
	le, be := binary.LittleEndian, binary.BigEndian
	touched := map[uint32]bool{}
	for e := data[2:]; len(e) >= 8 && len(o.offs) < 4096; e = e[8:] {
		r := s.regions[int(e[0])%len(s.regions)]
		off := r.off + int64(le.Uint32(e[1:]))%r.n
		val := le.Uint16(e[6:])
		iv := interesting[int(val)%len(interesting)]
		var w [8]byte
		switch e[5] % 8 {
		case 0:
			o.set(off, byte(val))
		case 1:
			le.PutUint16(w[:], val)
			o.put(off, w[:2])
		case 2:
			le.PutUint32(w[:], uint32(iv))
			o.put(off, w[:4])
		case 3:
			be.PutUint32(w[:], uint32(iv))
			o.put(off, w[:4])
		case 4:
			le.PutUint64(w[:], iv)
			o.put(off, w[:8])
		case 5:
			be.PutUint64(w[:], iv)
			o.put(off, w[:8])
		case 6:
			o.set(off, o.get(off)^byte(val))
		case 7:
			le.PutUint16(w[:], uint16(iv))
			o.put(off, w[:2])
		}
		if s.ext4 != nil {
			if ino, ok := inodeOf(s.ext4, off); ok {
				touched[ino] = true
			}
		}
	}
	if fix {
		if s.gpt {
			for _, h := range []int64{512, int64(len(s.b)) - 512} {
				hb := o.bytes(h, 512)
				hostimg.GPTHeaderCRC(hb)
				o.put(h+16, hb[16:20])
			}
		}
		for ino := range touched {
			fixInode(s.ext4, o, ino)
		}
	}
	return s, o
}

func inodeOf(e *hostimg.Ext4, off int64) (uint32, bool) {
	first := e.InodeOffset(1)
	if off < first || off >= first+32*e.InodeSize {
		return 0, false
	}
	return uint32((off-first)/e.InodeSize) + 1, true
}

// fixInode recomputes the checksum of an inode of the overlay.
func fixInode(e *hostimg.Ext4, o *overlay, ino uint32) {
	off := e.InodeOffset(ino)
	in := o.bytes(off, e.InodeSize)
	e.InodeBytesCRC(in, ino)
	o.put(off, in)
}

var heapAllocs = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func allocated() uint64 {
	metrics.Read(heapAllocs)
	return heapAllocs[0].Value.Uint64()
}

// FuzzExamine runs doctor.Examine on real images edited by a
// structure-aware mutator (see mutate): GPT headers (both) and entries,
// ext4 superblock, group descriptors, inode table, extent trees and
// directories, XFS superblock, AG headers, root inode and btree roots,
// qcow2 header and tables. Each input must end with a report or an error,
// within the budget: fuzzAllocBudget bytes allocated in all (a breach is a
// finding, before it could be an out-of-memory crash of the fuzzer) and
// fuzzTimeBudget. Under go test (CI) only the seed corpus runs.
func FuzzExamine(f *testing.F) {
	ss := fuzzSeeds(f)
	for i := range ss {
		f.Add([]byte{byte(i), 0})
	}
	for _, h := range hostileInputs(ss) {
		f.Add(h.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { examineInput(t, ss, data) })
}

// FuzzExamineXFS is FuzzExamine on the XFS seed alone, so that its time
// goes to the XFS superblock, AG headers, root inode and btree roots.
func FuzzExamineXFS(f *testing.F) {
	ss := fuzzSeeds(f)
	xfs := []*seed{ss[seedIndex(ss, "xfs-gpt")]}
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, data []byte) { examineInput(t, xfs, data) })
}

// examineInput runs one fuzz input: the edited image through disk.Open
// and doctor.Examine, within the budget.
func examineInput(t *testing.T, ss []*seed, data []byte) {
	s, o := mutate(ss, data)
	d, err := disk.Open(o, int64(len(s.b)), disk.AllowNoPartitionTable())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*fuzzTimeBudget)
	defer cancel()
	a0, t0 := allocated(), time.Now()
	r, err := doctor.Examine(ctx, d)
	took, alloc := time.Since(t0), allocated()-a0
	if alloc > fuzzAllocBudget {
		t.Fatalf("%s: Examine allocated %d MiB, over the budget of %d MiB", s.name, alloc>>20, fuzzAllocBudget>>20)
	}
	if took > fuzzTimeBudget {
		t.Fatalf("%s: Examine took %v, over the budget of %v", s.name, took, fuzzTimeBudget)
	}
	if err != nil {
		return
	}
	if len(r.Findings) == 0 {
		t.Fatalf("%s: a report without findings", s.name)
	}
	for _, fd := range r.Findings {
		if fd.Verdict != doctor.Pass && fd.Verdict != doctor.Fail && fd.Verdict != doctor.NotInspected {
			t.Fatalf("%s: finding %q has verdict %v", s.name, fd.Check, fd.Verdict)
		}
	}
	_ = r.String()
}

type hostileInput struct {
	data    []byte
	check   string // the finding that must say so
	verdict doctor.Verdict
	why     string // in its detail
}

// hostileInputs are the hostile images as edits of the seeds: the
// GPT whose backup header claims 2^32-1 entries of 128 bytes (its primary
// failing its CRC), the ext4 root directory whose extent index loops on
// itself.
func hostileInputs(ss []*seed) map[string]hostileInput {
	gptSeed := seedIndex(ss, "ext4-gpt")
	g := ss[gptSeed]
	gpt := edits(byte(gptSeed), 1,
		edit(regionIndex(g, "gpt primary header"), 88, 6, 0xff),
		edit(regionIndex(g, "gpt backup header"), 80, 2, uint16(indexOf(0xffffffff))),
		edit(regionIndex(g, "gpt backup header"), 84, 2, uint16(indexOf(0x80))))
	extSeed := seedIndex(ss, "ext4-dos")
	s := ss[extSeed]
	spare := s.regions[regionIndex(s, "ext4 spare block")]
	spareBlock := uint16((spare.off - s.ext4.Start) / s.ext4.BlockSize)
	root, sp := regionIndex(s, "ext4 root extent tree"), regionIndex(s, "ext4 spare block")
	node := func(r int, max uint16) [][8]byte {
		return [][8]byte{
			edit(r, 0, 1, 0xF30A), edit(r, 2, 1, 1), edit(r, 4, 1, max), edit(r, 6, 1, 1),
			edit(r, 12+4, 1, spareBlock), edit(r, 12+6, 1, 0), edit(r, 12+8, 1, 0),
		}
	}
	loop := edits(byte(extSeed), 1, append(node(root, 4), node(sp, 340)...)...)
	return map[string]hostileInput{
		"gpt-backup-bomb":  {gpt, doctor.CheckPartitionTable, doctor.Fail, "backup GPT header claims 4294967295 entries"},
		"ext4-extent-loop": {loop, doctor.CheckFileSystems, doctor.NotInspected, "extent tree of inode 2"},
	}
}

func seedIndex(ss []*seed, name string) int {
	for i, s := range ss {
		if s.name == name {
			return i
		}
	}
	panic("no seed " + name)
}

func regionIndex(s *seed, name string) int {
	for i, r := range s.regions {
		if r.name == name {
			return i
		}
	}
	panic("no region " + name + " in " + s.name)
}

func indexOf(v uint64) int {
	for i, x := range interesting {
		if x == v {
			return i
		}
	}
	panic("not an interesting value")
}

func edit(region int, off uint32, op byte, val uint16) [8]byte {
	var e [8]byte
	e[0] = byte(region)
	binary.LittleEndian.PutUint32(e[1:], off)
	e[5] = op
	binary.LittleEndian.PutUint16(e[6:], val)
	return e
}

func edits(seed, flags byte, es ...[8]byte) []byte {
	b := []byte{seed, flags}
	for _, e := range es {
		b = append(b, e[:]...)
	}
	return b
}

// TestFuzzSeedsReachTheReaders checks that the mutator's seeds are what it
// aims at: every seed examines to a complete report, and the two
// hostile edits are refused (the GPT) or not inspected (the extent loop),
// so that FuzzExamine's seed corpus runs the guards.
func TestFuzzSeedsReachTheReaders(t *testing.T) {
	ss := fuzzSeeds(t)
	for i, s := range ss {
		_, o := mutate(ss, []byte{byte(i), 0})
		d, err := disk.Open(o, int64(len(s.b)), disk.AllowNoPartitionTable())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		r, err := doctor.Examine(context.Background(), d)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if f, _ := r.Finding(doctor.CheckFileSystems); f.Verdict != doctor.Pass {
			t.Errorf("%s: the seed's file systems: %v %s", s.name, f.Verdict, f.Detail)
		}
		if f, _ := r.Finding(doctor.CheckOS); f.Verdict != doctor.Pass {
			t.Errorf("%s: the seed's OS: %v %s", s.name, f.Verdict, f.Detail)
		}
	}
	for name, h := range hostileInputs(ss) {
		s, o := mutate(ss, h.data)
		d, err := disk.Open(o, int64(len(s.b)), disk.AllowNoPartitionTable())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := doctor.Examine(context.Background(), d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f, _ := r.Finding(h.check); f.Verdict != h.verdict || !strings.Contains(f.Detail, h.why) {
			t.Errorf("%s: %s: %v %q, want %v with %q", name, h.check, f.Verdict, f.Detail, h.verdict, h.why)
		}
	}
}
