package xts

import "encoding/binary"

// The portable implementation: crypto/aes for the block cipher, the tweak
// kept in two uint64 words (lo holds bytes 0-7, hi bytes 8-15, both little
// endian, as IEEE 1619 orders the tweak's bits), one crypto/aes call per
// block and no allocation.
//
// It uses the first 16 bytes of each destination sector as scratch space
// for the tweak computation, after reading the first source block, so it
// needs no buffer of its own (a local array passed to the cipher.Block
// interface would escape to the heap) and stays correct when dst and src
// are the same buffer.

// genericSectors encrypts (or decrypts) whole sectors from src to dst,
// which have the same length and either the same start or no overlap.
func (c *Cipher) genericSectors(dst, src []byte, sector uint64, decrypt bool) {
	for len(src) >= SectorSize {
		d := dst[:SectorSize:SectorSize]
		s := src[:SectorSize:SectorSize]
		// tapdisk's tweak: the low 32 bits of the sector number.
		c.genericUnit(d, s, uint64(uint32(sector)), 0, decrypt)
		dst, src = dst[SectorSize:], src[SectorSize:]
		sector++
	}
}

// genericUnit processes one XTS data unit of len(src) bytes (a multiple of
// 16, at least 16) whose data unit sequence number, the tweak before
// encryption, is the 128-bit little-endian integer hi:lo. IEEE 1619 test
// vectors use any 128-bit value; sectors use uint32 values.
//
// It works on up to 32 blocks at a time in three passes: whiten with the
// tweaks, run the block cipher, whiten again. Keeping the block-cipher
// calls back to back lets the processor overlap consecutive blocks, which
// per-block calls interleaved with tweak arithmetic prevent.
func (c *Cipher) genericUnit(dst, src []byte, lo, hi uint64, decrypt bool) {
	if len(src) < blockSize || len(src)%blockSize != 0 || len(dst) < len(src) {
		return
	}
	le := binary.LittleEndian
	// Read the first source block before dst[:16] is used as scratch.
	p0, p1 := le.Uint64(src[0:8]), le.Uint64(src[8:16])
	t := dst[:blockSize:blockSize]
	le.PutUint64(t[0:8], lo)
	le.PutUint64(t[8:16], hi)
	c.tweak.Encrypt(t, t)
	t0, t1 := le.Uint64(t[0:8]), le.Uint64(t[8:16])

	var tw [blocksPerSector][2]uint64 // the tweaks of the current chunk
	first := true
	for len(src) > 0 {
		n := min(len(src)/blockSize, blocksPerSector)
		d := dst[: n*blockSize : n*blockSize]
		s := src[: n*blockSize : n*blockSize]
		for j := 0; j < n; j++ {
			b := s[16*j : 16*j+16 : 16*j+16]
			x0, x1 := le.Uint64(b[0:8]), le.Uint64(b[8:16])
			if first {
				x0, x1, first = p0, p1, false
			}
			tw[j] = [2]uint64{t0, t1}
			o := d[16*j : 16*j+16 : 16*j+16]
			le.PutUint64(o[0:8], x0^t0)
			le.PutUint64(o[8:16], x1^t1)
			t0, t1 = mulX(t0, t1)
		}
		if decrypt {
			for j := 0; j < n; j++ {
				o := d[16*j : 16*j+16 : 16*j+16]
				c.data.Decrypt(o, o)
			}
		} else {
			for j := 0; j < n; j++ {
				o := d[16*j : 16*j+16 : 16*j+16]
				c.data.Encrypt(o, o)
			}
		}
		for j := 0; j < n; j++ {
			o := d[16*j : 16*j+16 : 16*j+16]
			le.PutUint64(o[0:8], le.Uint64(o[0:8])^tw[j][0])
			le.PutUint64(o[8:16], le.Uint64(o[8:16])^tw[j][1])
		}
		dst, src = dst[n*blockSize:], src[n*blockSize:]
	}
}

// mulX multiplies the tweak hi:lo by x in GF(2^128) modulo x^128 + x^7 +
// x^2 + x + 1 (IEEE 1619, section 5.2): a one-bit left shift of the 128-bit
// little-endian value, folding the bit shifted out back in as 0x87.
func mulX(lo, hi uint64) (uint64, uint64) {
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo = lo<<1 ^ (0x87 & -carry)
	return lo, hi
}
