// Package fuzzall holds the fuzz targets that cross package boundaries or
// that the packages themselves lack: the encrypt/decrypt round trip through
// e2e, structured fuzzing of VHD metadata (footer, header, BAT, batmap)
// with the checksums fixed so the fuzzer gets past them, key files and key
// environment variables, the cos:// URI parser and the Lucene query
// builder. Their seed corpora live in testdata/fuzz and run with every
// go test; test/fuzz.sh runs them (and every other package's) as fuzzers.
package fuzzall

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/test/internal/hvhd"
	"github.com/e2eimage/e2eimage/vhd"
)

// maxRoundTripSectors bounds the disks FuzzRoundTrip makes: 3 blocks and a
// bit, so one execution takes milliseconds.
const maxRoundTripSectors = 3*vhd.SectorsPerBlock + 64

// shape decodes FuzzRoundTrip's shape byte.
type shape struct {
	keySize int  // 32 or 64
	vhdIn   bool // the input is a dynamic VHD (else raw)
	stream  bool // read as a stream (else as a file)
	density int  // 0..3: how many sectors are written (raw) or present (VHD)
}

func decodeShape(b uint8) shape {
	s := shape{keySize: vhdcrypt.AES128XTS, vhdIn: b&2 != 0, stream: b&4 != 0, density: int(b>>3) & 3}
	if b&1 != 0 {
		s.keySize = vhdcrypt.AES256XTS
	}
	return s
}

// buildInput makes a small disk from the fuzzer's values: its guest bytes
// and the image given to the encryptor (raw: the guest bytes; VHD: a
// dynamic VHD with random sparse bitmaps, absent sectors reading as zeros).
func buildInput(t *testing.T, seed uint64, sh shape, sectors int, pattern []byte) (guest, image []byte) {
	r := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	size := int64(sectors) * vhd.SectorSize
	guest = make([]byte, size)
	if len(pattern) == 0 {
		pattern = []byte{0}
	}
	present := func() bool { return r.IntN(4) < sh.density }
	nb := vhd.NumBlocks(size)
	bitmaps := make([]vhd.Bitmap, nb)
	for s := range sectors {
		if !present() {
			continue
		}
		if sh.vhdIn {
			i := s / vhd.SectorsPerBlock
			if bitmaps[i] == nil {
				bitmaps[i] = make(vhd.Bitmap, vhd.BitmapSize)
			}
			bitmaps[i].Set(s % vhd.SectorsPerBlock)
		}
		sec := guest[s*vhd.SectorSize : (s+1)*vhd.SectorSize]
		off := r.IntN(len(pattern))
		for k := range sec {
			sec[k] = pattern[(off+k)%len(pattern)] ^ byte(s)
		}
	}
	if !sh.vhdIn {
		return guest, guest
	}
	// Now and then a present sector holds zeros, and a block is marked
	// allocated with an empty bitmap: both legal, both edge cases.
	if nb > 0 && r.IntN(3) == 0 {
		i := r.IntN(nb)
		if bitmaps[i] == nil {
			bitmaps[i] = make(vhd.Bitmap, vhd.BitmapSize)
		}
	}
	img, err := hvhd.WriteDynamic(&vhd.Layout{Size: size, Allocated: bitmaps, UniqueID: [16]byte{1}}, guest)
	if err != nil {
		t.Fatalf("writing the source VHD: %v", err)
	}
	return guest, img
}

// FuzzRoundTrip encrypts a small random image (raw or dynamic VHD with
// sparse bitmaps, from a file or a stream, with a 32- or 64-byte key) and
// checks that decrypting gives the guest bytes back, as a raw image and as
// a VHD, that the key hash verifies the key and refuses another, and that
// a VHD file's sector bitmaps are kept.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint8(0), uint16(1), []byte("a"))
	f.Add(uint64(2), uint8(0b11111), uint16(vhd.SectorsPerBlock+3), []byte{0, 1, 2, 3})
	f.Add(uint64(3), uint8(0b01011), uint16(2*vhd.SectorsPerBlock), []byte{0xFF})
	f.Add(uint64(4), uint8(0b11110), uint16(4), []byte("xyz"))
	f.Add(uint64(5), uint8(0b10101), uint16(3*vhd.SectorsPerBlock+1), []byte{7})
	f.Fuzz(func(t *testing.T, seed uint64, shapeByte uint8, nsec uint16, pattern []byte) {
		sh := decodeShape(shapeByte)
		sectors := 1 + int(nsec)%maxRoundTripSectors
		guest, image := buildInput(t, seed, sh, sectors, pattern)
		ctx := context.Background()

		r := rand.New(rand.NewPCG(seed, 7))
		keyBytes := make([]byte, sh.keySize)
		for i := range keyBytes {
			keyBytes[i] = byte(r.Uint32())
		}
		dek, err := vhdcrypt.DEKFromBytes(keyBytes)
		if err != nil {
			t.Fatal(err)
		}
		defer dek.Zero()

		if !sh.vhdIn {
			// A raw guest whose bytes happen to start with another
			// format's magic (or end in a VHD footer) is that format to
			// the encryptor, as it is to qemu-img.
			if f, err := disk.Detect(bytes.NewReader(image), int64(len(image))); err != nil || f != disk.Raw {
				t.Skipf("the raw guest reads as %v (%v)", f, err)
			}
		}
		var src io.Reader = bytes.NewReader(image)
		// The raw guest is random sectors, not a bootable disk: it has no
		// partition table, which the encryptor refuses unless told.
		opts := []vhdcrypt.Option{vhdcrypt.WithWorkers(1 + int(seed%3)), vhdcrypt.WithoutPartitionTable()}
		if sh.stream {
			src = struct{ io.Reader }{src}
			opts = append(opts, vhdcrypt.WithSize(int64(len(guest))))
		}
		enc, err := vhdcrypt.NewEncryptor(ctx, src, dek, opts...)
		if err != nil {
			if !hvhd.Typed(err) {
				t.Fatalf("NewEncryptor: untyped error %v", err)
			}
			t.Fatalf("NewEncryptor refused a valid input: %v", err)
		}
		var out bytes.Buffer
		n, err := enc.WriteTo(&out)
		if err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		if n != enc.Size() || int64(out.Len()) != enc.Size() {
			t.Fatalf("wrote %d bytes (buffer %d), Size said %d", n, out.Len(), enc.Size())
		}
		encImg := out.Bytes()

		// The key hash identifies this key and no other.
		info, err := vhdcrypt.Inspect(ctx, bytes.NewReader(encImg))
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		if !info.Encrypted || info.KeyHash == nil || !info.KeyHash.Matches(keyBytes) {
			t.Fatalf("the output's key hash does not verify the key: %+v", info)
		}
		if want := vhd.ComputeKeyHash(info.KeyHash.Nonce, keyBytes); want != *info.KeyHash {
			t.Fatalf("key hash is not SHA-256(nonce || key)")
		}
		if err := vhdcrypt.VerifyKey(ctx, bytes.NewReader(encImg), dek); err != nil {
			t.Fatalf("VerifyKey with the right key: %v", err)
		}
		other := bytes.Clone(keyBytes)
		other[int(seed)%len(other)] ^= 0x01
		odek, _ := vhdcrypt.DEKFromBytes(other)
		defer odek.Zero()
		if err := vhdcrypt.VerifyKey(ctx, bytes.NewReader(encImg), odek); !errors.Is(err, vhdcrypt.ErrWrongKey) {
			t.Fatalf("VerifyKey with a key one bit off: %v, want ErrWrongKey", err)
		}
		if bytes.Contains(encImg, keyBytes[:16]) {
			t.Fatalf("the encrypted image contains the key")
		}

		// decrypt(encrypt(x)) == x, as raw.
		var raw bytes.Buffer
		if err := vhdcrypt.DecryptImage(ctx, &raw, bytes.NewReader(encImg), dek); err != nil {
			t.Fatalf("DecryptImage: %v", err)
		}
		if !bytes.Equal(raw.Bytes(), guest) {
			t.Fatalf("decrypt(encrypt(x)) != x (%d vs %d bytes, first difference at %d)", raw.Len(), len(guest), firstDiff(raw.Bytes(), guest))
		}
		// ... and from a stream, as a VHD whose guest bytes are x.
		var asVHD bytes.Buffer
		if err := vhdcrypt.DecryptImage(ctx, &asVHD, struct{ io.Reader }{bytes.NewReader(encImg)}, dek, vhdcrypt.WithFormat(vhdcrypt.FormatVHD)); err != nil {
			t.Fatalf("DecryptImage to VHD from a stream: %v", err)
		}
		plainImg, err := vhd.Open(bytes.NewReader(asVHD.Bytes()), int64(asVHD.Len()))
		if err != nil {
			t.Fatalf("opening the decrypted VHD: %v", err)
		}
		back := make([]byte, len(guest))
		if _, err := plainImg.ReadAt(back, 0); err != nil && err != io.EOF {
			t.Fatalf("reading the decrypted VHD: %v", err)
		}
		if !bytes.Equal(back, guest) {
			t.Fatalf("decrypted VHD's guest bytes differ at %d", firstDiff(back, guest))
		}
		if _, ok := plainImg.KeyHash(); ok {
			t.Fatalf("the decrypted VHD still claims to be encrypted")
		}

		// A VHD file input keeps its sector bitmaps.
		if sh.vhdIn && !sh.stream {
			srcImg, err := vhd.Open(bytes.NewReader(image), int64(len(image)))
			if err != nil {
				t.Fatal(err)
			}
			outImg, err := vhd.Open(bytes.NewReader(encImg), int64(len(encImg)))
			if err != nil {
				t.Fatalf("opening the encrypted VHD: %v", err)
			}
			for i := range srcImg.NumBlocks() {
				a, _ := srcImg.Block(i)
				b, _ := outImg.Block(i)
				// An allocated block with no sector present may be
				// dropped: it reads as zeros either way.
				if a.Allocated() && a.Bitmap.Empty() && !b.Allocated() {
					continue
				}
				if a.Allocated() != b.Allocated() || !bytes.Equal(a.Bitmap, b.Bitmap) {
					t.Fatalf("block %d: bitmap not kept (allocated %v -> %v)", i, a.Allocated(), b.Allocated())
				}
			}
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
