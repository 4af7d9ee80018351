// Package sampleimage builds a small genuine Linux disk image for demos and
// tests of the End to End flow: an MBR partition table with one active
// Linux partition holding a real ext4 file system (written at run time by
// github.com/diskfs/go-diskfs, no root and no external tool needed), laid
// out as an Ubuntu 22.04 cloud image is:
//
//   - /usr/lib/os-release of Ubuntu 22.04, with /etc/os-release a symbolic
//     link to it, and the merged /usr links /lib -> usr/lib, /bin -> usr/bin;
//   - cloud-init 23.4.4 as the Debian package records it
//     (/var/lib/dpkg/status, its Python metadata under
//     /usr/lib/python3/dist-packages, /usr/bin/cloud-init) with an
//     /etc/cloud/cloud.cfg that lists the ConfigDrive data source;
//   - a kernel release under /usr/lib/modules with the Xen block front-end
//     driver (kernel/drivers/block/xen-blkfront.ko), /boot/vmlinuz-*, and
//     an /etc/fstab that mounts the root by its label;
//   - /usr/bin/true, a 129-byte x86-64 ELF executable that exits 0;
//   - a few files of deterministic data (/var/lib/app/data.bin, 512 KiB of
//     random bytes; /home/user/notes.txt, 300 KiB of text), the rest of
//     the disk zero, so that an encrypted dynamic VHD made from it leaves
//     most 2 MiB blocks unallocated.
//
// package doctor passes every check on it.
//
// What this package does NOT do: the disk does not boot. The kernel and the
// driver module are placeholders (a few bytes of text where the real files
// are megabytes), there is no boot loader beyond a boot stub that halts,
// and cloud-init's files are its package records and configuration, not
// its code.
//
// Reproducibility: go-diskfs stamps the file system with the current time
// and a random directory hash seed, so two builds differ in those bytes.
// Build therefore builds each Options once per process and keeps the
// result (only its non-zero 64 KiB chunks): within a process the same
// Options always give the same bytes, which is what a test comparing a
// decrypted download with the image it encrypted needs. Across processes
// the file system's timestamps, hash seed and checksums differ; the files'
// contents, the partition table and the UUID (derived from Seed) do not.
package sampleimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/google/uuid"
)

const (
	// DefaultSize is the disk size used when Options.Size is 0: 16 MiB,
	// eight 2 MiB VHD blocks.
	DefaultSize = 16 << 20
	// MinSize is the smallest disk Build makes.
	MinSize = 8 << 20
	// MaxSize bounds Build, which holds the image in memory (WriteFile does
	// not, but the limit keeps the two alike).
	MaxSize = 1 << 30

	// SectorSize is the disk's logical sector size.
	SectorSize = 512
	// PartitionStart is the first byte of the Linux partition: LBA 2048,
	// the 1 MiB alignment that fdisk and parted use.
	PartitionStart = 1 << 20
	// LinuxPartitionType is the MBR partition type of a Linux file system.
	LinuxPartitionType = 0x83
	// ExtMagic is the ext2/3/4 superblock magic, at byte 56 of the
	// superblock, which starts 1024 bytes into the partition.
	ExtMagic = 0xEF53
	// VolumeName is the file system's label; /etc/fstab mounts the root
	// by it.
	VolumeName = "e2eimage-sample"
	// OSCode is the OS reference code of the system the image describes.
	OSCode = "UBUNTU_22_64"
	// CloudInitVersion is the cloud-init package version recorded.
	CloudInitVersion = "23.4.4-0ubuntu0~22.04.1"
	// KernelRelease is the kernel release of /usr/lib/modules and /boot.
	KernelRelease = "5.15.0-91-generic"
)

// ErrSize is returned for a size below MinSize, above MaxSize or not a
// multiple of SectorSize.
var ErrSize = errors.New("sampleimage: size must be a multiple of 512 between 8 MiB and 1 GiB")

// Options describes the image to build.
type Options struct {
	// Size is the disk size in bytes (default DefaultSize), a multiple of
	// SectorSize between MinSize and MaxSize.
	Size int64
	// Seed selects the data of the files and the file system's UUID
	// (default 0).
	Seed uint64
}

// Extent is one region of the disk that holds non-zero bytes. Everything
// outside the extents is zero.
type Extent struct {
	Name   string // "mbr" for sector 0, "ext4" for the file system's regions
	Offset int64
	Length int64
}

// Layout returns the regions of the image that hold non-zero bytes, in
// increasing offset order, at 64 KiB granularity (the MBR is reported as
// its one sector).
func Layout(o Options) ([]Extent, error) {
	img, err := build(o)
	if err != nil {
		return nil, err
	}
	var out []Extent
	for _, off := range img.offsets() {
		name, start, n := "ext4", off, int64(chunkSize)
		if off == 0 {
			name, n = "mbr", SectorSize
			if !allZero(img.chunks[0][SectorSize:]) {
				out = append(out, Extent{Name: name, Offset: 0, Length: SectorSize})
				name, start, n = "ext4", SectorSize, chunkSize-SectorSize
			}
		}
		if k := len(out) - 1; k >= 0 && out[k].Name == name && out[k].Offset+out[k].Length == start {
			out[k].Length += n
			continue
		}
		out = append(out, Extent{Name: name, Offset: start, Length: n})
	}
	return out, nil
}

// Build returns the whole disk image.
func Build(o Options) ([]byte, error) {
	img, err := build(o)
	if err != nil {
		return nil, err
	}
	disk := make([]byte, img.size)
	for off, c := range img.chunks {
		copy(disk[off:], c)
	}
	return disk, nil
}

// WriteFile writes the image to a new file at path (mode 0644; it holds no
// secret) as a sparse file: only the non-zero chunks are written, so the
// zero regions take no disk space where the file system supports holes. It
// refuses to replace an existing file.
func WriteFile(path string, o Options) (err error) {
	img, err := build(o)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("sampleimage: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("sampleimage: %w", cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if err := f.Truncate(img.size); err != nil {
		return fmt.Errorf("sampleimage: %w", err)
	}
	for _, off := range img.offsets() {
		if _, err := f.WriteAt(img.chunks[off], off); err != nil {
			return fmt.Errorf("sampleimage: writing %s: %w", path, err)
		}
	}
	return nil
}

// Reader returns the image in memory as a *bytes.Reader, which the e2e
// package reads with random access (it has ReadAt and Size).
func Reader(o Options) (*bytes.Reader, error) {
	b, err := Build(o)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

const (
	hostname = "e2e-sample\n"
	motd     = "This disk was made by e2eimage's sampleimage package.\n" +
		"It is encrypted with a key only its owner controls.\n"
)

func (o Options) size() (int64, error) {
	size := o.Size
	if size == 0 {
		size = DefaultSize
	}
	if size < MinSize || size > MaxSize || size%SectorSize != 0 {
		return 0, fmt.Errorf("%w (got %d)", ErrSize, size)
	}
	return size, nil
}

var (
	cacheMu sync.Mutex
	cache   = map[Options]*sparse{}
)

// build returns the image of o, built once per process.
func build(o Options) (*sparse, error) {
	size, err := o.size()
	if err != nil {
		return nil, err
	}
	key := Options{Size: size, Seed: o.Seed}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if img, ok := cache[key]; ok {
		return img, nil
	}
	img, err := make_(key)
	if err != nil {
		return nil, err
	}
	cache[key] = img
	return img, nil
}

// make_ writes the partition table and the file system into a new sparse
// image.
func make_(o Options) (*sparse, error) {
	rng := rand.New(rand.NewChaCha8(seedBytes(o.Seed)))
	img := newSparse(o.Size)
	if _, err := img.WriteAt(mbr(o.Size, rng), 0); err != nil {
		return nil, err
	}
	var id uuid.UUID
	copy(id[:], "e2eimage")
	binary.LittleEndian.PutUint64(id[8:], o.Seed)
	id[6] = id[6]&0x0f | 0x40 // version 4 layout
	id[8] = id[8]&0x3f | 0x80
	fs, err := ext4.Create(img, o.Size-PartitionStart, PartitionStart, SectorSize, &ext4.Params{
		UUID:       &id,
		VolumeName: VolumeName,
		// No blocks reserved for growing the group descriptor table:
		// go-diskfs cannot place them on the smallest disks.
		Features: []ext4.FeatureOpt{ext4.WithFeatureReservedGDTBlocksForExpansion(false)},
	})
	if err != nil {
		return nil, fmt.Errorf("sampleimage: creating the ext4 file system: %w", err)
	}
	data := make([]byte, 512<<10)
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	for _, e := range tree(data, notesText(300<<10, rng)) {
		if err := e.put(fs); err != nil {
			return nil, fmt.Errorf("sampleimage: writing /%s: %w", e.path, err)
		}
	}
	return img, nil
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	copy(s[:], "e2eimage sampleimage seed")
	binary.LittleEndian.PutUint64(s[24:], seed)
	return s
}

// entry is one file, directory or link of the tree.
type entry struct {
	path string
	data []byte
	link string
	dir  bool
}

func (e entry) put(fs *ext4.FileSystem) error {
	switch {
	case e.dir:
		return fs.Mkdir(e.path)
	case e.link != "":
		return fs.Symlink(e.link, e.path)
	}
	if i := strings.LastIndexByte(e.path, '/'); i > 0 {
		if err := fs.Mkdir(e.path[:i]); err != nil {
			return err
		}
	}
	f, err := fs.OpenFile(e.path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return err
	}
	if _, err := f.Write(e.data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tree is the system the image holds. The file contents are ours, shaped
// like what Ubuntu 22.04's packages install.
func tree(data, notes []byte) []entry {
	f := func(p, s string) entry { return entry{path: p, data: []byte(s)} }
	return []entry{
		{path: "usr/bin", dir: true},
		{path: "usr/lib", dir: true},
		{path: "lib", link: "usr/lib"},
		{path: "bin", link: "usr/bin"},
		f("usr/lib/os-release", osRelease),
		{path: "etc", dir: true},
		{path: "etc/os-release", link: "../usr/lib/os-release"},
		f("etc/hostname", hostname),
		f("etc/motd", motd),
		f("etc/fstab", "LABEL="+VolumeName+"\t/\text4\tdiscard,errors=remount-ro\t0 1\n"),
		f("etc/cloud/cloud.cfg", cloudCfg),
		f("etc/cloud/cloud.cfg.d/90_dpkg.cfg", "# from debconf: the data sources cloud-init may use\ndatasource_list: [ ConfigDrive, NoCloud, None ]\n"),
		f("var/lib/dpkg/status", dpkgStatus),
		f("usr/lib/python3/dist-packages/cloud_init-23.4.4.egg-info/PKG-INFO",
			"Metadata-Version: 2.1\nName: cloud-init\nVersion: 23.4.4\nSummary: Cloud instance initialisation\n"),
		f("usr/bin/cloud-init", "#!/usr/bin/python3\n# sampleimage: cloud-init's entry point (the package's code is not included)\n"),
		{path: "usr/bin/true", data: trueELF()},
		f("boot/vmlinuz-"+KernelRelease, "sampleimage: a placeholder where the kernel image would be\n"),
		f("usr/lib/modules/"+KernelRelease+"/modules.builtin", "kernel/drivers/block/loop.ko\nkernel/fs/ext4/ext4.ko\n"),
		f("usr/lib/modules/"+KernelRelease+"/kernel/drivers/block/xen-blkfront.ko", "sampleimage: a placeholder where the xen-blkfront module would be\n"),
		{path: "var/lib/app/data.bin", data: data},
		{path: "home/user/notes.txt", data: notes},
	}
}

const osRelease = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
`

const cloudCfg = `# sampleimage: the parts of cloud-init's configuration IBM Cloud classic
# relies on. Its servers get their metadata from a ConfigDrive (version 2).
datasource_list: [ ConfigDrive, None ]
users:
  - default
disable_root: true
preserve_hostname: false
cloud_init_modules:
  - seed_random
  - growpart
  - resizefs
  - set_hostname
  - update_hostname
  - users_groups
  - ssh
`

const dpkgStatus = `Package: base-files
Status: install ok installed
Priority: required
Version: 12ubuntu4.6
Description: Debian base system miscellaneous files

Package: cloud-init
Status: install ok installed
Priority: optional
Section: admin
Architecture: all
Version: ` + CloudInitVersion + `
Description: initialization and customization tool for cloud instances

`

// trueELF returns a 129-byte x86-64 Linux executable that exits with
// status 0: an ELF header, one loadable segment, and the code
// mov eax, 60 (exit); xor edi, edi; syscall.
func trueELF() []byte {
	code := []byte{0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05}
	const base, hdr = 0x400000, 64 + 56
	b := make([]byte, hdr+len(code))
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01") // 64-bit, little endian, version 1, System V
	le.PutUint16(b[16:], 2)        // e_type: executable
	le.PutUint16(b[18:], 62)       // e_machine: x86-64
	le.PutUint32(b[20:], 1)        // e_version
	le.PutUint64(b[24:], base+hdr) // e_entry
	le.PutUint64(b[32:], 64)       // e_phoff
	le.PutUint16(b[52:], 64)       // e_ehsize
	le.PutUint16(b[54:], 56)       // e_phentsize
	le.PutUint16(b[56:], 1)        // e_phnum
	ph := b[64:]
	le.PutUint32(ph[0:], 1)               // PT_LOAD
	le.PutUint32(ph[4:], 5)               // read and execute
	le.PutUint64(ph[16:], base)           // p_vaddr
	le.PutUint64(ph[24:], base)           // p_paddr
	le.PutUint64(ph[32:], uint64(len(b))) // p_filesz
	le.PutUint64(ph[40:], uint64(len(b))) // p_memsz
	le.PutUint64(ph[48:], 0x1000)         // p_align
	copy(b[hdr:], code)
	return b
}

// mbr returns sector 0: a tiny boot stub (an endless loop), a disk
// signature, one active Linux partition from PartitionStart to the end of
// the disk (LBA addressing; the CHS fields hold the "beyond CHS" marker
// values), and the 0x55AA boot signature.
func mbr(size int64, rng *rand.Rand) []byte {
	b := make([]byte, SectorSize)
	b[0], b[1] = 0xEB, 0xFE // jmp $: a boot stub that halts in place
	copy(b[2:], "e2eimage sample disk")
	binary.LittleEndian.PutUint32(b[440:], rng.Uint32()) // disk signature
	p := b[446:462]
	p[0] = 0x80 // active
	copy(p[1:4], []byte{0xFE, 0xFF, 0xFF})
	p[4] = LinuxPartitionType
	copy(p[5:8], []byte{0xFE, 0xFF, 0xFF})
	start := uint32(PartitionStart / SectorSize)
	binary.LittleEndian.PutUint32(p[8:], start)
	binary.LittleEndian.PutUint32(p[12:], uint32(size/SectorSize)-start)
	b[510], b[511] = 0x55, 0xAA
	return b
}

// notesText returns n bytes of line-oriented text.
func notesText(n int, rng *rand.Rand) []byte {
	words := []string{"encrypt", "image", "key", "wrap", "bucket", "template", "server", "audit",
		"block", "sector", "tweak", "nonce", "upload", "import", "cloud", "classic"}
	b := make([]byte, 0, n+16)
	line := 0
	for len(b) < n {
		w := words[rng.IntN(len(words))]
		b = append(b, w...)
		line += len(w) + 1
		if line > 64 {
			b = append(b, '\n')
			line = 0
		} else {
			b = append(b, ' ')
		}
	}
	b = b[:n]
	b[n-1] = '\n'
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sparse is an in-memory disk that keeps only its non-zero 64 KiB chunks,
// and the backend go-diskfs writes the file system into.
const chunkSize = 64 << 10

type sparse struct {
	size   int64
	chunks map[int64][]byte // by chunk offset
	pos    int64
}

func newSparse(size int64) *sparse { return &sparse{size: size, chunks: map[int64][]byte{}} }

func (s *sparse) offsets() []int64 {
	offs := make([]int64, 0, len(s.chunks))
	for off, c := range s.chunks {
		if !allZero(c) {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs
}

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= s.size {
		return 0, errEOF
	}
	n := 0
	for n < len(p) && off+int64(n) < s.size {
		pos := off + int64(n)
		c0 := pos - pos%chunkSize
		m := min(int64(len(p)-n), chunkSize-(pos-c0), s.size-pos)
		if c, ok := s.chunks[c0]; ok {
			copy(p[n:n+int(m)], c[pos-c0:])
		} else {
			clear(p[n : n+int(m)])
		}
		n += int(m)
	}
	if n < len(p) {
		return n, errEOF
	}
	return n, nil
}

func (s *sparse) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.size {
		return 0, fmt.Errorf("sampleimage: write of %d bytes at %d outside the %d-byte disk", len(p), off, s.size)
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		c0 := pos - pos%chunkSize
		m := int(min(int64(len(p)-n), chunkSize-(pos-c0)))
		c, ok := s.chunks[c0]
		if !ok {
			if allZero(p[n : n+m]) {
				n += m
				continue
			}
			c = make([]byte, chunkSize)
			s.chunks[c0] = c
		}
		copy(c[pos-c0:], p[n:n+m])
		n += m
	}
	return len(p), nil
}
