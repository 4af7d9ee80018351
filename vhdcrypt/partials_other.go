//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package vhdcrypt

import "os"

// lockPartial cannot tell a live writer from a dead one without flock(2):
// it reports the file held, so removeStalePartials removes nothing.
func lockPartial(*os.File) (bool, error) { return false, nil }
