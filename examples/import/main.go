// Command import encrypts a disk image, uploads it to Cloud Object Storage
// and imports it as a classic E2E-encrypted image template, waiting until
// the template is Active: e2e.Run without the preparation, the server and
// the audit trail.
//
// Usage:
//
//	import -image DISK -root-key-crn CRN -bucket NAME [-name NAME] [-os-code CODE] [flags]
//
// The image may be raw, a fixed VHD, a dynamic VHD or a qcow2 file ("-"
// reads standard input: a raw or VHD stream; a raw stream needs
// -image-size). It is encrypted with a new DEK (64
// bytes made here, or -dek-bits 256 for a 32-byte one made by the key
// service) or the one in -key-file / -key-env, which is wrapped by the root
// key; the encrypted VHD goes to the bucket as it is made (no temporary
// file) as <name>.vhd-0.vhd, and the import gets the wrapped DEK.
//
// Before anything is uploaded, preflight checks the root key, the
// server-protect -> key service authorization, the bucket (Regional, in the
// key's region), the classic credentials and OS code, and the image (the
// image doctor reads it: a whole disk with a supported Linux, cloud-init
// and the Xen block driver; the OS code, when -os-code is not given, is
// the one it finds); with
// -service-id it also checks that service ID and its access policies. Use
// examples/prepare to create what is missing.
//
// The import runs with the API key in -import-api-key-file or
// E2E_IMPORT_API_KEY (a service ID's), or else IBMCLOUD_API_KEY itself.
// Secrets come only from the environment or files.
//
// The state file (-state, default <name>.e2e-state.json) makes a failed or
// interrupted import resumable: run the same command again, and nothing is
// uploaded or imported twice. It holds the wrapped DEK, never the DEK.
// examples/order -state FILE orders a server from the template it records.
//
// Exit codes (of the built program: `go run` reports any failure as "exit
// status N" and exits 1 itself): 0 the template is Active, 1 failure, 2
// usage error, 3 preflight failed (nothing was uploaded), 130 interrupted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cli"
	"github.com/e2eimage/e2eimage/internal/progressbar"
)

func main() {
	cli.Main(func(ctx context.Context) int {
		return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	})
}

const usage = `Usage: import -image DISK -root-key-crn CRN -bucket NAME [flags]

Encrypts DISK, uploads it and imports it as an E2E-encrypted image template.
Running it again resumes an interrupted import (see -state).
Environment: IBMCLOUD_API_KEY, IBMCLOUD_REGION, SL_USERNAME, SL_API_KEY,
E2E_IMPORT_API_KEY. Exit codes of the built program (go run turns every
failure into 1): 0 imported, 1 failure, 2 usage,
3 preflight failed, 130 interrupted.

Flags:
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	getenv := cli.Getenv(lookup)
	fs := cli.NewFlagSet("import", usage, stderr)
	image := fs.String("image", "", "disk image: raw, fixed or dynamic VHD, qcow2 (`path`, \"-\" for standard input)")
	imageSize := fs.Int64("image-size", 0, "virtual size in `bytes` of a raw image on standard input")
	name := fs.String("name", "", "template `name` (default: the image file's base name)")
	note := fs.String("note", "encrypted by e2eimage", "`text` stored with the template")
	osCode := fs.String("os-code", "", "operating system reference `code` (default: the one the image doctor finds in the image; required for standard input)")
	object := fs.String("object", "", "object `name` (default <name>"+e2e.ObjectSuffix+")")
	rootKey := fs.String("root-key-crn", "", "Key Protect or HPCS root key `CRN` (required)")
	region := fs.String("region", getenv("IBMCLOUD_REGION"), "COS `region` (env IBMCLOUD_REGION; default: the key's)")
	bucket := fs.String("bucket", "", "Regional COS `bucket` in the key's region (required)")
	cosInstance := fs.String("cos-instance", "", "COS instance `CRN or GUID` (for the service ID's policy check)")
	serviceID := fs.String("service-id", "", "check this service ID and its policies in preflight (its key: -import-api-key-file)")
	importKeyFile := fs.String("import-api-key-file", "", "`file` with the import's API key (default: env E2E_IMPORT_API_KEY, else IBMCLOUD_API_KEY)")
	keyFile := fs.String("key-file", "", "bring your own DEK: `file` of its raw 32 or 64 bytes")
	keyEnv := fs.String("key-env", "", "bring your own DEK: environment `variable` holding it base64-encoded")
	dekBits := fs.Int("dek-bits", 512, "new DEK size in bits: 512 (made here) or 256 (made by the key service)")
	state := fs.String("state", "", "state `file` (default <name>.e2e-state.json)")
	partSize := fs.Int64("part-size", 0, "upload part size in `bytes` (default 16 MiB)")
	concurrency := fs.Int("concurrency", 0, "parts in flight (default 4)")
	workers := fs.Int("workers", 0, "encryption goroutines (default GOMAXPROCS)")
	var cf cli.CloudFlags
	cf.Register(fs, cli.Help{})
	quiet := fs.Bool("q", false, "no progress bars")
	if exit, ok := cli.Parse(fs, args); !ok {
		return exit
	}
	fail := cli.Failer{Prefix: "import", W: stderr}.Fail
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected arguments %q", fs.Args())
	case *image == "" || *rootKey == "" || *bucket == "":
		return fail(2, "-image, -root-key-crn and -bucket are required")
	case *dekBits != 256 && *dekBits != 512:
		return fail(2, "-dek-bits must be 256 or 512")
	case *keyFile != "" && *keyEnv != "":
		return fail(2, "give -key-file or -key-env, not both")
	}
	if *name == "" {
		base := filepath.Base(*image)
		*name = strings.TrimSuffix(base, filepath.Ext(base))
		if *image == "-" {
			return fail(2, "-name is required for an image on standard input")
		}
	}
	if *state == "" {
		*state = *name + ".e2e-state.json"
	}
	apiKey, err := cf.APIKey(getenv)
	if err != nil {
		return fail(2, "%v", err)
	}
	importKey, err := cli.SecretFrom(*importKeyFile, getenv("E2E_IMPORT_API_KEY"))
	if err != nil {
		return fail(2, "%v", err)
	}
	if importKey.Empty() {
		importKey = apiKey
	}
	cloud := ibmcloud.Config{APIKey: apiKey, RootKeyCRN: *rootKey, Region: *region, COSInstance: *cosInstance, Private: cf.Private}
	if cf.Endpoints != "" {
		if cloud.Endpoints, err = cf.LoadEndpoints(); err != nil {
			return fail(2, "%v", err)
		}
		cloud.PollMin, cloud.PollMax = 50*time.Millisecond, time.Second // a local endpoint: poll often
	}
	if creds, ok := cli.SLCredentials(getenv); ok {
		cloud.Classic = creds
	}
	clients, err := ibmcloud.Connect(cloud)
	if err != nil {
		code, err := cli.ConnectError(err)
		return fail(code, "%v", err)
	}
	defer clients.Close()

	plan := e2e.Plan{
		Name: *name, Note: *note, OSCode: *osCode, Object: *object, ImageSize: *imageSize, Workers: *workers,
		KeyService: clients.Keys, IAM: clients.IAM, COS: clients.COS, Classic: clients.Classic,
		ProveImportKey: clients.ProveImportKey,
		Bucket:         *bucket, COSInstanceID: *cosInstance, ImportAPIKey: importKey,
		ServiceID: iam.ServiceIDSpec{Name: *serviceID}, StatePath: *state,
		PartSize: *partSize, Concurrency: *concurrency,
	}
	if *dekBits == 256 {
		plan.DEKSize = vhdcrypt.AES128XTS
	}
	switch {
	case *keyFile != "":
		plan.DEK, err = vhdcrypt.ReadKeyFile(*keyFile)
	case *keyEnv != "":
		plan.DEK, err = vhdcrypt.KeyFromEnv(*keyEnv, lookup)
	}
	if err != nil {
		return fail(2, "%v", err)
	}
	if plan.DEK != nil {
		defer plan.DEK.Zero()
	}
	if *image == "-" {
		// A signal must end the run even while it waits for input.
		plan.Image = cli.ContextReader(ctx, stdin)
	} else {
		f, err := os.Open(*image)
		if err != nil {
			return fail(1, "%v", err)
		}
		defer f.Close()
		plan.Image = f
	}
	bar := progressbar.New(stderr)
	plan.OnStep = func(s e2e.Step) {
		bar.Break()
		if s.Status != e2e.StepRunning || s.Detail != "" {
			fmt.Fprintln(stderr, s)
		}
	}
	if !*quiet {
		plan.OnProgress = func(p vhdcrypt.Progress) {
			if p.Phase != vhdcrypt.PhaseEncrypt {
				bar.Update(string(p.Phase), p.Done, p.Total)
			}
		}
	}

	res, err := e2e.Run(ctx, plan)
	bar.Break()
	if res != nil {
		if cf.JSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				return fail(1, "writing the result: %v", jerr)
			}
		} else if t := res.Template; t != nil && err == nil {
			fmt.Fprintf(stdout, "template %d %s %q %s\nobject %s\nroot key %s\nstate %s\n",
				t.ID, t.GlobalIdentifier, t.Name, t.Status, res.Object.URI, res.Key.RootKeyCRN, *state)
		}
	}
	var pe *e2e.PreflightError
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil && cli.StateExists(*state):
		return fail(130, "interrupted; run the same command again to resume (state %s)", *state)
	case ctx.Err() != nil:
		return fail(130, "interrupted before the import recorded anything; nothing to resume")
	case errors.As(err, &pe):
		fmt.Fprint(stderr, pe.Report.String())
		return fail(3, "preflight failed; nothing was uploaded (examples/prepare creates what is missing)")
	case errors.Is(err, e2e.ErrPlan):
		return fail(2, "%v", cli.FlagError(err, nil))
	}
	fmt.Fprintln(stderr, err)
	if cli.StateExists(*state) {
		return fail(1, "fix the cause and run the same command again to resume (state %s)", *state)
	}
	return 1
}
