//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package vhdcrypt

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockPartial takes an exclusive flock(2) on f without waiting: true when
// it got it (no live run holds the file), false when another open file
// holds it. The lock goes when the file is closed or its process dies.
func lockPartial(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	}
	return false, err
}
