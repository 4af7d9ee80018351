//go:build !linux

package vhdcrypt

import (
	"errors"
	"os"
)

// mapFile is not used on this system: the input is read with ReadAt.
func mapFile(*os.File, int64) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapFile([]byte) {}
