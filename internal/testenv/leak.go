package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// SimTempPattern matches the data directories the cloud simulator's object
// store makes in the temporary directory (internal/cloudsim/s3sim). Every
// one must be gone when the simulator that made it is closed.
const SimTempPattern = "cloudsim-s3-*"

// Option adds a check to VerifyTestMain.
type Option func(*mainConfig)

type mainConfig struct {
	strayPatterns []string
}

// NoStrayTemp makes VerifyTestMain run the tests with the temporary
// directory (TMPDIR, and TMP and TEMP for Windows) pointing at a new
// directory of their own, inherited by any process they start, and fail the
// run when an entry matching one of patterns (filepath.Match syntax, such as
// SimTempPattern) is left in it. The directory is removed afterwards either
// way. A directory of its own keeps the check exact while other test
// binaries run in parallel.
func NoStrayTemp(patterns ...string) Option {
	return func(c *mainConfig) { c.strayPatterns = append(c.strayPatterns, patterns...) }
}

// VerifyTestMain runs the tests of m and exits, failing the run if
// goroutines are left over, as goleak.VerifyTestMain does, but first closes
// the idle connections of http.DefaultTransport. SDKs that use the default
// transport (keyprotect-go-client's token source, go-sdk-core) keep
// keep-alive connections, whose reader goroutines would otherwise count as
// leaks. Leaks are looked for only when the tests passed. opts add checks
// (NoStrayTemp).
func VerifyTestMain(m *testing.M, opts ...Option) {
	os.Exit(RunTestMain(m, opts...))
}

// RunTestMain is VerifyTestMain without the exit: it runs the tests of m
// with the checks and returns the exit code, for a TestMain that hands m
// to another runner (testscript.Main) through a TestingM of its own.
func RunTestMain(m *testing.M, opts ...Option) int {
	var c mainConfig
	for _, o := range opts {
		o(&c)
	}
	return runMain(m, c)
}

func runMain(m *testing.M, c mainConfig) int {
	var tmp string
	if len(c.strayPatterns) > 0 {
		var err error
		if tmp, err = privateTempDir(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
	}
	code := m.Run()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	if tmp != "" {
		stray, err := StrayEntries(tmp, c.strayPatterns...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			code = 1
		}
		for _, s := range stray {
			fmt.Fprintf(os.Stderr, "testenv: the tests left %s in the temporary directory\n", s)
			code = 1
		}
	}
	return code
}

// privateTempDir makes a new directory in the temporary directory and makes
// it the temporary directory of this process and of the processes it starts.
func privateTempDir() (string, error) {
	dir, err := os.MkdirTemp("", "e2eimage-test-*")
	if err != nil {
		return "", fmt.Errorf("making a temporary directory for the tests: %w", err)
	}
	for _, v := range []string{"TMPDIR", "TMP", "TEMP"} {
		if err := os.Setenv(v, dir); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("setting %s: %w", v, err)
		}
	}
	return dir, nil
}

// StrayEntries lists the entries of dir whose names match one of patterns.
func StrayEntries(dir string, patterns ...string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(dir, p))
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		out = append(out, m...)
	}
	return out, nil
}
