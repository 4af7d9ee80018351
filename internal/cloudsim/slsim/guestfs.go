package slsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/masahiro331/go-ext4-filesystem/ext4"
	ext4log "github.com/masahiro331/go-ext4-filesystem/log"
	"go.uber.org/zap"
)

// The simulated backplane's look at the guest's file systems. It finds
// each partition's file system by its signature (the offsets below are
// those of each format's superblock or label, as util-linux's libblkid
// probes them) and reads ext2/3/4 with github.com/masahiro331/go-ext4-
// filesystem, a reader that shares no code with the module's disk and
// doctor packages (which read ext4 with github.com/diskfs/go-diskfs). The
// other Linux root file systems (XFS, Btrfs, LVM, LUKS) and NTFS are
// recognised but not read.

func init() {
	// The ext4 reader logs at debug level to standard error by default.
	ext4log.SetLogger(zap.NewNop().Sugar())
}

// fsKind is what a partition holds, by signature.
type fsKind string

const (
	fsExt     fsKind = "ext4" // ext2, ext3 or ext4: the same superblock
	fsXFS     fsKind = "XFS"
	fsBtrfs   fsKind = "Btrfs"
	fsLVM     fsKind = "LVM2 physical volume"
	fsLUKS    fsKind = "LUKS"
	fsNTFS    fsKind = "NTFS"
	fsBitLock fsKind = "BitLocker"
	fsSwap    fsKind = "swap"
	fsFAT     fsKind = "FAT"
	fsNone    fsKind = "" // no signature the simulator knows
)

// opaque reports whether a root file system may be on a partition of kind
// k that the simulator does not read.
func (k fsKind) opaque() bool {
	switch k {
	case fsXFS, fsBtrfs, fsLVM, fsLUKS, fsNTFS, fsBitLock:
		return true
	}
	return false
}

// probeFS finds the file system of the partition p by its signature.
func probeFS(p *io.SectionReader) (fsKind, error) {
	b := make([]byte, 4096)
	n, err := p.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fsNone, err
	}
	b = b[:n]
	has := func(off int, sig string) bool {
		return len(b) >= off+len(sig) && string(b[off:off+len(sig)]) == sig
	}
	switch {
	case len(b) >= 1024+58 && binary.LittleEndian.Uint16(b[1024+56:]) == 0xEF53:
		return fsExt, nil
	case has(0, "XFSB"):
		return fsXFS, nil
	case has(0, "LUKS\xba\xbe"):
		return fsLUKS, nil
	case has(3, "NTFS    "):
		return fsNTFS, nil
	case has(3, "-FVE-FS-"):
		return fsBitLock, nil
	case has(4086, "SWAPSPACE2"), has(4086, "SWAP-SPACE"):
		return fsSwap, nil
	case has(54, "FAT"), has(82, "FAT32"):
		return fsFAT, nil
	}
	// The LVM2 label is in one of the first four sectors.
	for s := 0; s < 4; s++ {
		if has(s*512, "LABELONE") && has(s*512+24, "LVM2 001") {
			return fsLVM, nil
		}
	}
	// The Btrfs superblock is at 64 KiB.
	if p.Size() >= 0x10000+0x48 {
		sb := make([]byte, 8)
		if _, err := p.ReadAt(sb, 0x10000+0x40); err != nil && !errors.Is(err, io.EOF) {
			return fsNone, err
		}
		if string(sb) == "_BHRfS_M" {
			return fsBtrfs, nil
		}
	}
	return fsNone, nil
}

// ext4 superblock features the reader cannot handle (it would list
// directories or files wrongly): the ext4 documentation's "Super Block"
// table (kernel.org, Documentation/filesystems/ext4/super.rst).
const (
	extIncompatCompression = 0x1
	extIncompatFiletype    = 0x2
	extIncompatMetaBG      = 0x10
	extIncompatDirdata     = 0x1000
	extIncompatInlineData  = 0x8000
	extIncompatEncrypt     = 0x10000
	extRoCompatBigalloc    = 0x200
)

// errFSUnreadable: the ext file system uses something the simulator's
// reader does not handle, or the reader failed.
var errFSUnreadable = errors.New("the simulator's ext4 reader cannot read this file system")

// errSymlinkInPath: a path leads through a symbolic link, which the
// simulator's reader does not follow.
var errSymlinkInPath = errors.New("a symbolic link the simulator does not follow")

// extFS is an ext2/3/4 file system read with go-ext4-filesystem. Its
// methods take slash-separated paths relative to the root ("." for the
// root) and turn a panic of the reader into errFSUnreadable.
type extFS struct {
	fs *ext4.FileSystem
}

// openExt opens the ext file system of the partition p.
func openExt(p *io.SectionReader) (x *extFS, err error) {
	defer recoverReader(&err)
	sb := make([]byte, 1024)
	if _, err := p.ReadAt(sb, 1024); err != nil {
		return nil, err
	}
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	roCompat := binary.LittleEndian.Uint32(sb[0x64:])
	inodeSize := binary.LittleEndian.Uint16(sb[0x58:])
	revLevel := binary.LittleEndian.Uint32(sb[0x4C:])
	switch {
	case incompat&(extIncompatCompression|extIncompatMetaBG|extIncompatDirdata|extIncompatInlineData|extIncompatEncrypt) != 0:
		return nil, fmt.Errorf("%w: incompatible features %#x", errFSUnreadable, incompat)
	case incompat&extIncompatFiletype == 0:
		return nil, fmt.Errorf("%w: directory entries without file types", errFSUnreadable)
	case roCompat&extRoCompatBigalloc != 0:
		return nil, fmt.Errorf("%w: bigalloc", errFSUnreadable)
	case revLevel == 0 || inodeSize < 256:
		return nil, fmt.Errorf("%w: %d-byte inodes", errFSUnreadable, inodeSize)
	}
	ra := io.ReaderAt(p)
	var shim *gdtShim
	if binary.LittleEndian.Uint32(sb[0x14:]) == 1 { // s_first_data_block: 1 KiB blocks
		shim = &gdtShim{ra: p}
		ra = shim
	}
	f, err := ext4.NewFS(*io.NewSectionReader(ra, 0, p.Size()), nil)
	if shim != nil {
		shim.done = true
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFSUnreadable, err)
	}
	return &extFS{fs: f}, nil
}

// gdtShim works around go-ext4-filesystem reading the group descriptors
// at byte offset blockSize, which is right when blocks are 2 KiB or more
// (s_first_data_block 0: the descriptors are in block 1) but not for 1 KiB
// blocks (s_first_data_block 1: the superblock fills block 1 and the
// descriptors start in block 2, at byte 2048). NewFS reads the first 2048
// bytes in order (padding and superblock), then goes back to byte 1024 for
// the descriptors; from that read until NewFS returns, the shim serves
// reads 1024 bytes further on. Every later read (inodes, directories,
// files) addresses blocks by number, which is right for any block size.
type gdtShim struct {
	ra   io.ReaderAt
	end  int64 // highest offset read so far, +1
	gdt  bool  // serving the descriptors
	done bool
}

func (s *gdtShim) ReadAt(p []byte, off int64) (int, error) {
	if !s.done && !s.gdt && off == 1024 && s.end >= 2048 {
		s.gdt = true
	}
	if !s.done && s.gdt {
		return s.ra.ReadAt(p, off+1024)
	}
	s.end = max(s.end, off+int64(len(p)))
	return s.ra.ReadAt(p, off)
}

// recoverReader turns a panic of the ext4 reader (on a damaged file
// system) into errFSUnreadable.
func recoverReader(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: the reader failed: %v", errFSUnreadable, r)
	}
}

func (x *extFS) readDir(name string) (ents []fs.DirEntry, err error) {
	defer recoverReader(&err)
	if name == "." {
		name = "/"
	}
	return x.fs.ReadDir(name)
}

// isSymlink reports whether a directory entry of the reader is a symbolic
// link. The reader's FileMode is the inode's raw Unix mode, not Go's.
func isSymlink(e fs.DirEntry) bool {
	fi, err := e.Info()
	return err == nil && uint32(fi.Mode())&0xF000 == 0xA000
}

// lookup returns the entry for the path name (not ".") after checking that
// each directory on the way is a directory and not a symbolic link; a
// missing component is fs.ErrNotExist.
func (x *extFS) lookup(name string) (fs.DirEntry, error) {
	dir := "."
	parts := strings.Split(name, "/")
	for i, part := range parts {
		ents, err := x.readDir(dir)
		if err != nil {
			return nil, err
		}
		var found fs.DirEntry
		for _, e := range ents {
			if e.Name() == part {
				found = e
				break
			}
		}
		switch {
		case found == nil:
			return nil, fs.ErrNotExist
		case isSymlink(found):
			return nil, fmt.Errorf("/%s: %w", path.Join(parts[:i+1]...), errSymlinkInPath)
		case i < len(parts)-1 && !found.IsDir():
			return nil, fs.ErrNotExist
		case i == len(parts)-1:
			return found, nil
		}
		dir = path.Join(parts[:i+1]...)
	}
	return nil, fs.ErrNotExist
}

// ReadDir lists the directory name ("." for the root).
func (x *extFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		e, err := x.lookup(name)
		if err != nil {
			return nil, err
		}
		if !e.IsDir() {
			return nil, fs.ErrNotExist
		}
	}
	return x.readDir(name)
}

// ReadFile reads at most limit bytes of the regular file name; truncated
// says the file is longer.
func (x *extFS) ReadFile(name string, limit int64) (b []byte, truncated bool, err error) {
	e, err := x.lookup(name)
	if err != nil {
		return nil, false, err
	}
	if e.IsDir() {
		return nil, false, fs.ErrNotExist
	}
	defer recoverReader(&err)
	f, err := x.fs.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return b[:limit], true, nil
	}
	return b, false, nil
}
