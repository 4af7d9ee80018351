package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
)

var checkNames = []string{ibmcloud.CheckIAMToken, ibmcloud.CheckRootKey, ibmcloud.CheckBucket, ibmcloud.CheckOSCodes, ibmcloud.CheckEventLog, ibmcloud.CheckCloudLogs}

func TestCheckOnTheEmbeddedSimulator(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures")
	code, stdout, stderr := runMain(t, nil, "-check", "-save-fixtures", dir)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "checking the simulator")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	for _, name := range checkNames {
		found := false
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
				require.Equal(t, "ok", f[1], l)
				found = true
			}
		}
		require.True(t, found, "no report line for %s:\n%s", name, stdout)
	}
	require.NotContains(t, stdout, "[1] prepare", "the check runs no step of the flow")

	// The same seed gives the same account: its secrets must not be in the
	// fixtures.
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 1})
	require.NoError(t, err)
	a := sim.Account
	require.NoError(t, sim.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(entries), len(checkNames), "one fixture per call at least")
	require.Contains(t, stderr, "wrote "+strconv.Itoa(len(entries))+" scrubbed responses")
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		require.NoError(t, err)
		require.True(t, json.Valid(b), en.Name())
		for _, sec := range []string{a.APIKey, a.AccountID, a.S3SecretKey} {
			require.NotContains(t, string(b), sec, en.Name())
		}
	}

	// A second run refuses to replace them.
	code, _, stderr = runMain(t, nil, "-check", "-save-fixtures", dir)
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "exists")
}

func TestCheckJSONReport(t *testing.T) {
	code, stdout, stderr := runMain(t, nil, "-check", "-json")
	require.Equal(t, exitOK, code, stderr)
	var rep ibmcloud.CheckReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Len(t, rep.Calls, len(checkNames))
	for i, c := range rep.Calls {
		require.Equal(t, checkNames[i], c.Name)
		require.Equal(t, ibmcloud.CheckOK, c.Status, c.Error)
		require.Positive(t, c.Duration)
	}
}

func TestCheckUsage(t *testing.T) {
	code, _, stderr := runMain(t, nil, "-save-fixtures", t.TempDir())
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-save-fixtures needs -check")

	code, _, stderr = runMain(t, map[string]string{"IBMCLOUD_API_KEY": "k"}, "-check", "-sim=false")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "E2E_ROOT_KEY_CRN")
	require.NotContains(t, stderr, "-image is required", "the check needs no image")

	code, _, stderr = runMain(t, nil, "-check", "-sim=false")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "no API key")
}

// IBM Cloud mode pointed at a simulator started separately, configured
// through the environment variables the live tests read.
func TestCheckFromEnvironmentAgainstAnExternalSimulator(t *testing.T) {
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 4})
	require.NoError(t, err)
	defer sim.Close()
	endpoints := filepath.Join(t.TempDir(), "sim.json")
	u := sim.URLs
	u.ActivityTracker = "" // from E2E_LOGS_URL instead
	b, err := json.Marshal(u)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(endpoints, b, 0o600))
	vars := map[string]string{
		"IBMCLOUD_API_KEY": sim.Account.APIKey, "E2E_ROOT_KEY_CRN": sim.Account.RootKeyCRN,
		"E2E_BUCKET": sim.Account.Bucket, "E2E_COS_INSTANCE": sim.Account.COSInstanceCRN, "E2E_LOGS_URL": sim.URLs.ActivityTracker,
	}
	code, stdout, stderr := runMain(t, vars, "-check", "-endpoints", endpoints, "-json")
	require.Equal(t, exitOK, code, stderr)
	require.NotContains(t, stderr+stdout, sim.Account.APIKey, "the API key is never printed")
	var rep ibmcloud.CheckReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	for _, c := range rep.Calls {
		require.Equal(t, ibmcloud.CheckOK, c.Status, "%s: %s", c.Name, c.Error)
	}
	require.Contains(t, rep.Calls[2].Detail, sim.Account.Bucket, "E2E_BUCKET was used")

	// A bucket that is not Regional fails its call, and the command.
	vars["E2E_BUCKET"] = cloudsim.CrossRegionBucket
	code, stdout, stderr = runMain(t, vars, "-check", "-endpoints", endpoints)
	require.Equal(t, exitFailure, code)
	require.Regexp(t, `bucket +failed`, stdout)
	require.Contains(t, stderr, "1 of 6 calls failed (bucket)")
}
