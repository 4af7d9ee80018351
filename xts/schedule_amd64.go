//go:build amd64 && !purego

package xts

import (
	"encoding/binary"

	"github.com/e2eimage/e2eimage/internal/lockedmem"
)

// AES key expansion (FIPS-197 section 5.2) for the assembly kernels, which
// need the schedules in memory in their own layout: crypto/aes does not
// expose its round keys. Tests check every schedule against crypto/aes.

const (
	maxRounds = 14 // AES-256 (FIPS-197 table 6)
	// rkStride is the distance between round keys: each 16-byte round key
	// is stored twice so that 256-bit VAES instructions can use it as a
	// memory operand (see _asm/main.go).
	rkStride      = 32
	scheduleBytes = (maxRounds + 1) * rkStride
	// scheduleAlign is the alignment of each schedule: legacy-SSE AESENC
	// and PXOR with a memory operand need 16 bytes; 32 keeps a 256-bit
	// round key within one cache line.
	scheduleAlign = 32
)

// schedule holds the three key schedules of one Cipher.
type schedule struct {
	rounds int // 10 for AES-128, 14 for AES-256
	// enc and dec are the data key's encryption and decryption schedules
	// (dec in the order AESDEC uses: the equivalent inverse cipher of
	// FIPS-197 section 5.3.5), twk the tweak key's encryption schedule.
	// All three point into buf, a page of its own that is locked in
	// RAM and left out of core dumps where the system allows.
	enc, dec, twk *byte
	buf           *lockedmem.Buffer
	mem           []byte // buf's bytes
}

// sbox is the AES S-box, computed once from its definition (FIPS-197
// section 5.1.1) rather than copied in as a table.
var sbox = func() (s [256]byte) {
	for i := 0; i < 256; i++ {
		// Multiplicative inverse in GF(2^8) as a^254 (0 maps to 0).
		b := byte(i)
		inv := byte(1)
		for e := 254; e > 0; e >>= 1 {
			if e&1 != 0 {
				inv = gmul(inv, b)
			}
			b = gmul(b, b)
		}
		if i == 0 {
			inv = 0
		}
		// The affine transformation.
		x := inv
		s[i] = x ^ rotl8(x, 1) ^ rotl8(x, 2) ^ rotl8(x, 3) ^ rotl8(x, 4) ^ 0x63
	}
	return s
}()

func rotl8(x byte, n uint) byte { return x<<n | x>>(8-n) }

// gmul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

// expandKey returns the encryption round keys of a 16- or 32-byte AES key
// as 4-byte words in key byte order.
func expandKey(key []byte) (w [4 * (maxRounds + 1)]uint32, rounds int) {
	nk := len(key) / 4
	rounds = nk + 6
	for i := 0; i < nk; i++ {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	subWord := func(x uint32) uint32 {
		return uint32(sbox[x>>24])<<24 | uint32(sbox[x>>16&0xff])<<16 |
			uint32(sbox[x>>8&0xff])<<8 | uint32(sbox[x&0xff])
	}
	rcon := uint32(1)
	for i := nk; i < 4*(rounds+1); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon = uint32(gmul(byte(rcon), 2))
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	return w, rounds
}

// invMixColumns applies InvMixColumns to one round key (four columns).
func invMixColumns(k *[16]byte) {
	for c := 0; c < 16; c += 4 {
		a0, a1, a2, a3 := k[c], k[c+1], k[c+2], k[c+3]
		k[c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9)
		k[c+1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13)
		k[c+2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11)
		k[c+3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14)
	}
}

// newSchedule expands the data key and the tweak key (each 16 or 32 bytes).
func newSchedule(dataKey, tweakKey []byte) *schedule {
	// A lockedmem buffer starts a page, so each schedule (scheduleBytes,
	// a multiple of scheduleAlign) is scheduleAlign-aligned.
	buf := lockedmem.Alloc(3 * scheduleBytes)
	mem := buf.Bytes()
	s := &schedule{buf: buf, mem: mem}
	encMem := mem[:scheduleBytes]
	decMem := mem[scheduleBytes : 2*scheduleBytes]
	twkMem := mem[2*scheduleBytes : 3*scheduleBytes]

	put := func(dst []byte, r int, k *[16]byte) {
		copy(dst[r*rkStride:], k[:])
		copy(dst[r*rkStride+16:], k[:])
	}
	roundKey := func(w *[4 * (maxRounds + 1)]uint32, r int) (k [16]byte) {
		for j := 0; j < 4; j++ {
			binary.BigEndian.PutUint32(k[4*j:], w[4*r+j])
		}
		return k
	}

	w, rounds := expandKey(dataKey)
	s.rounds = rounds
	for r := 0; r <= rounds; r++ {
		k := roundKey(&w, r)
		put(encMem, r, &k)
		// Decryption: round keys in reverse order, the inner ones passed
		// through InvMixColumns for AESDEC.
		if r != 0 && r != rounds {
			invMixColumns(&k)
		}
		put(decMem, rounds-r, &k)
	}
	tw, _ := expandKey(tweakKey)
	for r := 0; r <= rounds; r++ {
		k := roundKey(&tw, r)
		put(twkMem, r, &k)
	}
	clear(w[:])
	clear(tw[:])
	s.enc, s.dec, s.twk = &encMem[0], &decMem[0], &twkMem[0]
	return s
}

// wipeWhenUnreachable zeroes the schedules of a Cipher nobody wiped once it
// has been garbage collected: lockedmem releases a buffer when it becomes
// unreachable, which the schedule's does with its Cipher.
func (s *schedule) wipeWhenUnreachable(*Cipher) {}

// wipe zeroes the schedules now (Cipher.Wipe) and unlocks their page.
func (s *schedule) wipe() {
	if s == nil {
		return
	}
	s.buf.Release()
	s.enc, s.dec, s.twk, s.mem = nil, nil, nil, nil
}
