package disk_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/internal/imagetest"
	"github.com/e2eimage/e2eimage/vhd"
)

const diskSize = 24 << 20

// baseDisk builds a 24 MiB MBR disk with one ext4 partition holding a few
// files, among them 1 MiB of random data, and a run of zeros in the middle
// of the disk.
func baseDisk(t *testing.T) string {
	t.Helper()
	rnd, err := os.ReadFile(imagetest.RandomFile(t, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	tree := imagetest.WriteTree(t, []imagetest.Entry{
		imagetest.File("etc/hostname", "sample\n"),
		imagetest.File("var/lib/data.bin", string(rnd)),
		imagetest.File("home/user/notes.txt", strings.Repeat("encrypt the image before upload\n", 4000)),
	})
	fs := imagetest.Ext4(t, tree, 12<<20, "root")
	return imagetest.Disk(t, "dos", diskSize, imagetest.Part{Type: "L", Size: 12 << 20, Image: fs, Bootable: true},
		imagetest.Part{Type: "L", Head: rnd[:4096]})
}

func open(t *testing.T, path string, opts ...disk.Option) (*disk.Disk, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := disk.Detect(f, fi.Size()); err != nil {
		t.Fatalf("Detect: %v", err)
	} else {
		t.Logf("%s: detected %s", filepath.Base(path), got)
	}
	return disk.Open(f, fi.Size(), opts...)
}

func detect(t *testing.T, path string) disk.Format {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := disk.Detect(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, d *disk.Disk) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadableFormats reads every readable format and compares the virtual
// disk with what qemu-img converts it to.
func TestReadableFormats(t *testing.T) {
	t.Parallel()
	base := baseDisk(t)
	cases := []struct {
		name   string
		format disk.Format
		qemu   string
		make   func(*testing.T) string
	}{
		{"raw", disk.Raw, "raw", func(t *testing.T) string { return base }},
		{"vhd-dynamic", disk.VHDDynamic, "vpc", func(t *testing.T) string {
			return imagetest.Convert(t, base, "vpc", "-o", "subformat=dynamic")
		}},
		{"vhd-fixed", disk.VHDFixed, "vpc", func(t *testing.T) string {
			return imagetest.Convert(t, base, "vpc", "-o", "subformat=fixed,force_size=on")
		}},
		{"qcow2-v3", disk.QCOW2, "qcow2", func(t *testing.T) string { return imagetest.Convert(t, base, "qcow2") }},
		{"qcow2-v2", disk.QCOW2, "qcow2", func(t *testing.T) string { return imagetest.Convert(t, base, "qcow2", "-o", "compat=0.10") }},
		{"qcow2-4k-clusters", disk.QCOW2, "qcow2", func(t *testing.T) string {
			return imagetest.Convert(t, base, "qcow2", "-o", "cluster_size=4096")
		}},
		{"qcow2-2m-clusters", disk.QCOW2, "qcow2", func(t *testing.T) string {
			return imagetest.Convert(t, base, "qcow2", "-o", "cluster_size=2M")
		}},
		{"qcow2-zlib", disk.QCOW2, "qcow2", func(t *testing.T) string { return imagetest.Convert(t, base, "qcow2", "-c") }},
		{"qcow2-zstd", disk.QCOW2, "qcow2", func(t *testing.T) string {
			return imagetest.Convert(t, base, "qcow2", "-c", "-o", "compression_type=zstd")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.make(t)
			if got := detect(t, path); got != c.format {
				t.Fatalf("Detect: %s, want %s", got, c.format)
			}
			d, err := open(t, path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			want := imagetest.RawOf(t, path, c.qemu)
			if d.Size() != int64(len(want)) {
				t.Fatalf("Size %d, qemu-img reads %d bytes", d.Size(), len(want))
			}
			if got := readAll(t, d); !bytes.Equal(got, want) {
				t.Fatalf("the virtual disk differs from qemu-img convert -O raw (first difference at %d)", firstDiff(got, want))
			}
			// Block by block too, and every byte outside the present
			// sectors must be zero.
			buf := make([]byte, vhd.BlockSize)
			present := 0
			for i := range d.NumBlocks() {
				if err := d.ReadBlock(i, buf); err != nil {
					t.Fatal(err)
				}
				start := i * vhd.BlockSize
				end := min(start+vhd.BlockSize, len(want))
				if !bytes.Equal(buf[:end-start], want[start:end]) {
					t.Fatalf("ReadBlock(%d) differs", i)
				}
				b, err := d.Block(i)
				if err != nil {
					t.Fatal(err)
				}
				for s := range vhd.SectorsPerBlock {
					if b.Bitmap.Present(s) {
						present++
						continue
					}
					if o := s * 512; o < end-start && !allZero(buf[o:o+512]) {
						t.Fatalf("block %d sector %d holds data but is reported absent", i, s)
					}
				}
			}
			if present == 0 {
				t.Fatal("no sector reported present")
			}
		})
	}
}

// qemuMap is one extent of qemu-img map --output=json.
type qemuMap struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	Data   bool  `json:"data"`
	Zero   bool  `json:"zero"`
}

// TestQCOW2Allocation checks that a qcow2 image's sector bitmaps are exactly
// what qemu-img map reports as data, with explicit zero clusters (written
// by qemu-io write -z over allocated data) and never-written clusters
// absent, and compressed clusters present.
func TestQCOW2Allocation(t *testing.T) {
	t.Parallel()
	base := baseDisk(t)
	for _, extra := range [][]string{nil, {"-c"}} {
		name := "plain"
		if extra != nil {
			name = "compressed"
		}
		t.Run(name, func(t *testing.T) {
			q := imagetest.Convert(t, base, "qcow2", extra...)
			// 512 KiB of data at 6 MiB, the first half of which is then
			// zeroed: zero clusters over allocated ones.
			const zeroStart, zeroLen, dataLen = 6 << 20, 256 << 10, 256 << 10
			imagetest.Run(t, nil, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 6M 512k", "-c", "write -z 6M 256k", q)
			out := imagetest.Run(t, nil, "qemu-img", "map", "--output=json", "-f", "qcow2", q)
			var m []qemuMap
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("qemu-img map: %v\n%s", err, out)
			}
			d, err := open(t, q)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]bool, d.Size()/512)
			for _, e := range m {
				if e.Data && !e.Zero {
					for s := e.Start / 512; s < (e.Start+e.Length)/512; s++ {
						want[s] = true
					}
				}
			}
			var present, absent int
			for i := range d.NumBlocks() {
				b, err := d.Block(i)
				if err != nil {
					t.Fatal(err)
				}
				for s := range vhd.SectorsPerBlock {
					sec := i*vhd.SectorsPerBlock + s
					if sec >= len(want) {
						break
					}
					if got := b.Bitmap.Present(s); got != want[sec] {
						t.Fatalf("sector %d: present=%v, qemu-img map says data=%v", sec, got, want[sec])
					}
					if want[sec] {
						present++
					} else {
						absent++
					}
				}
			}
			for s := zeroStart / 512; s < (zeroStart+zeroLen+dataLen)/512; s++ {
				if want[s] != (s >= (zeroStart+zeroLen)/512) {
					t.Fatalf("sector %d: qemu-img map says data=%v, against what qemu-io wrote", s, want[s])
				}
			}
			if present == 0 || absent == 0 {
				t.Fatalf("present %d, absent %d sectors: the image does not exercise both", present, absent)
			}
			buf := make([]byte, zeroLen)
			if _, err := d.ReadAt(buf, zeroStart); err != nil {
				t.Fatal(err)
			}
			if !allZero(buf) {
				t.Fatal("the zeroed range does not read as zeros")
			}
			t.Logf("%d sectors present, %d absent", present, absent)
		})
	}
}

// TestRefusedFormats checks that each format Open does not read is
// detected by content and refused with its typed error.
func TestRefusedFormats(t *testing.T) {
	t.Parallel()
	base := baseDisk(t)
	for _, c := range []struct {
		format disk.Format
		make   func(*testing.T) string
	}{
		{disk.VHDX, func(t *testing.T) string { return imagetest.Convert(t, base, "vhdx") }},
		{disk.VMDK, func(t *testing.T) string { return imagetest.Convert(t, base, "vmdk") }},
		{disk.VMDK, func(t *testing.T) string {
			return imagetest.Convert(t, base, "vmdk", "-o", "subformat=streamOptimized")
		}},
		{disk.VMDKDescriptor, func(t *testing.T) string { return imagetest.Convert(t, base, "vmdk", "-o", "subformat=monolithicFlat") }},
		{disk.VDI, func(t *testing.T) string { return imagetest.Convert(t, base, "vdi") }},
		{disk.QED, func(t *testing.T) string { return imagetest.Convert(t, base, "qed") }},
		{disk.QCOW1, func(t *testing.T) string { return imagetest.Convert(t, base, "qcow") }},
		{disk.Parallels, func(t *testing.T) string { return imagetest.Convert(t, base, "parallels") }},
		{disk.ISO9660, func(t *testing.T) string { return genISO(t) }},
		{disk.ISO9660, func(t *testing.T) string { return craftedISO(t) }},
		{disk.VHDDifferencing, func(t *testing.T) string { return differencingVHD(t, base) }},
	} {
		t.Run(c.format.String(), func(t *testing.T) {
			path := c.make(t)
			if got := detect(t, path); got != c.format {
				t.Fatalf("Detect: %s, want %s", got, c.format)
			}
			_, err := open(t, path)
			var ue *disk.UnsupportedFormatError
			if !errors.As(err, &ue) || ue.Format != c.format || !errors.Is(err, disk.ErrUnsupportedFormat) {
				t.Fatalf("Open: %v, want an *UnsupportedFormatError for %s", err, c.format)
			}
			msg := err.Error()
			if c.format != disk.ISO9660 && !strings.Contains(msg, "qemu-img convert") {
				t.Fatalf("the message gives no conversion: %s", msg)
			}
			if c.format == disk.VHDX && !strings.Contains(msg, "qemu-img convert -f vhdx -O vpc -o subformat=dynamic") {
				t.Fatalf("the message does not name the conversion: %s", msg)
			}
			t.Log(msg)
			// A stream of it is refused too.
			head, _ := os.ReadFile(path)
			if _, err := disk.CheckStream(head[:min(len(head), disk.PrefixSize)]); !errors.Is(err, disk.ErrUnsupportedFormat) {
				t.Fatalf("CheckStream: %v", err)
			}
		})
	}
}

// genISO builds an ISO 9660 image with genisoimage.
func genISO(t *testing.T) string {
	tree := imagetest.WriteTree(t, []imagetest.Entry{imagetest.File("README.TXT", "install media\n")})
	p := filepath.Join(t.TempDir(), "media.iso")
	imagetest.Run(t, nil, "genisoimage", "-quiet", "-o", p, tree)
	return p
}

// craftedISO writes the primary volume descriptor ECMA-119 puts at sector
// 16 (type 1, "CD001", version 1) and the set terminator after it.
func craftedISO(t *testing.T) string {
	b := make([]byte, 20*2048)
	pvd := b[16*2048:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	term := b[17*2048:]
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	p := filepath.Join(t.TempDir(), "crafted.iso")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// differencingVHD turns a dynamic VHD into a differencing one by changing
// its disk type (both footer copies), which is all Detect and Open look at
// before refusing it.
func differencingVHD(t *testing.T, base string) string {
	p := imagetest.Convert(t, base, "vpc", "-o", "subformat=dynamic")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := vhd.ParseFooter(b[len(b)-512:])
	if err != nil {
		t.Fatal(err)
	}
	f.DiskType = vhd.Differencing
	fb, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	copy(b[:512], fb)
	copy(b[len(b)-512:], fb)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNoPartitionTable(t *testing.T) {
	t.Parallel()
	tree := imagetest.WriteTree(t, []imagetest.Entry{imagetest.File("etc/hostname", "bare\n")})
	bare := imagetest.Ext4(t, tree, 8<<20, "bare")
	zeros := filepath.Join(t.TempDir(), "zeros.raw")
	imagetest.Run(t, nil, "qemu-img", "create", "-q", "-f", "raw", zeros, "4M")
	for _, c := range []struct {
		name, path, found string
	}{
		{"random", imagetest.RandomFile(t, 4<<20), ""},
		{"bare-ext4", bare, "an ext2/3/4 file system"},
		{"bare-ext4-qcow2", imagetest.Convert(t, bare, "qcow2"), "an ext2/3/4 file system"},
		{"zeros", zeros, "zeros"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := open(t, c.path)
			var ne *disk.NoPartitionTableError
			if !errors.As(err, &ne) || !errors.Is(err, disk.ErrNoPartitionTable) {
				t.Fatalf("Open: %v, want *NoPartitionTableError", err)
			}
			if ne.Found != c.found {
				t.Fatalf("Found %q, want %q", ne.Found, c.found)
			}
			t.Log(err)
			d, err := open(t, c.path, disk.AllowNoPartitionTable())
			if err != nil {
				t.Fatalf("Open with AllowNoPartitionTable: %v", err)
			}
			if d.Size() == 0 {
				t.Fatal("empty disk")
			}
			head, _ := os.ReadFile(c.path)
			if d.Format() == disk.Raw {
				if _, err := disk.CheckStream(head[:min(len(head), disk.PrefixSize)]); !errors.Is(err, disk.ErrNoPartitionTable) {
					t.Fatalf("CheckStream: %v", err)
				}
				if _, err := disk.CheckStream(head[:min(len(head), disk.PrefixSize)], disk.AllowNoPartitionTable()); err != nil {
					t.Fatalf("CheckStream with AllowNoPartitionTable: %v", err)
				}
			}
		})
	}
}

func TestQCOW2Refusals(t *testing.T) {
	t.Parallel()
	base := baseDisk(t)
	t.Run("backing-file", func(t *testing.T) {
		dir := t.TempDir()
		under := filepath.Join(dir, "base.qcow2")
		imagetest.Run(t, nil, "qemu-img", "convert", "-O", "qcow2", base, under)
		over := filepath.Join(dir, "overlay.qcow2")
		imagetest.Run(t, nil, "qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", over)
		_, err := open(t, over)
		var be *disk.BackingFileError
		if !errors.As(err, &be) || !errors.Is(err, disk.ErrBackingFile) || be.Name != "base.qcow2" {
			t.Fatalf("Open: %v, want a *BackingFileError naming base.qcow2", err)
		}
		t.Log(err)
	})
	t.Run("luks", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "enc.qcow2")
		luksQCOW2(t, p)
		_, err := open(t, p)
		var fe *disk.FeatureError
		if !errors.As(err, &fe) || !errors.Is(err, disk.ErrEncrypted) {
			t.Fatalf("Open: %v, want a *FeatureError matching ErrEncrypted", err)
		}
		t.Log(err)
	})
	t.Run("stream", func(t *testing.T) {
		q := imagetest.Convert(t, base, "qcow2")
		b, _ := os.ReadFile(q)
		f, err := disk.CheckStream(b[:disk.PrefixSize])
		var ne *disk.NeedRandomAccessError
		if f != disk.QCOW2 || !errors.As(err, &ne) || !errors.Is(err, disk.ErrNeedRandomAccess) {
			t.Fatalf("CheckStream: %s, %v", f, err)
		}
		t.Log(err)
	})
}

// TestStreams checks what CheckStream accepts.
func TestStreams(t *testing.T) {
	t.Parallel()
	base := baseDisk(t)
	for _, c := range []struct {
		name string
		path string
		want disk.Format
	}{
		{"raw", base, disk.Raw},
		{"dynamic-vhd", imagetest.Convert(t, base, "vpc", "-o", "subformat=dynamic"), disk.VHDDynamic},
		{"fixed-vhd", imagetest.Convert(t, base, "vpc", "-o", "subformat=fixed,force_size=on"), disk.Raw},
	} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := disk.CheckStream(b[:disk.PrefixSize])
		if err != nil || f != c.want {
			t.Errorf("%s: CheckStream = %s, %v; want %s", c.name, f, err, c.want)
		}
	}
	if _, err := disk.CheckStream(nil); !errors.Is(err, disk.ErrEmpty) {
		t.Errorf("empty stream: %v", err)
	}
}

// TestMalformedQCOW2 patches one header field of a valid qcow2 image at a
// time and checks the typed error.
func TestMalformedQCOW2(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(imagetest.Convert(t, baseDisk(t), "qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	for _, c := range []struct {
		name  string
		patch func(b []byte) []byte
		want  error
	}{
		{"version-4", func(b []byte) []byte { be.PutUint32(b[4:], 4); return b }, disk.ErrMalformed},
		{"cluster-bits-30", func(b []byte) []byte { be.PutUint32(b[20:], 30); return b }, disk.ErrMalformed},
		{"cluster-bits-8", func(b []byte) []byte { be.PutUint32(b[20:], 8); return b }, disk.ErrMalformed},
		{"huge-size", func(b []byte) []byte { be.PutUint64(b[24:], 1<<50); return b }, disk.ErrTooLarge},
		{"l1-too-small", func(b []byte) []byte { be.PutUint32(b[36:], 0); return b }, disk.ErrMalformed},
		{"l1-huge", func(b []byte) []byte { be.PutUint32(b[36:], 0xFFFFFFFF); return b }, disk.ErrMalformed},
		{"l1-past-end", func(b []byte) []byte { be.PutUint64(b[40:], uint64(len(b))+1<<16); return b }, disk.ErrMalformed},
		{"l1-unaligned", func(b []byte) []byte { be.PutUint64(b[40:], be.Uint64(b[40:])+8); return b }, disk.ErrMalformed},
		{"crypt-aes", func(b []byte) []byte { be.PutUint32(b[32:], 1); return b }, disk.ErrEncrypted},
		{"crypt-7", func(b []byte) []byte { be.PutUint32(b[32:], 7); return b }, disk.ErrMalformed},
		{"dirty", func(b []byte) []byte { b[79] |= 1; return b }, disk.ErrUnsupportedFeature},
		{"corrupt", func(b []byte) []byte { b[79] |= 2; return b }, disk.ErrUnsupportedFeature},
		{"data-file", func(b []byte) []byte { b[79] |= 4; return b }, disk.ErrUnsupportedFeature},
		{"extended-l2", func(b []byte) []byte { b[79] |= 16; return b }, disk.ErrUnsupportedFeature},
		{"unknown-feature", func(b []byte) []byte { b[72] |= 0x80; return b }, disk.ErrUnsupportedFeature},
		{"header-length", func(b []byte) []byte { be.PutUint32(b[100:], 200); return b }, disk.ErrMalformed},
		{"backing-name-past-end", func(b []byte) []byte {
			be.PutUint64(b[8:], uint64(len(b)))
			be.PutUint32(b[16:], 10)
			return b
		}, disk.ErrMalformed},
		{"extension-too-long", func(b []byte) []byte {
			hl := be.Uint32(b[100:])
			be.PutUint32(b[hl:], 0x12345678)
			be.PutUint32(b[hl+4:], 1<<20)
			return b
		}, disk.ErrMalformed},
		{"truncated-header", func(b []byte) []byte { return b[:60] }, disk.ErrMalformed},
		{"truncated-l1", func(b []byte) []byte { return b[:be.Uint64(b[40:])] }, disk.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.patch(bytes.Clone(good))
			_, err := disk.Open(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	if _, err := disk.Open(bytes.NewReader(nil), 0); !errors.Is(err, disk.ErrEmpty) {
		t.Fatalf("Open: %v", err)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestConcurrentReads reads the blocks of a compressed qcow2 disk from
// several goroutines at once, as an encryptor's workers do, and compares
// each with the sequential read.
func TestConcurrentReads(t *testing.T) {
	t.Parallel()
	q := imagetest.Convert(t, baseDisk(t), "qcow2", "-c")
	d, err := open(t, q)
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, d)
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			buf := make([]byte, vhd.BlockSize)
			for i := w; i < d.NumBlocks(); i += workers {
				if err := d.ReadBlock(i, buf); err != nil {
					errs <- err
					return
				}
				start := i * vhd.BlockSize
				if !bytes.Equal(buf[:min(vhd.BlockSize, len(want)-start)], want[start:min(start+vhd.BlockSize, len(want))]) {
					errs <- fmt.Errorf("block %d differs", i)
					return
				}
				if _, err := d.Block(i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// luksQCOW2 makes a LUKS-encrypted qcow2 image at p with qemu-img. Before it
// writes the LUKS header, qemu-img calibrates PBKDF2 by timing a first round
// of iterations with the thread's CPU clock (QEMU crypto/pbkdf.c,
// qcrypto_pbkdf2_count_iters). On a loaded machine that clock can advance by
// 0 ms over the round, and qemu-img gives up with "Unable to get accurate
// CPU usage" without writing an image. Only that failure is retried, a few
// times; anything else fails the test at once.
func luksQCOW2(t *testing.T, p string) {
	t.Helper()
	const calibration = "Unable to get accurate CPU usage"
	args := []string{"create", "--object", "secret,id=s0,data=not-a-real-secret",
		"-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", p, "8M"}
	for attempt := 1; ; attempt++ {
		out, err := exec.Command(imagetest.Tool(t, "qemu-img"), args...).CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), calibration) || attempt == 5 {
			t.Fatalf("qemu-img %s: %v (attempt %d)\n%s", strings.Join(args, " "), err, attempt, out)
		}
		t.Logf("qemu-img attempt %d: %s; again", attempt, calibration)
		os.Remove(p) // qemu-img may leave the file it began
	}
}
