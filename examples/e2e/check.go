package main

// -check: read-only calls against IBM Cloud (or the simulator), one report
// line each, and -save-fixtures DIR to keep the scrubbed responses.

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cli"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/secret"
)

// checkFlags are the flags of the check mode.
type checkFlags struct {
	check        bool
	saveFixtures string
}

// active reports whether the command runs the check instead of the flow.
func (f *checkFlags) active() bool { return f.check || f.saveFixtures != "" }

func addCheckFlags(fs *flag.FlagSet) *checkFlags {
	f := &checkFlags{}
	fs.BoolVar(&f.check, "check", false, "only check the account with read-only calls (IAM token, root key, bucket, OS codes, "+
		"event log, Cloud Logs) and report each; creates, changes and deletes nothing. "+
		"Env E2E_ROOT_KEY_CRN, E2E_BUCKET, E2E_COS_INSTANCE, E2E_LOGS_URL stand in for the flags")
	fs.StringVar(&f.saveFixtures, "save-fixtures", "", "with -check: write each response, scrubbed of account ids, users, addresses, tokens and key material, as a JSON file in `dir`")
	return f
}

// runCheck runs the check in the mode -sim selects.
func runCheck(ctx context.Context, f *checkFlags, c *config, e env, logger *slog.Logger) int {
	if !f.check {
		fmt.Fprintln(e.stderr, "e2e: -save-fixtures needs -check")
		return exitUsage
	}
	rec, err := ibmcloud.NewRecorder(nil)
	if err != nil {
		fmt.Fprintln(e.stderr, "e2e:", err)
		return exitFailure
	}
	var (
		cloud ibmcloud.Config
		opts  ibmcloud.CheckOptions
		where string
	)
	if c.sim {
		sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: c.seed, ClockSpeed: c.clockSpeed})
		if err != nil {
			fmt.Fprintln(e.stderr, "e2e: starting the simulator:", err)
			return exitFailure
		}
		defer sim.Close()
		a, u := sim.Account, sim.URLs
		cloud = ibmcloud.Config{
			APIKey: secret.NewString(a.APIKey), RootKeyCRN: a.RootKeyCRN, COSInstance: a.COSInstanceCRN,
			Endpoints: ibmcloud.Endpoints{IAM: u.IAM, IAMIdentity: u.IAMIdentity, IAMPolicy: u.IAMPolicy, KMS: u.KMS, HPCS: u.HPCS,
				S3: u.S3, SoftLayer: u.SoftLayer, ActivityTracker: u.ActivityTracker},
		}
		// The simulator's own account: the E2E_* variables, which name a
		// real account, do not apply to it.
		opts.Bucket = cmp.Or(c.bucket, a.Bucket)
		opts.Clock = sim.Clock.Now
		where = "the simulator (a fresh account " + a.AccountID + ")"
	} else {
		opts.Bucket = cmp.Or(c.bucket, e.getenv("E2E_BUCKET"))
		var code int
		if cloud, code = checkCloud(c, e); code != exitOK {
			return code
		}
		where = "IBM Cloud"
		if c.endpoints != "" {
			where = "the endpoints of " + c.endpoints
		}
	}
	cloud.Logger = logger
	cloud.HTTPClient = &http.Client{Transport: rec}
	clients, err := ibmcloud.Connect(cloud)
	if err != nil {
		fmt.Fprintln(e.stderr, "e2e:", err)
		return exitUsage
	}
	defer clients.Close()
	if f.saveFixtures != "" {
		opts.Recorder = rec
	}
	fmt.Fprintf(e.stderr, "e2e: checking %s with read-only calls\n", where)

	rep, err := clients.Check(ctx, opts)
	if rep != nil {
		if c.jsonOut {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil {
				fmt.Fprintln(e.stderr, "e2e: writing the report:", jerr)
				return exitFailure
			}
		} else {
			fmt.Fprint(e.stdout, rep.String())
		}
	}
	code := exitOK
	if err != nil {
		// The report has every call's error; the first line says how many.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintln(e.stderr, msg)
		code = exitFailure
	}
	if f.saveFixtures != "" && rep != nil {
		// Failed calls' answers are fixtures too (error bodies).
		paths, werr := rep.WriteFixtures(f.saveFixtures)
		if werr != nil {
			fmt.Fprintln(e.stderr, werr)
			return exitFailure
		}
		fmt.Fprintf(e.stderr, "e2e: wrote %d scrubbed responses to %s; read them before publishing\n", len(paths), f.saveFixtures)
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return code
}

// checkCloud says how to reach IBM Cloud (or -endpoints) for the check,
// from the flags and the E2E_* variables.
func checkCloud(c *config, e env) (ibmcloud.Config, int) {
	fail := func(format string, a ...any) (ibmcloud.Config, int) {
		fmt.Fprintf(e.stderr, "e2e: "+format+"\n", a...)
		return ibmcloud.Config{}, exitUsage
	}
	apiKey, err := secretFrom(c.apiKeyFile, "IBMCLOUD_API_KEY", e)
	switch {
	case err != nil:
		return fail("%v", err)
	case apiKey.Empty():
		return fail("no API key: set IBMCLOUD_API_KEY or give -api-key-file (or run with -sim)")
	}
	cloud := ibmcloud.Config{
		APIKey: apiKey, RootKeyCRN: cmp.Or(c.rootKeyCRN, e.getenv("E2E_ROOT_KEY_CRN")), Region: c.region,
		COSInstance: cmp.Or(c.cosInstance, e.getenv("E2E_COS_INSTANCE")), Private: c.private,
	}
	if cloud.RootKeyCRN == "" && cloud.Region == "" {
		return fail("-check needs a root key (-root-key-crn or E2E_ROOT_KEY_CRN) or a region (-region or IBMCLOUD_REGION)")
	}
	if c.endpoints != "" {
		if cloud.Endpoints, err = ibmcloud.LoadEndpoints(c.endpoints); err != nil {
			return fail("%v", err)
		}
	}
	if logs := cmp.Or(c.logsURL, e.getenv("E2E_LOGS_URL")); logs != "" {
		cloud.Endpoints.ActivityTracker = logs
	}
	if creds, ok := cli.SLCredentials(e.getenv); ok {
		cloud.Classic = creds
	}
	return cloud, exitOK
}
