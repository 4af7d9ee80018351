// Package clitest starts the cloud simulator for the tests of the example
// commands: it writes the simulator's URLs to an endpoints file (as
// examples/cloudsim prints them) and can run the E2E flow once so that a
// command has a state file and a template to work on.
//
// It is for tests only; it does not run the commands themselves (each
// command's run function has its own signature).
package clitest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/secret"
)

// runTimeout bounds the E2E flow of Sim.Run: the simulator's clock runs
// 2000 times faster, a run takes a few seconds even under -race.
const runTimeout = time.Minute

// Sim is a running simulator with its endpoints file.
type Sim struct {
	*cloudsim.Sim
	Endpoints string // path of a JSON file of the simulator's URLs
	Dir       string // a temporary directory for the test's files
}

// StartSim starts a simulator with opts, closed when the test ends, and
// writes its URLs to an endpoints file in a temporary directory.
func StartSim(t testing.TB, opts cloudsim.Options) *Sim {
	t.Helper()
	sim, err := cloudsim.Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	b, err := json.Marshal(sim.URLs)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "endpoints.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return &Sim{Sim: sim, Endpoints: path, Dir: dir}
}

// Run runs the E2E flow with e2e.Run on a sample image, importing it as
// template name and, when server is not nil, ordering that server. It
// records the run in a state file in s.Dir and returns its path.
func (s *Sim) Run(t testing.TB, name string, server *classic.ServerSpec) (state string, res *e2e.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	ep, err := ibmcloud.LoadEndpoints(s.Endpoints)
	require.NoError(t, err)
	key := secret.NewString(s.Account.APIKey)
	cl, err := ibmcloud.Connect(ibmcloud.Config{APIKey: key, RootKeyCRN: s.Account.RootKeyCRN, Endpoints: ep,
		PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond})
	require.NoError(t, err)
	defer cl.Close()
	img, err := sampleimage.Reader(sampleimage.Options{Size: sampleimage.MinSize})
	require.NoError(t, err)
	state = filepath.Join(s.Dir, "state.json")
	res, err = e2e.Run(ctx, e2e.Plan{Image: img, Name: name, OSCode: "UBUNTU_22_64", KeyService: cl.Keys,
		COS: cl.COS, Bucket: s.Account.Bucket, Classic: cl.Classic, ImportAPIKey: key, StatePath: state,
		Server: server, Clock: s.Clock.Now})
	require.NoError(t, err)
	return state, res
}

// Lookup returns an os.LookupEnv replacement that reads vars (nil reads
// as empty).
func Lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// IAMClient returns an IAM client of the simulated account's owner, for
// tests that count what a command created through IAM's list APIs.
func (s *Sim) IAMClient(t testing.TB) *iam.Client {
	t.Helper()
	ep, err := ibmcloud.LoadEndpoints(s.Endpoints)
	require.NoError(t, err)
	cl, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(s.Account.APIKey), RootKeyCRN: s.Account.RootKeyCRN, Endpoints: ep})
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl.IAM
}
