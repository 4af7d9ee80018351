//go:build !linux

package lockedmem

func protect([]byte) Protection { return Protection{} }

func unprotect([]byte) {}
