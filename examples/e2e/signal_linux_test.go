package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cli/clitest"
)

// simRun is examples/e2e in simulator mode reading its image from a pipe
// held open, so that it waits with the simulator running.
type simRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr chan string // its lines; closed at EOF
	all    strings.Builder
}

func startSimRun(t *testing.T, cmd *exec.Cmd, tmp string) *simRun {
	t.Helper()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	delete := func(name string) {
		cmd.Env = slices.DeleteFunc(cmd.Env, func(s string) bool { return strings.HasPrefix(s, name+"=") })
	}
	delete("IBMCLOUD_API_KEY") // simulator mode
	r := &simRun{cmd: cmd, stderr: make(chan string, 100)}
	// Pipes of our own, not StdinPipe and StderrPipe: Wait closes those
	// when go run ends, and the command, its child, would read the end of
	// its input or die of SIGPIPE writing to standard error.
	in, stdin, err := os.Pipe()
	require.NoError(t, err)
	r.stdin = stdin
	t.Cleanup(func() { _ = stdin.Close() })
	pipe, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = pipe.Close() })
	cmd.Stdin, cmd.Stderr = in, w
	require.NoError(t, cmd.Start())
	_, _ = in.Close(), w.Close()
	clitest.KillOnCleanup(t, cmd.Process.Pid)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			r.stderr <- sc.Text()
		}
		close(r.stderr)
	}()
	return r
}

// waitFor returns once a standard error line starts with prefix.
func (r *simRun) waitFor(t *testing.T, prefix string) {
	t.Helper()
	for line := range r.stderr {
		r.all.WriteString(line + "\n")
		if strings.HasPrefix(line, prefix) {
			return
		}
	}
	t.Fatalf("no line %q in standard error:\n%s", prefix, r.all.String())
}

func (r *simRun) rest() string {
	for line := range r.stderr {
		r.all.WriteString(line + "\n")
	}
	return r.all.String()
}

func simArgs(marker string) []string {
	return []string{"-image", "-", "-image-size", strconv.Itoa(8 << 20), "-q", "-name", marker, "-os-code", "UBUNTU_22_64"}
}

// SIGINT and SIGTERM stop the command in simulator mode, also while it
// waits for the image on standard input: it closes the simulator (its
// ports, its data directory, the state directory) and exits 130. It starts
// no other process that could outlive it.
func TestSignalClosesTheSimulator(t *testing.T) {
	bin := builtE2E(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			r := startSimRun(t, exec.Command(bin, simArgs(fmt.Sprintf("sig-%d", time.Now().UnixNano()))...), tmp)
			r.waitFor(t, "[4] upload ...") // blocked reading the image
			pid := r.cmd.Process.Pid
			ports := clitest.ListeningPorts(t, pid)
			require.Len(t, ports, 8, "the in-process simulator's services")
			require.Empty(t, clitest.Children(t, pid), "the simulator runs in the process, not as a child")
			ents, err := os.ReadDir(tmp)
			require.NoError(t, err)
			require.NotEmpty(t, ents, "the simulator's data and the state live in TMPDIR while it runs")

			require.NoError(t, r.cmd.Process.Signal(sig))
			require.True(t, clitest.WaitGone(pid, 20*time.Second), "the command still runs after %v:\n%s", sig, r.all.String())
			stderr := r.rest()
			err = r.cmd.Wait()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "%v\n%s", err, stderr)
			require.Equal(t, exitInterrupted, ee.ExitCode(), stderr)
			require.Contains(t, stderr, "interrupted")
			clitest.RequireClosed(t, ports)
			ents, err = os.ReadDir(tmp)
			require.NoError(t, err)
			require.Empty(t, ents, "the simulator's data directory and the state directory are removed")
		})
	}
}

// `go run` runs the command as its child and ends on SIGTERM without
// passing the signal on: the command must stop with it and close its
// simulator.
func TestGoRunEndingClosesTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command with go run")
	}
	marker := fmt.Sprintf("gorun-%d", time.Now().UnixNano())
	tmp := t.TempDir()
	r := startSimRun(t, clitest.GoRun("examples/e2e", simArgs(marker)...), tmp)
	r.waitFor(t, "[4] upload ...") // blocked reading the image
	var child int
	for _, p := range clitest.ProcessesWithArgs(t, "-name", marker) {
		if slices.Contains(clitest.Children(t, r.cmd.Process.Pid), p) {
			child = p
		}
	}
	require.NotZero(t, child, "go run's child, the command")
	clitest.KillOnCleanup(t, child)
	ports := clitest.ListeningPorts(t, child)
	require.Len(t, ports, 8)

	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	require.Error(t, r.cmd.Wait(), "go run ends on SIGTERM")
	require.True(t, clitest.WaitGone(child, 20*time.Second), "the command still runs after go run ended:\n%s", r.all.String())
	stderr := r.rest() // EOF: every writer of the pipe, the child included, is gone
	require.Contains(t, stderr, "interrupted")
	clitest.RequireClosed(t, ports)
	ents, err := os.ReadDir(tmp)
	require.NoError(t, err)
	names := []string{}
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// go run's own build directory may remain, removed by t.TempDir.
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasPrefix(n, "go-build") })
	require.Empty(t, names, "the simulator's data directory and the state directory are removed")
}
