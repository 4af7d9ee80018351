//go:build amd64 && !purego

package xts

import "golang.org/x/sys/cpu"

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
	// hasAVX512: the 512-bit kernels need AVX512F, AVX512BW (byte shifts
	// of 512-bit registers) and the 512-bit forms of VAES and VPCLMULQDQ,
	// which x/sys/cpu reports (with the OS saving ZMM state).
	hasAVX512 = hasVAES && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
		cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ
)

// bestImpl is the fastest implementation this processor runs.
func bestImpl() implementation {
	switch {
	case hasAVX512:
		return implAVX512
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
	case implAVX512:
		return hasAVX512
	case implVAES:
		return hasVAES
	case implAESNI:
		return hasAESNI
	}
	return impl == implGeneric
}

// tweakBatch is how many sector tweaks are encrypted per call of the
// tweak kernel when a call covers several sectors: the 8-block ECB kernel
// then runs full, and the 128-byte array is cheap to zero.
const tweakBatch = 8

// fastSectors encrypts or decrypts whole sectors with the assembly
// kernels. dst and src have the same length, a multiple of SectorSize,
// and are the same buffer or disjoint.
func (c *Cipher) fastSectors(impl implementation, dst, src []byte, sector uint64, decrypt bool) {
	switch n := len(src) / SectorSize; {
	case n == 1:
		// One sector: the kernel encrypts the tweak itself.
		c.kernel(impl, dst, src, 1, blocksPerSector, nil, c.sched.twk, uint64(uint32(sector)), 0, decrypt)
	case n > 1:
		c.fastBatches(impl, dst, src, sector, decrypt)
	}
}

// fastBatches handles calls of several sectors: it encrypts up to
// tweakBatch sector tweaks in one call, then runs the XTS kernel on those
// sectors.
func (c *Cipher) fastBatches(impl implementation, dst, src []byte, sector uint64, decrypt bool) {
	s := c.sched
	var tweaks [tweakBatch * blockSize]byte
	for len(src) >= SectorSize {
		n := min(len(src)/SectorSize, tweakBatch)
		sectorTweaksAESNI(s.twk, s.rounds, &tweaks[0], sector, n)
		c.kernel(impl, dst, src, n, blocksPerSector, &tweaks[0], nil, 0, 0, decrypt)
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
	c.kernel(impl, dst, src, 1, len(src)/blockSize, nil, c.sched.twk, lo, hi, decrypt)
}

// kernel runs the XTS kernel of impl on units data units of unitBlocks
// blocks each. With tk nil, the units' encrypted tweaks are at tweaks;
// otherwise there is one unit, whose tweak before encryption with the
// schedule tk is hi:lo. The callers have checked that dst and src hold
// units*unitBlocks blocks.
func (c *Cipher) kernel(impl implementation, dst, src []byte, units, unitBlocks int, tweaks, tk *byte, lo, hi uint64, decrypt bool) {
	s := c.sched
	ran := implAESNI // counted as the kernel that actually ran
	switch {
	case impl == implAVX512 && !decrypt:
		xtsEncAVX512(s.enc, tk, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks, lo, hi)
		ran = implAVX512
	case impl == implAVX512:
		xtsDecAVX512(s.dec, tk, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks, lo, hi)
		ran = implAVX512
	case impl == implVAES && !decrypt:
		xtsEncVAES(s.enc, tk, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks, lo, hi)
		ran = implVAES
	case impl == implVAES:
		xtsDecVAES(s.dec, tk, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks, lo, hi)
		ran = implVAES
	case !decrypt:
		xtsEncAESNI(s.enc, tk, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks, lo, hi)
	default:
		xtsDecAESNI(s.dec, tk, s.rounds, &dst[0], &src[0], units, unitBlocks, tweaks, lo, hi)
	}
	c.calls.add(ran, decrypt)
}
