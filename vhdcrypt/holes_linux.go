package vhdcrypt

import (
	"errors"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// nextData returns the offset of the first byte at or after off that the
// file system stores (lseek SEEK_DATA), math.MaxInt64 when only a hole
// follows, or -1 when the file system cannot tell. Everything in between is a hole and
// reads as zeros, so the zero-block scan need not read it. It moves f's
// offset, which the image verbs do not use (they read with ReadAt).
func nextData(f *os.File, off int64) int64 {
	n, err := f.Seek(off, unix.SEEK_DATA)
	switch {
	case err == nil:
		return n
	case errors.Is(err, unix.ENXIO): // no data at or after off
		return math.MaxInt64
	}
	return -1
}
