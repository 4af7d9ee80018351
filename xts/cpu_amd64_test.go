//go:build amd64 && !purego

package xts

// absentReason says why impl cannot run on this processor.
func absentReason(impl implementation) string {
	switch impl {
	case implAVX512:
		return "needs AVX-512 F and BW with 512-bit VAES and VPCLMULQDQ, which this CPU or OS lacks"
	case implVAES:
		return "needs VAES and VPCLMULQDQ with AVX2, which this CPU or OS lacks"
	case implAESNI:
		return "needs AES-NI, which this CPU lacks"
	}
	return "runs everywhere"
}
