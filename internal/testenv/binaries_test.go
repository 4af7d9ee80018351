package testenv

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// executableMagic are the first bytes of the compiled program formats a
// build on Linux, macOS or Windows leaves behind: ELF, Mach-O (32 and 64
// bit, both byte orders, and universal) and PE (the "MZ" DOS stub).
var executableMagic = [][]byte{
	[]byte("\x7fELF"),
	{0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf},
	{0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe},
	{0xca, 0xfe, 0xba, 0xbe},
	[]byte("MZ"),
}

// executableKind names the format of a compiled program that head starts
// with, or returns "" for anything else.
func executableKind(head []byte) string {
	names := []string{"ELF", "Mach-O", "Mach-O", "Mach-O", "Mach-O", "Mach-O universal", "PE"}
	for i, m := range executableMagic {
		if bytes.HasPrefix(head, m) {
			return names[i]
		}
	}
	return ""
}

func TestExecutableKind(t *testing.T) {
	for head, want := range map[string]string{
		"\x7fELF\x02\x01\x01":  "ELF",
		"\xcf\xfa\xed\xfe\x07": "Mach-O",
		"MZ\x90\x00":           "PE",
		"#!/bin/sh\n":          "",
		"conectix":             "",
		"":                     "",
	} {
		if got := executableKind([]byte(head)); got != want {
			t.Errorf("executableKind(%q) = %q, want %q", head, got, want)
		}
	}
}

// TestNoTrackedBinaries fails when git tracks a compiled program, such as
// a "go build" output left at the root: the repository holds sources, and
// a binary in it is stale the moment a source changes (bin/ and the build
// outputs at the root are in .gitignore).
func TestNoTrackedBinaries(t *testing.T) {
	root := RepoRoot()
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		missing(t, "not a git checkout ("+root+"): nothing tracked to check")
	}
	if _, err := exec.LookPath("git"); err != nil {
		missing(t, "git not found (apt-get install git)")
	}
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	checked, binaries := 0, 0
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		f, err := os.Open(filepath.Join(root, name))
		if err != nil {
			continue // deleted in the work tree, or a submodule
		}
		head := make([]byte, 4)
		n, _ := io.ReadFull(f, head)
		f.Close()
		checked++
		if kind := executableKind(head[:n]); kind != "" {
			binaries++
			t.Errorf("%s is a compiled %s program: git rm --cached it and build it instead", name, kind)
		}
	}
	if checked == 0 {
		t.Fatal("git ls-files listed no file")
	}
	t.Logf("%d tracked files checked, %d compiled programs among them", checked, binaries)
}
