package xts

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"testing"
)

// FuzzXTS checks, for any key, data and first sector, that NewCipher and
// EncryptSectors/DecryptSectors return the documented errors without
// panicking, and that for valid input every implementation agrees with
// golang.org/x/crypto/xts (tweak mapped to uint32 as in ../docs/FORMAT.md) and
// round-trips. The seed corpus is in testdata/fuzz/FuzzXTS.
func FuzzXTS(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1, 2}, 16), make([]byte, SectorSize), uint64(0))
	f.Add(bytes.Repeat([]byte{3, 4, 5, 6}, 16), bytes.Repeat([]byte{0xAB}, 3*SectorSize), uint64(1<<32-2))
	f.Add([]byte("short key"), []byte("not a sector"), uint64(7))
	f.Fuzz(func(t *testing.T, key, data []byte, first uint64) {
		c, err := NewCipher(key)
		switch {
		case len(key) != keySize128 && len(key) != keySize256:
			if !errors.Is(err, ErrKeySize) {
				t.Fatalf("%d-byte key: err = %v, want ErrKeySize", len(key), err)
			}
			return
		case subtle.ConstantTimeCompare(key[:len(key)/2], key[len(key)/2:]) == 1:
			if !errors.Is(err, ErrWeakKey) {
				t.Fatalf("equal halves: err = %v, want ErrWeakKey", err)
			}
			return
		case err != nil:
			t.Fatalf("valid key: %v", err)
		}

		out := make([]byte, len(data))
		if len(data)%SectorSize != 0 {
			if err := c.EncryptSectors(out, data, first); !errors.Is(err, ErrLength) {
				t.Fatalf("%d bytes: err = %v, want ErrLength", len(data), err)
			}
			if err := c.DecryptSectors(out, data, first); !errors.Is(err, ErrLength) {
				t.Fatalf("%d bytes: err = %v, want ErrLength", len(data), err)
			}
			data = data[:len(data)/SectorSize*SectorSize]
			out = out[:len(data)]
		}
		// One Cipher with every implementation's keys (NewCipher expands
		// only those of the implementation it chose).
		all, err := newCipher(key, implGeneric)
		if err != nil {
			t.Fatal(err)
		}
		all.calls = &suiteCalls
		want := reference(t, key, data, first, false)
		wantDec := reference(t, key, data, first, true)
		for _, impl := range implementations() {
			for _, decrypt := range []bool{false, true} {
				w := want
				if decrypt {
					w = wantDec
				}
				clear(out)
				if impl == implGeneric {
					all.genericSectors(out, data, first, decrypt)
				} else {
					all.fastSectors(impl, out, data, first, decrypt)
				}
				if !bytes.Equal(out, w) {
					t.Fatalf("%s, decrypt=%v: differs from x/crypto/xts", implNames[impl], decrypt)
				}
			}
		}
		// The public API, in place, round trip.
		buf := bytes.Clone(data)
		if err := c.EncryptSectors(buf, buf, first); err != nil || !bytes.Equal(buf, want) {
			t.Fatalf("EncryptSectors in place: err %v, equal %v", err, bytes.Equal(buf, want))
		}
		if err := c.DecryptSectors(buf, buf, first); err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("DecryptSectors in place: err %v, round trip %v", err, bytes.Equal(buf, data))
		}
	})
}
