//go:build amd64 && !purego

package xts

import (
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

//go:generate go run -C _asm . -out ../xts_amd64.s -stubs ../xts_amd64_stubs.go -pkg xts

// CPUID leaf 7 (sub-leaf 0) ECX feature bits (Intel SDM vol. 2A, CPUID).
const (
	cpuidVAES       = 1 << 9
	cpuidVPCLMULQDQ = 1 << 10
)

var (
	// hasAESNI: the 128-bit kernels need AES-NI and SSE2 only (SSE2 is
	// part of amd64).
	hasAESNI = cpu.X86.HasAES
	// hasVAES: the 256-bit kernels need VAES and VPCLMULQDQ, whose 256-bit
	// forms need AVX (and the OS saving YMM state, which HasAVX2 implies)
	// but not AVX-512, so CPUID is read directly: x/sys/cpu reports them
	// only on AVX-512 processors.
	hasVAES = hasAESNI && cpu.X86.HasAVX2 && cpu.X86.HasPCLMULQDQ &&
		cpuid7ECX()&(cpuidVAES|cpuidVPCLMULQDQ) == cpuidVAES|cpuidVPCLMULQDQ
)

// bestImpl is the fastest implementation this processor runs.
func bestImpl() implementation {
	switch {
	case hasVAES:
		return implVAES
	case hasAESNI:
		return implAESNI
	}
	return implGeneric
}

// available reports whether this processor can run impl.
func available(impl implementation) bool {
	switch impl {
	case implVAES:
		return hasVAES
	case implAESNI:
		return hasAESNI
	}
	return impl == implGeneric
}

// tweakBatch is how many sector tweaks are encrypted per call of the
// tweak kernel: 32 sectors (16 KiB of data) keeps the tweaks in a 512-byte
// stack array while amortising the call.
const tweakBatch = 32

// fastSectors encrypts or decrypts whole sectors with the assembly
// kernels. dst and src have the same length, a multiple of SectorSize,
// and are the same buffer or disjoint.
func (c *Cipher) fastSectors(impl implementation, dst, src []byte, sector uint64, decrypt bool) {
	s := c.sched
	var tweaks [tweakBatch * blockSize]byte
	for len(src) >= SectorSize {
		n := min(len(src)/SectorSize, tweakBatch)
		for i := 0; i < n; i++ {
			// tapdisk's tweak: the low 32 bits of the sector number, little
			// endian, then 12 zero bytes.
			binary.LittleEndian.PutUint64(tweaks[16*i:], uint64(uint32(sector+uint64(i))))
			binary.LittleEndian.PutUint64(tweaks[16*i+8:], 0)
		}
		encryptBlocksAESNI(s.twk, s.rounds, &tweaks[0], &tweaks[0], n)
		c.kernel(impl, dst, src, n, blocksPerSector, &tweaks[0], decrypt)
		dst, src = dst[n*SectorSize:], src[n*SectorSize:]
		sector += uint64(n)
	}
}

// fastUnit processes one data unit of any whole number of blocks with the
// 128-bit data unit sequence number hi:lo.
func (c *Cipher) fastUnit(impl implementation, dst, src []byte, lo, hi uint64, decrypt bool) {
	if len(src) < blockSize || len(src)%blockSize != 0 || len(dst) < len(src) {
		return
	}
	var tweak [blockSize]byte
	binary.LittleEndian.PutUint64(tweak[0:], lo)
	binary.LittleEndian.PutUint64(tweak[8:], hi)
	encryptBlocksAESNI(c.sched.twk, c.sched.rounds, &tweak[0], &tweak[0], 1)
	c.kernel(impl, dst, src, 1, len(src)/blockSize, &tweak[0], decrypt)
}

// kernel runs the XTS kernel of impl on units data units of unitBlocks
// blocks each, whose encrypted tweaks are at tweaks. The callers have
// checked that dst and src hold units*unitBlocks blocks.
func (c *Cipher) kernel(impl implementation, dst, src []byte, units, unitBlocks int, tweaks *byte, decrypt bool) {
	s := c.sched
	switch {
	case impl == implVAES && !decrypt:
		xtsEncVAES(s.enc, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks)
	case impl == implVAES:
		xtsDecVAES(s.dec, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks)
	case !decrypt:
		xtsEncAESNI(s.enc, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks)
	default:
		xtsDecAESNI(s.dec, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks)
	}
}
