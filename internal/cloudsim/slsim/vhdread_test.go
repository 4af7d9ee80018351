package slsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// diskScan is what reading a whole image through the checker's reader gave.
type diskScan struct {
	disk      []byte // the guest disk, decrypted when a key was given
	sectors   int    // sectors of the disk
	present   int    // sectors stored in the file
	decrypted int    // sectors run through AES-XTS
	// zeroStored counts present sectors of an encrypted image whose stored
	// bytes are all zero: plaintext left behind where ciphertext belongs.
	zeroStored int
	// partialBlocks counts blocks with some but not all sectors present.
	partialBlocks int
}

// openImage opens img with the checker's reader.
func openImage(t testing.TB, img []byte) *vhdFile {
	t.Helper()
	f, err := openVHD(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("openVHD: %v", err)
	}
	return f
}

// readDisk reads every sector of f through readSectors, block by block,
// decrypting present sectors with dek when it is non-nil.
func readDisk(t *testing.T, f *vhdFile, dek []byte) *diskScan {
	t.Helper()
	var c interface {
		Decrypt(dst, src []byte, sector uint64)
	}
	if dek != nil {
		xc, err := newSectorCipher(dek)
		if err != nil {
			t.Fatal(err)
		}
		c = xc
	}
	total := (f.size + vhdSectorSize - 1) / vhdSectorSize
	out := &diskScan{disk: make([]byte, total*vhdSectorSize), sectors: int(total)}
	step := int64(8)
	if f.diskType == vhdDiskDynamic {
		step = f.blockSize / vhdSectorSize
	}
	zero := make([]byte, vhdSectorSize)
	for lba := int64(0); lba < total; lba += step {
		n := min(step, total-lba)
		buf := out.disk[lba*vhdSectorSize : (lba+n)*vhdSectorSize]
		present, err := f.readSectors(buf, lba)
		if err != nil {
			t.Fatalf("readSectors(%d, %d): %v", lba, n, err)
		}
		stored := 0
		for _, p := range present {
			if p {
				stored++
			}
		}
		if stored > 0 && stored < len(present) {
			out.partialBlocks++
		}
		for k, p := range present {
			sec := buf[k*vhdSectorSize : (k+1)*vhdSectorSize]
			if !p {
				if !bytes.Equal(sec, zero) {
					t.Fatalf("absent sector %d does not read as zeros", lba+int64(k))
				}
				continue
			}
			out.present++
			if c != nil {
				if bytes.Equal(sec, zero) {
					out.zeroStored++
				}
				c.Decrypt(sec, sec, uint64(lba)+uint64(k))
				out.decrypted++
			}
		}
	}
	out.disk = out.disk[:f.size]
	return out
}

// TestVHDReaderReferenceVectors reads the files of the reference toolchain
// (blktap vhd-util, qemu-img): each must give plain.raw.
func TestVHDReaderReferenceVectors(t *testing.T) {
	t.Parallel()
	plain := testenv.RefFile(t, "plain.raw")
	key32 := testenv.RefFile(t, "key32.bin")
	key64 := testenv.RefFile(t, "key64.bin")
	var tapNonce [32]byte
	for i := range tapNonce {
		tapNonce[i] = byte(0x64 + i)
	}
	for _, tc := range []struct {
		file      string
		key       []byte
		nonce     [32]byte
		partial   bool // some allocated blocks have partial sector bitmaps
		hasBatmap bool
	}{
		{file: "src-qemu.vhd"},
		{file: "src-tap-sparse.vhd", partial: true, hasBatmap: true},
		{file: "enc-qemu-k32.vhd", key: key32, hasBatmap: true},
		{file: "enc-qemu-k64.vhd", key: key64, hasBatmap: true},
		{file: "enc-tap-sparse-k64.vhd", key: key64, nonce: tapNonce, partial: true, hasBatmap: true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := openImage(t, testenv.RefFile(t, tc.file))
			if f.size != int64(len(plain)) {
				t.Fatalf("virtual size %d, want %d", f.size, len(plain))
			}
			if got := f.batmap != nil; got != tc.hasBatmap {
				t.Errorf("batmap found: %v, want %v", got, tc.hasBatmap)
			}
			in := &inspectedImage{f: f}
			if in.encrypted() != (tc.key != nil) {
				t.Fatalf("encrypted() = %v", in.encrypted())
			}
			if tc.key != nil {
				if f.keyHash.nonce != tc.nonce {
					t.Errorf("nonce %x, want %x", f.keyHash.nonce, tc.nonce)
				}
				if !in.keyMatches(tc.key) {
					t.Fatal("the reference key does not match the stored key hash")
				}
				other := key32
				if len(tc.key) == 32 {
					other = key64
				}
				if in.keyMatches(other) {
					t.Fatal("another key matches the stored key hash")
				}
			}
			s := readDisk(t, f, tc.key)
			if !bytes.Equal(s.disk, plain) {
				t.Fatalf("%s does not read as plain.raw (%d bytes differ)", tc.file, countDiff(s.disk, plain))
			}
			if tc.key != nil && s.decrypted != s.present {
				t.Errorf("decrypted %d sectors, %d present", s.decrypted, s.present)
			}
			if s.present == 0 || (s.partialBlocks > 0) != tc.partial {
				t.Errorf("%d of %d sectors present, %d partial blocks; want partial=%v", s.present, s.sectors, s.partialBlocks, tc.partial)
			}
			if s.zeroStored != 0 {
				t.Errorf("%d present sectors are stored as zeros", s.zeroStored)
			}
			t.Logf("%s: %d of %d sectors present (%d partial blocks), %d decrypted", tc.file, s.present, s.sectors, s.partialBlocks, s.decrypted)
		})
	}
}

// TestVHDReaderFindsCopyDefect reads vhd-util copy's output of a partially
// allocated source: the sectors it marks present but leaves as plaintext
// zeros decrypt to garbage, and everything else decrypts to plain.raw.
func TestVHDReaderFindsCopyDefect(t *testing.T) {
	t.Parallel()
	plain := testenv.RefFile(t, "plain.raw")
	key64 := testenv.RefFile(t, "key64.bin")
	f := openImage(t, testenv.RefFile(t, "enc-copybug-k64.vhd"))
	s := readDisk(t, f, key64)
	// The reference README measured 3,131,966 differing bytes.
	if d := countDiff(s.disk, plain); d != 3131966 {
		t.Fatalf("%d bytes differ from plain.raw, want 3131966", d)
	}
	// Every differing sector is one stored as zeros; every other sector is
	// right.
	bad := 0
	for lba := 0; lba < s.sectors; lba++ {
		got, want := s.disk[lba*512:(lba+1)*512], plain[lba*512:(lba+1)*512]
		if !bytes.Equal(got, want) {
			bad++
			if !bytes.Equal(want, make([]byte, 512)) {
				t.Fatalf("sector %d differs but its plaintext is not zero", lba)
			}
		}
	}
	if bad == 0 || bad != s.zeroStored {
		t.Fatalf("%d sectors differ, %d are stored as zeros", bad, s.zeroStored)
	}
	t.Logf("%d present sectors stored as plaintext zeros", s.zeroStored)
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

// patternDisk is a raw disk with data in some blocks, zeros in others, and
// a partly written block.
func patternDisk(size int) []byte {
	d := make([]byte, size)
	_, _ = rand.Read(d[:3<<20])           // blocks 0 and half of 1
	_, _ = rand.Read(d[size-4096 : size]) // the end of the last block
	d[510], d[511] = 0x55, 0xAA
	return d
}

// TestVHDReaderOnEncryptorOutput reads what the module's encryptor writes,
// with both key sizes and with the zero, a random and a chosen nonce.
func TestVHDReaderOnEncryptorOutput(t *testing.T) {
	t.Parallel()
	raw := patternDisk(9 << 20) // 5 blocks, the last one partial
	var chosen [32]byte
	for i := range chosen {
		chosen[i] = byte(255 - i)
	}
	for _, tc := range []struct {
		name    string
		keySize int
		opts    []vhdcrypt.Option
		nonce   *[32]byte // nil: random
	}{
		{"k32 zero nonce", 32, nil, &[32]byte{}},
		{"k64 zero nonce", 64, nil, &[32]byte{}},
		{"k64 random nonce", 64, []vhdcrypt.Option{vhdcrypt.WithRandomNonce()}, nil},
		{"k32 chosen nonce", 32, []vhdcrypt.Option{vhdcrypt.WithNonce(chosen)}, &chosen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := make([]byte, tc.keySize)
			_, _ = rand.Read(key)
			dek, err := vhdcrypt.DEKFromBytes(key)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := vhdcrypt.EncryptImage(context.Background(), &out, bytes.NewReader(raw), dek, append(tc.opts, vhdcrypt.WithoutPartitionTable())...); err != nil {
				t.Fatal(err)
			}
			f := openImage(t, out.Bytes())
			in := &inspectedImage{f: f}
			if !in.encrypted() || !in.keyMatches(key) {
				t.Fatal("the encryptor's key hash does not check with its key")
			}
			if tc.nonce != nil && f.keyHash.nonce != *tc.nonce {
				t.Errorf("nonce %x, want %x", f.keyHash.nonce, *tc.nonce)
			}
			if tc.nonce == nil && f.keyHash.nonce == [32]byte{} {
				t.Error("WithRandomNonce wrote the zero nonce")
			}
			s := readDisk(t, f, key)
			if !bytes.Equal(s.disk, raw) {
				t.Fatalf("the image does not decrypt to its source (%d bytes differ)", countDiff(s.disk, raw))
			}
			if s.zeroStored != 0 {
				t.Errorf("%d present sectors stored as zeros", s.zeroStored)
			}
			if s.present == 0 || s.present == s.sectors {
				t.Errorf("%d of %d sectors present: zero blocks should be left out", s.present, s.sectors)
			}
			if err := in.verifyBoot(key); err != nil {
				t.Fatalf("verifyBoot: %v", err)
			}
			wrong := make([]byte, tc.keySize)
			if err := in.verifyBoot(wrong); !isReason(err, ReasonDEKMismatch) {
				t.Fatalf("verifyBoot with another key: %v", err)
			}
		})
	}
}

func isReason(err error, reason string) bool {
	var f *importFailure
	return errors.As(err, &f) && f.reason == reason
}

// validImage is a small encrypted image of the encryptor and its key.
func validImage(t testing.TB) ([]byte, []byte) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	dek, err := vhdcrypt.DEKFromBytes(key)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 4<<20)
	raw[510], raw[511] = 0x55, 0xAA
	raw[3<<20] = 1
	var out bytes.Buffer
	if err := vhdcrypt.EncryptImage(context.Background(), &out, bytes.NewReader(raw), dek, vhdcrypt.WithoutPartitionTable()); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), key
}

// resumFooter rewrites the checksum of the 512-byte footer at off.
func resumFooter(img []byte, off int) {
	f := img[off : off+512]
	binary.BigEndian.PutUint32(f[64:], vhdChecksum(f, 64))
}

// resumHeader rewrites the checksum of the dynamic header at 512.
func resumHeader(img []byte) {
	h := img[512 : 512+1024]
	binary.BigEndian.PutUint32(h[36:], vhdChecksum(h, 36))
}

// TestVHDReaderRefusesMalformed damages one field at a time and expects the
// typed error the import turns into its failure reason.
func TestVHDReaderRefusesMalformed(t *testing.T) {
	t.Parallel()
	good, _ := validImage(t)
	end := len(good) - 512
	batmapHdr := 0x600 + 512 // 2 BAT entries, one sector
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		want   string // ReasonNotVHD or ReasonBadVHD
	}{
		{"raw bytes", func(b []byte) []byte { return make([]byte, 4<<20) }, ReasonNotVHD},
		{"shorter than a footer", func(b []byte) []byte { return b[:100] }, ReasonNotVHD},
		{"truncated", func(b []byte) []byte { return b[:len(b)-4096] }, ReasonNotVHD},
		{"footer checksum", func(b []byte) []byte { b[end+64]++; return b }, ReasonBadVHD},
		{"footer version", func(b []byte) []byte { b[end+12] = 2; resumFooter(b, end); return b }, ReasonBadVHD},
		{"differencing", func(b []byte) []byte { b[end+63] = 4; resumFooter(b, end); return b }, ReasonBadVHD},
		{"unknown disk type", func(b []byte) []byte { b[end+63] = 9; resumFooter(b, end); return b }, ReasonBadVHD},
		{"size beyond 2040 GiB", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[end+48:], 4<<40)
			resumFooter(b, end)
			return b
		}, ReasonBadVHD},
		{"header offset past the end", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[end+16:], uint64(len(b)))
			resumFooter(b, end)
			return b
		}, ReasonBadVHD},
		{"header cookie", func(b []byte) []byte { b[512] = 'X'; resumHeader(b); return b }, ReasonBadVHD},
		{"header checksum", func(b []byte) []byte { b[512+36]++; return b }, ReasonBadVHD},
		{"block size", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+32:], 3<<20)
			resumHeader(b)
			return b
		}, ReasonBadVHD},
		{"too few BAT entries", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+28:], 1)
			resumHeader(b)
			return b
		}, ReasonBadVHD},
		{"BAT past the end", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[512+16:], uint64(len(b)))
			resumHeader(b)
			return b
		}, ReasonBadVHD},
		{"batmap checksum", func(b []byte) []byte { b[batmapHdr+24]++; return b }, ReasonBadVHD},
		{"batmap past the end", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[batmapHdr+8:], uint64(len(b)))
			return b
		}, ReasonBadVHD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.damage(bytes.Clone(good))
			_, err := inspectImage(bytes.NewReader(img), int64(len(img)))
			if !isReason(err, tc.want) {
				t.Fatalf("got %v, want reason %q", err, tc.want)
			}
		})
	}

	// A BAT entry pointing past the end fails when the block is read.
	img := bytes.Clone(good)
	binary.BigEndian.PutUint32(img[0x600:], uint32(len(img)/512))
	in, err := inspectImage(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.verifyBoot(nil); !isReason(err, ReasonBadVHD) {
		t.Fatalf("block past the end: %v", err)
	}
}

// TestVHDReaderLayoutAssumptions pins the offsets TestVHDReaderRefusesMalformed
// damages, so that a change of the encryptor's layout shows here rather
// than as a test that damages the wrong bytes.
func TestVHDReaderLayoutAssumptions(t *testing.T) {
	t.Parallel()
	good, _ := validImage(t)
	f := openImage(t, good)
	if f.batOffset != 0x600 || f.batEntries != 2 || string(good[0x600+512:0x600+520]) != "tdbatmap" || f.batmap == nil {
		t.Fatalf("unexpected layout: BAT at %#x with %d entries", f.batOffset, f.batEntries)
	}
}

// FuzzVHDReader patches bytes of a valid image's metadata and footer: the
// reader must never panic, and every error must be one the import maps to a
// reason.
func FuzzVHDReader(f *testing.F) {
	good, key := validImage(f)
	f.Add([]byte{})
	f.Add([]byte{0x06, 0x00, 0xFF})
	f.Add([]byte{0x02, 0x20, 0x01})
	f.Add([]byte{0x08, 0x18, 0x07})
	f.Fuzz(func(t *testing.T, patch []byte) {
		img := bytes.Clone(good)
		end := len(img) - 512
		for i := 0; i+2 < len(patch); i += 3 {
			off := int(binary.BigEndian.Uint16(patch[i:]))
			// The first 8 KiB hold footer copy, header, BAT, batmap and
			// the first bitmap; offsets past that hit the final footer.
			if off >= 8192 {
				off = end + off%512
			}
			img[off] = patch[i+2]
		}
		v, err := openVHD(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			requireTyped(t, err)
			return
		}
		in := &inspectedImage{f: v}
		for _, dek := range [][]byte{nil, key} {
			if dek != nil && !in.encrypted() {
				continue
			}
			if err := in.verifyBoot(dek); err != nil && !isAnyReason(err) {
				t.Fatalf("verifyBoot: untyped error %v", err)
			}
		}
	})
}

func requireTyped(t *testing.T, err error) {
	t.Helper()
	var fe *vhdFormatError
	if !errors.Is(err, errNotVHD) && !errors.Is(err, errVHDDifferencing) && !errors.As(err, &fe) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

func isAnyReason(err error) bool {
	var f *importFailure
	return errors.As(err, &f) && f.reason != ReasonInternal
}

// TestVHDReaderFixed reads a fixed VHD (the raw disk followed by a footer),
// written by the module's vhd package.
func TestVHDReaderFixed(t *testing.T) {
	t.Parallel()
	raw := patternDisk(5 << 20)
	var out bytes.Buffer
	if err := vhd.WriteFixed(&out, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	f := openImage(t, out.Bytes())
	in := &inspectedImage{f: f}
	if f.diskType != vhdDiskFixed || in.encrypted() || in.virtualSize() != int64(len(raw)) {
		t.Fatalf("type %d, encrypted %v, size %d", f.diskType, in.encrypted(), in.virtualSize())
	}
	s := readDisk(t, f, nil)
	if !bytes.Equal(s.disk, raw) || s.present != s.sectors {
		t.Fatalf("fixed disk: %d bytes differ, %d of %d sectors present", countDiff(s.disk, raw), s.present, s.sectors)
	}
	if err := in.verifyBoot(nil); err != nil {
		t.Fatal(err)
	}
}

// TestCheckerSharesNoCodeWithEncryptor keeps the simulator independent of
// the packages whose output it checks: no non-test package of the simulator
// may depend on the module's VHD, cipher and image-checking packages,
// directly or not; and the import backplane (slsim) reads file systems
// with none of the libraries those packages use.
func TestCheckerSharesNoCodeWithEncryptor(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go list")
	}
	deps := func(pattern string) []string {
		cmd := exec.Command("go", "list", "-deps", pattern)
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pattern, err)
		}
		return strings.Fields(string(out))
	}
	all := deps("./internal/cloudsim/...")
	if len(all) < 10 || !slices.Contains(all, "github.com/e2eimage/e2eimage/internal/cloudsim/slsim") {
		t.Fatalf("go list listed %d packages, not the simulator's dependencies", len(all))
	}
	for _, pkg := range all {
		for _, banned := range []string{"vhd", "xts", "vhdcrypt", "doctor", "disk"} {
			if pkg == "github.com/e2eimage/e2eimage/"+banned || strings.HasPrefix(pkg, "github.com/e2eimage/e2eimage/"+banned+"/") {
				t.Errorf("the simulator depends on %s", pkg)
			}
		}
	}
	backplane := deps("./internal/cloudsim/slsim")
	if !slices.Contains(backplane, "github.com/masahiro331/go-ext4-filesystem/ext4") {
		t.Errorf("slsim no longer reads ext4 with go-ext4-filesystem; update this test")
	}
	for _, pkg := range backplane {
		for _, banned := range []string{"github.com/diskfs/go-diskfs", "github.com/masahiro331/go-xfs-filesystem"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("the import backplane depends on %s, which the module's image checks use", pkg)
			}
		}
	}
}
