package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cli/clitest"
)

// `go run` runs the simulator as its child and ends on SIGTERM without
// passing the signal on: the simulator must stop with it, its ports
// closed, instead of serving on with nobody to stop it.
func TestGoRunEndingStopsTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command with go run")
	}
	marker := strconv.FormatInt(time.Now().UnixNano(), 10) // its -seed: found in the child's argument list
	cmd := clitest.GoRun("examples/cloudsim", "-seed", marker)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	clitest.KillOnCleanup(t, cmd.Process.Pid)
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, r) }()
	var info Info
	require.NoError(t, json.Unmarshal([]byte(line), &info))

	var child int
	for _, p := range clitest.ProcessesWithArgs(t, "-seed", marker) {
		if slices.Contains(clitest.Children(t, cmd.Process.Pid), p) {
			child = p
		}
	}
	require.NotZero(t, child, "go run's child, the simulator")
	clitest.KillOnCleanup(t, child)
	ports := clitest.ListeningPorts(t, child)
	want := map[int]bool{}
	for _, u := range []string{info.IAM, info.IAMIdentity, info.IAMPolicy, info.KMS, info.HPCS, info.S3, info.SoftLayer, info.ActivityTracker} {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		p, err := strconv.Atoi(pu.Port())
		require.NoError(t, err)
		want[p] = true
	}
	require.Len(t, want, 8)
	for _, p := range ports {
		delete(want, p)
	}
	require.Empty(t, want, "the child listens on every service's port")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Error(t, cmd.Wait(), "go run ends on SIGTERM")
	require.True(t, clitest.WaitGone(child, 20*time.Second), "the simulator still runs after go run ended")
	clitest.RequireClosed(t, ports)
}
