package vhd

import "math/bits"

// Bitmap is a sector bitmap: one bit per sector, most significant bit of
// byte 0 first; a set bit means the sector is present (stored in the file).
// The bitmap of a BlockSize block is BitmapSize bytes.
type Bitmap []byte

// FullBitmap returns a new bitmap of a BlockSize block with every sector
// present.
func FullBitmap() Bitmap {
	b := make(Bitmap, BitmapSize)
	for i := range b {
		b[i] = 0xFF
	}
	return b
}

// Present reports whether sector (relative to the block) is present. Sectors
// beyond the bitmap are absent.
func (b Bitmap) Present(sector int) bool {
	if sector < 0 || sector>>3 >= len(b) {
		return false
	}
	return b[sector>>3]&(0x80>>(sector&7)) != 0
}

// Set marks sector present; sectors beyond the bitmap are ignored.
func (b Bitmap) Set(sector int) {
	if sector < 0 || sector>>3 >= len(b) {
		return
	}
	b[sector>>3] |= 0x80 >> (sector & 7)
}

// Count returns the number of present sectors.
func (b Bitmap) Count() int {
	n := 0
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return n
}

// Full reports whether every sector of a BlockSize block is present.
func (b Bitmap) Full() bool {
	if len(b) < BitmapSize {
		return false
	}
	for _, c := range b[:BitmapSize] {
		if c != 0xFF {
			return false
		}
	}
	return true
}

// Empty reports whether no sector is present.
func (b Bitmap) Empty() bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// run returns the end (exclusive) of the run of sectors starting at s, all
// present or all absent like s, stopping at limit.
func (b Bitmap) run(s, limit int) int {
	p := b.Present(s)
	e := s + 1
	for e < limit {
		// Skip whole bytes when aligned.
		if e&7 == 0 && e+8 <= limit && e>>3 < len(b) {
			c := b[e>>3]
			if (p && c == 0xFF) || (!p && c == 0) {
				e += 8
				continue
			}
		}
		if b.Present(e) != p {
			break
		}
		e++
	}
	return e
}
