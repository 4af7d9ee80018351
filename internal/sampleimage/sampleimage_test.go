package sampleimage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestLayoutFitsAndDoesNotOverlap(t *testing.T) {
	for size := int64(MinSize); size <= 64<<20; size += 7 << 20 {
		o := Options{Size: size, Seed: 1}
		ext, err := Layout(o)
		if err != nil {
			t.Fatal(err)
		}
		disk, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		covered := make([]bool, size)
		for i, e := range ext {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > size {
				t.Fatalf("size %d: extent %s [%d,+%d) outside the disk", size, e.Name, e.Offset, e.Length)
			}
			if i > 0 && ext[i-1].Offset+ext[i-1].Length > e.Offset {
				t.Fatalf("size %d: extent %s overlaps %s", size, e.Name, ext[i-1].Name)
			}
			for j := e.Offset; j < e.Offset+e.Length; j++ {
				covered[j] = true
			}
		}
		if ext[0].Name != "mbr" || ext[0].Offset != 0 || ext[0].Length != SectorSize {
			t.Fatalf("size %d: first extent %+v", size, ext[0])
		}
		for j, c := range disk {
			if c != 0 && !covered[j] {
				t.Fatalf("size %d: byte %d is not zero but outside every extent", size, j)
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

	// Most 2 MiB blocks are all zero: the sparse shape an encrypted
	// dynamic VHD of it relies on.
	const blk = 2 << 20
	zero := 0
	for i := 0; i < DefaultSize/blk; i++ {
		if isZero(disk[i*blk : (i+1)*blk]) {
			zero++
		}
	}
	if zero < DefaultSize/blk/2 {
		t.Fatalf("%d of %d blocks are zero, want at least half", zero, DefaultSize/blk)
	}
	t.Logf("%d of %d blocks are zero", zero, DefaultSize/blk)
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

// TestDoctorPasses checks that the image is the genuine Linux disk the
// package promises: the doctor reads it through package disk and passes
// every check, at the smallest and the default size.
func TestDoctorPasses(t *testing.T) {
	for _, size := range []int64{MinSize, DefaultSize} {
		r, err := Reader(Options{Size: size, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		d, err := disk.Open(r, r.Size())
		if err != nil {
			t.Fatal(err)
		}
		rep, err := doctor.Examine(context.Background(), d, doctor.WithOSCode(OSCode))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete() || rep.OSCode() != OSCode {
			t.Fatalf("size %d:\n%s", size, rep)
		}
		if rep.CloudInit == nil || rep.CloudInit.Version != "23.4.4" {
			t.Fatalf("cloud-init %+v", rep.CloudInit)
		}
	}
}

// TestE2fsck has e2fsck check the file system (read-only, forced).
func TestE2fsck(t *testing.T) {
	fsck := testenv.Tool(t, "e2fsck", "apt-get install -y e2fsprogs")
	for _, size := range []int64{MinSize, 40 << 20} {
		path := filepath.Join(t.TempDir(), "disk.raw")
		if err := WriteFile(path, Options{Size: size, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(fsck, "-fn", fmt.Sprintf("%s?offset=%d", path, PartitionStart)).CombinedOutput()
		if err != nil {
			t.Fatalf("e2fsck: %v\n%s", err, out)
		}
	}
}
