package testenv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// refFiles are the vectors testdata/vhd-reference/README.md describes.
var refFiles = []string{
	"enc-copybug-k64.vhd", "enc-qemu-k32.vhd", "enc-qemu-k64.vhd",
	"enc-tap-sparse-k64.vhd", "key32.bin", "key64.bin", "plain.raw",
	"src-qemu.vhd", "src-tap-sparse.vhd",
}

// notVectors are the files of the directory that SHA256SUMS does not cover.
var notVectors = []string{"README.md", "SHA256SUMS", "go.mod"}

// checkSums compares every file of dir with dir/SHA256SUMS and returns one
// problem per file that is listed but missing or different, present but not
// listed, or expected (refFiles) but not listed. It returns the number of
// files whose checksum matched.
func checkSums(dir string) (matched int, problems []string) {
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return 0, []string{err.Error()}
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || len(f[0]) != 2*sha256.Size {
			problems = append(problems, fmt.Sprintf("SHA256SUMS: malformed line %q", sc.Text()))
			continue
		}
		name := strings.TrimPrefix(f[1], "*") // sha256sum -b marks binary mode with '*'
		listed[name] = true
		got, err := fileSum(filepath.Join(dir, name))
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		case got != f[0]:
			problems = append(problems, fmt.Sprintf("%s: SHA-256 %s, SHA256SUMS says %s", name, got, f[0]))
		default:
			matched++
		}
	}
	for _, name := range refFiles {
		if !listed[name] {
			problems = append(problems, name+": not listed in SHA256SUMS")
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return matched, append(problems, err.Error())
	}
	for _, e := range entries {
		if !listed[e.Name()] && !slices.Contains(notVectors, e.Name()) && !slices.Contains(refFiles, e.Name()) {
			problems = append(problems, e.Name()+": in the directory but not in SHA256SUMS")
		}
	}
	return matched, problems
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestReferenceChecksums proves the vectors every other test relies on are
// the ones their README describes: each one present and unchanged.
func TestReferenceChecksums(t *testing.T) {
	dir := RefDir(t)
	matched, problems := checkSums(dir)
	for _, p := range problems {
		t.Error(p)
	}
	if matched != len(refFiles) {
		t.Errorf("%d files matched SHA256SUMS in %s, want %d", matched, dir, len(refFiles))
	}
}

// TestReferenceDirInRepository proves the vectors are found inside the
// repository when no override is set.
func TestReferenceDirInRepository(t *testing.T) {
	t.Setenv("E2EIMAGE_TESTDATA", "")
	want := filepath.Join(RepoRoot(), "testdata", "vhd-reference")
	if got := RefDir(t); got != want {
		t.Fatalf("RefDir = %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(RepoRoot(), "go.mod")); err != nil {
		t.Fatalf("RepoRoot %s is not the module root: %v", RepoRoot(), err)
	}
}

// TestCheckSumsDetects proves checkSums reports a changed, a missing and an
// unlisted file, so TestReferenceChecksums can fail.
func TestCheckSumsDetects(t *testing.T) {
	src := RefDir(t)
	small := []string{"key32.bin", "key64.bin"}
	var sums strings.Builder
	for _, name := range small {
		b := RefFile(t, name)
		sum := sha256.Sum256(b)
		fmt.Fprintf(&sums, "%x  %s\n", sum, name)
	}
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		for _, name := range small {
			b, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	count := func(problems []string, part string) int {
		n := 0
		for _, p := range problems {
			if strings.Contains(p, part) {
				n++
			}
		}
		return n
	}
	// The two keys match; the seven other expected vectors are not listed.
	matched, problems := checkSums(setup(t))
	if matched != 2 || count(problems, "not listed in SHA256SUMS") != len(refFiles)-2 || len(problems) != len(refFiles)-2 {
		t.Fatalf("intact copy: matched %d, problems %q", matched, problems)
	}

	t.Run("changed", func(t *testing.T) {
		dir := setup(t)
		if err := os.WriteFile(filepath.Join(dir, "key32.bin"), make([]byte, 32), 0o644); err != nil {
			t.Fatal(err)
		}
		matched, problems := checkSums(dir)
		if matched != 1 || count(problems, "key32.bin: SHA-256") != 1 {
			t.Fatalf("matched %d, problems %q", matched, problems)
		}
	})
	t.Run("missing", func(t *testing.T) {
		dir := setup(t)
		if err := os.Remove(filepath.Join(dir, "key64.bin")); err != nil {
			t.Fatal(err)
		}
		matched, problems := checkSums(dir)
		if matched != 1 || count(problems, "key64.bin: open") != 1 {
			t.Fatalf("matched %d, problems %q", matched, problems)
		}
	})
	t.Run("unlisted", func(t *testing.T) {
		dir := setup(t)
		if err := os.WriteFile(filepath.Join(dir, "extra.vhd"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, problems := checkSums(dir)
		if count(problems, "extra.vhd: in the directory but not in SHA256SUMS") != 1 {
			t.Fatalf("problems %q", problems)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		dir := setup(t)
		if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("abc key32.bin\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, problems := checkSums(dir)
		if count(problems, "malformed line") != 1 {
			t.Fatalf("problems %q", problems)
		}
	})
}
