// Command _asm generates xts_amd64.s and xts_amd64_stubs.go, the amd64
// assembly of package xts, with avo (github.com/mmcloughlin/avo).
//
// Run it through go generate in the xts directory:
//
//	go generate ./xts/
//
// It lives in its own module so that avo never enters the main module's
// dependencies; the generated files are committed.
//
// Everything here uses physical registers, so the output reads like
// hand-written assembly. avo v0.5.0 knows only the 128-bit forms of VAES
// and VPCLMULQDQ; their 256-bit forms (which the Go assembler accepts) are
// emitted through raw instructions (see vaes and vclmul).
//
// Memory layout shared with the Go side (schedule in xts_amd64.go): a key
// schedule is 15 round keys of 32 bytes each, every round key stored twice
// so that 256-bit instructions can take it as a memory operand, and 128-bit
// instructions read the first copy. Schedules are 32-byte aligned, which
// legacy-SSE AESENC with a memory operand requires (16 bytes).
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// rkStride is the distance in bytes between round keys in a schedule.
const rkStride = 32

var (
	// mulxMask turns the sign masks of PSRAD into the bits that
	// multiplication by x feeds back: 0x87 into the low quadword when bit
	// 127 was set, 1 into the high quadword when bit 63 was set.
	mulxMask Mem
	// poly holds the reduction polynomial's low part, 0x87, in the low
	// quadword of each 128-bit lane, for VPCLMULQDQ.
	poly Mem
	// shiftLeft and shiftRight hold, per 32-byte row i, the quadword shift
	// counts k and 64-k that multiply [T, T] by [x^(2i), x^(2i+1)].
	shiftLeft, shiftRight Mem
	// shiftLeft512 and shiftRight512 are their 512-bit counterparts: per
	// 64-byte row i, the counts for [x^(4i), ..., x^(4i+3)].
	shiftLeft512, shiftRight512 Mem
)

// forEachShift512 is forEachShift for 8 rows of four lanes.
func forEachShift512(f func(off, k int)) {
	for i := 0; i < 8; i++ {
		for lane := 0; lane < 4; lane++ {
			f(64*i+16*lane, 4*i+lane)
			f(64*i+16*lane+8, 4*i+lane)
		}
	}
}

// forEachShift calls f with the offset and the exponent k of each quadword
// of the shift-count tables: 8 rows of two lanes of two quadwords.
func forEachShift(f func(off, k int)) {
	for i := 0; i < 8; i++ {
		for lane, k := range []int{2 * i, 2*i + 1} {
			f(32*i+16*lane, k)
			f(32*i+16*lane+8, k)
		}
	}
}

func main() {
	ConstraintExpr("amd64,!purego")

	mulxMask = GLOBL("xtsMulxMask", RODATA|NOPTR)
	DATA(0, U32(0x87))
	DATA(4, U32(0))
	DATA(8, U32(1))
	DATA(12, U32(0))

	poly = GLOBL("xtsPoly", RODATA|NOPTR)
	DATA(0, U64(0x87))
	DATA(8, U64(0))
	DATA(16, U64(0x87))
	DATA(24, U64(0))

	// Per-quadword shift counts for the first sixteen tweaks of a unit:
	// pair i (blocks 2i and 2i+1) is T * x^(2i) in its low lane and
	// T * x^(2i+1) in its high lane (see genXTSVAES). A right shift by 64
	// (for k = 0) leaves zero, as it should.
	shiftLeft = GLOBL("xtsShiftLeft", RODATA|NOPTR)
	forEachShift(func(off, k int) { DATA(off, U64(uint64(k))) })
	shiftRight = GLOBL("xtsShiftRight", RODATA|NOPTR)
	forEachShift(func(off, k int) { DATA(off, U64(uint64(64-k))) })

	// The same for the 512-bit kernel: row i multiplies [T, T, T, T] by
	// [x^(4i), x^(4i+1), x^(4i+2), x^(4i+3)].
	shiftLeft512 = GLOBL("xtsShiftLeft512", RODATA|NOPTR)
	forEachShift512(func(off, k int) { DATA(off, U64(uint64(k))) })
	shiftRight512 = GLOBL("xtsShiftRight512", RODATA|NOPTR)
	forEachShift512(func(off, k int) { DATA(off, U64(uint64(64-k))) })

	genECB("encryptBlocksAESNI", false)
	genECB("decryptBlocksAESNI", true)
	genSectorTweaks()
	genXTSAESNI("xtsEncAESNI", false)
	genXTSAESNI("xtsDecAESNI", true)
	genXTSVAES("xtsEncVAES", false)
	genXTSVAES("xtsDecVAES", true)
	genXTSAVX512("xtsEncAVX512", false)
	genXTSAVX512("xtsDecAVX512", true)
	genCPUID()

	Generate()
}

// rk returns the memory operand of round key r of the schedule at base.
func rk(base Register, r int) Mem { return Mem{Base: base, Disp: rkStride * r} }

// raw emits an instruction avo's database lacks (256-bit VAES and
// VPCLMULQDQ). Operands are in Go assembler order.
func raw(op string, ops ...Op) {
	Instruction(&ir.Instruction{Opcode: op, Operands: ops})
}

// forEachRounds emits body once for AES-128 (10 rounds) and once for
// AES-256 (14 rounds), dispatching on the rounds register, and returns
// after both. body must end with a jump or RET.
func forEachRounds(name string, rounds Register, body func(nr int, prefix string)) {
	CMPQ(rounds, Imm(14))
	JEQ(LabelRef(name + "_r14"))
	body(10, name+"_r10")
	Label(name + "_r14")
	body(14, name+"_r14b")
}

// genECB writes func name(rk *byte, rounds int, dst, src *byte, n int):
// AES on n independent blocks (ECB), eight at a time. It computes sector
// tweaks in batches and lets tests check the key schedules against
// crypto/aes.
func genECB(name string, decrypt bool) {
	TEXT(name, NOSPLIT, "func(rk *byte, rounds int, dst *byte, src *byte, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s runs AES (%s) on n independent 16-byte blocks with the", name, dirName(decrypt)),
		"schedule at rk, eight blocks in flight.")
	key, nr, dst, src, n := RAX, RCX, RDI, RSI, RDX
	Load(Param("rk"), key)
	Load(Param("rounds"), nr)
	Load(Param("dst"), dst)
	Load(Param("src"), src)
	Load(Param("n"), n)
	round, last := AESENC, AESENCLAST
	if decrypt {
		round, last = AESDEC, AESDECLAST
	}
	data := []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7}
	k := X8
	forEachRounds(name, nr, func(rounds int, p string) {
		Label(p + "_loop8")
		CMPQ(n, Imm(8))
		JB(LabelRef(p + "_tail"))
		MOVOU(rk(key, 0), k)
		for i, x := range data {
			MOVOU(Mem{Base: src, Disp: 16 * i}, x)
			PXOR(k, x)
		}
		for r := 1; r < rounds; r++ {
			MOVOU(rk(key, r), k)
			for _, x := range data {
				round(k, x)
			}
		}
		MOVOU(rk(key, rounds), k)
		for i, x := range data {
			last(k, x)
			MOVOU(x, Mem{Base: dst, Disp: 16 * i})
		}
		ADDQ(Imm(128), src)
		ADDQ(Imm(128), dst)
		SUBQ(Imm(8), n)
		JMP(LabelRef(p + "_loop8"))

		Label(p + "_tail")
		TESTQ(n, n)
		JZ(LabelRef(p + "_done"))
		MOVOU(Mem{Base: src}, X0)
		PXOR(rk(key, 0), X0)
		for r := 1; r < rounds; r++ {
			round(rk(key, r), X0)
		}
		last(rk(key, rounds), X0)
		MOVOU(X0, Mem{Base: dst})
		ADDQ(Imm(16), src)
		ADDQ(Imm(16), dst)
		DECQ(n)
		JMP(LabelRef(p + "_tail"))
		Label(p + "_done")
		RET()
	})
}

// genSectorTweaks writes func sectorTweaksAESNI(tk *byte, rounds int, dst
// *byte, first uint64, n int): the encrypted tweaks of n consecutive
// sectors from first, tapdisk's way (the low 32 bits of the sector number,
// little endian, then 12 zero bytes; the number wraps at 2^32), eight at a
// time. Building the blocks from a register, not from Go-written memory,
// spares 16-byte loads of 8-byte stores, which store forwarding cannot
// serve.
func genSectorTweaks() {
	TEXT("sectorTweaksAESNI", NOSPLIT, "func(tk *byte, rounds int, dst *byte, first uint64, n int)")
	Pragma("noescape")
	Doc("sectorTweaksAESNI writes the encrypted tweaks of sectors first to",
		"first+n-1 (tapdisk's 32-bit plain tweak) to dst, eight in flight.")
	key, nr, dst, sector, n := RAX, RCX, RDI, RSI, RDX
	Load(Param("tk"), key)
	Load(Param("rounds"), nr)
	Load(Param("dst"), dst)
	Load(Param("first"), sector)
	Load(Param("n"), n)
	// R11 holds the sector number's low 32 bits: MOVL and INCL on a 32-bit
	// register clear the upper half. (avo drops MOVL SI, SI as a no-op
	// move, hence a second register.)
	MOVL(ESI, R11L)
	data := []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7}
	k := X8
	forEachRounds("sectorTweaksAESNI", nr, func(rounds int, p string) {
		Label(p + "_loop8")
		CMPQ(n, Imm(8))
		JB(LabelRef(p + "_tail"))
		MOVOU(rk(key, 0), k)
		for _, x := range data {
			MOVQ(R11, x)
			PXOR(k, x)
			INCL(R11L)
		}
		for r := 1; r < rounds; r++ {
			MOVOU(rk(key, r), k)
			for _, x := range data {
				AESENC(k, x)
			}
		}
		MOVOU(rk(key, rounds), k)
		for i, x := range data {
			AESENCLAST(k, x)
			MOVOU(x, Mem{Base: dst, Disp: 16 * i})
		}
		ADDQ(Imm(128), dst)
		SUBQ(Imm(8), n)
		JMP(LabelRef(p + "_loop8"))

		Label(p + "_tail")
		TESTQ(n, n)
		JZ(LabelRef(p + "_done"))
		MOVQ(R11, X0)
		PXOR(rk(key, 0), X0)
		for r := 1; r < rounds; r++ {
			AESENC(rk(key, r), X0)
		}
		AESENCLAST(rk(key, rounds), X0)
		MOVOU(X0, Mem{Base: dst})
		INCL(R11L)
		ADDQ(Imm(16), dst)
		DECQ(n)
		JMP(LabelRef(p + "_tail"))
		Label(p + "_done")
		RET()
	})
}

func dirName(decrypt bool) string {
	if decrypt {
		return "decryption"
	}
	return "encryption"
}

// xtsSignature is shared by the XTS kernels. They process units data units
// of unitBlocks 16-byte blocks each, from src to dst (the same or disjoint
// buffers), unit i starting with the encrypted tweak at tweaks+16*i.
//
// When tk (the tweak key's schedule) is not nil there must be one unit,
// and its tweak is tweakHi:tweakLo before encryption: the kernel encrypts
// it. That saves a call, and passing the tweak in integer registers rather
// than memory avoids a 16-byte load of two 8-byte stores, which store
// forwarding cannot serve, on the critical path of one-sector calls.
const xtsSignature = "func(rk *byte, tk *byte, rounds int, dst *byte, src *byte, units int, unitBlocks int, tweaks *byte, tweakLo uint64, tweakHi uint64)"

// xtsRegs are the general registers of the XTS kernels.
type xtsRegs struct {
	key, tk, nr, dst, src, units, unitBlocks, tweaks, left Register
}

func loadXTSParams() xtsRegs {
	r := xtsRegs{key: RAX, tk: R10, nr: RCX, dst: RDI, src: RSI, units: RDX, unitBlocks: RBX, tweaks: R8, left: R9}
	Load(Param("rk"), r.key)
	Load(Param("tk"), r.tk)
	Load(Param("rounds"), r.nr)
	Load(Param("dst"), r.dst)
	Load(Param("src"), r.src)
	Load(Param("units"), r.units)
	Load(Param("unitBlocks"), r.unitBlocks)
	Load(Param("tweaks"), r.tweaks)
	return r
}

// mulx sets dst = src * x in GF(2^128) with SSE2 only: shift each
// quadword left by one and feed the two bits shifted out back in, the
// high one reduced to 0x87. tmp and mask (holding mulxMask) are scratch
// and constant registers; dst may equal src.
func mulx(src, dst, tmp, mask VecPhysical) {
	PSHUFD(Imm(0x13), src, tmp) // dwords: [d3, d0, d1, d0]
	PSRAL(Imm(31), tmp)         // sign masks of bit 127 (dword 0) and bit 63 (dword 2)
	PAND(mask, tmp)
	if dst != src {
		MOVO(src, dst)
	}
	PADDQ(dst, dst)
	PXOR(tmp, dst)
}

// genXTSAESNI writes an XTS kernel for AES-NI with 128-bit registers:
// eight blocks in flight, tweaks in X8-X15, computed by mulx.
func genXTSAESNI(name string, decrypt bool) {
	TEXT(name, NOSPLIT, xtsSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is XTS %s with AES-NI, eight blocks in flight.", name, dirName(decrypt)))
	g := loadXTSParams()
	round, last := AESENC, AESENCLAST
	if decrypt {
		round, last = AESDEC, AESDECLAST
	}
	data := []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7}
	tw := []VecPhysical{X8, X9, X10, X11, X12, X13, X14, X15}
	forEachRounds(name, g.nr, func(rounds int, p string) {
		Label(p + "_unit")
		TESTQ(g.units, g.units)
		JZ(LabelRef(p + "_done"))
		TESTQ(g.tk, g.tk)
		JNZ(LabelRef(p + "_plain"))
		MOVOU(Mem{Base: g.tweaks}, tw[0])
		ADDQ(Imm(16), g.tweaks)
		JMP(LabelRef(p + "_encrypted"))
		Label(p + "_plain")
		Load(Param("tweakLo"), R11)
		MOVQ(R11, tw[0])
		Load(Param("tweakHi"), R11)
		MOVQ(R11, X0)
		PUNPCKLQDQ(X0, tw[0])
		PXOR(rk(g.tk, 0), tw[0])
		for r := 1; r < rounds; r++ {
			AESENC(rk(g.tk, r), tw[0])
		}
		AESENCLAST(rk(g.tk, rounds), tw[0])
		Label(p + "_encrypted")
		MOVQ(g.unitBlocks, g.left)

		Label(p + "_loop8")
		CMPQ(g.left, Imm(8))
		JB(LabelRef(p + "_tail"))
		// Tweaks of the next eight blocks; X7 holds the mask and X0 is
		// scratch until the data is loaded.
		MOVOU(mulxMask, X7)
		for i := 1; i < 8; i++ {
			mulx(tw[i-1], tw[i], X0, X7)
		}
		for i, x := range data {
			MOVOU(Mem{Base: g.src, Disp: 16 * i}, x)
			PXOR(tw[i], x)
			PXOR(rk(g.key, 0), x)
		}
		for r := 1; r < rounds; r++ {
			for _, x := range data {
				round(rk(g.key, r), x)
			}
		}
		for i, x := range data {
			last(rk(g.key, rounds), x)
			PXOR(tw[i], x)
			MOVOU(x, Mem{Base: g.dst, Disp: 16 * i})
		}
		// The first tweak of the next eight.
		MOVOU(mulxMask, X7)
		mulx(tw[7], tw[0], X0, X7)
		ADDQ(Imm(128), g.src)
		ADDQ(Imm(128), g.dst)
		SUBQ(Imm(8), g.left)
		JMP(LabelRef(p + "_loop8"))

		// Fewer than eight blocks left: one at a time (only units that
		// are not a multiple of eight blocks get here).
		Label(p + "_tail")
		TESTQ(g.left, g.left)
		JZ(LabelRef(p + "_next"))
		MOVOU(mulxMask, X2)
		MOVOU(Mem{Base: g.src}, X0)
		PXOR(tw[0], X0)
		PXOR(rk(g.key, 0), X0)
		for r := 1; r < rounds; r++ {
			round(rk(g.key, r), X0)
		}
		last(rk(g.key, rounds), X0)
		PXOR(tw[0], X0)
		MOVOU(X0, Mem{Base: g.dst})
		mulx(tw[0], tw[0], X1, X2)
		ADDQ(Imm(16), g.src)
		ADDQ(Imm(16), g.dst)
		DECQ(g.left)
		JMP(LabelRef(p + "_tail"))

		Label(p + "_next")
		DECQ(g.units)
		JMP(LabelRef(p + "_unit"))
		Label(p + "_done")
		RET()
	})
}

// vmulx is mulx with VEX-encoded 128-bit instructions, for the AVX kernel
// (mixing legacy SSE and 256-bit AVX code costs transitions).
func vmulx(src, dst, tmp, mask VecPhysical) {
	VPSHUFD(Imm(0x13), src, tmp)
	VPSRAD(Imm(31), tmp, tmp)
	VPAND(mask, tmp, tmp)
	VPADDQ(src, src, dst)
	VPXOR(tmp, dst, dst)
}

// vmulxk sets dst = src * x^k in each 128-bit lane, for 0 < k < 57: shift
// the 128-bit value left by k bits, then fold the k bits shifted out back
// in, multiplied by 0x87 with VPCLMULQDQ. t0 and t1 are scratch.
func vmulxk(k int, src, dst, t0, t1 VecPhysical) {
	VPSLLQ(Imm(uint64(k)), src, dst)
	VPSRLQ(Imm(uint64(64-k)), src, t0) // bits leaving each quadword
	VPSLLDQ(Imm(8), t0, t1)            // the low quadword's go to the high one
	VPXOR(t1, dst, dst)
	VPSRLDQ(Imm(8), t0, t0) // the high quadword's leave the lane...
	vclmul(0x00, poly, t0, t0)
	VPXOR(t0, dst, dst) // ...and come back reduced
}

// vmulxBytes sets dst = src * x^(8*n) in each 128-bit lane, for n <= 7:
// a byte shift and one carry-less multiplication for the n bytes shifted
// out. dst and src may be the same; t0 is scratch and must differ from
// both.
func vmulxBytes(n int, src, dst, t0 VecPhysical) {
	VPSRLDQ(Imm(uint64(16-n)), src, t0)
	VPSLLDQ(Imm(uint64(n)), src, dst)
	vclmul(0x00, poly, t0, t0)
	VPXOR(t0, dst, dst)
}

// vclmul emits VPCLMULQDQ, whose 256-bit form avo lacks; the 128-bit one
// would do for X registers but the same spelling serves both.
func vclmul(imm uint64, m Op, src, dst VecPhysical) {
	raw("VPCLMULQDQ", Imm(imm), m, src, dst)
}

// vaes emits a VAES instruction (VAESENC, VAESENCLAST, VAESDEC,
// VAESDECLAST) on Y registers.
func vaes(op string, key Op, src, dst VecPhysical) { raw(op, key, src, dst) }

// genXTSVAES writes an XTS kernel for VAES with 256-bit registers: two
// blocks per register, sixteen blocks in flight, the next sixteen tweaks
// computed from these with VPCLMULQDQ (multiplication by x^16).
func genXTSVAES(name string, decrypt bool) {
	TEXT(name, NOSPLIT, xtsSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is XTS %s with VAES and VPCLMULQDQ on 256-bit", name, dirName(decrypt)),
		"registers, sixteen blocks in flight.")
	g := loadXTSParams()
	round, last := "VAESENC", "VAESENCLAST"
	if decrypt {
		round, last = "VAESDEC", "VAESDECLAST"
	}
	data := []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7}
	tw := []VecPhysical{Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}
	forEachRounds(name, g.nr, func(rounds int, p string) {
		Label(p + "_unit")
		TESTQ(g.units, g.units)
		JZ(LabelRef(p + "_done"))
		// Y8 = [T, T*x]; Y9-Y11 = Y8 * x^2, x^4, x^6; Y12-Y15 = Y8-Y11 * x^8.
		TESTQ(g.tk, g.tk)
		JNZ(LabelRef(p + "_plain"))
		VMOVDQU(Mem{Base: g.tweaks}, X8)
		ADDQ(Imm(16), g.tweaks)
		JMP(LabelRef(p + "_encrypted"))
		Label(p + "_plain")
		Load(Param("tweakLo"), R11)
		VMOVQ(R11, X8)
		Load(Param("tweakHi"), R11)
		VPINSRQ(Imm(1), R11, X8, X8)
		VPXOR(rk(g.tk, 0), X8, X8)
		for r := 1; r < rounds; r++ {
			VAESENC(rk(g.tk, r), X8, X8)
		}
		VAESENCLAST(rk(g.tk, rounds), X8, X8)
		Label(p + "_encrypted")
		// Y0 = [T, T]; pair i = Y0 * [x^(2i), x^(2i+1)], all eight
		// independent: shift each quadword left by its k, then put back
		// the k bits each lost, the high quadword's reduced by 0x87.
		VINSERTI128(Imm(1), X8, Y8, Y0)
		for i, t := range tw {
			c, d := data[1+i%3*2], data[2+i%3*2] // scratch, Y1-Y6
			VPSLLVQ(shiftLeft.Offset(32*i), Y0, t)
			VPSRLVQ(shiftRight.Offset(32*i), Y0, c)
			VPSLLDQ(Imm(8), c, d) // the low quadword's bits go high
			VPXOR(d, t, t)
			VPSRLDQ(Imm(8), c, c) // the high quadword's come back...
			vclmul(0x00, poly, c, c)
			VPXOR(c, t, t) // ...reduced
		}
		MOVQ(g.unitBlocks, g.left)

		Label(p + "_loop16")
		CMPQ(g.left, Imm(16))
		JB(LabelRef(p + "_tail"))
		for i, y := range data {
			VPXOR(Mem{Base: g.src, Disp: 32 * i}, tw[i], y)
			VPXOR(rk(g.key, 0), y, y)
		}
		for r := 1; r < rounds; r++ {
			for _, y := range data {
				vaes(round, rk(g.key, r), y, y)
			}
		}
		for i, y := range data {
			vaes(last, rk(g.key, rounds), y, y)
			VPXOR(tw[i], y, y)
			VMOVDQU(y, Mem{Base: g.dst, Disp: 32 * i})
		}
		ADDQ(U32(256), g.src)
		ADDQ(U32(256), g.dst)
		SUBQ(Imm(16), g.left)
		CMPQ(g.left, Imm(16))
		JB(LabelRef(p + "_last"))
		// Tweaks of the next sixteen blocks: each times x^16.
		for i, t := range tw {
			vmulxBytes(2, t, t, data[i])
		}
		JMP(LabelRef(p + "_loop16"))

		// After the last group of sixteen, only the first tweak moves on,
		// and only if a tail follows (never for 512-byte sectors).
		Label(p + "_last")
		TESTQ(g.left, g.left)
		JZ(LabelRef(p + "_next"))
		vmulxBytes(2, Y8, Y8, Y0)

		// Fewer than sixteen blocks left: one at a time with 128-bit
		// VEX instructions, the tweak in X8 (the low lane of Y8). Only
		// units that are not a multiple of sixteen blocks get here.
		Label(p + "_tail")
		TESTQ(g.left, g.left)
		JZ(LabelRef(p + "_next"))
		VMOVDQU(mulxMask, X2)
		VPXOR(Mem{Base: g.src}, X8, X0)
		VPXOR(rk(g.key, 0), X0, X0)
		r128, l128 := VAESENC, VAESENCLAST
		if decrypt {
			r128, l128 = VAESDEC, VAESDECLAST
		}
		for r := 1; r < rounds; r++ {
			r128(rk(g.key, r), X0, X0)
		}
		l128(rk(g.key, rounds), X0, X0)
		VPXOR(X8, X0, X0)
		VMOVDQU(X0, Mem{Base: g.dst})
		vmulx(X8, X8, X1, X2)
		ADDQ(Imm(16), g.src)
		ADDQ(Imm(16), g.dst)
		DECQ(g.left)
		JMP(LabelRef(p + "_tail"))

		Label(p + "_next")
		DECQ(g.units)
		JMP(LabelRef(p + "_unit"))
		Label(p + "_done")
		VZEROUPPER()
		RET()
	})
}

// genXTSAVX512 writes an XTS kernel for AVX-512 with VAES and VPCLMULQDQ
// on 512-bit registers: four blocks per register, a whole 512-byte sector
// (32 blocks) in flight, the round keys broadcast into Z16-Z30 once per
// call, the next 32 tweaks computed from these with VPCLMULQDQ
// (multiplication by x^32). It needs AVX512F, AVX512BW (byte shifts of
// 512-bit registers), VAES and VPCLMULQDQ.
func genXTSAVX512(name string, decrypt bool) {
	TEXT(name, NOSPLIT, xtsSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is XTS %s with VAES and VPCLMULQDQ on 512-bit", name, dirName(decrypt)),
		"registers, thirty-two blocks in flight.")
	g := loadXTSParams()
	round, last := "VAESENC", "VAESENCLAST"
	if decrypt {
		round, last = "VAESDEC", "VAESDECLAST"
	}
	data := []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7}
	tw := []VecPhysical{Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15}
	keys := []VecPhysical{Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30}
	polyZ := Z31
	forEachRounds(name, g.nr, func(rounds int, p string) {
		for r := 0; r <= rounds; r++ {
			VBROADCASTI32X4(rk(g.key, r), keys[r])
		}
		VBROADCASTI32X4(poly, polyZ)

		Label(p + "_unit")
		TESTQ(g.units, g.units)
		JZ(LabelRef(p + "_done"))
		TESTQ(g.tk, g.tk)
		JNZ(LabelRef(p + "_plain"))
		VMOVDQU(Mem{Base: g.tweaks}, X8)
		ADDQ(Imm(16), g.tweaks)
		JMP(LabelRef(p + "_encrypted"))
		Label(p + "_plain")
		Load(Param("tweakLo"), R11)
		VMOVQ(R11, X8)
		Load(Param("tweakHi"), R11)
		VPINSRQ(Imm(1), R11, X8, X8)
		VPXOR(rk(g.tk, 0), X8, X8)
		for r := 1; r < rounds; r++ {
			VAESENC(rk(g.tk, r), X8, X8)
		}
		VAESENCLAST(rk(g.tk, rounds), X8, X8)
		Label(p + "_encrypted")
		// Z0 = [T, T, T, T]; register i = Z0 * [x^(4i), ..., x^(4i+3)],
		// all eight independent (as in genXTSVAES).
		VSHUFI64X2(Imm(0), Z8, Z8, Z0)
		for i, t := range tw {
			c, d := data[1+i%3*2], data[2+i%3*2] // scratch, Z1-Z6
			VPSLLVQ(shiftLeft512.Offset(64*i), Z0, t)
			VPSRLVQ(shiftRight512.Offset(64*i), Z0, c)
			VPSLLDQ(Imm(8), c, d)
			VPXORQ(d, t, t)
			VPSRLDQ(Imm(8), c, c)
			raw("VPCLMULQDQ", Imm(0x00), polyZ, c, c)
			VPXORQ(c, t, t)
		}
		MOVQ(g.unitBlocks, g.left)

		Label(p + "_loop32")
		CMPQ(g.left, Imm(32))
		JB(LabelRef(p + "_tail"))
		for i, z := range data {
			VPXORQ(Mem{Base: g.src, Disp: 64 * i}, tw[i], z)
			VPXORQ(keys[0], z, z)
		}
		for r := 1; r < rounds; r++ {
			for _, z := range data {
				raw(round, keys[r], z, z)
			}
		}
		for i, z := range data {
			raw(last, keys[rounds], z, z)
			VPXORQ(tw[i], z, z)
			VMOVDQU64(z, Mem{Base: g.dst, Disp: 64 * i})
		}
		ADDQ(U32(512), g.src)
		ADDQ(U32(512), g.dst)
		SUBQ(Imm(32), g.left)
		CMPQ(g.left, Imm(32))
		JB(LabelRef(p + "_last"))
		// Tweaks of the next 32 blocks: each times x^32, a 4-byte shift.
		for i, t := range tw {
			zmulxBytes(4, t, t, data[i], polyZ)
		}
		JMP(LabelRef(p + "_loop32"))

		// After the last group, only the first tweak moves on, and only
		// if a tail follows (never for 512-byte sectors).
		Label(p + "_last")
		TESTQ(g.left, g.left)
		JZ(LabelRef(p + "_next"))
		zmulxBytes(4, Z8, Z8, Z0, polyZ)

		// Fewer than 32 blocks left: one at a time with 128-bit VEX
		// instructions, the tweak in X8 (the low lane of Z8).
		Label(p + "_tail")
		TESTQ(g.left, g.left)
		JZ(LabelRef(p + "_next"))
		VMOVDQU(mulxMask, X2)
		VPXOR(Mem{Base: g.src}, X8, X0)
		VPXOR(rk(g.key, 0), X0, X0)
		r128, l128 := VAESENC, VAESENCLAST
		if decrypt {
			r128, l128 = VAESDEC, VAESDECLAST
		}
		for r := 1; r < rounds; r++ {
			r128(rk(g.key, r), X0, X0)
		}
		l128(rk(g.key, rounds), X0, X0)
		VPXOR(X8, X0, X0)
		VMOVDQU(X0, Mem{Base: g.dst})
		vmulx(X8, X8, X1, X2)
		ADDQ(Imm(16), g.src)
		ADDQ(Imm(16), g.dst)
		DECQ(g.left)
		JMP(LabelRef(p + "_tail"))

		Label(p + "_next")
		DECQ(g.units)
		JMP(LabelRef(p + "_unit"))
		Label(p + "_done")
		VZEROUPPER()
		RET()
	})
}

// zmulxBytes is vmulxBytes for 512-bit registers, with the polynomial in a
// register.
func zmulxBytes(n int, src, dst, t0, polyReg VecPhysical) {
	VPSRLDQ(Imm(uint64(16-n)), src, t0)
	VPSLLDQ(Imm(uint64(n)), src, dst)
	raw("VPCLMULQDQ", Imm(0x00), polyReg, t0, t0)
	VPXORQ(t0, dst, dst)
}

// genCPUID writes func cpuid7ECX() uint32: ECX of CPUID leaf 7, sub-leaf 0,
// whose bits 9 (VAES) and 10 (VPCLMULQDQ) golang.org/x/sys/cpu reports only
// together with AVX-512, although their 256-bit forms need only AVX.
func genCPUID() {
	TEXT("cpuid7ECX", NOSPLIT, "func() uint32")
	Doc("cpuid7ECX returns ECX of CPUID leaf 7, sub-leaf 0.")
	MOVL(U32(7), EAX)
	XORL(ECX, ECX)
	CPUID()
	Store(ECX, ReturnIndex(0))
	RET()
}
