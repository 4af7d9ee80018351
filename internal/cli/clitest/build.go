package clitest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
)

// goTool returns the go command of the toolchain running the tests: the
// one in GOROOT, which go test sets for the test binary, else the first on
// PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// Build compiles the command pkg of this module ("examples/e2e") into a
// temporary directory and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if b, err := GoBuild(out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// GoBuild returns the command `go build -o out ./pkg` in the module's root.
func GoBuild(out, pkg string) *exec.Cmd {
	cmd := exec.Command(goTool(), "build", "-o", out, "./"+pkg)
	cmd.Dir = testenv.RepoRoot()
	return cmd
}

// GoRun returns the command `go run ./pkg args...` in the module's root.
func GoRun(pkg string, args ...string) *exec.Cmd {
	cmd := exec.Command(goTool(), append([]string{"run", "./" + pkg}, args...)...)
	cmd.Dir = testenv.RepoRoot()
	return cmd
}
