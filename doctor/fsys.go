package doctor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	xfslog "github.com/masahiro331/go-xfs-filesystem/log"
	"github.com/masahiro331/go-xfs-filesystem/xfs"
	"go.uber.org/zap"

	"github.com/e2eimage/e2eimage/disk"
)

func init() {
	// go-xfs-filesystem logs at debug level to standard error from its
	// own init; a library must not write to its user's terminal.
	xfslog.SetLogger(zap.NewNop().Sugar())
}

// errLinkUnreadable is returned for a symbolic link whose target the file
// system reader cannot give (go-xfs-filesystem has no readlink).
var errLinkUnreadable = errors.New("the reader cannot read this symbolic link's target")

// maxFileSize bounds every file the doctor reads whole.
const maxFileSize = 1 << 20

// dirent is one directory entry.
type dirent struct {
	name string
	mode iofs.FileMode // type bits only
}

// fsys is the little a check needs from a file system, with slash paths
// relative to its root ("etc/os-release") and no symbolic link followed:
// resolve does that.
type fsys interface {
	lstat(p string) (iofs.FileMode, int64, error)
	readlink(p string) (string, error)
	open(p string) (io.ReadCloser, error)
	readDir(p string) ([]dirent, error)
}

// guard turns a panic of a file-system library on a crafted image into an
// error.
func guard(what string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("doctor: the file system reader failed %s: %v", what, r)
	}
}

// ext4FS reads ext2/3/4 with go-diskfs, through a guard (b) that bounds
// its reads and checks each inode before go-diskfs trusts it.
type ext4FS struct {
	fs *ext4.FileSystem
	b  *budget
}

// limited returns the budget's breach (or the context's error) in place of
// err when there is one: go-diskfs flattens the errors of its reads into
// text, so the typed error is taken from the budget.
func limited(b *budget, err error) error {
	if err == nil {
		return nil
	}
	if berr := b.failed(); berr != nil {
		return berr
	}
	return err
}

// checkExtSuperblock bounds what go-diskfs allocates from an ext2/3/4
// superblock (sb, 1024 bytes): the group descriptor table it reads whole
// is blocks/blocks_per_group descriptors.
func checkExtSuperblock(sb []byte, size int64) error {
	le := binary.LittleEndian
	logBlock := le.Uint32(sb[24:])
	if logBlock > 6 { // 1 KiB to 64 KiB blocks
		return fmt.Errorf("doctor: the ext superblock claims %d-KiB blocks", 1<<min(logBlock, 30))
	}
	bs := int64(1024) << logBlock
	blocks := int64(le.Uint32(sb[4:]))
	if le.Uint32(sb[96:])&0x80 != 0 { // 64bit: the high half of the count
		blocks |= int64(le.Uint32(sb[336:])) << 32
	}
	perGroup := int64(le.Uint32(sb[32:]))
	inodesPerGroup := int64(le.Uint32(sb[40:]))
	switch {
	case blocks == 0 || blocks > size/bs+1:
		return fmt.Errorf("doctor: the ext superblock claims %d blocks of %d bytes in a %d-byte partition", blocks, bs, size)
	case perGroup == 0 || perGroup > 8*bs:
		return fmt.Errorf("doctor: the ext superblock claims %d blocks per group", perGroup)
	case inodesPerGroup == 0 || inodesPerGroup > 8*bs:
		return fmt.Errorf("doctor: the ext superblock claims %d inodes per group", inodesPerGroup)
	}
	groups := (blocks + perGroup - 1) / perGroup
	inodeSize, descSize := int64(128), int64(32)
	if le.Uint32(sb[76:]) >= 1 { // dynamic revision
		inodeSize = int64(le.Uint16(sb[88:]))
	}
	if le.Uint32(sb[96:])&0x80 != 0 {
		descSize = int64(le.Uint16(sb[254:]))
	}
	switch {
	case inodeSize < 128 || inodeSize > bs || inodeSize&(inodeSize-1) != 0:
		return fmt.Errorf("doctor: the ext superblock claims %d-byte inodes", inodeSize)
	case descSize < 32 || descSize > 1024 || descSize&(descSize-1) != 0:
		return fmt.Errorf("doctor: the ext superblock claims %d-byte group descriptors", descSize)
	case inodesPerGroup*inodeSize > perGroup*bs:
		return fmt.Errorf("doctor: the ext superblock claims %d inodes of %d bytes per group of %d blocks", inodesPerGroup, inodeSize, perGroup)
	case int64(le.Uint32(sb[0:])) > groups*inodesPerGroup:
		return fmt.Errorf("doctor: the ext superblock claims %d inodes in %d groups of %d", le.Uint32(sb[0:]), groups, inodesPerGroup)
	case groups*descSize > maxGDTSize:
		return &LimitError{Structure: fmt.Sprintf("the ext group descriptor table (%d groups of %d bytes)", groups, descSize), Limit: fmt.Sprintf("%d MiB", maxGDTSize>>20)}
	}
	return nil
}

// maxGDTSize bounds the ext group descriptor table go-diskfs reads whole
// (a 100 GiB file system of 1 KiB blocks has 800 KiB of it).
const maxGDTSize = 16 << 20

// xfsMinAG is the smallest allocation group XFS makes (XFS_AG_MIN_BYTES).
const xfsMinAG = 16 << 20

// checkXFSSuperblock bounds what go-xfs-filesystem reads from an XFS
// superblock (sb, its first 512 bytes): one allocation group header per
// sb_agcount, inodes of sb_inodesize.
func checkXFSSuperblock(sb []byte, size int64) error {
	be := binary.BigEndian
	bs := int64(be.Uint32(sb[4:]))
	dblocks := int64(be.Uint64(sb[8:]))
	agblocks := int64(be.Uint32(sb[84:]))
	agcount := int64(be.Uint32(sb[88:]))
	inodeSize := int64(be.Uint16(sb[104:]))
	switch {
	case bs < 512 || bs > 64<<10 || bs&(bs-1) != 0:
		return fmt.Errorf("doctor: the XFS superblock claims %d-byte blocks", bs)
	case dblocks == 0 || dblocks > size/bs+1:
		return fmt.Errorf("doctor: the XFS superblock claims %d blocks of %d bytes in a %d-byte partition", dblocks, bs, size)
	case agblocks == 0 || agcount == 0 || agcount > dblocks/agblocks+1:
		return fmt.Errorf("doctor: the XFS superblock claims %d groups of %d blocks", agcount, agblocks)
	case agcount > 1 && agblocks*bs < xfsMinAG:
		// go-xfs-filesystem reads every group's headers at once: groups
		// of XFS's smallest size keep their number to what the partition
		// holds (6,400 for 100 GiB).
		return fmt.Errorf("doctor: the XFS superblock claims %d groups of %d bytes (XFS's smallest is %d)", agcount, agblocks*bs, xfsMinAG)
	case inodeSize < 256 || inodeSize > 2048:
		return fmt.Errorf("doctor: the XFS superblock claims %d-byte inodes", inodeSize)
	}
	return nil
}

func openExt4(d *disk.Disk, b *budget, start, size int64) (f fsys, err error) {
	defer guard("opening ext4", &err)
	defer func() { err = limited(b, err) }()
	g := &guardedReader{d: d, b: b}
	sb := make([]byte, 1024)
	if _, err := g.ReadAt(sb, start+1024); err != nil {
		return nil, fmt.Errorf("doctor: reading the ext superblock: %w", err)
	}
	if err := checkExtSuperblock(sb, size); err != nil {
		return nil, err
	}
	if g.ext, err = newExtGuard(g, sb, start); err != nil {
		return nil, err
	}
	e, err := ext4.Read(&storage{r: g, size: d.Size()}, size, start, 512)
	if err != nil {
		return nil, err
	}
	return ext4FS{e, b}, nil
}

func (e ext4FS) lstat(p string) (m iofs.FileMode, n int64, err error) {
	defer guard("reading "+p, &err)
	if err := e.b.failed(); err != nil {
		return 0, 0, err
	}
	fi, err := e.fs.Stat(p)
	if err != nil {
		return 0, 0, notExist(limited(e.b, err))
	}
	return fi.Mode(), fi.Size(), nil
}

func (e ext4FS) readlink(p string) (s string, err error) {
	defer guard("reading link "+p, &err)
	if err := e.b.failed(); err != nil {
		return "", err
	}
	s, err = e.fs.ReadLink(p)
	return s, limited(e.b, err)
}

func (e ext4FS) open(p string) (r io.ReadCloser, err error) {
	defer guard("opening "+p, &err)
	if err := e.b.failed(); err != nil {
		return nil, err
	}
	f, err := e.fs.OpenFile(p, os.O_RDONLY)
	if err != nil {
		return nil, notExist(limited(e.b, err))
	}
	return &guardedFile{f: f, b: e.b}, nil
}

func (e ext4FS) readDir(p string) (ds []dirent, err error) {
	defer guard("listing "+p, &err)
	if err := e.b.failed(); err != nil {
		return nil, err
	}
	if p == "" {
		p = "."
	}
	ents, err := e.fs.ReadDir(p)
	if err != nil {
		return nil, notExist(limited(e.b, err))
	}
	for _, d := range ents {
		ds = append(ds, dirent{name: d.Name(), mode: d.Type()})
	}
	return ds, nil
}

// notExist maps go-diskfs's "does not exist" messages, which wrap no
// sentinel, to fs.ErrNotExist.
func notExist(err error) error {
	if err == nil || errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	m := err.Error()
	if strings.Contains(m, "does not exist") || strings.Contains(m, "not found") || strings.Contains(m, "no such") ||
		strings.Contains(m, "could not read directory entries") {
		return fmt.Errorf("%w (%v)", iofs.ErrNotExist, err)
	}
	return err
}

// xfsFS reads XFS with go-xfs-filesystem, through a guard (b) that bounds
// its reads.
type xfsFS struct {
	fs *xfs.FileSystem
	b  *budget
}

func openXFS(d *disk.Disk, b *budget, start, size int64) (f fsys, err error) {
	defer guard("opening XFS", &err)
	defer func() { err = limited(b, err) }()
	g := &guardedReader{d: d, b: b}
	sb := make([]byte, 512)
	if _, err := g.ReadAt(sb, start); err != nil {
		return nil, fmt.Errorf("doctor: reading the XFS superblock: %w", err)
	}
	if err := checkXFSSuperblock(sb, size); err != nil {
		return nil, err
	}
	g.xfsInode = int(binary.BigEndian.Uint16(sb[104:]))
	x, err := xfs.NewFS(*io.NewSectionReader(g, start, size), nil)
	if err != nil {
		return nil, err
	}
	return xfsFS{x, b}, nil
}

func (x xfsFS) lstat(p string) (m iofs.FileMode, n int64, err error) {
	defer guard("reading "+p, &err)
	if err := x.b.failed(); err != nil {
		return 0, 0, err
	}
	if p == "" {
		return iofs.ModeDir, 0, nil
	}
	fi, err := x.fs.Stat(p)
	if err != nil {
		return 0, 0, notExist(limited(x.b, err))
	}
	return fi.Mode(), fi.Size(), nil
}

func (x xfsFS) readlink(string) (string, error) { return "", errLinkUnreadable }

func (x xfsFS) open(p string) (r io.ReadCloser, err error) {
	defer guard("opening "+p, &err)
	if err := x.b.failed(); err != nil {
		return nil, err
	}
	f, err := x.fs.Open(p)
	if err != nil {
		return nil, notExist(limited(x.b, err))
	}
	return &guardedFile{f: f, b: x.b}, nil
}

func (x xfsFS) readDir(p string) (ds []dirent, err error) {
	defer guard("listing "+p, &err)
	if err := x.b.failed(); err != nil {
		return nil, err
	}
	if p == "" {
		p = "."
	}
	ents, err := x.fs.ReadDir(p)
	if err != nil {
		return nil, notExist(limited(x.b, err))
	}
	for _, d := range ents {
		ds = append(ds, dirent{name: d.Name(), mode: d.Type()})
	}
	return ds, nil
}

// guardedFile reads a file of a file-system library under a recover, with
// the budget's breach in place of the library's flattened error. It checks
// the budget (and so the context) at each read, and ends a read that makes
// no progress: go-diskfs returns 0 bytes and no error for ever from a file
// whose extents and size disagree.
type guardedFile struct {
	f interface {
		io.Reader
		Close() error
	}
	b     *budget
	stuck int // consecutive reads of 0 bytes without error
}

func (g *guardedFile) Read(p []byte) (n int, err error) {
	defer guard("reading a file", &err)
	if err := g.b.failed(); err != nil {
		return 0, err
	}
	n, err = g.f.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = limited(g.b, err)
	}
	if n == 0 && err == nil && len(p) > 0 {
		if g.stuck++; g.stuck >= 100 {
			return 0, fmt.Errorf("doctor: the file system reader makes no progress reading a file: %w", io.ErrNoProgress)
		}
	} else {
		g.stuck = 0
	}
	return n, err
}

func (g *guardedFile) Close() error { return g.f.Close() }

// resolve follows the symbolic links of p, component by component, as the
// kernel would with the file system mounted at /, and returns the path of
// what p names (which may not exist).
func resolve(f fsys, p string) (string, error) {
	const maxLinks = 40 // the kernel's limit
	links := 0
	done := ""
	rest := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			done = path.Dir(done)
			if done == "." || done == "/" {
				done = ""
			}
			continue
		}
		next := path.Join(done, c)
		mode, _, err := f.lstat(next)
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return path.Join(append([]string{next}, rest...)...), nil
			}
			return "", err
		}
		if mode&iofs.ModeSymlink == 0 {
			done = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("doctor: %s: too many levels of symbolic links", p)
		}
		target, err := f.readlink(next)
		if err != nil {
			return "", fmt.Errorf("doctor: /%s is a symbolic link: %w", next, err)
		}
		if strings.HasPrefix(target, "/") {
			done = ""
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return done, nil
}

// readFile resolves p and reads it whole, up to limit bytes. It returns
// fs.ErrNotExist when p names nothing and an error for what is not a
// regular file.
func readFile(f fsys, p string, limit int64) ([]byte, string, error) {
	rp, err := resolve(f, p)
	if err != nil {
		return nil, "", err
	}
	mode, size, err := f.lstat(rp)
	if err != nil {
		return nil, rp, err
	}
	if !mode.IsRegular() {
		return nil, rp, fmt.Errorf("doctor: /%s is not a regular file (%v)", rp, mode.Type())
	}
	if size > limit {
		return nil, rp, &LimitError{Structure: fmt.Sprintf("/%s (%d bytes)", rp, size), Limit: fmt.Sprintf("the %d bytes this check reads", limit)}
	}
	r, err := f.open(rp)
	if err != nil {
		return nil, rp, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, rp, fmt.Errorf("doctor: reading /%s: %w", rp, err)
	}
	if int64(len(b)) > limit {
		return nil, rp, &LimitError{Structure: "/" + rp, Limit: fmt.Sprintf("the %d bytes this check reads", limit)}
	}
	return b, rp, nil
}

// list resolves p and lists it; a missing directory lists nothing.
func list(f fsys, p string) ([]dirent, error) {
	rp, err := resolve(f, p)
	if err != nil {
		return nil, err
	}
	ds, err := f.readDir(rp)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	return ds, err
}

// exists reports whether p (resolved) names something.
func exists(f fsys, p string) (bool, error) {
	rp, err := resolve(f, p)
	if err != nil {
		return false, err
	}
	_, _, err = f.lstat(rp)
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// storage presents the disk (through a guard) as the backend go-diskfs
// reads: read-only, with a position for its Read and Seek.
type storage struct {
	r    io.ReaderAt
	size int64
	pos  int64
}

var _ backend.Storage = (*storage)(nil)

func (s *storage) Stat() (iofs.FileInfo, error) { return diskInfo{s.size}, nil }
func (s *storage) Close() error                 { return nil }
func (s *storage) ReadAt(p []byte, off int64) (int, error) {
	return s.r.ReadAt(p, off)
}

func (s *storage) Read(p []byte) (int, error) {
	n, err := s.r.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *storage) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	default:
		return 0, fmt.Errorf("doctor: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("doctor: seek to %d", off)
	}
	s.pos = off
	return off, nil
}

func (s *storage) Sys() (*os.File, error) { return nil, backend.ErrNotSuitable }
func (s *storage) Writable() (backend.WritableFile, error) {
	return nil, backend.ErrIncorrectOpenMode
}
func (s *storage) Path() string { return "" }

type diskInfo struct{ size int64 }

func (i diskInfo) Name() string        { return "disk" }
func (i diskInfo) Size() int64         { return i.size }
func (i diskInfo) Mode() iofs.FileMode { return 0o444 }
func (i diskInfo) ModTime() time.Time  { return time.Time{} }
func (i diskInfo) IsDir() bool         { return false }
func (i diskInfo) Sys() any            { return nil }
