package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/internal/simscript"
)

// The tests start simulators, each with a data directory that must be
// gone once it is closed.
// TestMain runs the tests, or, as testdata/script's scripts run it, the
// import command itself (see internal/simscript).
func TestMain(m *testing.M) { simscript.Main(m, map[string]func(){"import": main}) }

// TestScripts runs testdata/script/*.txtar against simulators started by
// the scripts.
func TestScripts(t *testing.T) { simscript.Run(t, "testdata/script") }

type simEnv struct {
	sim       *cloudsim.Sim
	endpoints string
	vars      map[string]string
	dir       string
}

func startSim(t *testing.T, authorized bool) *simEnv {
	t.Helper()
	sim := clitest.StartSim(t, cloudsim.Options{Seed: 51, ClockSpeed: 2000, SeedAuthorizations: authorized})
	return &simEnv{sim: sim.Sim, endpoints: sim.Endpoints, dir: sim.Dir, vars: map[string]string{"IBMCLOUD_API_KEY": sim.Account.APIKey}}
}

func (s *simEnv) run(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, stdin, &stdout, &stderr, clitest.Lookup(s.vars))
	return code, stdout.String(), stderr.String()
}

func (s *simEnv) templates() int {
	n := 0
	for _, ti := range s.sim.SoftLayer.Templates() {
		if ti.ParentID == 0 && ti.Name != cloudsim.SampleTemplate {
			n++
		}
	}
	return n
}

func TestImportAndResume(t *testing.T) {
	s := startSim(t, true)
	a := s.sim.Account
	image := filepath.Join(s.dir, "web-01.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{}))
	state := filepath.Join(s.dir, "web.state.json")
	args := []string{"-endpoints", s.endpoints, "-image", image, "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-state", state}

	code, stdout, stderr := s.run(t, nil, args...)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `template \d+ [0-9a-f-]{36} "web-01" ACTIVE`, stdout)
	require.Contains(t, stdout, "object cos://us-south/"+a.Bucket+"/web-01.vhd-0.vhd")
	require.Contains(t, stderr, "upload        done")
	st, err := e2e.LoadState(state)
	require.NoError(t, err)
	require.True(t, st.TemplateActive)

	code, stdout, stderr = s.run(t, nil, append(args, "-json")...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "upload        resumed")
	require.Contains(t, stderr, "import        resumed")
	var res e2e.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Equal(t, st.TemplateID, res.Template.ID)
	require.Equal(t, 1, s.templates())
}

func TestImportRawStreamWithOwnKey(t *testing.T) {
	s := startSim(t, true)
	a := s.sim.Account
	img, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	require.NoError(t, err)
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	require.NoError(t, err)
	keyFile := filepath.Join(s.dir, "dek.bin")
	require.NoError(t, vhdcrypt.WriteKeyFile(keyFile, dek))
	code, stdout, stderr := s.run(t, bytes.NewReader(img), "-endpoints", s.endpoints, "-image", "-", "-image-size", "8388608", "-os-code", "UBUNTU_22_64",
		"-name", "streamed", "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-key-file", keyFile,
		"-state", filepath.Join(s.dir, "s.json"), "-q")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"streamed" ACTIVE`)
	require.NotContains(t, stderr, "upload: ", "-q hides the progress")
}

func TestImportPreflightFailure(t *testing.T) {
	s := startSim(t, false)
	a := s.sim.Account
	image := filepath.Join(s.dir, "disk.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	code, _, stderr := s.run(t, nil, "-endpoints", s.endpoints, "-image", image, "-root-key-crn", a.RootKeyCRN,
		"-bucket", a.Bucket, "-state", filepath.Join(s.dir, "s.json"))
	require.Equal(t, 3, code, stderr)
	require.Contains(t, stderr, "authorization server-protect -> kms")
	require.Contains(t, stderr, "nothing was uploaded")
	require.Zero(t, s.templates())
}

func TestHelpAndUsage(t *testing.T) {
	s := &simEnv{vars: map[string]string{}}
	code, _, stderr := s.run(t, nil, "-help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "Usage: import")
	code, _, _ = s.run(t, nil, "-image", "x")
	require.Equal(t, 2, code)
	code, _, stderr = s.run(t, nil, "-image", "x", "-root-key-crn", "c", "-bucket", "b")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "IBMCLOUD_API_KEY")
	code, _, _ = s.run(t, nil, "-image", "-", "-root-key-crn", "c", "-bucket", "b")
	require.Equal(t, 2, code, "a stream needs -name")
}

// firstRead closes reading when the first Read of it is made.
type firstRead struct {
	io.Reader
	reading chan struct{}
	once    sync.Once
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(func() { close(f.reading) })
	return f.Reader.Read(p)
}

// watchWriter keeps what is written and closes seen once it holds a match
// of re.
type watchWriter struct {
	mu   sync.Mutex
	b    bytes.Buffer
	re   *regexp.Regexp
	seen chan struct{}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := w.re.Match(w.b.Bytes())
	w.b.Write(p)
	if !had && w.re.Match(w.b.Bytes()) {
		close(w.seen)
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// An interrupt (the context's end) stops an import that waits for its
// image on standard input, which may never come: the interrupt comes once
// the key step is done (the upload, which reads the image, is next) and
// the input has been asked for.
func TestInterruptWhileWaitingForStandardInput(t *testing.T) {
	s := startSim(t, true)
	pr, pw := io.Pipe()
	defer pw.Close() // a pipe nobody writes to
	in := &firstRead{Reader: pr, reading: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &watchWriter{re: regexp.MustCompile(`key +done`), seen: make(chan struct{})}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-endpoints", s.endpoints, "-root-key-crn", s.sim.Account.RootKeyCRN, "-bucket", s.sim.Account.Bucket,
			"-image", "-", "-image-size", fmt.Sprint(sampleimage.MinSize), "-os-code", "UBUNTU_22_64", "-name", "stdin", "-state", filepath.Join(s.dir, "stdin.json"), "-q"},
			in, &stdout, stderr, clitest.Lookup(s.vars))
	}()
	for _, c := range []chan struct{}{stderr.seen, in.reading} {
		select {
		case <-c:
		case code := <-done:
			t.Fatalf("the import ended (%d) before reading its input:\n%s", code, stderr.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 130, code, stderr.String())
		require.Contains(t, stderr.String(), "interrupted")
	case <-time.After(30 * time.Second):
		t.Fatalf("the import still waits for its input after the interrupt:\n%s", stderr.String())
	}
}

// Flags that make no valid plan are named as flags (exit 2), and nothing
// is offered to resume when no state file was written.
func TestInvalidFlagsAreNamedAndNothingToResume(t *testing.T) {
	s := startSim(t, true)
	a := s.sim.Account
	image := filepath.Join(s.dir, "web.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	state := filepath.Join(s.dir, "web.state.json")
	code, _, stderr := s.run(t, nil, "-endpoints", s.endpoints, "-image", image, "-root-key-crn", a.RootKeyCRN,
		"-bucket", a.Bucket, "-state", state, "-service-id", "import-sid")
	require.Equal(t, 2, code, stderr)
	require.Equal(t, "import: invalid flags: -service-id needs -cos-instance, the COS instance its access policy names\n", stderr)
	require.NoFileExists(t, state)

	code, _, stderr = s.run(t, nil, "-endpoints", s.endpoints, "-image", image, "-root-key-crn", "crn:v1:nope",
		"-bucket", a.Bucket, "-state", state)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "import: -root-key-crn: crn: invalid key CRN")

	// A state file that cannot be written: the run fails before
	// recording anything.
	nowhere := filepath.Join(s.dir, "no-such-dir", "web.state.json")
	code, _, stderr = s.run(t, nil, "-endpoints", s.endpoints, "-image", image, "-root-key-crn", a.RootKeyCRN,
		"-bucket", a.Bucket, "-state", nowhere)
	require.Equal(t, 1, code, stderr)
	require.NotContains(t, stderr, "resume")
}
