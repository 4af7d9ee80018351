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
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/internal/simscript"
	"github.com/e2eimage/e2eimage/secret"
)

// The tests start simulators, each with a data directory that must be
// gone once it is closed.
// TestMain runs the tests, or, as testdata/script's scripts run it, the
// e2e command itself (see internal/simscript).
func TestMain(m *testing.M) { simscript.Main(m, map[string]func(){"e2e": main}) }

// TestScripts runs testdata/script/*.txtar against simulators started by
// the scripts.
func TestScripts(t *testing.T) { simscript.Run(t, "testdata/script") }

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
	code, stdout, stderr := runMain(t, nil, "-json", "-q", "-hostname", "", "-name", "json-demo")
	require.Equal(t, exitOK, code, stderr)
	var res e2e.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	require.Equal(t, "json-demo", res.Name)
	require.Equal(t, "json-demo.vhd-0.vhd", res.Object.Key)
	require.Equal(t, vhdcrypt.AES128XTS, res.Key.DEKSize, "the default DEK: 32 bytes")
	require.Equal(t, e2e.DEKKeyService, res.Key.DEKSource, "made by the key service")
	require.Contains(t, stdout, `"dek_size": 32`)
	require.Contains(t, stdout, `"dek_source": "key-service"`)
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

}

// The flags choose the mode, never IBMCLOUD_API_KEY (which ibmcloud CLI
// users often have set); the first line says which mode runs, and a
// missing IBM Cloud flag is reported with the way to the simulator.
func TestModeFromFlagsNamedOnTheFirstLine(t *testing.T) {
	withKey := map[string]string{"IBMCLOUD_API_KEY": "a-key-of-the-ibmcloud-cli"}
	code, _, stderr := runMain(t, withKey, "-hostname", "", "-q")
	require.Equal(t, exitOK, code, stderr)
	first, _, _ := strings.Cut(stderr, "\n")
	require.True(t, strings.HasPrefix(first, "e2e: simulator mode:"), first)
	require.NotContains(t, first, "-image", "-image is a flag of both modes, not one that selects IBM Cloud")
	require.Contains(t, first, "IBMCLOUD_API_KEY is set but not used")
	require.Contains(t, stderr, "simulator: a fresh account")

	code, _, stderr = runMain(t, withKey, "-bucket", "images")
	require.Equal(t, exitUsage, code)
	first, rest, _ := strings.Cut(stderr, "\n")
	require.Equal(t, "e2e: IBM Cloud mode (-bucket given): the real services, in your account (-sim runs the local simulator instead)", first)
	require.Contains(t, rest, "-root-key-crn is required in IBM Cloud mode (for the local simulator instead, no account needed: -sim")

	code, _, stderr = runMain(t, withKey, "-sim=false")
	require.Equal(t, exitUsage, code)
	require.True(t, strings.HasPrefix(stderr, "e2e: IBM Cloud mode (-sim=false)"), stderr)
	require.Contains(t, stderr, "-sim")

	code, _, stderr = runMain(t, nil, "-sim=false")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "no API key: set IBMCLOUD_API_KEY or give -api-key-file (for the local simulator instead")

	code, _, stderr = runMain(t, nil, "-sim", "-root-key-crn", "crn:x")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-root-key-crn is for IBM Cloud")
	code, _, stderr = runMain(t, nil, "-bucket", "b", "-clock-speed", "5")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-clock-speed is for the simulator")

	code, _, stderr = runMain(t, nil, "-help")
	require.Equal(t, exitOK, code)
	require.Contains(t, stderr, "the environment never selects it")
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
	require.Contains(t, stderr, "(or -prepare)", "the fix names this command's flag")
	for _, lib := range []string{"iam.Client.Setup", "Plan.", "ImportAPIKey", "Prepare with"} {
		require.NotContains(t, stderr, lib, "the library's names, not this command's flags")
	}
	require.Contains(t, stderr, "give the service ID's API key (-import-api-key-file), or -prepare to make one")
	// A bad flag is one line pointing to -help, not the usage.
	code, _, stderr = runMain(t, vars, "-no-such-flag")
	require.Equal(t, exitUsage, code)
	require.Equal(t, "e2e: flag provided but not defined: -no-such-flag (e2e -help lists the flags)\n", stderr)
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

// readmeSim is a simulator and an account prepared as README.md says:
// examples/prepare -root-key-crn CRN -bucket BUCKET -cos-instance COS_CRN
// -save-api-key import.key (here through e2e.Prepare, which it runs).
type readmeSim struct {
	*clitest.Sim
	vars      map[string]string
	importKey string // the saved key file
}

func prepareAsREADME(t *testing.T, seed int64) *readmeSim {
	t.Helper()
	sim := clitest.StartSim(t, cloudsim.Options{Seed: seed, ClockSpeed: 2000})
	a := sim.Account
	ep, err := ibmcloud.LoadEndpoints(sim.Endpoints)
	require.NoError(t, err)
	cl, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(a.APIKey), RootKeyCRN: a.RootKeyCRN, COSInstance: a.COSInstanceCRN, Endpoints: ep})
	require.NoError(t, err)
	defer cl.Close()
	keyFile := filepath.Join(sim.Dir, "import.key")
	_, err = e2e.Prepare(context.Background(), e2e.Plan{
		KeyService: cl.Keys, IAM: cl.IAM, COS: cl.COS, Classic: cl.Classic, Bucket: a.Bucket, OSCode: "UBUNTU_22_64",
		COSInstanceID: a.COSInstanceCRN, Prepare: true, ServiceID: iam.ServiceIDSpec{Name: "e2eimage-import"},
		SaveAPIKey: func(_ context.Context, _ iam.ServiceID, _ string, key *secret.String) error {
			return ibmcloud.WriteSecretFile(keyFile, key)
		},
	})
	require.NoError(t, err)
	return &readmeSim{Sim: sim, vars: map[string]string{"IBMCLOUD_API_KEY": a.APIKey}, importKey: keyFile}
}

// args is README.md's examples/e2e command, pointed at the simulator.
func (s *readmeSim) args(t *testing.T, extra ...string) []string {
	t.Helper()
	image := filepath.Join(s.Dir, "disk.raw")
	if _, err := os.Stat(image); err != nil {
		require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	}
	return append([]string{"-endpoints", s.Endpoints, "-image", image, "-root-key-crn", s.Account.RootKeyCRN,
		"-bucket", s.Account.Bucket, "-import-api-key-file", s.importKey, "-hostname", "web", "-domain", "example.com",
		"-logs-url", s.URLs.ActivityTracker, "-audit-wait", "0", "-state", filepath.Join(s.Dir, "disk.e2e-state.json")}, extra...)
}

// README.md's IBM Cloud command: without the COS instance the command says
// which flag is missing, before anything is done (and offers no resume, as
// nothing was recorded); with it, the whole flow runs.
func TestREADMECloudCommand(t *testing.T) {
	s := prepareAsREADME(t, 61)
	state := filepath.Join(s.Dir, "disk.e2e-state.json")

	code, _, stderr := runMain(t, s.vars, s.args(t)...)
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "-cos-instance")
	require.NotContains(t, stderr, "COSInstanceID")
	require.NotContains(t, stderr, "ServiceID")
	require.NotContains(t, stderr, "resume")
	require.NoFileExists(t, state)

	code, stdout, stderr := runMain(t, s.vars, s.args(t, "-cos-instance", s.Account.COSInstanceCRN)...)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "[7] order         done")
	require.Contains(t, stdout, "web.example.com")
	require.Contains(t, stdout, "audit-log.vsi.provision")
	require.FileExists(t, state)
}

// An invalid plan is told in the command's flags and exits 2.
func TestInvalidPlanNamesFlags(t *testing.T) {
	s := prepareAsREADME(t, 62)
	code, _, stderr := runMain(t, s.vars, s.args(t, "-cos-instance", s.Account.COSInstanceCRN, "-name", " web")...)
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, `e2e: invalid flags: -name " web" has surrounding white space`)
	require.NotContains(t, stderr, "resume")
	require.NotContains(t, stderr, "invalid plan")
}

// A failed run offers to resume only when it recorded something: a
// failure before the state file exists says nothing of resuming; one after
// names the state file, and running the command again resumes.
func TestResumeOfferedOnlyWithAStateFile(t *testing.T) {
	s := prepareAsREADME(t, 63)
	state := filepath.Join(s.Dir, "disk.e2e-state.json")
	args := s.args(t, "-cos-instance", s.Account.COSInstanceCRN, "-hostname", "")

	// Interrupted before the first step.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, env{stdout: &stdout, stderr: &stderr, lookup: clitest.Lookup(s.vars)})
	require.Equal(t, exitInterrupted, code, stderr.String())
	require.NoFileExists(t, state)
	require.Contains(t, stderr.String(), "interrupted before the run recorded anything")
	require.NotContains(t, stderr.String(), "state")

	// A state file that cannot be written.
	nowhere := filepath.Join(s.Dir, "no-such-dir", "disk.e2e-state.json")
	code, _, errText := runMain(t, s.vars, append(args, "-state", nowhere)...)
	require.Equal(t, exitFailure, code, errText)
	require.NoFileExists(t, nowhere)
	require.NotContains(t, errText, "resume")

	// The import fails once the image is uploaded: the state records it.
	imp := s.Faults.Add(faults.Rule{Service: cloudsim.ServiceSoftLayer, PathContains: "createFromIcos", Kind: faults.Status, Status: 400})
	code, _, errText = runMain(t, s.vars, args...)
	require.Equal(t, exitFailure, code, errText)
	require.Contains(t, errText, "[5] import        failed")
	require.FileExists(t, state)
	require.Contains(t, errText, "run the same command again to resume (state: "+state+")")
	s.Faults.Remove(imp)

	code, _, errText = runMain(t, s.vars, args...)
	require.Equal(t, exitOK, code, errText)
	require.Regexp(t, `\] upload +resumed`, errText)
}

// The same -prepare -save-api-key command run again, for another image
// (another state file), uses the key it saved: the service ID keeps one
// API key, and the run does not fail on the existing file.
func TestPrepareSaveAPIKeyRunTwiceMakesOneKey(t *testing.T) {
	sim := clitest.StartSim(t, cloudsim.Options{Seed: 64, ClockSpeed: 2000})
	a := sim.Account
	image := filepath.Join(sim.Dir, "disk.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	keyFile := filepath.Join(sim.Dir, "import.key")
	vars := map[string]string{"IBMCLOUD_API_KEY": a.APIKey}
	args := []string{"-endpoints", sim.Endpoints, "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-cos-instance", a.COSInstanceCRN,
		"-image", image, "-state", filepath.Join(sim.Dir, "state.json"), "-audit-wait", "0", "-prepare", "-save-api-key", keyFile}
	keys := func() int {
		ctx := context.Background()
		sid, err := sim.IAMClient(t).FindServiceID(ctx, "e2eimage-import")
		require.NoError(t, err)
		require.NotNil(t, sid)
		list, err := sim.IAMClient(t).APIKeys(ctx, sid.IAMID)
		require.NoError(t, err)
		return len(list)
	}

	code, _, stderr := runMain(t, vars, args...)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, 1, keys())
	code, _, stderr = runMain(t, vars, append(args, "-name", "disk2", "-state", filepath.Join(sim.Dir, "state2.json"))...)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "using the API key saved in "+keyFile)
	require.Equal(t, 1, keys(), "the second run made no API key")
}

// TestEndpointsModeLine: -endpoints naming loopback URLs (a simulator
// started by examples/cloudsim) is not called IBM Cloud and its real
// services; endpoints elsewhere are named as the file's.
func TestEndpointsModeLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ep map[string]string) string {
		b, err := json.Marshal(ep)
		require.NoError(t, err)
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	all := map[string]string{}
	for _, k := range []string{"iam", "iam_identity", "iam_policy", "kms", "hpcs", "s3", "softlayer", "activity_tracker"} {
		all[k] = "http://127.0.0.1:1"
	}
	local := write("sim.json", all)
	code, _, stderr := runMain(t, nil, "-endpoints", local)
	require.Equal(t, exitUsage, code, stderr)
	first, _, _ := strings.Cut(stderr, "\n")
	require.Equal(t, "e2e: local endpoints mode (-endpoints given): the services at the loopback URLs in "+local+
		" (such as examples/cloudsim), on this machine (-sim runs the local simulator instead)", first)
	require.NotContains(t, first, "IBM Cloud")

	partial := write("partial.json", map[string]string{"iam": "http://localhost:9/", "s3": "http://[::1]:9"})
	_, _, stderr = runMain(t, nil, "-endpoints", partial)
	first, _, _ = strings.Cut(stderr, "\n")
	require.Contains(t, first, "local endpoints mode")
	require.Contains(t, first, "and IBM Cloud for those it does not name (kms, softlayer)")

	remote := write("remote.json", map[string]string{"iam": "https://private.iam.cloud.ibm.com", "s3": "http://127.0.0.1:9"})
	_, _, stderr = runMain(t, nil, "-endpoints", remote)
	first, _, _ = strings.Cut(stderr, "\n")
	require.Equal(t, "e2e: IBM Cloud mode (-endpoints given): the services at the URLs in "+remote+
		" (IBM Cloud's public endpoints for those it does not name), in the account of your API key (-sim runs the local simulator instead)", first)
}
