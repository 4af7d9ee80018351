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

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

// The tests start simulators, each with a data directory that must be
// gone once it is closed.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m, testenv.NoStrayTemp(testenv.SimTempPattern)) }

func runMain(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, env{stdout: &stdout, stderr: &stderr, lookup: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	return code, stdout.String(), stderr.String()
}

// The README's main command: no arguments, no account.
func TestNoArgumentsRunsTheWholeFlowOnTheSimulator(t *testing.T) {
	code, stdout, stderr := runMain(t, nil)
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{
		"simulator: a fresh account",
		"[1] prepare       done",
		"created authorization",
		"[2] preflight     done",
		"[3] key           done",
		"[4] upload        done",
		"[5] import        done",
		"[6] wait-template done",
		"[7] order         done",
		"[8] wait-server   done",
		"[9] audit         done",
		"e2e: done in",
	} {
		require.Contains(t, stderr, want)
	}
	for _, want := range []string{"root key", "service ID", "image template", "server", "Audit trail", "kms.secrets.wrap",
		"audit-log.vsi-image-template.create", "audit-log.vsi.provision"} {
		require.Contains(t, stdout, want)
	}
}

func TestJSONResult(t *testing.T) {
	code, stdout, stderr := runMain(t, nil, "-json", "-q", "-hostname", "", "-dek-bits", "256", "-name", "json-demo")
	require.Equal(t, exitOK, code, stderr)
	var res e2e.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	require.Equal(t, "json-demo", res.Name)
	require.Equal(t, "json-demo.vhd-0.vhd", res.Object.Key)
	require.Equal(t, vhdcrypt.AES128XTS, res.Key.DEKSize)
	require.Nil(t, res.Server, "-hostname \"\" orders no server")
	require.NotEmpty(t, res.Template.GlobalIdentifier)
	require.NotEmpty(t, res.Audit)
	require.NotContains(t, stderr, "upload: 100%", "-q hides the progress")
}

func TestHelpAndUsageErrors(t *testing.T) {
	code, _, stderr := runMain(t, nil, "-help")
	require.Equal(t, exitOK, code)
	for _, want := range []string{"Usage:", "IBMCLOUD_API_KEY", "-root-key-crn", "-sim", "-state", "Exit codes"} {
		require.Contains(t, stderr, want)
	}
	code, _, _ = runMain(t, nil, "-no-such-flag")
	require.Equal(t, exitUsage, code)
	code, _, _ = runMain(t, nil, "extra")
	require.Equal(t, exitUsage, code)
	code, _, stderr = runMain(t, nil, "-dek-bits", "128")
	require.Equal(t, exitUsage, code, stderr)

	// IBMCLOUD_API_KEY selects IBM Cloud, which needs more flags.
	code, _, stderr = runMain(t, map[string]string{"IBMCLOUD_API_KEY": "k"})
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-root-key-crn is required")
}

// IBM Cloud mode, pointed at a simulator started separately (as
// examples/cloudsim does), with the image in a file: first without the
// preparation (preflight fails, exit 3, nothing uploaded), then with it,
// then again (everything resumed).
func TestCloudModeAgainstAnExternalSimulator(t *testing.T) {
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 3, ClockSpeed: 2000})
	require.NoError(t, err)
	defer sim.Close()
	dir := t.TempDir()
	endpoints := filepath.Join(dir, "sim.json")
	b, err := json.Marshal(sim.URLs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(endpoints, b, 0o600))
	image := filepath.Join(dir, "disk.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	vars := map[string]string{"IBMCLOUD_API_KEY": sim.Account.APIKey}
	state := filepath.Join(dir, "disk.state.json")
	savedKey := filepath.Join(dir, "import.key")
	args := []string{"-endpoints", endpoints, "-root-key-crn", sim.Account.RootKeyCRN, "-bucket", sim.Account.Bucket,
		"-cos-instance", sim.Account.COSInstanceCRN, "-image", image, "-state", state, "-audit-wait", "0",
		"-hostname", "vsi", "-save-api-key", savedKey}

	code, _, stderr := runMain(t, vars, args...)
	require.Equal(t, exitPreflight, code, stderr)
	require.Contains(t, stderr, "authorization server-protect -> kms")
	require.Contains(t, stderr, "MISSING")
	require.Zero(t, sim.S3.PendingUploads(sim.Account.Bucket))

	code, stdout, stderr := runMain(t, vars, append(args, "-prepare")...)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "[4] upload        done")
	require.Contains(t, stdout, `"disk"`, "the template is named after the image file")
	fi, err := os.Stat(savedKey)
	require.NoError(t, err, "the service ID's new API key was saved")
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	st, err := os.ReadFile(state)
	require.NoError(t, err)
	key, err := os.ReadFile(savedKey)
	require.NoError(t, err)
	require.NotContains(t, string(st), strings.TrimSpace(string(key)))
	require.NotContains(t, string(st), sim.Account.APIKey)

	// Again, with the saved key: nothing is done twice.
	vars["E2E_IMPORT_API_KEY"] = strings.TrimSpace(string(key))
	code, _, stderr = runMain(t, vars, append(args[:len(args)-2], "-prepare")...)
	require.Equal(t, exitOK, code, stderr)
	for _, s := range []string{"key", "upload", "import", "wait-template", "order", "wait-server"} {
		require.Regexp(t, `\] `+s+` +resumed`, stderr)
	}
}
