// Package testenv finds what the tests need beyond the Go code (the
// reference vectors in testdata/vhd-reference, qemu-img, versitygw) and
// decides what happens when it is missing: under CI (CI set to a non-empty value) a missing prerequisite fails
// the test, elsewhere it skips it with a note saying how to install it.
// VerifyTestMain is goleak's check for packages whose tests use SDKs that
// keep connections on http.DefaultTransport.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// InCI reports whether the tests run under continuous integration, where
// nothing may be skipped for lack of a tool or a file.
func InCI() bool { return os.Getenv("CI") != "" }

// RepoRoot returns the module's root directory (where go.mod is).
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RefDir returns the directory of the reference vectors: testdata/vhd-reference
// in the repository, or $E2EIMAGE_TESTDATA when that is set. That directory
// has a go.mod of its own, so a module downloaded with go get lacks it; the
// test then fails under CI and is skipped elsewhere.
func RefDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("E2EIMAGE_TESTDATA")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "testdata", "vhd-reference")
	}
	if _, err := os.Stat(filepath.Join(dir, "plain.raw")); err != nil {
		missing(tb, "reference vectors not found at "+dir+" (set E2EIMAGE_TESTDATA): "+err.Error())
	}
	return dir
}

// RefFile reads one reference file.
func RefFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(RefDir(tb), name))
	if err != nil {
		tb.Fatalf("reading reference file: %v", err)
	}
	return b
}

// Tool returns the path of an external program, failing under CI and skipping
// elsewhere when it is not installed. install says how to get it.
func Tool(tb testing.TB, name, install string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		// go install puts binaries in GOPATH/bin, which is not always on PATH.
		if gp, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			cand := filepath.Join(string(trimNL(gp)), "bin", name)
			if _, serr := os.Stat(cand); serr == nil {
				return cand
			}
		}
		missing(tb, name+" not found ("+install+")")
	}
	return p
}

// QemuImg returns the path of qemu-img.
func QemuImg(tb testing.TB) string {
	return Tool(tb, "qemu-img", "apt-get install qemu-utils")
}

// Versitygw returns the path of the versitygw S3 server.
func Versitygw(tb testing.TB) string {
	return Tool(tb, "versitygw", "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

func missing(tb testing.TB, msg string) {
	tb.Helper()
	if InCI() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
