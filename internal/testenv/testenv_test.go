package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceChecksums proves the vectors every other test relies on are
// the ones described in their README.
func TestReferenceChecksums(t *testing.T) {
	dir := RefDir(t)
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("bad SHA256SUMS line %q", line)
		}
		got := sha256.Sum256(RefFile(t, f[1]))
		if hex.EncodeToString(got[:]) != f[0] {
			t.Errorf("%s: checksum mismatch", f[1])
		}
		n++
	}
	if n < 9 {
		t.Fatalf("only %d reference files listed", n)
	}
}
