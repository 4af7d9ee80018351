package doctor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/e2eimage/e2eimage/disk"
)

// ErrLimit matches *LimitError.
var ErrLimit = errors.New("doctor: a structure of the image exceeds what the doctor reads")

// LimitError says that a structure of the image (an extent tree, a
// directory, the reads of one file system) exceeds the budget the doctor
// gives it, so that what it holds was not inspected. The doctor reports it
// as a NotInspected finding (or, for the partition table, which the rest
// needs, a failed one); it is never a crash.
type LimitError struct {
	Structure string // what exceeds the limit: "the extent tree of inode 12"
	Limit     string // the limit: "a depth of 5"
}

func (e *LimitError) Error() string {
	return "not inspected: " + e.Structure + " exceeds " + e.Limit
}

// Is matches ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Budgets of one file system's readers. A file-system library reads
// through a guard that counts its reads and checks the context at each
// one; what a real root file system needs is far below these (the bench
// image of 20,000 files takes a few hundred reads and a few MiB), so
// they only stop a crafted image that would make the library loop or
// read a disk's worth of data.
const (
	maxFSReadBytes = 256 << 20 // bytes read through one file system
	maxFSReads     = 1 << 17   // read calls through one file system
	maxDirSize     = 8 << 20   // a directory go-diskfs reads whole
	maxLinkSize    = 4096      // a symbolic link's target (PATH_MAX)
	maxExtentDepth = 5         // the kernel's EXT4_MAX_EXTENT_DEPTH
	maxExtentNodes = 4096      // extent tree blocks of one inode
)

// budget counts what the readers of one file system read and makes the
// first breach sticky: every later read fails with it, so that a library
// looping on a crafted structure stops at once.
type budget struct {
	ctx   context.Context
	what  string // "the ext4 file system of partition 1"
	bytes int64  // left
	reads int64  // left
	err   error  // the first breach, sticky
}

func newBudget(ctx context.Context, what string) *budget {
	return &budget{ctx: ctx, what: what, bytes: maxFSReadBytes, reads: maxFSReads}
}

// charge accounts for a read of n bytes, or says why it may not happen.
func (b *budget) charge(n int) error {
	if b.err != nil {
		return b.err
	}
	if err := b.ctx.Err(); err != nil {
		return err
	}
	switch {
	case int64(n) > b.bytes:
		b.err = &LimitError{Structure: "reading " + b.what, Limit: fmt.Sprintf("%d MiB", maxFSReadBytes>>20)}
	case b.reads <= 0:
		b.err = &LimitError{Structure: "reading " + b.what, Limit: fmt.Sprintf("%d reads", maxFSReads)}
	}
	if b.err != nil {
		return b.err
	}
	b.bytes -= int64(n)
	b.reads--
	return nil
}

// trip records a breach found by a check of what a library will trust.
func (b *budget) trip(err error) error {
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// failed returns the sticky breach, or the context's error.
func (b *budget) failed() error {
	if b.err != nil {
		return b.err
	}
	return b.ctx.Err()
}

// guardedReader reads the disk for one file system's library, within its
// budget, and checks each inode the library reads before it trusts it
// (ext4 only).
type guardedReader struct {
	d        *disk.Disk
	b        *budget
	ext      *extGuard // nil but for ext2/3/4
	xfsInode int       // XFS: the inode size, 0 for other file systems
}

func (g *guardedReader) ReadAt(p []byte, off int64) (int, error) {
	if err := g.b.charge(len(p)); err != nil {
		return 0, err
	}
	n, err := g.d.ReadAt(p, off)
	if err == nil && g.ext != nil {
		if ino, ok := g.ext.inodeAt(off, len(p)); ok && !g.ext.checked[ino] {
			if cerr := g.ext.checkInode(g, p, ino); cerr != nil {
				return 0, cerr
			}
			g.ext.checked[ino] = true
		}
	}
	if err == nil && g.xfsInode > 0 && len(p) == g.xfsInode {
		if cerr := g.checkXFSInode(p); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// checkXFSInode checks what go-xfs-filesystem trusts in an XFS inode
// (b, read whole): it allocates a symbolic link stored in the inode
// (local format) at the size the inode claims, before reading it from the
// inode's few hundred bytes.
func (g *guardedReader) checkXFSInode(b []byte) error {
	be := binary.BigEndian
	if len(b) < 100 || string(b[:2]) != "IN" {
		return nil
	}
	mode, format, size := be.Uint16(b[2:]), b[5], be.Uint64(b[56:])
	if mode&0xF000 == 0xA000 && format == 1 && size > uint64(len(b)) {
		return g.b.trip(&LimitError{Structure: fmt.Sprintf("an XFS symbolic link stored in its inode (%d bytes)", size), Limit: fmt.Sprintf("its %d-byte inode", len(b))})
	}
	return nil
}

var _ io.ReaderAt = (*guardedReader)(nil)

// extGuard knows where an ext2/3/4 file system keeps its inodes, so that it
// can check each inode go-diskfs reads before go-diskfs walks its extent
// tree or reads it whole: go-diskfs follows an extent index wherever it
// points (a loop recurses until the stack is exhausted) and reads a
// directory into one buffer of the size its extents claim.
type extGuard struct {
	start      int64 // the partition's offset on the disk
	blockSize  int64
	blocks     int64 // in the file system
	inodeSize  int64
	perGroup   int64   // inodes per group
	tables     []int64 // absolute offset of each group's inode table
	tableOrder []int   // indices of tables, by offset
	// checked holds the inodes found good: the disk does not change
	// during an examination, and go-diskfs reads each directory's inode
	// again at every path lookup.
	checked map[uint32]bool
}

// newExtGuard reads the group descriptors of the ext file system whose
// superblock is sb (already bounded by checkExtSuperblock).
func newExtGuard(g *guardedReader, sb []byte, start int64) (*extGuard, error) {
	le := binary.LittleEndian
	e := &extGuard{start: start, blockSize: 1024 << le.Uint32(sb[24:]), inodeSize: 128, perGroup: int64(le.Uint32(sb[40:])), checked: map[uint32]bool{}}
	e.blocks = int64(le.Uint32(sb[4:]))
	descSize := int64(32)
	if le.Uint32(sb[96:])&0x80 != 0 { // 64bit
		e.blocks |= int64(le.Uint32(sb[336:])) << 32
		descSize = int64(le.Uint16(sb[254:]))
	}
	if le.Uint32(sb[76:]) >= 1 { // dynamic revision: s_inode_size
		e.inodeSize = int64(le.Uint16(sb[88:]))
	}
	blocksPerGroup := int64(le.Uint32(sb[32:]))
	groups := (e.blocks + blocksPerGroup - 1) / blocksPerGroup
	gdtBlock := int64(1)
	if e.blockSize == 1024 {
		gdtBlock = 2
	}
	gdt := make([]byte, groups*descSize)
	if _, err := g.ReadAt(gdt, start+gdtBlock*e.blockSize); err != nil {
		return nil, fmt.Errorf("doctor: reading the ext group descriptors: %w", err)
	}
	e.tables = make([]int64, groups)
	e.tableOrder = make([]int, groups)
	for i := range groups {
		d := gdt[i*descSize:]
		t := int64(le.Uint32(d[8:]))
		if descSize >= 64 {
			t |= int64(le.Uint32(d[0x28:])) << 32
		}
		e.tables[i] = start + t*e.blockSize
		e.tableOrder[i] = int(i)
	}
	sort.Slice(e.tableOrder, func(a, b int) bool { return e.tables[e.tableOrder[a]] < e.tables[e.tableOrder[b]] })
	return e, nil
}

// inodeAt tells whether a read of n bytes at off is go-diskfs reading one
// inode, and which.
func (e *extGuard) inodeAt(off int64, n int) (uint32, bool) {
	if int64(n) != e.inodeSize {
		return 0, false
	}
	// The last table starting at or before off.
	i := sort.Search(len(e.tableOrder), func(k int) bool { return e.tables[e.tableOrder[k]] > off }) - 1
	for ; i >= 0; i-- {
		g := e.tableOrder[i]
		rel := off - e.tables[g]
		if rel >= e.perGroup*e.inodeSize {
			return 0, false
		}
		if rel%e.inodeSize == 0 {
			return uint32(int64(g)*e.perGroup + rel/e.inodeSize + 1), true
		}
		// Tables may overlap on a crafted image; try the one before.
	}
	return 0, false
}

// checkInode checks what go-diskfs will trust in inode ino (its bytes b):
// a directory or symbolic link it reads whole is small enough, and its
// extent tree is at most maxExtentDepth deep, visits no block twice,
// points inside the file system and holds at most maxExtentNodes blocks.
// A breach trips the budget: the file system is then not inspected.
func (e *extGuard) checkInode(g *guardedReader, b []byte, ino uint32) error {
	le := binary.LittleEndian
	if len(b) < 128 {
		return nil
	}
	mode := le.Uint16(b[0:])
	size := int64(le.Uint32(b[4:])) | int64(le.Uint32(b[0x6c:]))<<32
	flags := le.Uint32(b[0x20:])
	kind := mode & 0xF000
	whole := int64(-1) // the most go-diskfs may read of it at once
	switch kind {
	case 0x4000:
		whole = maxDirSize
		if size < 0 || size > maxDirSize {
			return g.b.trip(&LimitError{Structure: fmt.Sprintf("directory inode %d (%d bytes)", ino, uint64(size)), Limit: fmt.Sprintf("%d MiB", maxDirSize>>20)})
		}
	case 0xA000:
		if size >= 0 && size < 60 {
			return nil // the target is in the inode itself
		}
		whole = maxLinkSize
		if size < 0 || size > maxLinkSize {
			return g.b.trip(&LimitError{Structure: fmt.Sprintf("symbolic link inode %d (%d bytes)", ino, uint64(size)), Limit: fmt.Sprintf("%d bytes", maxLinkSize)})
		}
	}
	if flags&0x80000 == 0 { // no extent tree (block map or inline data)
		return nil
	}
	w := extWalk{e: e, g: g, ino: ino, seen: map[int64]bool{}}
	if err := w.node(b[0x28:0x64], -1); err != nil {
		return err
	}
	if whole >= 0 && w.total*e.blockSize > whole {
		return g.b.trip(&LimitError{Structure: fmt.Sprintf("the extents of inode %d (%d blocks of %d bytes)", ino, w.total, e.blockSize), Limit: fmt.Sprintf("%d bytes", whole)})
	}
	return nil
}

type extWalk struct {
	e     *extGuard
	g     *guardedReader
	ino   uint32
	seen  map[int64]bool
	total int64 // blocks mapped by the leaves
}

// node checks one extent tree node (n, the inode's 60 bytes or a block);
// parent is the depth its parent declared, -1 for the root.
func (w *extWalk) node(n []byte, parent int) error {
	le := binary.LittleEndian
	tree := fmt.Sprintf("the extent tree of inode %d", w.ino)
	if le.Uint16(n[0:]) != 0xF30A {
		return w.g.b.trip(fmt.Errorf("doctor: %s: a node without the extent magic number", tree))
	}
	entries, maxEntries, depth := int(le.Uint16(n[2:])), int(le.Uint16(n[4:])), int(le.Uint16(n[6:]))
	switch {
	case depth > maxExtentDepth:
		return w.g.b.trip(&LimitError{Structure: fmt.Sprintf("%s (depth %d)", tree, depth), Limit: fmt.Sprintf("a depth of %d", maxExtentDepth)})
	case parent >= 0 && depth != parent-1:
		return w.g.b.trip(fmt.Errorf("doctor: %s: a node of depth %d under one of depth %d", tree, depth, parent))
	case entries > maxEntries || 12+12*entries > len(n):
		return w.g.b.trip(fmt.Errorf("doctor: %s: a node claims %d entries of at most %d", tree, entries, (len(n)-12)/12))
	}
	for i := range entries {
		en := n[12+12*i:]
		if depth == 0 {
			length := int64(le.Uint16(en[4:]))
			if length > 32768 { // an uninitialised extent
				length -= 32768
			}
			phys := int64(le.Uint32(en[8:])) | int64(le.Uint16(en[6:]))<<32
			if phys+length > w.e.blocks {
				return w.g.b.trip(fmt.Errorf("doctor: %s: an extent of %d blocks at block %d, past the file system's %d blocks", tree, length, phys, w.e.blocks))
			}
			w.total += length
			continue
		}
		child := int64(le.Uint32(en[4:])) | int64(le.Uint16(en[8:]))<<32
		switch {
		case child >= w.e.blocks:
			return w.g.b.trip(fmt.Errorf("doctor: %s points to block %d, past the file system's %d blocks", tree, child, w.e.blocks))
		case w.seen[child]:
			return w.g.b.trip(&LimitError{Structure: fmt.Sprintf("%s (block %d is visited twice)", tree, child), Limit: "one visit per block"})
		case len(w.seen) >= maxExtentNodes:
			return w.g.b.trip(&LimitError{Structure: tree, Limit: fmt.Sprintf("%d blocks", maxExtentNodes)})
		}
		w.seen[child] = true
		blk := make([]byte, w.e.blockSize)
		if err := w.g.b.charge(len(blk)); err != nil {
			return err
		}
		if _, err := w.g.d.ReadAt(blk, w.e.start+child*w.e.blockSize); err != nil {
			return fmt.Errorf("doctor: reading %s: %w", tree, err)
		}
		if err := w.node(blk, depth); err != nil {
			return err
		}
	}
	return nil
}
