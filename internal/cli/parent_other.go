//go:build !linux

package cli

// StopWithParent does nothing on this system: only Linux can tell a process
// that its parent ended. See the Linux version.
func StopWithParent() error { return nil }
