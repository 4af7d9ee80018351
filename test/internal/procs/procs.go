// Package procs builds this module's commands and runs the cloud simulator
// as a separate process, for the tests that need a process boundary
// (SIGKILL, argv, resource limits, the output of a whole program).
//
// What this package does NOT do: it does not judge the programs' output.
package procs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

// Build compiles the command pkg of this module (e.g. "examples/e2e") into
// dir and returns the binary's path.
func Build(t testing.TB, dir, pkg string) string {
	t.Helper()
	// go test puts the go command of the running toolchain first in
	// PATH.
	goBin := "go"
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, "./"+pkg)
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// SimInfo is the first line examples/cloudsim prints: the service URLs and
// the seeded account.
type SimInfo struct {
	ibmcloud.Endpoints
	AccountID     string `json:"account_id"`
	APIKey        string `json:"api_key"`
	RootKeyCRN    string `json:"root_key_crn"`
	Bucket        string `json:"bucket"`
	Region        string `json:"region"`
	COSInstanceID string `json:"cos_instance_crn"`
	S3SecretKey   string `json:"s3_secret_key"`
}

// Sim is a running examples/cloudsim process.
type Sim struct {
	Info SimInfo
	Line []byte // the first output line as printed
	Cmd  *exec.Cmd
}

// StartSim runs examples/cloudsim (the binary at bin) with a fast clock and
// the E2E authorizations seeded (extra: more flags), and reads its first
// line. The process is
// stopped when the test ends.
func StartSim(t testing.TB, bin string, seed int64, extra ...string) *Sim {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-seed", fmt.Sprint(seed), "-clock-speed", "3000", "-seed-authorizations"}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading the simulator's first line: %v (stderr: %s)", err, stderr.String())
	}
	s := &Sim{Line: line, Cmd: cmd}
	if err := json.Unmarshal(line, &s.Info); err != nil {
		t.Fatalf("the simulator's first line %q: %v", line, err)
	}
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
