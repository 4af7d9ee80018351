package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/simscript"
	"github.com/e2eimage/e2eimage/secret"
)

// The tests start simulators, each with a data directory that must be
// gone once it is closed.
// TestMain runs the tests, or, as testdata/script's scripts run it, the
// prepare command itself (see internal/simscript).
func TestMain(m *testing.M) { simscript.Main(m, map[string]func(){"prepare": main}) }

// TestScripts runs testdata/script/*.txtar against simulators started by
// the scripts.
func TestScripts(t *testing.T) { simscript.Run(t, "testdata/script") }

type simEnv struct {
	sim       *cloudsim.Sim
	endpoints string
	vars      map[string]string
}

func startSim(t *testing.T) *simEnv {
	t.Helper()
	sim := clitest.StartSim(t, cloudsim.Options{Seed: 41, ClockSpeed: 2000})
	return &simEnv{sim: sim.Sim, endpoints: sim.Endpoints, vars: map[string]string{"IBMCLOUD_API_KEY": sim.Account.APIKey}}
}

func (s *simEnv) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, clitest.Lookup(s.vars))
	return code, stdout.String(), stderr.String()
}

func TestPrepareAFreshAccount(t *testing.T) {
	s := startSim(t)
	a := s.sim.Account
	base := []string{"-endpoints", s.endpoints, "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-cos-instance", a.COSInstanceCRN}

	// A fresh account: checking finds everything missing and changes
	// nothing.
	code, stdout, stderr := s.run(t, append(base, "-check")...)
	require.Equal(t, 3, code, stderr)
	require.Contains(t, stdout, "MISSING  authorization server-protect -> kms")
	require.Contains(t, stdout, "MISSING  service ID e2eimage-import")
	require.Contains(t, stdout, "fix:")
	require.Contains(t, stdout, "(or prepare without -check)", "the fix names this command")
	require.NotContains(t, stdout, "iam.Client.Setup", "not the library's call")
	require.Contains(t, stdout, "ok       root key")

	// A new API key must have somewhere to go.
	code, _, stderr = s.run(t, base...)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "-save-api-key")

	keyFile := filepath.Join(t.TempDir(), "import.key")
	code, stdout, stderr = s.run(t, append(base, "-save-api-key", keyFile)...)
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stdout, "prepare       done")
	require.Contains(t, stdout, "created authorization")
	require.NotContains(t, stdout, "MISSING")
	require.Contains(t, stdout, "service ID       ServiceId-")
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	key, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.NotContains(t, stdout+stderr, strings.TrimSpace(string(key)), "the key is not printed")

	// Again, with the saved key: nothing is created, everything passes.
	s.vars["E2E_IMPORT_API_KEY"] = strings.TrimSpace(string(key))
	code, stdout, stderr = s.run(t, append(base, "-json")...)
	require.Equal(t, 0, code, stderr)
	var res e2e.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Empty(t, res.IAM.Created, "nothing created the second time")
	for _, c := range res.Preflight {
		require.True(t, c.OK, c.Name)
	}
}

// TestMissingBucketCreatesNothing: a bucket that does not exist stops the
// preparation before any authorization, service ID, key or access policy
// is created (exit 3, naming the bucket).
func TestMissingBucketCreatesNothing(t *testing.T) {
	s := startSim(t)
	a := s.sim.Account
	base := []string{"-endpoints", s.endpoints, "-root-key-crn", a.RootKeyCRN, "-bucket", "no-such-bucket", "-cos-instance", a.COSInstanceCRN}
	keyFile := filepath.Join(t.TempDir(), "import.key")
	code, stdout, stderr := s.run(t, append(base, "-save-api-key", keyFile)...)
	require.Equal(t, 3, code, stdout+stderr)
	require.Contains(t, stderr, "bucket no-such-bucket not found")
	require.Contains(t, stderr, "nothing was created")
	require.NotContains(t, stdout, "created")
	require.NoFileExists(t, keyFile)

	code, stdout, stderr = s.run(t, append(base, "-check")...)
	require.Equal(t, 3, code, stderr)
	require.Contains(t, stdout, "MISSING  authorization server-protect -> kms")
	require.Contains(t, stdout, "MISSING  service ID e2eimage-import")
}

func TestHelpAndUsage(t *testing.T) {
	s := &simEnv{vars: map[string]string{}}
	code, _, stderr := s.run(t, "-help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "Usage: prepare")
	require.Contains(t, stderr, "-save-api-key")
	code, _, _ = s.run(t, "-root-key-crn", "x")
	require.Equal(t, 2, code)
	code, _, stderr = s.run(t, "-root-key-crn", "x", "-bucket", "b", "-service-id", "")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "IBMCLOUD_API_KEY")
}

// apiKeys counts the API keys of the service ID called name, through IAM's
// list API.
func (s *simEnv) apiKeys(t *testing.T, name string) int {
	t.Helper()
	ep, err := ibmcloud.LoadEndpoints(s.endpoints)
	require.NoError(t, err)
	cl, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(s.sim.Account.APIKey), RootKeyCRN: s.sim.Account.RootKeyCRN, Endpoints: ep})
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sid, err := cl.IAM.FindServiceID(ctx, name)
	require.NoError(t, err)
	if sid == nil {
		return 0
	}
	keys, err := cl.IAM.APIKeys(ctx, sid.IAMID)
	require.NoError(t, err)
	return len(keys)
}

// The same command run twice creates one API key: the second run uses the
// key the first saved. A file holding a key that is not the service ID's
// makes the command refuse before it creates anything.
func TestSaveAPIKeyTwiceCreatesOneKey(t *testing.T) {
	s := startSim(t)
	a := s.sim.Account
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "import.key")
	args := []string{"-endpoints", s.endpoints, "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-cos-instance", a.COSInstanceCRN,
		"-save-api-key", keyFile}

	code, stdout, stderr := s.run(t, args...)
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stderr, "saved the new API key")
	require.Equal(t, 1, s.apiKeys(t, "e2eimage-import"))
	saved, err := os.ReadFile(keyFile)
	require.NoError(t, err)

	code, stdout, stderr = s.run(t, args...)
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stderr, "using the API key saved in "+keyFile)
	require.NotContains(t, stdout, "created")
	require.Equal(t, 1, s.apiKeys(t, "e2eimage-import"), "the second run created no API key")
	again, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.Equal(t, saved, again)

	// Files holding keys that are not the service ID's: the owner's, and
	// one IAM does not know.
	for name, key := range map[string]string{"owner.key": a.APIKey, "unknown.key": "not-a-key-iam-knows-0123456789abcdefghijkl"} {
		other := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(other, []byte(key+"\n"), 0o600))
		code, stdout, stderr = s.run(t, append(args[:len(args)-1], other)...)
		require.Equal(t, 2, code, stdout+stderr)
		require.Contains(t, stderr, "refused before creating anything")
		require.Contains(t, stderr, "move "+other+" away")
		require.NotContains(t, stdout+stderr, key)
		require.Equal(t, 1, s.apiKeys(t, "e2eimage-import"), name)
		b, err := os.ReadFile(other)
		require.NoError(t, err)
		require.Equal(t, key+"\n", string(b))
	}

	// Without -save-api-key, a known key that does not work is refused too:
	// a new key could not be kept.
	s.vars["E2E_IMPORT_API_KEY"] = "not-a-key-iam-knows-0123456789abcdefghijkl"
	code, stdout, stderr = s.run(t, args[:len(args)-2]...)
	require.Equal(t, 2, code, stdout+stderr)
	require.Contains(t, stderr, "no longer authenticates")
	require.Equal(t, 1, s.apiKeys(t, "e2eimage-import"))
}
