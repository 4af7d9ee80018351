package s3sim_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/s3sim"
)

// ownerHelperEnv makes the test binary act as a simulator process that
// makes its data directory, says so, and waits to be killed.
const ownerHelperEnv = "S3SIM_OWNER_HELPER"

func newServer(t testing.TB) *s3sim.Server {
	t.Helper()
	iam, err := iamsim.New(iamsim.Config{AccountID: acct, OwnerAPIKey: ownerKey})
	require.NoError(t, err)
	s, err := s3sim.New(s3sim.Config{AccountID: acct, InstanceID: cosGUID, InstanceCRN: cosCRN, Identity: iam, Authz: iam})
	require.NoError(t, err)
	return s
}

func ownerHelper() {
	s := newServer(&fatalTB{})
	defer s.Close()
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // killed before any input
}

// fatalTB is the testing.TB of the helper process: a failure exits it.
type fatalTB struct{ testing.TB }

func (fatalTB) Helper()                           {}
func (fatalTB) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (fatalTB) FailNow()                          { os.Exit(3) }

func simDirs(t *testing.T, tmp string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(tmp, s3sim.TempDirPattern))
	require.NoError(t, err)
	return m
}

// A simulator killed with SIGKILL cannot remove its data directory; the
// next one started in the same temporary directory does, and leaves alone
// the directories of simulators still running and of one being made.
func TestKilledSimulatorsDirectoryIsRemovedByTheNext(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the sweep relies on flock(2); checked on Linux")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ownerHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	killed := simDirs(t, tmp)
	require.Len(t, killed, 1, "the helper made one data directory")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	_ = stdin.Close()
	require.DirExists(t, killed[0], "a killed simulator leaves its directory")

	// A running simulator's directory: its owner file is locked (here by
	// another open file of this process, which flock treats alike).
	live := s3sim.TempDirPattern[:len(s3sim.TempDirPattern)-1] + "live"
	require.NoError(t, os.Mkdir(filepath.Join(tmp, live), 0o700))
	f, err := os.Create(filepath.Join(tmp, live, "owner.lock"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	// A directory being made: no owner file yet.
	young := s3sim.TempDirPattern[:len(s3sim.TempDirPattern)-1] + "young"
	require.NoError(t, os.Mkdir(filepath.Join(tmp, young), 0o700))

	s := newServer(t)
	require.NoDirExists(t, killed[0], "New removed the killed simulator's directory")
	require.DirExists(t, filepath.Join(tmp, live))
	require.DirExists(t, filepath.Join(tmp, young))
	require.Len(t, simDirs(t, tmp), 3, "live, young and the new server's")
	require.NoError(t, s.Close())
	require.ElementsMatch(t, []string{filepath.Join(tmp, live), filepath.Join(tmp, young)}, simDirs(t, tmp),
		"Close removed the server's own directory")
}
