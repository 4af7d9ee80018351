// Command cloudsim runs the local IBM Cloud simulator (internal/cloudsim)
// until it is interrupted: IAM, IAM Identity and Policy Management, Key
// Protect, Hyper Protect Crypto Services, Cloud Object Storage (S3),
// SoftLayer classic and an Activity Tracker (Cloud Logs) query endpoint, each
// on its own loopback port.
//
// Usage:
//
//	cloudsim [-addr HOST[:PORT]] [-seed N] [-clock-speed X | -real-time] [-seed-authorizations] [-v]
//	cloudsim -sample-image PATH [-seed N]
//
// The first line on standard output is one JSON object with every service's
// base URL and the seeded account:
//
//	{"iam":…, "iam_identity":…, "iam_policy":…, "kms":…, "hpcs":…, "s3":…,
//	 "softlayer":…, "activity_tracker":…, "account_id":…, "api_key":…,
//	 "kms_instance_id":…, "hpcs_instance_id":…, "root_key_crn":…,
//	 "hpcs_root_key_crn":…, "bucket":…, "region":…, "s3_access_key":…,
//	 "s3_secret_key":…, "cos_instance_id":…, "cos_instance_crn":…}
//
// The API key and HMAC keys it prints are fake credentials of this local
// simulator, valid nowhere else; printing them is the point. Point the
// official SDKs at the URLs: the IAM token URL is iam + "/identity/token",
// Key Protect and HPCS base URLs are used as is (the client appends /api/v2),
// softlayer ends in /rest/v3.1, s3 is a path-style endpoint.
//
// -addr is the listening host, default 127.0.0.1:0 (a random port per
// service); a non-zero port N gives the services ports N..N+7 in the order
// above. -seed derives the account's identifiers and keys (same seed, same
// account). Simulated time runs DefaultClockSpeed (1000) times faster than
// real time by default, as in examples/e2e's demo: an image import or a
// server's provisioning, which take minutes of simulated time, take a
// fraction of a second, so examples/import and examples/order against the
// simulator finish in seconds. -clock-speed X sets another speed; -real-time
// runs it at real time (minutes per import). The speed is said on standard
// error at start. -seed-authorizations pre-creates the server-protect -> kms
// / hs-crypto authorizations. -v logs every request to standard error.
//
// -sample-image PATH writes, instead of starting the simulator, the sample
// disk the flow's demonstrations import to the new file PATH and exits: a
// 16 MiB MBR disk with an Ubuntu 22.04-like ext4 root (os-release,
// cloud-init, a kernel and the Xen block driver's module) that the image
// doctor (package doctor) passes, although it does not boot (its kernel is
// a placeholder). -seed selects its data.
//
// It stops on SIGINT or SIGTERM, and also when the process that started it
// ends (Linux): `go run ./examples/cloudsim` runs the simulator as a child of
// the go command, which ends on SIGTERM without passing the signal on, and
// the simulator must not keep serving after it. It exits 0 when stopped by a
// signal, 1 if the simulator cannot start and 2 on bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/e2eimage/e2eimage/internal/cli"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/nocore"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// DefaultClockSpeed is how many simulated seconds pass per real second
// unless -clock-speed or -real-time says otherwise.
const DefaultClockSpeed = 1000

func main() {
	_ = nocore.Disable() // no core file may hold a DEK or an API key
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the signal handler is in place, so the signal that the
	// parent's end sends is the one handled.
	if err := cli.StopWithParent(); err != nil {
		fmt.Fprintln(os.Stderr, "cloudsim: warning: the simulator will not stop when its parent process ends:", err)
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// started, when set (by tests), is given the simulator once it runs.
var started func(*cloudsim.Sim)

// Info is the first output line: the service URLs and the seeded account.
type Info struct {
	cloudsim.URLs
	cloudsim.Account
}

// usageText starts -help: what the program prints, which is what a
// program pointed at the simulator needs.
const usageText = `usage:
  cloudsim [-addr HOST[:PORT]] [-seed N] [-clock-speed X | -real-time] [-seed-authorizations] [-v] > sim.json
  cloudsim -sample-image PATH [-seed N]

Runs a local IBM Cloud (IAM, Key Protect, HPCS, COS, classic, Activity Tracker)
on loopback ports until interrupted or its parent process ends.

The first line on standard output is one JSON object: every service's URL and
the account's fake credentials (api_key, root_key_crn, bucket, cos_instance_crn,
...), which a program talking to the simulator needs. Keep it in a file:
"e2e -endpoints sim.json" (and import, order, prepare, audit) reads the URLs
from it, ibmcloud.LoadEndpoints in Go. Go tests can start the same simulator
in their own process instead: package cloudsimtest.

Flags:
`

// run starts the simulator, prints Info and serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloudsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen `host[:port]`; port 0 = a random port per service")
	seed := fs.Int64("seed", 1, "seed for the account's identifiers and fake credentials")
	speed := fs.Float64("clock-speed", DefaultClockSpeed, "simulated seconds per real second (an import takes minutes of simulated time)")
	realTime := fs.Bool("real-time", false, "run simulated time at real time (-clock-speed 1)")
	seedAuthz := fs.Bool("seed-authorizations", false, "pre-create the server-protect -> kms and hs-crypto authorizations")
	verbose := fs.Bool("v", false, "log every request to standard error")
	sample := fs.String("sample-image", "", "write the sample disk (which the image doctor passes) to a new `file` and exit")
	templateDisk := fs.String("template-disk", "", "also write the raw disk that the seeded e2e-sample template's export holds to a new `file` (mode 0600), then serve")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cloudsim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *sample != "" {
		if err := sampleimage.WriteFile(*sample, sampleimage.Options{Seed: uint64(*seed)}); err != nil {
			fmt.Fprintln(stderr, "cloudsim: writing the sample disk:", err)
			return 1
		}
		return 0
	}
	if *speed <= 0 {
		fmt.Fprintln(stderr, "cloudsim: -clock-speed must be positive")
		return 2
	}
	if *realTime {
		speedSet := false
		fs.Visit(func(f *flag.Flag) { speedSet = speedSet || f.Name == "clock-speed" })
		if speedSet {
			fmt.Fprintln(stderr, "cloudsim: give -clock-speed or -real-time, not both")
			return 2
		}
		*speed = 1
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sim, err := cloudsim.Start(ctx, cloudsim.Options{
		Addr: *addr, Seed: *seed, ClockSpeed: *speed, SeedAuthorizations: *seedAuthz, Logger: logger,
	})
	if err != nil {
		fmt.Fprintln(stderr, "cloudsim:", err)
		return 1
	}
	defer sim.Close()
	if *templateDisk != "" {
		if err := writeNew(*templateDisk, sim.SampleTemplateDisk()); err != nil {
			fmt.Fprintln(stderr, "cloudsim:", err)
			return 1
		}
	}
	if started != nil {
		started(sim)
	}
	if *speed == 1 {
		fmt.Fprintln(stderr, "cloudsim: simulated time runs at real time (an image import takes minutes)")
	} else {
		fmt.Fprintf(stderr, "cloudsim: simulated time runs %g times faster than real time (-real-time for real time)\n", *speed)
	}
	line, err := json.Marshal(Info{URLs: sim.URLs, Account: sim.Account})
	if err != nil {
		fmt.Fprintln(stderr, "cloudsim: encoding the service list:", err)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		fmt.Fprintln(stderr, "cloudsim: writing the service list:", err)
		return 1
	}
	<-ctx.Done()
	if err := sim.Close(); err != nil {
		fmt.Fprintln(stderr, "cloudsim: stopping:", err)
		return 1
	}
	return 0
}

// writeNew writes b to a new file at path (mode 0600); an existing file is
// an error.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
