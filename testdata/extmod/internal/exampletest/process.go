package exampletest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// simulator is the path of the examples/cloudsim executable, built once
// per test binary.
var simulator struct {
	once sync.Once
	path string
	err  error
}

// moduleDir is the working directory the test binary started in, a
// package directory of this module, where the go command finds go.mod's
// tools even after a test has changed directory.
var moduleDir, _ = os.Getwd()

// simulatorPath builds examples/cloudsim, a tool of this module (go.mod's
// tool line), and returns the path of the executable in the build cache.
// "go tool -n" builds it like "go run" would, but prints the path instead
// of running it, so that the simulator runs as this process's own child
// and stops when told to, rather than as a grandchild behind the go
// command.
func simulatorPath() (string, error) {
	simulator.once.Do(func() {
		cmd := exec.Command("go", "tool", "-n", "github.com/e2eimage/e2eimage/examples/cloudsim")
		cmd.Dir = moduleDir
		out, err := cmd.Output()
		if err != nil {
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			simulator.err = fmt.Errorf("building examples/cloudsim: %w", err)
			return
		}
		simulator.path = strings.TrimSpace(string(out))
	})
	return simulator.path, simulator.err
}

// lockedBuffer collects a process's standard error.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartSimulator starts the local cloud simulator (examples/cloudsim of
// github.com/e2eimage/e2eimage) as a separate process, stops it when the
// test ends, and returns the JSON object it prints first: the service URLs
// and the seeded account.
func StartSimulator(tb testing.TB, s Sim) map[string]string {
	tb.Helper()
	path, err := simulatorPath()
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{"-seed", strconv.FormatInt(s.Seed, 10)}
	if s.ClockSpeed > 0 {
		args = append(args, "-clock-speed", strconv.FormatFloat(s.ClockSpeed, 'g', -1, 64))
	}
	if s.SeedAuthorizations {
		args = append(args, "-seed-authorizations")
	}
	cmd := exec.Command(path, args...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting the simulator: %v", err)
	}
	tb.Cleanup(func() {
		// SIGINT: the simulator stops its services and exits 0.
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			_ = cmd.Process.Kill()
		}
		if err := cmd.Wait(); err != nil {
			tb.Errorf("the simulator did not stop cleanly: %v\n%s", err, stderr)
		}
	})
	type result struct {
		line string
		err  error
	}
	first := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		first <- result{line, err}
	}()
	var r result
	select {
	case r = <-first:
	case <-time.After(time.Minute):
		tb.Fatalf("the simulator printed nothing within a minute:\n%s", stderr)
	}
	if r.err != nil {
		tb.Fatalf("reading the simulator's first line: %v\n%s", r.err, stderr)
	}
	var info map[string]string
	if err := json.Unmarshal([]byte(r.line), &info); err != nil {
		tb.Fatalf("the simulator's first line %q: %v", r.line, err)
	}
	return info
}

// SampleDisk writes a disk image the simulated import accepts to a new file
// in the test's temporary directory, with examples/cloudsim -sample-disk,
// and returns its path.
func SampleDisk(tb testing.TB) string {
	tb.Helper()
	path, err := simulatorPath()
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), "sample-disk.raw")
	if out, err := exec.Command(path, "-sample-disk", p).CombinedOutput(); err != nil {
		tb.Fatalf("examples/cloudsim -sample-disk: %v\n%s", err, out)
	}
	return p
}
