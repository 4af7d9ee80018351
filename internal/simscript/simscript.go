// Package simscript runs the example commands' testscript scripts
// (testdata/script/*.txtar) against the local cloud simulator, started in
// the test's own process by a script command, so that a script reads like
// a session at a shell: start a simulator, run the command as a user
// would, look at its output, exit code and files.
//
// Commands a script gets (besides testscript's own):
//
//	cloudsim [-seed N] [-seed-authorizations] FILE
//	    starts a simulator with a fresh account, stopped when the script
//	    ends, writes FILE as examples/cloudsim's first line (the JSON that
//	    -endpoints reads) and sets $IBMCLOUD_API_KEY, $ROOT_KEY_CRN,
//	    $BUCKET, $COS_INSTANCE_CRN and $COS_INSTANCE_ID for the commands
//	    that follow.
//	sampleimage FILE
//	    writes the sample disk (an Ubuntu-like disk the import accepts).
//	e2erun [-server HOSTNAME] NAME STATE
//	    runs the E2E flow (e2e.Run, in the test's process) on the sample
//	    disk against the script's simulator, importing template NAME and,
//	    with -server, ordering that server (domain example.com), and
//	    records it in the state file STATE: what audit and order read;
//	    $SIM_UNTIL is then an hour after the run in the simulator's time
//	    (which runs faster than the commands' clock), for audit -until.
//	exitcode N COMMAND [ARGS...]
//	    runs COMMAND and requires exit status N.
//	filemode FILE MODE
//	    requires the file's permission bits (octal).
//
// The commands run as separate processes (testscript runs the test binary
// under the command's name), which reach the simulator over loopback.
package simscript

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/rogpeppe/go-internal/testscript"
)

// ClockSpeed is the simulators' clock speed: an import takes a fraction
// of a second.
const ClockSpeed = 2000

// Main is a TestMain for a package whose scripts run the commands:
// commands maps each command's name to its main function. The tests run
// with testenv's checks (no goroutine or simulator data left behind).
func Main(m *testing.M, commands map[string]func()) {
	testscript.Main(testingM{m}, commands)
}

type testingM struct{ m *testing.M }

func (t testingM) Run() int {
	return testenv.RunTestMain(t.m, testenv.NoStrayTemp(testenv.SimTempPattern))
}

// simKey is the key of a script's *started (testscript's Values).
type simKey struct{}

// started holds the simulator a script started.
type started struct{ sim *cloudsim.Sim }

// Run runs the scripts of dir (testdata/script) with this package's
// commands.
func Run(t *testing.T, dir string) {
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Values[simKey{}] = &started{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"e2erun":      cmdE2ERun,
			"cloudsim":    cmdCloudsim,
			"sampleimage": cmdSampleImage,
			"exitcode":    cmdExitCode,
			"filemode":    cmdFileMode,
		},
	})
}

func cmdCloudsim(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("cloudsim", flag.ContinueOnError)
	seed := fs.Int64("seed", 1, "")
	authz := fs.Bool("seed-authorizations", false, "")
	if neg || fs.Parse(args) != nil || fs.NArg() != 1 {
		ts.Fatalf("usage: cloudsim [-seed N] [-seed-authorizations] FILE")
	}
	st := ts.Value(simKey{}).(*started)
	if st.sim != nil {
		ts.Fatalf("cloudsim: a simulator runs already")
	}
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: *seed, ClockSpeed: ClockSpeed, SeedAuthorizations: *authz})
	ts.Check(err)
	st.sim = sim
	ts.Defer(func() { _ = sim.Close() })
	b, err := json.Marshal(struct {
		cloudsim.URLs
		cloudsim.Account
	}{sim.URLs, sim.Account})
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(fs.Arg(0)), append(b, '\n'), 0o600))
	a := sim.Account
	ts.Setenv("IBMCLOUD_API_KEY", a.APIKey)
	ts.Setenv("ROOT_KEY_CRN", a.RootKeyCRN)
	ts.Setenv("BUCKET", a.Bucket)
	ts.Setenv("COS_INSTANCE_CRN", a.COSInstanceCRN)
	ts.Setenv("COS_INSTANCE_ID", a.COSInstanceID)
}

func cmdE2ERun(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("e2erun", flag.ContinueOnError)
	host := fs.String("server", "", "")
	if neg || fs.Parse(args) != nil || fs.NArg() != 2 {
		ts.Fatalf("usage: e2erun [-server HOSTNAME] NAME STATE")
	}
	sim := ts.Value(simKey{}).(*started).sim
	if sim == nil {
		ts.Fatalf("e2erun: no simulator: start one with cloudsim first")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key := secret.NewString(sim.Account.APIKey)
	cl, err := ibmcloud.Connect(ibmcloud.Config{APIKey: key, RootKeyCRN: sim.Account.RootKeyCRN, Endpoints: ibmcloud.Endpoints{
		IAM: sim.URLs.IAM, IAMIdentity: sim.URLs.IAMIdentity, IAMPolicy: sim.URLs.IAMPolicy, KMS: sim.URLs.KMS,
		S3: sim.URLs.S3, SoftLayer: sim.URLs.SoftLayer, ActivityTracker: sim.URLs.ActivityTracker,
	}, PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond})
	ts.Check(err)
	defer cl.Close()
	img, err := sampleimage.Reader(sampleimage.Options{Size: sampleimage.MinSize})
	ts.Check(err)
	var server *classic.ServerSpec
	if *host != "" {
		server = &classic.ServerSpec{Hostname: *host, Domain: "example.com", Datacenter: "dal13", CPUs: 1, MemoryMB: 1024}
	}
	_, err = e2e.Run(ctx, e2e.Plan{Image: img, Name: fs.Arg(0), OSCode: "UBUNTU_22_64", KeyService: cl.Keys,
		COS: cl.COS, Bucket: sim.Account.Bucket, Classic: cl.Classic, ImportAPIKey: key, StatePath: ts.MkAbs(fs.Arg(1)),
		Server: server, Clock: sim.Clock.Now, Prepare: false})
	if err != nil {
		ts.Fatalf("e2erun: %v", err)
	}
	ts.Setenv("SIM_UNTIL", sim.Clock.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func cmdSampleImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sampleimage FILE")
	}
	ts.Check(sampleimage.WriteFile(ts.MkAbs(args[0]), sampleimage.Options{Seed: 1}))
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	start := time.Now()
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("running %s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s: exit code %d after %v, want %d", args[1], got, time.Since(start).Round(time.Millisecond), want)
	}
}

func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if (uint64(fi.Mode().Perm()) == want) == neg {
		ts.Fatalf("%s has mode %#o", args[0], fi.Mode().Perm())
	}
}
