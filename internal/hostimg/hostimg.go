// Package hostimg builds, for tests, the hostile disk images the image
// readers must survive: real images made by mkfs.ext4 and sfdisk (through
// package imagetest), then damaged the way a crafted image is, with the
// checksums the readers verify recomputed so that the damage reaches them.
// Nothing is checked in: every image is built in the test's temporary
// directory.
//
//   - GPTBackupBomb: a GPT whose primary header fails its CRC and whose
//     backup header (last LBA) claims a huge entry array;
//   - Ext4ExtentLoop: the root directory's extent index points to a block
//     whose index points to itself, or to a second block pointing back;
//   - Ext4HugeDir: /etc claims a huge size and n extents of 32,768 blocks;
//   - CloudCfgKeys: a cloud.cfg of many distinct keys.
package hostimg

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/ext4/crc"

	"github.com/e2eimage/e2eimage/internal/imagetest"
)

// PartStart is where the disks' only partition starts.
const PartStart = 1 << 20

// Tree returns a small Linux root tree: enough for the doctor to take it
// for a root file system (os-release, /etc, a kernel).
func Tree(tb testing.TB) string {
	tb.Helper()
	return imagetest.WriteTree(tb, []imagetest.Entry{
		imagetest.File("etc/os-release", "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\n"),
		imagetest.File("etc/fstab", "LABEL=root / ext4 defaults 0 1\n"),
		imagetest.File("etc/hostname", "hostile\n"),
		imagetest.File("etc/cloud/cloud.cfg", "datasource_list: [ ConfigDrive, None ]\n"),
		imagetest.File("boot/vmlinuz-6.8.0-1-generic", "kernel placeholder\n"),
		imagetest.File("var/lib/dpkg/status", "Package: cloud-init\nStatus: install ok installed\nVersion: 23.4-1\n\n"),
	})
}

// CloudCfgKeys returns an MBR disk with an ext4 root file system whose
// /etc/cloud/cloud.cfg is size bytes of distinct short keys ("k1: 1"...):
// a YAML decoder that checks each key against all the previous ones takes
// quadratic time on it.
func CloudCfgKeys(tb testing.TB, size int) string {
	tb.Helper()
	tree := Tree(tb)
	var b []byte
	for i := 0; ; i++ {
		line := fmt.Appendf(nil, "k%d: 1\n", i)
		if len(b)+len(line) > size {
			break
		}
		b = append(b, line...)
	}
	if err := os.WriteFile(tree+"/etc/cloud/cloud.cfg", b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return Ext4Disk(tb, tree, 16<<20, 20<<20, "dos")
}

// Ext4Disk makes an MBR disk of diskSize bytes whose one partition holds
// an ext4 file system of fsSize bytes with 4 KiB blocks and tree's files.
func Ext4Disk(tb testing.TB, tree string, fsSize, diskSize int64, kind string) string {
	tb.Helper()
	fs := tb.TempDir() + "/ext4.img"
	f, err := os.Create(fs)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(fsSize); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	imagetest.Run(tb, nil, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "root", "-d", tree, fs)
	return imagetest.Disk(tb, kind, diskSize, imagetest.Part{Type: "L", Image: fs, Bootable: kind == "dos"})
}

// GPTBackupBomb returns a 16 MiB GPT disk whose primary header fails its
// CRC and whose backup header, at the last LBA, claims entries entries of
// entrySize bytes (with a correct header CRC, so that a reader falling
// back to it believes it).
func GPTBackupBomb(tb testing.TB, entries, entrySize uint32) string {
	tb.Helper()
	p := Ext4Disk(tb, Tree(tb), 8<<20, 16<<20, "gpt")
	b := readFile(tb, p)
	le := binary.LittleEndian
	le.PutUint32(b[512+88:], le.Uint32(b[512+88:])^0xdeadbeef) // the primary's entries CRC
	last := len(b) - 512
	h := b[last : last+512]
	if string(h[:8]) != "EFI PART" {
		tb.Fatalf("sfdisk wrote no backup GPT header at the last LBA")
	}
	le.PutUint32(h[80:], entries)
	le.PutUint32(h[84:], entrySize)
	GPTHeaderCRC(h)
	writeFile(tb, p, b)
	return p
}

// GPTHeaderCRC recomputes the header CRC of a GPT header h.
func GPTHeaderCRC(h []byte) {
	le := binary.LittleEndian
	n := le.Uint32(h[12:])
	if n < 92 || n > uint32(len(h)) {
		n = 92
	}
	le.PutUint32(h[16:], 0)
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:n]))
}

// Ext4 describes where an ext4 file system at a disk offset keeps what
// these images damage.
type Ext4 struct {
	Start     int64 // the partition's offset in the disk image
	BlockSize int64
	Blocks    int64
	InodeSize int64
	PerGroup  int64 // inodes per group
	Tables    []int64
	Seed      uint32 // the metadata checksum seed
	Bitmap0   int64  // the block bitmap of group 0
}

// ReadExt4 reads the superblock and group descriptors of the ext4 file
// system at start in the disk image b.
func ReadExt4(b []byte, start int64) (*Ext4, error) {
	le := binary.LittleEndian
	sb := b[start+1024 : start+2048]
	if le.Uint16(sb[56:]) != 0xEF53 {
		return nil, fmt.Errorf("no ext superblock at %d", start)
	}
	e := &Ext4{Start: start, BlockSize: 1024 << le.Uint32(sb[24:]), Blocks: int64(le.Uint32(sb[4:])),
		InodeSize: int64(le.Uint16(sb[88:])), PerGroup: int64(le.Uint32(sb[40:]))}
	desc := int64(32)
	if le.Uint32(sb[96:])&0x80 != 0 {
		desc = int64(le.Uint16(sb[254:]))
		e.Blocks |= int64(le.Uint32(sb[336:])) << 32
	}
	e.Seed = le.Uint32(sb[0x270:])
	if e.Seed == 0 {
		e.Seed = crc.CRC32c(0xffffffff, sb[104:120])
	}
	groups := (e.Blocks + int64(le.Uint32(sb[32:])) - 1) / int64(le.Uint32(sb[32:]))
	gdt := start + e.BlockSize
	if e.BlockSize == 1024 {
		gdt = start + 2048
	}
	for g := range groups {
		d := b[gdt+g*desc:]
		t := int64(le.Uint32(d[8:]))
		if desc >= 64 {
			t |= int64(le.Uint32(d[0x28:])) << 32
		}
		e.Tables = append(e.Tables, t)
		if g == 0 {
			e.Bitmap0 = int64(le.Uint32(d[0:]))
			if desc >= 64 {
				e.Bitmap0 |= int64(le.Uint32(d[0x20:])) << 32
			}
		}
	}
	return e, nil
}

// FreeBlock returns the first block at or after from that group 0's block
// bitmap marks free, and inside b.
func (e *Ext4) FreeBlock(b []byte, from int64) (int64, error) {
	bm := b[e.BlockOffset(e.Bitmap0):][:e.BlockSize]
	for n := from; n < e.BlockSize*8 && e.BlockOffset(n+1) <= int64(len(b)); n++ {
		if bm[n/8]&(1<<(n%8)) == 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no free block from %d in the first %d bytes", from, len(b))
}

// InodeOffset returns where inode ino is in the disk image.
func (e *Ext4) InodeOffset(ino uint32) int64 {
	g := (int64(ino) - 1) / e.PerGroup
	return e.Start + e.Tables[g]*e.BlockSize + (int64(ino)-1)%e.PerGroup*e.InodeSize
}

// BlockOffset returns where block n is in the disk image.
func (e *Ext4) BlockOffset(n int64) int64 { return e.Start + n*e.BlockSize }

// InodeCRC recomputes the checksum of inode ino in the disk image b, as
// ext4's metadata_csum (and go-diskfs) computes it.
func (e *Ext4) InodeCRC(b []byte, ino uint32) {
	e.InodeBytesCRC(b[e.InodeOffset(ino):][:e.InodeSize], ino)
}

// InodeBytesCRC recomputes the checksum of in, the bytes of inode ino.
func (e *Ext4) InodeBytesCRC(in []byte, ino uint32) {
	le := binary.LittleEndian
	le.PutUint16(in[0x7c:], 0)
	if e.InodeSize > 128 {
		le.PutUint16(in[0x82:], 0)
	}
	var w [4]byte
	le.PutUint32(w[:], ino)
	c := crc.CRC32c(e.Seed, w[:])
	le.PutUint32(w[:], le.Uint32(in[0x64:])) // i_generation
	c = crc.CRC32c(c, w[:])
	c = crc.CRC32c(c, in)
	le.PutUint16(in[0x7c:], uint16(c))
	if e.InodeSize > 128 {
		le.PutUint16(in[0x82:], uint16(c>>16))
	}
}

// Lookup returns the inode number of name in the directory of inode dir,
// whose extents must be in the inode (depth 0), as mkfs.ext4 writes small
// directories.
func (e *Ext4) Lookup(b []byte, dir uint32, name string) (uint32, error) {
	le := binary.LittleEndian
	in := b[e.InodeOffset(dir):]
	ib := in[0x28:]
	if le.Uint16(ib[0:]) != 0xF30A || le.Uint16(ib[6:]) != 0 {
		return 0, fmt.Errorf("inode %d has no depth-0 extent tree", dir)
	}
	for i := range int(le.Uint16(ib[2:])) {
		x := ib[12+12*i:]
		n := int64(le.Uint16(x[4:]))
		phys := int64(le.Uint32(x[8:])) | int64(le.Uint16(x[6:]))<<32
		blk := b[e.BlockOffset(phys):][:n*e.BlockSize]
		for off := 0; off+8 <= len(blk); {
			ino, rec, nl := le.Uint32(blk[off:]), int(le.Uint16(blk[off+4:])), int(blk[off+6])
			if rec < 8 {
				break
			}
			if ino != 0 && off+8+nl <= len(blk) && string(blk[off+8:off+8+nl]) == name {
				return ino, nil
			}
			off += rec
		}
	}
	return 0, fmt.Errorf("%q not found in directory inode %d", name, dir)
}

// SetIndexRoot makes inode ino's extent tree a depth-depth root with one
// index entry pointing to block child.
func (e *Ext4) SetIndexRoot(b []byte, ino uint32, depth uint16, child int64) {
	le := binary.LittleEndian
	ib := b[e.InodeOffset(ino)+0x28:][:60]
	clear(ib)
	le.PutUint16(ib[0:], 0xF30A)
	le.PutUint16(ib[2:], 1) // entries
	le.PutUint16(ib[4:], 4) // max
	le.PutUint16(ib[6:], depth)
	le.PutUint32(ib[12+4:], uint32(child))
	le.PutUint16(ib[12+8:], uint16(child>>32))
	e.InodeCRC(b, ino)
}

// WriteIndexNode writes at block n an extent index node of the given depth
// pointing to block child.
func (e *Ext4) WriteIndexNode(b []byte, n int64, depth uint16, child int64) {
	le := binary.LittleEndian
	blk := b[e.BlockOffset(n):][:e.BlockSize]
	clear(blk)
	le.PutUint16(blk[0:], 0xF30A)
	le.PutUint16(blk[2:], 1)
	le.PutUint16(blk[4:], uint16((e.BlockSize-12)/12))
	le.PutUint16(blk[6:], depth)
	le.PutUint32(blk[12+4:], uint32(child))
	le.PutUint16(blk[12+8:], uint16(child>>32))
}

// Ext4ExtentLoop returns an MBR disk with an ext4 root file system whose
// root directory's extent index points to a block A whose index points to
// A again (twoBlocks false) or to a block B pointing back to A.
func Ext4ExtentLoop(tb testing.TB, twoBlocks bool) string {
	tb.Helper()
	p := Ext4Disk(tb, Tree(tb), 16<<20, 20<<20, "dos")
	b := readFile(tb, p)
	e, err := ReadExt4(b, PartStart)
	if err != nil {
		tb.Fatal(err)
	}
	a, bb := e.Blocks-8, e.Blocks-7 // free: mkfs.ext4 -d fills from the start
	e.SetIndexRoot(b, 2, 1, a)
	if twoBlocks {
		e.WriteIndexNode(b, a, 1, bb)
		e.WriteIndexNode(b, bb, 1, a)
	} else {
		e.WriteIndexNode(b, a, 1, a)
	}
	writeFile(tb, p, b)
	return p
}

// Ext4HugeDir returns an MBR disk with an ext4 root file system whose /etc
// claims a size of 1 TiB and n extents of 32,768 blocks (128 MiB each),
// all inside the file system (they overlap).
func Ext4HugeDir(tb testing.TB, n int) string {
	tb.Helper()
	p := Ext4Disk(tb, Tree(tb), 256<<20, 260<<20, "dos")
	b := readHead(tb, p, 64<<20) // the metadata this damages: not all 260 MiB
	e, err := ReadExt4(b, PartStart)
	if err != nil {
		tb.Fatal(err)
	}
	etc, err := e.Lookup(b, 2, "etc")
	if err != nil {
		tb.Fatal(err)
	}
	le := binary.LittleEndian
	leaf, err := e.FreeBlock(b, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	in := b[e.InodeOffset(etc):]
	le.PutUint32(in[4:], 0)      // i_size: 1 TiB
	le.PutUint32(in[0x6c:], 256) // i_size_high
	e.SetIndexRoot(b, etc, 1, leaf)
	blk := b[e.BlockOffset(leaf):][:e.BlockSize]
	clear(blk)
	le.PutUint16(blk[0:], 0xF30A)
	le.PutUint16(blk[2:], uint16(n))
	le.PutUint16(blk[4:], uint16((e.BlockSize-12)/12))
	for i := range n {
		x := blk[12+12*i:]
		le.PutUint32(x[0:], uint32(i*32768))
		le.PutUint16(x[4:], 32768)
		le.PutUint32(x[8:], 1024) // physical block 1024: 1024 + 32768 < the file system's 65536
	}
	writeFile(tb, p, b)
	return p
}

// readHead returns the first n bytes of the file at p (all of it when it
// is shorter).
func readHead(tb testing.TB, p string, n int64) []byte {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF {
		tb.Fatal(err)
	}
	return b[:k]
}

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// writeFile writes b back over the start of the image at p, skipping its all-zero
// 64 KiB chunks so that the image stays sparse (the damage never zeroes
// what was not zero).
func writeFile(tb testing.TB, p string, b []byte) {
	tb.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	for off := 0; off < len(b); off += 64 << 10 {
		c := b[off:min(off+64<<10, len(b))]
		if !slices.ContainsFunc(c, func(x byte) bool { return x != 0 }) {
			continue
		}
		if _, err := f.WriteAt(c, int64(off)); err != nil {
			tb.Fatal(err)
		}
	}
}
