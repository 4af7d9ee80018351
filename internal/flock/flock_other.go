//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package flock

import "os"

// Try cannot lock without flock(2): it returns ErrUnsupported.
func Try(*os.File) (bool, error) { return false, ErrUnsupported }
