package vhdcrypt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/e2eimage/e2eimage/internal/flock"
)

// A new output for out.vhd removes the partial outputs of out.vhd that a
// killed run left (no live holder), and nothing else: not a partial that
// another run holds and writes, not other files.
func TestStalePartialOutputsRemoved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock(2): nothing is removed there")
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.vhd")
	stale := []string{".out.vhd.partial-1", ".out.vhd.partial-2034567"}
	keep := []string{"out.vhd.partial-1", ".out.vhd.partial-", ".out.vhd.partial-12a", ".other.vhd.partial-1",
		".out.vhd.partial-1.bak", "x.out.vhd.partial-1", ".out.vhd.tmp1"}
	for _, n := range append(append([]string{}, stale...), keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".out.vhd.partial-9"), 0o700); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, ".out.vhd.partial-9") // a directory is not a partial output
	// One that a live run holds.
	held := filepath.Join(dir, ".out.vhd.partial-77")
	if err := os.WriteFile(held, []byte("being written"), 0o600); err != nil {
		t.Fatal(err)
	}
	hf, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if ok, err := flock.Try(hf); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	keep = append(keep, ".out.vhd.partial-77")

	o, err := createOutput(dst, "")
	if err != nil {
		t.Fatal(err)
	}
	// Our own partial is held: another run's sweep leaves it.
	removeStalePartials(dst)
	if _, err := os.Stat(o.tmp); err != nil {
		t.Errorf("a live run's partial output was removed: %v", err)
	}
	o.abort()

	removed := 0
	for _, n := range stale {
		if _, err := os.Lstat(filepath.Join(dir, n)); errors.Is(err, fs.ErrNotExist) {
			removed++
		} else {
			t.Errorf("stale %s was not removed: %v", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}
	t.Logf("%d stale partial outputs removed, %d other files kept", removed, len(keep))
}
