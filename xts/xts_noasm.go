//go:build !amd64 || purego

package xts

// Without assembly (other architectures, or the purego build tag) every
// Cipher uses the portable implementation.

type schedule struct{}

func newSchedule(dataKey, tweakKey []byte) *schedule { return nil }

func (s *schedule) wipeWhenUnreachable(*Cipher) {}

func (s *schedule) wipe() {}

func bestImpl() implementation { return implGeneric }

func available(impl implementation) bool { return impl == implGeneric }

func (c *Cipher) fastSectors(_ implementation, dst, src []byte, sector uint64, decrypt bool) {
	c.genericSectors(dst, src, sector, decrypt)
}

func (c *Cipher) fastUnit(_ implementation, dst, src []byte, lo, hi uint64, decrypt bool) {
	c.genericUnit(dst, src, lo, hi, decrypt)
}
