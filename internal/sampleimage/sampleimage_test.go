package sampleimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestLayoutFitsAndDoesNotOverlap(t *testing.T) {
	for size := int64(MinSize); size <= 96<<20; size += 512 << 10 {
		ext, err := Layout(Options{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range ext {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > size {
				t.Fatalf("size %d: extent %s [%d,+%d) outside the disk", size, e.Name, e.Offset, e.Length)
			}
			if i > 0 && ext[i-1].Offset+ext[i-1].Length > e.Offset {
				t.Fatalf("size %d: extent %s overlaps %s", size, e.Name, ext[i-1].Name)
			}
		}
	}
}

func TestBuildStructure(t *testing.T) {
	disk, err := Build(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(disk) != DefaultSize {
		t.Fatalf("size %d", len(disk))
	}
	if disk[510] != 0x55 || disk[511] != 0xAA {
		t.Fatal("no boot signature")
	}
	p := disk[446:462]
	if p[0] != 0x80 || p[4] != LinuxPartitionType {
		t.Fatalf("partition entry %x", p)
	}
	start := int64(binary.LittleEndian.Uint32(p[8:])) * SectorSize
	count := int64(binary.LittleEndian.Uint32(p[12:])) * SectorSize
	if start != PartitionStart || start+count != DefaultSize {
		t.Fatalf("partition [%d,+%d)", start, count)
	}
	sb := disk[PartitionStart+1024:]
	if binary.LittleEndian.Uint16(sb[56:]) != ExtMagic {
		t.Fatal("no superblock magic")
	}
	if !bytes.HasPrefix(sb[120:], []byte(VolumeName)) {
		t.Fatal("no volume name")
	}
	if !bytes.Contains(disk, []byte(motd)) {
		t.Fatal("no motd file")
	}

	// Blocks 1-4 are zero and the others are not: the sparse shape the
	// package documents.
	const blk = 2 << 20
	for i := 0; i < DefaultSize/blk; i++ {
		zero := isZero(disk[i*blk : (i+1)*blk])
		if want := i >= 1 && i <= 4; zero != want {
			t.Errorf("block %d: zero=%v, want %v", i, zero, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, err := Build(Options{Size: 12 << 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(Options{Size: 12 << 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Build(Options{Size: 12 << 20, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same options, different images")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same image")
	}
}

func TestBadSizes(t *testing.T) {
	for _, size := range []int64{-1, 1, MinSize - 512, MinSize + 1, MaxSize + 512} {
		if _, err := Build(Options{Size: size}); !errors.Is(err, ErrSize) {
			t.Errorf("size %d: %v", size, err)
		}
	}
}

func TestWriteFileIsSparseAndEqual(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	o := Options{Size: 32 << 20, Seed: 9}
	if err := WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file differs from Build")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 >= o.Size/2 {
		t.Logf("file system keeps no holes: %d bytes used for %d", st.Blocks*512, o.Size)
	}
	if err := WriteFile(path, o); err == nil {
		t.Fatal("replaced an existing file")
	}
}

func TestReader(t *testing.T) {
	r, err := Reader(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != DefaultSize {
		t.Fatalf("size %d", r.Size())
	}
	all, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Build(Options{})
	if !bytes.Equal(all, want) {
		t.Fatal("reader differs from Build")
	}
	var b [2]byte
	if _, err := r.ReadAt(b[:], 510); err != nil || b != [2]byte{0x55, 0xAA} {
		t.Fatalf("ReadAt: %v %x", err, b)
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
