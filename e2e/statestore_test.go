package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestStateLockExcludesASecondRun: while one run holds the state, a second
// lock of the same path fails at once with ErrStateLocked; once released,
// and once its holder process is killed, the state can be taken again.
func TestStateLockExcludesASecondRun(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock(2)")
	}
	path := filepath.Join(t.TempDir(), "state.json")
	first, err := fileStore{path}.lock()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := (fileStore{path}).lock(); !errors.Is(err, ErrStateLocked) {
		t.Fatalf("second lock: %v, want ErrStateLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the second lock took %s to fail; it must fail at once", d)
	}
	first()
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file is left after the run: %v", err)
	}
	again, err := fileStore{path}.lock()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()

	// A holder that dies (SIGKILL) leaves no lock behind.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "E2E_HOLD_LOCK="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "held" {
		t.Fatalf("helper did not take the lock: %q %v", buf, err)
	}
	if _, err := (fileStore{path}).lock(); !errors.Is(err, ErrStateLocked) {
		t.Fatalf("lock held by another process: %v, want ErrStateLocked", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	after, err := fileStore{path}.lock()
	if err != nil {
		t.Fatalf("lock after its holder was killed: %v", err)
	}
	after()
}

// holdStateLock is the helper process of TestStateLockExcludesASecondRun
// (TestMain calls it when E2E_HOLD_LOCK is set): it takes the lock, says
// "held" and waits to be killed.
func holdStateLock(path string) {
	if _, err := (fileStore{path}).lock(); err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString("held")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// Cleanup takes the same lock as Run: it fails at once while a run holds
// the state.
func TestCleanupWaitsForNoRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	unlock, err := fileStore{path}.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = Cleanup(t.Context(), Plan{COS: &nopStore{}, Bucket: "b", StatePath: path})
	if !errors.Is(err, ErrStateLocked) {
		t.Fatalf("Cleanup beside a run: %v, want ErrStateLocked", err)
	}
}

// nopStore is an ObjectStore that is never called.
type nopStore struct{ ObjectStore }
