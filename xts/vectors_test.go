package xts

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
)

// ieeeVector is one known answer from IEEE Std 1619-2007 Annex B, read from
// testdata/ieee1619.txt (the file describes its format and which vectors it
// holds).
type ieeeVector struct {
	n            int
	key          []byte // Key1 || Key2
	dusnLo       uint64 // data unit sequence number, low 64 bits
	dusnHi       uint64 // and high 64 bits
	ptx, ctx     []byte
	dusnFitsU32  bool
	wholeSectors bool
}

func readIEEEVectors(t testing.TB) []ieeeVector {
	t.Helper()
	f, err := os.Open("testdata/ieee1619.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		vs   []ieeeVector
		hexs map[string]string
		num  int
	)
	flush := func() {
		if hexs == nil {
			return
		}
		dec := func(name string) []byte {
			b, err := hex.DecodeString(hexs[name])
			if err != nil || len(hexs[name]) == 0 {
				t.Fatalf("vector %d: field %s: %q %v", num, name, hexs[name], err)
			}
			return b
		}
		dusn, ok := new(big.Int).SetString(hexs["dusn"], 16)
		if !ok || dusn.BitLen() > 128 {
			t.Fatalf("vector %d: bad dusn %q", num, hexs["dusn"])
		}
		lo := new(big.Int).And(dusn, new(big.Int).SetUint64(^uint64(0))).Uint64()
		hi := new(big.Int).Rsh(dusn, 64).Uint64()
		v := ieeeVector{
			n: num, key: append(dec("key1"), dec("key2")...),
			dusnLo: lo, dusnHi: hi, ptx: dec("ptx"), ctx: dec("ctx"),
		}
		v.dusnFitsU32 = hi == 0 && lo < 1<<32
		v.wholeSectors = len(v.ptx)%SectorSize == 0
		if len(v.ptx) != len(v.ctx) || len(v.ptx)%blockSize != 0 {
			t.Fatalf("vector %d: ptx %d bytes, ctx %d bytes", num, len(v.ptx), len(v.ctx))
		}
		vs = append(vs, v)
		hexs = nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, _ := strings.Cut(line, " ")
		if name == "vector" {
			flush()
			if num, err = strconv.Atoi(val); err != nil {
				t.Fatalf("bad vector line %q", line)
			}
			hexs = map[string]string{}
			continue
		}
		if hexs == nil {
			t.Fatalf("field before the first vector: %q", line)
		}
		hexs[name] += val
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	if len(vs) != 11 {
		t.Fatalf("read %d vectors, want the 11 the file documents", len(vs))
	}
	return vs
}

// TestIEEE1619Vectors runs every vector through the internal data-unit
// primitive (any 128-bit sequence number, any whole number of blocks), and
// the vectors that are whole 512-byte sectors with a sequence number below
// 2^32 through the public API too, in both directions and in place.
func TestIEEE1619Vectors(t *testing.T) {
	t.Parallel()
	forEachImpl(t, func(t *testing.T, impl implementation) {
		for _, v := range readIEEEVectors(t) {
			c := testCipher(t, v.key, impl)
			got := make([]byte, len(v.ptx))
			c.unit(got, v.ptx, v.dusnLo, v.dusnHi, false)
			if !bytes.Equal(got, v.ctx) {
				t.Errorf("vector %d: encrypt unit:\n got %x\nwant %x", v.n, got, v.ctx)
			}
			c.unit(got, v.ctx, v.dusnLo, v.dusnHi, true)
			if !bytes.Equal(got, v.ptx) {
				t.Errorf("vector %d: decrypt unit:\n got %x\nwant %x", v.n, got, v.ptx)
			}

			if !v.dusnFitsU32 || !v.wholeSectors {
				continue
			}
			// The public API accepts these keys, and c's EncryptSectors
			// and DecryptSectors run its implementation.
			if _, err := NewCipher(v.key); err != nil {
				t.Fatalf("vector %d: NewCipher: %v", v.n, err)
			}
			buf := bytes.Clone(v.ptx)
			if err := c.EncryptSectors(buf, buf, v.dusnLo); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, v.ctx) {
				t.Errorf("vector %d: EncryptSectors:\n got %x\nwant %x", v.n, buf, v.ctx)
			}
			if err := c.DecryptSectors(buf, buf, v.dusnLo); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, v.ptx) {
				t.Errorf("vector %d: DecryptSectors:\n got %x\nwant %x", v.n, buf, v.ptx)
			}
		}
	})
}

// refBlock is one allocated block of a reference VHD.
type refBlock struct {
	index  uint64 // block number; its first guest sector is index*4096
	bitmap []byte // 512-byte sector bitmap, MSB first
	data   []byte // 2 MiB of stored sector data
}

// readRefBlocks finds the allocated blocks of a dynamic VHD with the layout
// of a dynamic VHD: footer at 0, dynamic header at its data
// offset, BAT of big-endian sector numbers, each block a 512-byte bitmap
// followed by 2 MiB of data. It checks only what it relies on; the vhd
// package is the real reader.
func readRefBlocks(t *testing.T, name string) []refBlock {
	t.Helper()
	f := testenv.RefFile(t, name)
	be := binary.BigEndian
	if len(f) < 512 || string(f[:8]) != "conectix" || be.Uint32(f[0x3C:]) != 3 {
		t.Fatalf("%s: not a dynamic VHD", name)
	}
	hdr := be.Uint64(f[0x10:])
	if hdr+1024 > uint64(len(f)) || string(f[hdr:hdr+8]) != "cxsparse" {
		t.Fatalf("%s: no dynamic header at %#x", name, hdr)
	}
	bat := be.Uint64(f[hdr+0x10:])
	entries := uint64(be.Uint32(f[hdr+0x1C:]))
	if bs := be.Uint32(f[hdr+0x20:]); bs != 2<<20 {
		t.Fatalf("%s: block size %d", name, bs)
	}
	var blocks []refBlock
	for i := uint64(0); i < entries; i++ {
		e := be.Uint32(f[bat+4*i:])
		if e == 0xFFFFFFFF {
			continue
		}
		off := uint64(e) * 512
		if off+512+2<<20 > uint64(len(f)) {
			t.Fatalf("%s: block %d at %#x runs past the end", name, i, off)
		}
		blocks = append(blocks, refBlock{index: i, bitmap: f[off : off+512], data: f[off+512 : off+512+2<<20]})
	}
	if len(blocks) == 0 {
		t.Fatalf("%s: no allocated blocks", name)
	}
	return blocks
}

// TestReferenceVHDs checks byte compatibility with the reference toolchain
// (blktap vhd-util 4.0.8 with OpenSSL 3.0): every present sector of the
// encrypted reference VHDs decrypts to plain.raw, and encrypting plain.raw's
// sector gives the stored ciphertext.
func TestReferenceVHDs(t *testing.T) {
	t.Parallel()
	plain := testenv.RefFile(t, "plain.raw")
	key32 := testenv.RefFile(t, "key32.bin")
	key64 := testenv.RefFile(t, "key64.bin")
	files := []struct {
		name string
		key  []byte
	}{
		{"enc-qemu-k32.vhd", key32},
		{"enc-qemu-k64.vhd", key64},
		{"enc-tap-sparse-k64.vhd", key64},
	}
	forEachImpl(t, func(t *testing.T, impl implementation) {
		for _, f := range files {
			c := testCipher(t, f.key, impl)
			checked := 0
			for _, b := range readRefBlocks(t, f.name) {
				for s := 0; s < 4096; s++ {
					if b.bitmap[s/8]&(0x80>>(s%8)) == 0 {
						continue // absent: reads as zeros, never decrypted
					}
					sector := b.index*4096 + uint64(s)
					stored := b.data[s*SectorSize : (s+1)*SectorSize]
					want := plain[sector*SectorSize : (sector+1)*SectorSize]
					got := make([]byte, SectorSize)
					if err := c.DecryptSectors(got, stored, sector); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s: sector %d does not decrypt to plain.raw", f.name, sector)
					}
					if err := c.EncryptSectors(got, want, sector); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, stored) {
						t.Fatalf("%s: sector %d does not encrypt to the stored ciphertext", f.name, sector)
					}
					checked++
				}
			}
			// Also a whole block per call, as the pipeline calls it.
			b := readRefBlocks(t, f.name)[0]
			if bytes.Equal(b.bitmap, bytes.Repeat([]byte{0xFF}, 512)) {
				got := make([]byte, len(b.data))
				if err := c.DecryptSectors(got, b.data, b.index*4096); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, plain[b.index<<21:(b.index+1)<<21]) {
					t.Fatalf("%s: block %d decrypted in one call differs from plain.raw", f.name, b.index)
				}
			}
			if checked < 4096 {
				t.Fatalf("%s: only %d sectors checked", f.name, checked)
			}
			t.Logf("%s: %d present sectors match", f.name, checked)
		}
	})
}
