//go:build amd64 && !purego

package xts

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestSchedulesMatchCryptoAES checks the Go key expansion (encryption,
// decryption and tweak schedules, both key sizes) by encrypting and
// decrypting random blocks with the assembly ECB kernels and with
// crypto/aes. Block counts cover the 8-block loop and its tail.
func TestSchedulesMatchCryptoAES(t *testing.T) {
	t.Parallel()
	if !hasAESNI {
		t.Skip("no AES-NI: the assembly kernels cannot run here")
	}
	r := rand.New(rand.NewPCG(21, 22))
	for iter := 0; iter < 40; iter++ {
		half := 16
		if iter%2 == 1 {
			half = 32
		}
		key := randomKey(r, 2*half)
		s := newSchedule(key[:half], key[half:])
		if s.rounds != half/4+6 {
			t.Fatalf("%d-byte key: %d rounds", half, s.rounds)
		}
		for _, p := range []*byte{s.enc, s.dec, s.twk} {
			if uintptr(unsafe.Pointer(p))%scheduleAlign != 0 {
				t.Fatalf("schedule at %p is not %d-byte aligned", p, scheduleAlign)
			}
		}
		dataRef, _ := aes.NewCipher(key[:half])
		tweakRef, _ := aes.NewCipher(key[half:])
		n := 1 + iter%19
		src := randomBytes(r, 16*n)
		want := make([]byte, len(src))
		got := make([]byte, len(src))
		check := func(what string, ref func(dst, src []byte), asm func(rk *byte, rounds int, dst, src *byte, n int), rk *byte) {
			t.Helper()
			for i := 0; i < n; i++ {
				ref(want[16*i:16*i+16], src[16*i:16*i+16])
			}
			asm(rk, s.rounds, &got[0], &src[0], n)
			if !bytes.Equal(got, want) {
				t.Fatalf("%d-byte key, %d blocks: %s differs from crypto/aes", half, n, what)
			}
		}
		check("data encryption", dataRef.Encrypt, encryptBlocksAESNI, s.enc)
		check("data decryption", dataRef.Decrypt, decryptBlocksAESNI, s.dec)
		check("tweak encryption", tweakRef.Encrypt, encryptBlocksAESNI, s.twk)
		// Each round key is stored twice for the 256-bit kernels.
		for r := 0; r <= s.rounds; r++ {
			for _, p := range []*byte{s.enc, s.dec, s.twk} {
				k := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(p), r*rkStride)), rkStride)
				if !bytes.Equal(k[:16], k[16:]) {
					t.Fatalf("round key %d not duplicated", r)
				}
			}
		}
	}
}

// TestSBox checks the computed S-box against values from FIPS-197 figure 7.
func TestSBox(t *testing.T) {
	t.Parallel()
	for in, want := range map[byte]byte{0x00: 0x63, 0x01: 0x7c, 0x53: 0xed, 0x10: 0xca, 0xff: 0x16, 0x9a: 0xb8} {
		if sbox[in] != want {
			t.Errorf("sbox[%#02x] = %#02x, want %#02x", in, sbox[in], want)
		}
	}
}

// TestSectorTweaks checks the sector-tweak kernel against crypto/aes for
// runs that cross 2^32 (where only the low 32 bits count) and cover the
// 8-block loop and its tail.
func TestSectorTweaks(t *testing.T) {
	t.Parallel()
	if !hasAESNI {
		t.Skip("no AES-NI: the assembly kernels cannot run here")
	}
	r := rand.New(rand.NewPCG(23, 24))
	for _, half := range []int{16, 32} {
		key := randomKey(r, 2*half)
		s := newSchedule(key[:half], key[half:])
		ref, _ := aes.NewCipher(key[half:])
		for _, first := range []uint64{0, 1<<32 - 5, 1<<32 + 3, 1<<64 - 2, r.Uint64()} {
			for n := 1; n <= 19; n++ {
				got := make([]byte, 16*n+16)
				sectorTweaksAESNI(s.twk, s.rounds, &got[0], first, n)
				for i := 0; i < n; i++ {
					var in, want [16]byte
					binary.LittleEndian.PutUint32(in[:], uint32(first+uint64(i)))
					ref.Encrypt(want[:], in[:])
					if !bytes.Equal(got[16*i:16*i+16], want[:]) {
						t.Fatalf("%d-byte key, sector %d (+%d): wrong tweak", half, first, i)
					}
				}
				if !bytes.Equal(got[16*n:], make([]byte, 16)) {
					t.Fatalf("wrote past %d tweaks", n)
				}
			}
		}
	}
}

// TestSchedulesWipedAfterCollection: once a Cipher is unreachable and
// collected, its assembly schedules are zeroed.
func TestSchedulesWipedAfterCollection(t *testing.T) {
	t.Parallel()
	c, err := NewCipher(randomKey(rand.New(rand.NewPCG(25, 26)), keySize256))
	if err != nil {
		t.Fatal(err)
	}
	mem := c.sched.mem // keeps the memory, not the Cipher, alive
	released := c.sched.buf.Released()
	if bytes.Equal(mem, make([]byte, len(mem))) {
		t.Fatal("schedule is empty before collection")
	}
	c = nil
	// Each collection may find the Cipher unreachable; the buffer's
	// cleanup then closes released. The timer only paces the collections.
	collected := false
	for range 200 {
		runtime.GC()
		select {
		case <-released:
			collected = true
		case <-time.After(50 * time.Millisecond):
		}
		if collected {
			break
		}
	}
	if !collected {
		t.Fatal("the Cipher's schedule was not released after 200 collections")
	}
	if !bytes.Equal(mem, make([]byte, len(mem))) {
		t.Fatal("schedule not wiped after the Cipher was collected")
	}
	_ = c
}

// TestWipeZeroesSchedules: Wipe clears the assembly schedules at once, and
// NewCipher made no crypto/aes copy that Wipe could not reach.
func TestWipeZeroesSchedules(t *testing.T) {
	t.Parallel()
	if defaultImpl == implGeneric {
		t.Skip("this CPU runs the portable implementation")
	}
	for _, keySize := range []int{keySize128, keySize256} {
		c, err := NewCipher(randomKey(rand.New(rand.NewPCG(27, uint64(keySize))), keySize))
		if err != nil {
			t.Fatal(err)
		}
		if c.data != nil || c.tweak != nil {
			t.Fatalf("%d-byte key: NewCipher made crypto/aes ciphers the assembly does not use", keySize)
		}
		mem := c.sched.mem
		if bytes.Equal(mem, make([]byte, len(mem))) {
			t.Fatal("schedule is empty before Wipe")
		}
		c.Wipe()
		if !bytes.Equal(mem, make([]byte, len(mem))) {
			t.Fatalf("%d-byte key: schedule not zeroed by Wipe", keySize)
		}
	}
}
