// Package versitygw runs a versitygw S3 server (github.com/versity/versitygw)
// on the loopback interface for tests: a real S3 implementation in its own
// process, backed by a temporary directory, so that COS client code is tested
// against something other than a fake written by the same people.
//
// The binary is found with testenv.Versitygw: a test that needs it fails under
// CI when it is missing and is skipped elsewhere.
//
// What this package does NOT do: it does not serve TLS, does not configure
// IAM users other than the root account, and does not emulate IBM-specific
// behaviour (versitygw answers GetBucketLocation with an empty constraint and
// ignores the ibm-sse-kp-* headers); use the cloud simulator for those.
package versitygw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/testenv"
)

// Credentials and region of every server Start runs. They are test values,
// not secrets.
const (
	AccessKey = "e2eimage-test-access"
	SecretKey = "e2eimage-test-secret"
	// Region is the region the server signs for; a client must sign for the
	// same region or its requests are refused.
	Region = "us-south"
)

// startTimeout bounds how long Start waits for the server to answer.
const startTimeout = 20 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before it kills.
const stopTimeout = 5 * time.Second

// Server is a running versitygw process.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string
	// Dir is the posix backend's root: each subdirectory is a bucket.
	Dir string

	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	werr   error
	stopMu sync.Mutex
}

// Start runs versitygw with the posix backend on a fresh temporary
// directory, waits until it answers HTTP on 127.0.0.1, and registers its
// shutdown with tb.Cleanup. It fails the test when the server does not come
// up; the server's output is logged then.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := testenv.Versitygw(tb)
	dir := tb.TempDir()

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("versitygw: choosing a port: %v", err)
		}
		s, err := start(bin, dir, port)
		if err == nil {
			tb.Cleanup(func() {
				if err := s.Stop(); err != nil {
					tb.Errorf("versitygw: %v\n%s", err, s.out.String())
				}
			})
			return s
		}
		lastErr = err
		// Another process may have taken the port between freePort and
		// the server's bind; try a new one.
	}
	tb.Fatalf("versitygw: %v", lastErr)
	return nil
}

func start(bin, dir string, port int) (*Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The credentials are test constants; passing them in argv is fine here.
	cmd := exec.Command(bin,
		"--access", AccessKey, "--secret", SecretKey,
		"--region", Region, "--port", addr,
		"posix", dir)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{URL: "http://" + addr, Dir: dir, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		s.werr = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w\noutput:\n%s", err, out.String())
	}
	return s, nil
}

// waitReady polls the server until it answers any HTTP response (an
// unsigned request gets 403, which is fine) or exits.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			client.CloseIdleConnections()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("server exited before answering: %v", s.werr)
		case <-ctx.Done():
			return fmt.Errorf("server did not answer on %s within %v", s.URL, startTimeout)
		case <-tick.C:
		}
	}
}

// Stop terminates the server (SIGTERM, then SIGKILL after a grace period)
// and waits for it to exit. It is called by the cleanup Start registers and
// is safe to call more than once.
func (s *Server) Stop() error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = s.cmd.Process.Kill()
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("server did not stop within %v after SIGTERM; killed", stopTimeout)
	}
	return nil
}

// Output returns what the server has written to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the log bounded: a long test must not grow it without limit.
	const max = 1 << 20
	if b.b.Len() > max {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
