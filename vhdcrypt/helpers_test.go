package vhdcrypt_test

import (
	"github.com/e2eimage/e2eimage/vhdcrypt"

	"os"
	"os/exec"
	"syscall"
	"testing"
)

func runCmd(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// diskUsage returns the bytes a file occupies on disk.
func diskUsage(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no block count on this platform")
	}
	return st.Blocks * 512
}

// noTable lets a raw test disk without a partition table (random bytes,
// the reference vectors' plain.raw) be encrypted.
var noTable = vhdcrypt.WithoutPartitionTable()
