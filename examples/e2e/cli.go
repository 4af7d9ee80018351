package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cli"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/progressbar"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/secret"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitPreflight   = 3
	exitLocked      = 4 // another run holds the state file (e2e.ErrStateLocked)
	exitUnreachable = 5 // a service cannot be reached (e2e.ErrUnreachable)
	exitInterrupted = 130
)

// env is the process environment run works in.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	// stopWithParent, when set, is called before the simulator starts
	// (cli.StopWithParent in the command; tests leave it nil).
	stopWithParent func() error
}

func (e env) getenv(name string) string {
	v, _ := e.lookup(name)
	return strings.TrimSpace(v)
}

// config is what the flags say.
type config struct {
	sim        bool
	clockSpeed float64
	seed       int64

	image, name, note, osCode, object string
	imageSize                         int64
	workers                           int

	rootKeyCRN, region, bucket, cosInstance string
	apiKeyFile                              string
	endpoints, logsURL                      string
	private                                 bool

	keyFile, keyEnv string
	dekBits         int

	prepare           bool
	serviceID         string
	importAPIKeyFile  string
	saveAPIKey        string
	cosKeyAuthz       bool
	hostname, domain  string
	datacenter        string
	cpus, memoryMB    int
	monthly           bool
	privateOnly       bool
	sshKeyIDs         cli.IntList
	userDataFile      string
	state             string
	auditWait         time.Duration
	partSize          int64
	concurrency       int
	jsonOut, quiet, v bool

	set map[string]bool // flags given on the command line
	tpl templateFlags   // template.go
}

func isSet(c *config, name string) bool { return c.set[name] }

func run(ctx context.Context, args []string, e env) int {
	fs := cli.NewFlagSet("e2e", usage, e.stderr)
	var c config
	fs.BoolVar(&c.sim, "sim", true, "run against the embedded cloud simulator; -sim=false, or any IBM Cloud flag, selects IBM Cloud (the environment never does)")
	fs.Float64Var(&c.clockSpeed, "clock-speed", 1000, "simulator: simulated seconds per real second")
	fs.Int64Var(&c.seed, "seed", 1, "simulator: seed of the account's identifiers")
	fs.StringVar(&c.image, "image", "", "disk image to encrypt: raw, fixed or dynamic VHD (`path`; \"-\" for standard input); simulator default: a sample disk")
	fs.Int64Var(&c.imageSize, "image-size", 0, "virtual size in `bytes` of a raw image read from standard input")
	fs.StringVar(&c.name, "name", "", "image template `name` (default: the image file's base name; simulator: e2e-demo)")
	fs.StringVar(&c.note, "note", "encrypted by e2eimage", "`text` stored with the template")
	fs.StringVar(&c.osCode, "os-code", "", "operating system reference `code` of the template (default: the one the image doctor finds in the image; required for standard input)")
	fs.StringVar(&c.object, "object", "", "object `name` in the bucket (default <name>"+e2e.ObjectSuffix+")")
	fs.IntVar(&c.workers, "workers", 0, "encryption goroutines (default GOMAXPROCS)")
	fs.StringVar(&c.rootKeyCRN, "root-key-crn", "", "Key Protect or HPCS root key `CRN`")
	fs.StringVar(&c.region, "region", e.getenv("IBMCLOUD_REGION"), "COS `region` of the bucket (env IBMCLOUD_REGION; default: the root key's)")
	fs.StringVar(&c.bucket, "bucket", "", "Regional COS `bucket` in the root key's region")
	fs.StringVar(&c.cosInstance, "cos-instance", "", "COS instance `CRN or GUID` (needed by -prepare with a service ID)")
	fs.StringVar(&c.apiKeyFile, "api-key-file", "", "`file` holding the IBM Cloud API key (default: env IBMCLOUD_API_KEY)")
	fs.StringVar(&c.endpoints, "endpoints", "", "JSON `file` of service URLs (keys iam, iam_identity, iam_policy, kms, hpcs, s3, softlayer, activity_tracker), e.g. examples/cloudsim's output")
	fs.StringVar(&c.logsURL, "logs-url", "", "IBM Cloud Logs instance `URL` that Activity Tracker routes to, for the audit trail (default: the classic event log only)")
	fs.BoolVar(&c.private, "private", false, "use the private endpoints (from IBM Cloud's network)")
	fs.StringVar(&c.keyFile, "key-file", "", "bring your own DEK: `file` of its raw 32 or 64 bytes")
	fs.StringVar(&c.keyEnv, "key-env", "", "bring your own DEK: environment `variable` holding it base64-encoded")
	fs.IntVar(&c.dekBits, "dek-bits", 256, "size of a new DEK in bits, IBM's naming: 256 (32 bytes, generated and wrapped by the key service, as IBM's E2E page says) or 512 (64 bytes, made here, as IBM's vhd-util page shows)")
	fs.BoolVar(&c.prepare, "prepare", false, "create the missing IAM objects first (always on in simulator mode)")
	fs.StringVar(&c.serviceID, "service-id", "e2eimage-import", "service ID `name` whose API key the import uses; \"\" imports with the API key itself")
	fs.StringVar(&c.importAPIKeyFile, "import-api-key-file", "", "`file` holding the service ID's API key (default: env E2E_IMPORT_API_KEY)")
	fs.StringVar(&c.saveAPIKey, "save-api-key", "", "`file` to store a service ID API key that -prepare creates (mode 0600); if it exists, -prepare checks and uses the key saved in it and makes none")
	fs.BoolVar(&c.cosKeyAuthz, "cos-key-authorization", false, "-prepare also authorizes COS to read the key (for KP-encrypted buckets)")
	fs.StringVar(&c.hostname, "hostname", "", "order a server with this `hostname` from the template (simulator default: e2e-demo)")
	fs.StringVar(&c.domain, "domain", "example.com", "server `domain`")
	fs.StringVar(&c.datacenter, "datacenter", "", "server data `center` (default: the template's, i.e. where the import lands; another one copies the template there first)")
	fs.IntVar(&c.cpus, "cpus", 2, "server CPUs")
	fs.IntVar(&c.memoryMB, "memory", 4096, "server memory in `MB`")
	fs.BoolVar(&c.monthly, "monthly", false, "monthly billing (default hourly)")
	fs.BoolVar(&c.privateOnly, "private-network-only", false, "order the server without a public interface")
	fs.Var(&c.sshKeyIDs, "ssh-key-id", "`id` of an SSH key in the account (repeatable)")
	fs.StringVar(&c.userDataFile, "user-data-file", "", "cloud-init user data `file` for the server")
	fs.StringVar(&c.state, "state", "", "state `file` that makes the run resumable (default <name>.e2e-state.json; simulator: a temporary file)")
	fs.DurationVar(&c.auditWait, "audit-wait", 0, "how long to keep reading while the run's expected audit events (the wrap, the provisioning) are missing; Activity Tracker shows events minutes after they happen (default 0: read once, report what is missing)")
	fs.Int64Var(&c.partSize, "part-size", 0, "multipart upload part size in `bytes` (default 16 MiB)")
	fs.IntVar(&c.concurrency, "concurrency", 0, "parts uploaded in parallel (default 4)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON on standard output")
	fs.BoolVar(&c.quiet, "q", false, "no progress bars")
	fs.BoolVar(&c.v, "v", false, "debug logs on standard error")
	chk := addCheckFlags(fs)
	addTemplateFlags(fs, &c.tpl)
	if exit, ok := cli.Parse(fs, args); !ok {
		return exit
	}
	c.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	if code := chooseMode(&c, e); code != exitOK {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "e2e: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if c.dekBits != 256 && c.dekBits != 512 {
		fmt.Fprintln(e.stderr, "e2e: -dek-bits must be 256 or 512")
		return exitUsage
	}
	if c.keyFile != "" && c.keyEnv != "" {
		fmt.Fprintln(e.stderr, "e2e: give -key-file or -key-env, not both")
		return exitUsage
	}
	logger := slog.New(slog.DiscardHandler)
	if c.v {
		logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	if chk.active() {
		return runCheck(ctx, chk, &c, e, logger)
	}

	out := newPrinter(e.stderr, c.quiet)
	var (
		plan    e2e.Plan
		cleanup func()
		code    int
	)
	if c.sim {
		plan, cleanup, code = simPlan(ctx, &c, e, out, logger)
	} else {
		plan, cleanup, code = cloudPlan(ctx, &c, e, out, logger)
	}
	if cleanup != nil {
		defer cleanup()
	}
	if code != exitOK {
		return code
	}
	if c.tpl.cleanup {
		return runCleanup(ctx, plan, &c, e)
	}
	plan.OnStep = out.step
	if !c.quiet {
		plan.OnProgress = out.progress
	}
	plan.Logger = logger

	res, err := e2e.Run(ctx, plan)
	out.bar.Break()
	if res != nil {
		if c.jsonOut {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				fmt.Fprintln(e.stderr, "e2e: writing the result:", jerr)
				return exitFailure
			}
		} else {
			fmt.Fprint(e.stdout, res.String())
		}
	}
	switch {
	case err == nil:
		fmt.Fprintf(e.stderr, "e2e: done in %s\n", out.elapsed())
		return exitOK
	case ctx.Err() != nil && c.sim:
		fmt.Fprintln(e.stderr, "e2e: interrupted (the simulator and its account are gone with this process)")
		return exitInterrupted
	case ctx.Err() != nil && cli.StateExists(plan.StatePath):
		fmt.Fprintf(e.stderr, "e2e: interrupted; run the same command again to resume (state: %s)\n", plan.StatePath)
		return exitInterrupted
	case ctx.Err() != nil:
		fmt.Fprintln(e.stderr, "e2e: interrupted before the run recorded anything; nothing to resume")
		return exitInterrupted
	case errors.Is(err, e2e.ErrPlan):
		fmt.Fprintln(e.stderr, "e2e:", cli.FlagError(err, nil))
		return exitUsage
	case errors.Is(err, e2e.ErrStateLocked):
		fmt.Fprintln(e.stderr, err)
		return exitLocked
	case errors.Is(err, e2e.ErrUnreachable):
		fmt.Fprintln(e.stderr, err)
		fmt.Fprintln(e.stderr, "e2e: check the network, the proxy and the endpoints; nothing in the account was found wrong")
		return exitUnreachable
	}
	var pe *e2e.PreflightError
	if errors.As(err, &pe) {
		for i := range pe.Report.Results {
			r := &pe.Report.Results[i]
			r.Detail, r.Fix = inFlags(r.Detail), inFlags(r.Fix)
		}
	}
	fmt.Fprintln(e.stderr, inFlags(err.Error()))
	if pe != nil {
		fmt.Fprint(e.stderr, pe.Report.String())
		return exitPreflight
	}
	if !c.sim && cli.StateExists(plan.StatePath) {
		fmt.Fprintf(e.stderr, "e2e: fix the cause and run the same command again to resume (state: %s)\n", plan.StatePath)
	}
	return exitFailure
}

const usage = `Usage:
  e2e                       the whole flow against the embedded simulator (no account needed)
  e2e -image DISK -root-key-crn CRN -bucket NAME -cos-instance CRN [flags]   IBM Cloud

Encrypts a disk image for IBM Cloud classic End to End encryption, wraps its
key with Key Protect or HPCS, uploads it, imports it as an image template,
optionally orders a server from it, and prints the resources and the audit
trail. Re-running the same command resumes an interrupted run.

Mode: the simulator, unless -sim=false or an IBM Cloud flag (-root-key-crn,
-bucket, -cos-instance, -region, -api-key-file, -endpoints, -logs-url,
-private, -import-api-key-file) is given; the environment never selects it,
so IBMCLOUD_API_KEY set for the ibmcloud CLI does not turn the demo into a
real run. The first line of output names the mode.

Environment (IBM Cloud mode): IBMCLOUD_API_KEY, IBMCLOUD_REGION, SL_USERNAME
and SL_API_KEY (classic credentials, default: the IBM Cloud key),
E2E_IMPORT_API_KEY (the import service ID's key). Secrets are never taken
from flags.

Exit codes of the built program (go run turns every failure into 1): 0 success,
1 failure, 2 usage, 3 preflight failed, 4 another run holds the state file
(-state; runs of one state never overlap), 5 a service cannot be reached
(DNS, connection refused, TLS, timeout), 130 interrupted.

Flags:
`

// cloudFlags are the flags that only IBM Cloud mode uses: giving one
// selects it.
var cloudFlags = []string{"root-key-crn", "bucket", "cos-instance", "region", "api-key-file", "endpoints", "logs-url",
	"private", "import-api-key-file"}

// simFlags are the flags that only simulator mode uses.
var simFlags = []string{"clock-speed", "seed"}

// chooseMode decides between the simulator and IBM Cloud from the flags
// alone and says which it is on the first line of standard error.
// IBMCLOUD_API_KEY, which many ibmcloud CLI users have set, does not switch
// modes: running the command with no flags is always the local demo.
func chooseMode(c *config, e env) int {
	var cloud, sim []string
	for _, f := range cloudFlags {
		if c.set[f] {
			cloud = append(cloud, "-"+f)
		}
	}
	for _, f := range simFlags {
		if c.set[f] {
			sim = append(sim, "-"+f)
		}
	}
	switch {
	case c.set["sim"] && c.sim && len(cloud) > 0:
		fmt.Fprintf(e.stderr, "e2e: %s for IBM Cloud; the simulator (-sim) has its own account and key: drop -sim or those flags\n", isAre(cloud))
		return exitUsage
	case len(cloud) > 0 || c.set["sim"] && !c.sim:
		if len(sim) > 0 {
			fmt.Fprintf(e.stderr, "e2e: %s for the simulator, not IBM Cloud\n", isAre(sim))
			return exitUsage
		}
		c.sim = false
		why := "-sim=false"
		if len(cloud) > 0 {
			why = strings.Join(cloud, ", ") + " given"
		}
		fmt.Fprintf(e.stderr, "e2e: %s (%s): %s (-sim runs the local simulator instead)\n", cloudModeName(c.endpoints), why, endpointsSay(c.endpoints))
	default:
		c.sim = true
		line := "e2e: simulator mode: a local IBM Cloud in this process, nothing leaves the machine (IBM Cloud: -sim=false, or an IBM Cloud flag such as -root-key-crn or -bucket; see -help)"
		if _, ok := e.lookup("IBMCLOUD_API_KEY"); ok {
			line += "; IBMCLOUD_API_KEY is set but not used here"
		}
		fmt.Fprintln(e.stderr, line)
	}
	return exitOK
}

// loopbackEndpoints reports whether the endpoints file at path names at
// least one service and every service it names is on this machine (a
// loopback address or localhost), as a simulator started by
// examples/cloudsim is, and returns the services it leaves to IBM Cloud's
// public endpoints. An unreadable file gives false: the run reports it.
func loopbackEndpoints(path string) (local bool, public []string) {
	if path == "" {
		return false, nil
	}
	ep, err := ibmcloud.LoadEndpoints(path)
	if err != nil {
		return false, nil
	}
	named := 0
	for _, f := range []struct{ name, url string }{
		{"iam", ep.IAM}, {"kms", ep.KMS}, {"s3", ep.S3}, {"softlayer", ep.SoftLayer},
		{"iam_identity", ep.IAMIdentity}, {"iam_policy", ep.IAMPolicy}, {"hpcs", ep.HPCS}, {"activity_tracker", ep.ActivityTracker},
	} {
		if f.url == "" {
			if f.name == "iam" || f.name == "kms" || f.name == "s3" || f.name == "softlayer" {
				public = append(public, f.name)
			}
			continue
		}
		u, err := url.Parse(f.url)
		if err != nil {
			return false, nil
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false, nil
		}
		named++
	}
	return named > 0, public
}

// cloudModeName names the mode of a run that is not the in-process
// simulator: endpoints on this machine are not IBM Cloud.
func cloudModeName(endpoints string) string {
	if local, _ := loopbackEndpoints(endpoints); local {
		return "local endpoints mode"
	}
	return "IBM Cloud mode"
}

// endpointsSay says where the requests of a run that is not the in-process
// simulator go.
func endpointsSay(endpoints string) string {
	local, public := loopbackEndpoints(endpoints)
	switch {
	case local && len(public) == 0:
		return "the services at the loopback URLs in " + endpoints + " (such as examples/cloudsim), on this machine"
	case local:
		return "the services at the loopback URLs in " + endpoints + " (such as examples/cloudsim), on this machine, and IBM Cloud for those it does not name (" + strings.Join(public, ", ") + ")"
	case endpoints != "":
		return "the services at the URLs in " + endpoints + " (IBM Cloud's public endpoints for those it does not name), in the account of your API key"
	}
	return "the real services, in your account"
}

// isAre lists flags followed by "is" or "are".
func isAre(flags []string) string {
	if len(flags) == 1 {
		return flags[0] + " is"
	}
	return strings.Join(flags, ", ") + " are"
}

// simPlan starts the simulator and plans a run against it.
func simPlan(ctx context.Context, c *config, e env, out *printer, logger *slog.Logger) (e2e.Plan, func(), int) {
	if c.saveAPIKey != "" {
		if _, err := os.Stat(c.saveAPIKey); err == nil {
			fmt.Fprintf(e.stderr, "e2e: -save-api-key %s exists; the simulator's fresh account makes a new key, which needs a new file\n", c.saveAPIKey)
			return e2e.Plan{}, nil, exitUsage
		}
	}
	if e.stopWithParent != nil {
		if err := e.stopWithParent(); err != nil {
			fmt.Fprintln(e.stderr, "e2e: warning: the simulator will not stop when the parent process ends:", err)
		}
	}
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: c.seed, ClockSpeed: c.clockSpeed})
	if err != nil {
		fmt.Fprintln(e.stderr, "e2e: starting the simulator:", err)
		return e2e.Plan{}, nil, exitFailure
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	cleanups = append(cleanups, func() { _ = sim.Close() })
	a := sim.Account
	out.line("simulator: a fresh account %s in %s with Key Protect root key %s", a.AccountID, a.Region, a.RootKeyCRN)
	out.line("simulator: IAM %s, SoftLayer %s, S3 %s (clock x%g)", sim.URLs.IAM, sim.URLs.SoftLayer, sim.URLs.S3, c.clockSpeed)

	if c.cosInstance == "" {
		c.cosInstance = a.COSInstanceCRN
	}
	clients, err := ibmcloud.Connect(ibmcloud.Config{
		APIKey: secret.NewString(a.APIKey), RootKeyCRN: a.RootKeyCRN, COSInstance: c.cosInstance,
		Endpoints: ibmcloud.Endpoints{
			IAM: sim.URLs.IAM, IAMIdentity: sim.URLs.IAMIdentity, IAMPolicy: sim.URLs.IAMPolicy, KMS: sim.URLs.KMS,
			HPCS: sim.URLs.HPCS, S3: sim.URLs.S3, SoftLayer: sim.URLs.SoftLayer, ActivityTracker: sim.URLs.ActivityTracker,
		},
		PollMin: 10 * time.Millisecond, PollMax: 100 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		return e2e.Plan{}, cleanup, connectFailed(e, err)
	}
	cleanups = append(cleanups, clients.Close)

	if c.name == "" && c.tpl.from == "" {
		c.name = "e2e-demo"
	}
	if c.hostname == "" && !isSet(c, "hostname") {
		c.hostname = "e2e-demo"
	}
	if c.state == "" {
		dir, err := os.MkdirTemp("", "e2e-sim-*")
		if err != nil {
			fmt.Fprintln(e.stderr, "e2e:", err)
			return e2e.Plan{}, cleanup, exitFailure
		}
		cleanups = append(cleanups, func() { _ = os.RemoveAll(dir) })
		c.state = filepath.Join(dir, "state.json")
	}
	plan := basePlan(c)
	plan.KeyService, plan.IAM, plan.COS, plan.Classic, plan.Audit = clients.Keys, clients.IAM, clients.COS, clients.Classic, clients.Audit
	plan.ProveImportKey = clients.ProveImportKey
	plan.Bucket = a.Bucket
	plan.Prepare = true
	plan.Clock = sim.Clock.Now
	if plan.ServiceID.Name == "" {
		plan.ImportAPIKey = secret.NewString(a.APIKey)
	}
	plan.ExportAPIKey = secret.NewString(a.APIKey)
	if code := planImage(ctx, &plan, c, e, out); code != exitOK {
		return plan, cleanup, code
	}
	if code := planKeys(&plan, c, e); code != exitOK {
		return plan, cleanup, code
	}
	if code := planServer(&plan, c, e, a.Region); code != exitOK {
		return plan, cleanup, code
	}
	return plan, cleanup, exitOK
}

// orSim ends the messages about a missing IBM Cloud flag.
const orSim = " (for the local simulator instead, no account needed: -sim, or no IBM Cloud flags)"

// cloudPlan plans a run against IBM Cloud (or the endpoints of -endpoints).
func cloudPlan(ctx context.Context, c *config, e env, out *printer, logger *slog.Logger) (e2e.Plan, func(), int) {
	fail := func(format string, a ...any) (e2e.Plan, func(), int) {
		fmt.Fprintf(e.stderr, "e2e: "+format+"\n", a...)
		return e2e.Plan{}, nil, exitUsage
	}
	apiKey, err := secretFrom(c.apiKeyFile, "IBMCLOUD_API_KEY", e)
	switch {
	case err != nil:
		return fail("%v", err)
	case apiKey.Empty():
		return fail("no API key: set IBMCLOUD_API_KEY or give -api-key-file%s", orSim)
	case c.rootKeyCRN == "":
		return fail("-root-key-crn is required in IBM Cloud mode%s", orSim)
	case c.bucket == "":
		return fail("-bucket is required in IBM Cloud mode%s", orSim)
	case c.image == "" && c.tpl.from == "":
		return fail("-image or -from-template is required in IBM Cloud mode%s", orSim)
	case c.serviceID != "" && c.cosInstance == "":
		// The service ID's access policy on COS names the instance.
		return fail("-cos-instance is required with -service-id %q: give the CRN or GUID of the COS instance holding the bucket "+
			"(as to examples/prepare), or -service-id \"\" to import with the API key itself", c.serviceID)
	}
	var ep ibmcloud.Endpoints
	if c.endpoints != "" {
		if ep, err = ibmcloud.LoadEndpoints(c.endpoints); err != nil {
			return fail("%v", err)
		}
	}
	if c.logsURL != "" {
		ep.ActivityTracker = c.logsURL
	}
	cloud := ibmcloud.Config{
		APIKey: apiKey, RootKeyCRN: c.rootKeyCRN, Region: c.region, COSInstance: c.cosInstance,
		Private: c.private, Endpoints: ep, Logger: logger,
	}
	if creds, ok := cli.SLCredentials(e.getenv); ok {
		cloud.Classic = creds
	}
	if ep.SoftLayer != "" {
		// A local endpoint (a simulator): poll it often.
		cloud.PollMin, cloud.PollMax = 50*time.Millisecond, time.Second
	}
	clients, err := ibmcloud.Connect(cloud)
	if err != nil {
		return e2e.Plan{}, nil, connectFailed(e, err)
	}
	if c.name == "" && c.tpl.from == "" {
		base := filepath.Base(c.image)
		c.name = strings.TrimSuffix(base, filepath.Ext(base))
		if c.image == "-" || c.name == "" {
			return fail("-name is required for an image read from standard input")
		}
	}
	if c.state == "" {
		c.state = defaultState(c)
	}
	plan := basePlan(c)
	plan.KeyService, plan.IAM, plan.COS, plan.Classic, plan.Audit = clients.Keys, clients.IAM, clients.COS, clients.Classic, clients.Audit
	plan.ProveImportKey = clients.ProveImportKey
	plan.Bucket, plan.Prepare = c.bucket, c.prepare
	importKey, err := secretFrom(c.importAPIKeyFile, "E2E_IMPORT_API_KEY", e)
	if err != nil {
		return fail("%v", err)
	}
	plan.ImportAPIKey, plan.ExportAPIKey = importKey, apiKey
	if plan.ServiceID.Name == "" && importKey.Empty() {
		plan.ImportAPIKey = apiKey
	}
	if c.prepare && c.serviceID != "" && c.saveAPIKey != "" {
		// Decide on the service ID's key before anything is created, so
		// that the same command run again (to resume) uses the key it
		// saved instead of making another that could not be saved.
		known, note, err := cli.ImportKey(ctx, clients.IAM, clients.Auth, c.serviceID, c.saveAPIKey, importKey)
		switch {
		case errors.Is(err, cli.ErrKeyRefused):
			fmt.Fprintln(e.stderr, "e2e:", err)
			return plan, clients.Close, exitUsage
		case err != nil:
			fmt.Fprintln(e.stderr, "e2e:", err)
			return plan, clients.Close, exitFailure
		}
		out.line("%s", note)
		plan.ImportAPIKey = known
	}
	if code := planImage(ctx, &plan, c, e, out); code != exitOK {
		return plan, clients.Close, code
	}
	if code := planKeys(&plan, c, e); code != exitOK {
		return plan, clients.Close, code
	}
	region := c.region
	if region == "" {
		region = clients.Keys.CRN().Region
	}
	if code := planServer(&plan, c, e, region); code != exitOK {
		return plan, clients.Close, code
	}
	out.line("IBM Cloud: root key %s, bucket %s, COS endpoint %s, classic %s", c.rootKeyCRN, c.bucket, clients.COS.Endpoint(), clients.Classic.Endpoint())
	return plan, clients.Close, exitOK
}

// basePlan is the part of the plan the flags fill in both modes. The COS
// instance comes from c.cosInstance alone, which also went to ibmcloud.Config.
func basePlan(c *config) e2e.Plan {
	p := e2e.Plan{
		Name: c.name, Note: c.note, OSCode: c.osCode, Object: c.object, Workers: c.workers, ImageSize: c.imageSize,
		ServiceID:           iam.ServiceIDSpec{Name: c.serviceID, Description: "imports E2E-encrypted images (made by e2eimage)"},
		COSInstanceID:       c.cosInstance,
		COSKeyAuthorization: c.cosKeyAuthz, StatePath: c.state, AuditWait: c.auditWait,
		PartSize: c.partSize, Concurrency: c.concurrency,
	}
	if c.dekBits == 512 {
		p.DEKSize = vhdcrypt.AES256XTS
	}
	if c.saveAPIKey != "" {
		path := c.saveAPIKey
		p.SaveAPIKey = func(_ context.Context, sid iam.ServiceID, keyID string, key *secret.String) error {
			return ibmcloud.WriteSecretFile(path, key)
		}
	}
	return p
}

// connectFailed reports an error of ibmcloud.Connect: in flags when it is about
// what the flags gave (exit 2), else as it is (exit 1).
func connectFailed(e env, err error) int {
	code, err := cli.ConnectError(err)
	fmt.Fprintln(e.stderr, "e2e:", err)
	return code
}

// planImage opens the image (or builds the sample disk).
func planImage(ctx context.Context, p *e2e.Plan, c *config, e env, out *printer) int {
	if c.tpl.from != "" {
		applyTemplate(p, c)
		return exitOK
	}
	switch c.image {
	case "":
		img, err := sampleimage.Reader(sampleimage.Options{})
		if err != nil {
			fmt.Fprintln(e.stderr, "e2e:", err)
			return exitFailure
		}
		out.line("image: a %s sample disk (MBR, one Linux partition, a few files, zero blocks)", progressbar.Size(img.Size()))
		p.Image = img
	case "-":
		// A signal must end the run even while it waits for input.
		p.Image = cli.ContextReader(ctx, e.stdin)
	default:
		f, err := os.Open(c.image)
		if err != nil {
			fmt.Fprintln(e.stderr, "e2e:", err)
			return exitFailure
		}
		// The process ends soon after Run; the file is closed with it.
		p.Image = f
	}
	return exitOK
}

// planKeys reads a DEK the user brings.
func planKeys(p *e2e.Plan, c *config, e env) int {
	var (
		dek *secret.DEK
		err error
	)
	switch {
	case c.keyFile != "":
		if fi, serr := os.Stat(c.keyFile); serr == nil && fi.Mode().Perm()&0o022 != 0 {
			fmt.Fprintf(e.stderr, "e2e: key file %s is writable by other users (mode %v): not used; chmod go-w it\n", c.keyFile, fi.Mode().Perm())
			return exitUsage
		}
		if loose, lerr := vhdcrypt.LooseKeyFileMode(c.keyFile); lerr == nil && loose {
			fmt.Fprintf(e.stderr, "e2e: warning: key file %s is readable by other users\n", c.keyFile)
		}
		dek, err = vhdcrypt.ReadKeyFile(c.keyFile)
	case c.keyEnv != "":
		dek, err = vhdcrypt.KeyFromEnv(c.keyEnv, e.lookup)
	default:
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "e2e:", err)
		return exitUsage
	}
	p.DEK = dek
	return exitOK
}

// planServer fills the server order, when a hostname is given.
func planServer(p *e2e.Plan, c *config, e env, region string) int {
	if c.hostname == "" {
		return exitOK
	}
	// An empty data center orders where the template is: the import's
	// data center, read from the template (classic.PlanPlacement).
	s := &classic.ServerSpec{
		Hostname: c.hostname, Domain: c.domain, Datacenter: c.datacenter, CPUs: c.cpus, MemoryMB: c.memoryMB,
		Monthly: c.monthly, PrivateNetworkOnly: c.privateOnly, SSHKeyIDs: c.sshKeyIDs,
	}
	if c.userDataFile != "" {
		b, err := os.ReadFile(c.userDataFile)
		if err != nil {
			fmt.Fprintln(e.stderr, "e2e:", err)
			return exitUsage
		}
		s.UserData = string(b)
	}
	p.Server = s
	return exitOK
}

// secretFrom reads a secret from a file, or else from an environment
// variable; nil when neither gives one. A file readable by other users is
// accepted with a warning.
func secretFrom(file, envName string, e env) (*secret.String, error) {
	if file == "" {
		if v := e.getenv(envName); v != "" {
			return secret.NewString(v), nil
		}
		return nil, nil
	}
	if loose, err := vhdcrypt.LooseKeyFileMode(file); err == nil && loose {
		fmt.Fprintf(e.stderr, "e2e: warning: %s is readable by other users\n", file)
	}
	return ibmcloud.ReadSecretFile(file)
}

// printer writes the steps and the progress bars to standard error.
type printer struct {
	w       io.Writer
	bar     *progressbar.Bar
	start   time.Time
	n       int
	current e2e.StepName
}

func newPrinter(w io.Writer, quiet bool) *printer {
	return &printer{w: w, bar: progressbar.New(w), start: time.Now()}
}

func (p *printer) line(format string, a ...any) {
	p.bar.Break()
	fmt.Fprintf(p.w, format+"\n", a...)
}

// libraryWords are the library's names in its errors and fixes that this
// command spells as its flags.
var libraryWords = strings.NewReplacer(
	"iam.Client.Setup", "-prepare",
	"give ImportAPIKey, or Prepare with a ServiceID", "give -import-api-key-file, or -prepare",
	"(Plan.ImportAPIKey), or prepare the service ID (Plan.Prepare) to make one", "(-import-api-key-file), or -prepare to make one",
)

// inFlags tells a message of the library in this command's flags.
func inFlags(msg string) string { return libraryWords.Replace(msg) }

func (p *printer) step(s e2e.Step) {
	if s.Name != p.current {
		p.current = s.Name
		p.n++
	}
	switch {
	case s.Status != e2e.StepRunning:
		p.line("[%d] %s", p.n, inFlags(s.String()))
	case s.Detail == "":
		p.line("[%d] %s ...", p.n, s.Name)
	default:
		p.line("      %s", s.Detail)
	}
}

func (p *printer) progress(u vhdcrypt.Progress) {
	if u.Phase == vhdcrypt.PhaseEncrypt {
		return // the upload bar follows the same bytes, acknowledged
	}
	p.bar.Update(string(u.Phase), u.Done, u.Total)
}

func (p *printer) elapsed() time.Duration { return time.Since(p.start).Round(time.Millisecond) }
