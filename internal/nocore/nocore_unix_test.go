//go:build unix

package nocore

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestDisableZeroesTheCoreLimit(t *testing.T) {
	if err := Disable(); err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != 0 || lim.Max != 0 {
		t.Fatalf("RLIMIT_CORE = %d/%d after Disable, want 0/0", lim.Cur, lim.Max)
	}
	// A second call must also succeed (lowering to the same value is allowed).
	if err := Disable(); err != nil {
		t.Fatal(err)
	}
}
