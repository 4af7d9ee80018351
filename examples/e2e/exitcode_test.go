package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cli/clitest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// builtE2E builds the command once per test binary, into the temporary
// directory the tests run in (removed after them).
func builtE2E(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the command")
	}
	binOnce.Do(func() {
		var dir string
		if dir, binErr = os.MkdirTemp("", "e2e-bin-*"); binErr != nil {
			return
		}
		cmd := clitest.GoBuild(filepath.Join(dir, "e2e"), "examples/e2e")
		var out []byte
		if out, binErr = cmd.CombinedOutput(); binErr == nil {
			binPath = filepath.Join(dir, "e2e")
		} else {
			binErr = errors.New(string(out))
		}
	})
	require.NoError(t, binErr)
	return binPath
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	cmd.Env = slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "IBMCLOUD_API_KEY=") })
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}

// The exit codes README.md and -help document are the built program's:
// under go run the same usage error (2) arrives as 1, which is why the
// README runs the built commands wherever exit codes matter.
func TestExitCodesAreTheBuiltProgramsNotGoRuns(t *testing.T) {
	bin := builtE2E(t)
	require.Equal(t, exitUsage, exitCode(t, exec.Command(bin, "-sim=false")))
	require.Equal(t, 1, exitCode(t, clitest.GoRun("examples/e2e", "-sim=false")))
}
