// Package sampleimage builds a small raw disk image that looks bootable, for
// demos and tests of the End to End flow: an MBR partition table with one
// active Linux partition, an ext2-style superblock (magic 0xEF53, a volume
// name and a UUID) at the start of the partition, a few "files" of
// deterministic data, and large all-zero regions, so that an encrypted
// dynamic VHD made from it leaves most 2 MiB blocks unallocated.
//
// The same Options always give the same bytes (the data comes from a
// ChaCha8 generator seeded by Options.Seed), so a test can rebuild the
// image to compare a decrypted download with it.
//
// What this package does NOT do: the image is not a real file system (no
// inodes, bitmaps or directories that a kernel could mount) and it holds no
// boot loader or operating system; it is bootable-looking only, enough for
// checks that read the partition table and the superblock magic, such as
// the cloud simulator's import verification.
package sampleimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
)

const (
	// DefaultSize is the disk size used when Options.Size is 0: 16 MiB,
	// eight 2 MiB VHD blocks, of which Layout fills four.
	DefaultSize = 16 << 20
	// MinSize is the smallest disk Build makes: four 2 MiB blocks of
	// data (the partition start and three files) with zero blocks between
	// them.
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
	// VolumeName is the label written into the superblock.
	VolumeName = "e2eimage-sample"
)

// ErrSize is returned for a size below MinSize, above MaxSize or not a
// multiple of SectorSize.
var ErrSize = errors.New("sampleimage: size must be a multiple of 512 between 8 MiB and 1 GiB")

// Options describes the image to build.
type Options struct {
	// Size is the disk size in bytes (default DefaultSize), a multiple of
	// SectorSize between MinSize and MaxSize.
	Size int64
	// Seed selects the data of the files (default 0). Images with the
	// same Size and Seed are identical.
	Seed uint64
}

// Extent is one region of the disk that holds non-zero bytes. Everything
// outside the extents is zero.
type Extent struct {
	Name   string // what the region holds, e.g. "mbr", "superblock", "file:/etc/motd"
	Offset int64
	Length int64
}

// Layout returns the regions Build fills, in increasing offset order:
//
//   - "mbr": sector 0, the partition table;
//   - "superblock": 1 KiB at PartitionStart+1024;
//   - "file:/etc/hostname", "file:/etc/motd": small text files right after
//     the superblock;
//   - "file:/var/lib/app/data.bin": 512 KiB of random data in the disk's
//     third quarter;
//   - "file:/home/user/notes.txt": 300 KiB of text that ends 100 KiB
//     before the end of a 2 MiB block (a partly filled block);
//   - "backup-superblock": 1 KiB, 4 KiB before the end of the disk.
//
// With DefaultSize, blocks 0, 5, 6 and 7 of the eight 2 MiB blocks hold data
// and blocks 1 to 4 are all zero.
func Layout(o Options) ([]Extent, error) {
	size, err := o.size()
	if err != nil {
		return nil, err
	}
	const blk = 2 << 20
	data := alignDown(size/2+size/8, blk) + 256<<10 // inside the third quarter, off a block start
	notes := alignDown(size*3/4, blk) + blk - 400<<10
	return []Extent{
		{Name: "mbr", Offset: 0, Length: SectorSize},
		{Name: "superblock", Offset: PartitionStart + 1024, Length: 1024},
		{Name: "file:/etc/hostname", Offset: PartitionStart + 8<<10, Length: int64(len(hostname))},
		{Name: "file:/etc/motd", Offset: PartitionStart + 12<<10, Length: int64(len(motd))},
		{Name: "file:/var/lib/app/data.bin", Offset: data, Length: 512 << 10},
		{Name: "file:/home/user/notes.txt", Offset: notes, Length: 300 << 10},
		{Name: "backup-superblock", Offset: size - 4096, Length: 1024},
	}, nil
}

// Build returns the whole disk image.
func Build(o Options) ([]byte, error) {
	size, err := o.size()
	if err != nil {
		return nil, err
	}
	disk := make([]byte, size)
	err = fill(o, func(off int64, b []byte) error {
		copy(disk[off:], b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return disk, nil
}

// WriteFile writes the image to a new file at path (mode 0644; it holds no
// secret) as a sparse file: only the extents are written, so the zero
// regions take no disk space where the file system supports holes. It
// refuses to replace an existing file.
func WriteFile(path string, o Options) (err error) {
	size, err := o.size()
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
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("sampleimage: %w", err)
	}
	return fill(o, func(off int64, b []byte) error {
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("sampleimage: writing %s: %w", path, err)
		}
		return nil
	})
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

// fill calls put with the contents of every extent of Layout, in order.
func fill(o Options, put func(off int64, b []byte) error) error {
	size, err := o.size()
	if err != nil {
		return err
	}
	ext, err := Layout(o)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8(seedBytes(o.Seed)))
	for _, e := range ext {
		var b []byte
		switch e.Name {
		case "mbr":
			b = mbr(size, rng)
		case "superblock", "backup-superblock":
			b = superblock(size, o.Seed)
		case "file:/etc/hostname":
			b = []byte(hostname)
		case "file:/etc/motd":
			b = []byte(motd)
		case "file:/var/lib/app/data.bin":
			b = make([]byte, e.Length)
			for i := 0; i+8 <= len(b); i += 8 {
				binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
			}
		case "file:/home/user/notes.txt":
			b = notesText(int(e.Length), rng)
		}
		if int64(len(b)) != e.Length {
			return fmt.Errorf("sampleimage: extent %s: %d bytes for %d", e.Name, len(b), e.Length)
		}
		if err := put(e.Offset, b); err != nil {
			return err
		}
	}
	return nil
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	copy(s[:], "e2eimage sampleimage seed")
	binary.LittleEndian.PutUint64(s[24:], seed)
	return s
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

// superblock returns an ext2-style superblock (revision 1, 4 KiB blocks):
// the fields tools look at first (counts, block size, magic, state,
// revision, UUID, volume name) are filled, the rest is zero.
func superblock(size int64, seed uint64) []byte {
	b := make([]byte, 1024)
	le := binary.LittleEndian
	blocks := uint32((size - PartitionStart) / 4096)
	le.PutUint32(b[0:], blocks/4)   // s_inodes_count
	le.PutUint32(b[4:], blocks)     // s_blocks_count
	le.PutUint32(b[12:], blocks-64) // s_free_blocks_count
	le.PutUint32(b[16:], blocks/4-11)
	le.PutUint32(b[24:], 2)     // s_log_block_size: 1024 << 2 = 4096
	le.PutUint32(b[32:], 32768) // s_blocks_per_group
	le.PutUint32(b[40:], 8192)  // s_inodes_per_group
	le.PutUint16(b[56:], ExtMagic)
	le.PutUint16(b[58:], 1)   // s_state: clean
	le.PutUint16(b[60:], 1)   // s_errors: continue
	le.PutUint32(b[76:], 1)   // s_rev_level: dynamic
	le.PutUint32(b[84:], 11)  // s_first_ino
	le.PutUint16(b[88:], 256) // s_inode_size
	var uuid [16]byte
	copy(uuid[:], "e2eimage")
	le.PutUint64(uuid[8:], seed)
	uuid[6] = uuid[6]&0x0f | 0x40 // version 4 layout
	uuid[8] = uuid[8]&0x3f | 0x80
	copy(b[104:120], uuid[:])
	copy(b[120:136], VolumeName)
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

func alignDown(n, to int64) int64 { return n / to * to }
