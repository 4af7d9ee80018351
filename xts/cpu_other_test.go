//go:build !amd64 || purego

package xts

// absentReason says why impl cannot run in this build.
func absentReason(impl implementation) string {
	if impl == implGeneric {
		return "runs everywhere"
	}
	return "the assembly kernels exist only for amd64 without the purego tag"
}
