// Command prepare makes an IBM Cloud account ready for classic End to End
// encrypted images, and checks it: it creates what is missing (e2e.Prepare)
// and then runs every preflight check of e2e.Run, printing a report that
// names what is missing and how to fix it.
//
// Usage:
//
//	prepare -root-key-crn CRN -bucket NAME [-cos-instance CRN] [-service-id NAME]
//	        [-save-api-key FILE] [-check] [flags]
//
// What it prepares (each step only when missing, so running it again
// creates nothing):
//
//   - the authorization that lets Cloud Block Storage (server-protect) read
//     the root key's Key Protect or HPCS instance (Reader), without which
//     servers cannot start from an encrypted image;
//   - with -cos-key-authorization, the cloud-object-storage -> key service
//     authorization that buckets encrypted with the key need;
//   - with -service-id (default e2eimage-import; "" for none), a service ID
//     for the import, an API key for it, and its access policies: Reader on
//     the bucket of -cos-instance and Reader on the key service instance.
//
// IAM shows a new API key only once: -save-api-key FILE stores it (mode
// 0600), to be given to examples/e2e or examples/import as
// -import-api-key-file. Before anything is created the command decides on
// the service ID's key, so that no key is made that cannot be kept:
//
//   - when FILE exists, the key saved in it is used, after checking that it
//     still authenticates as the service ID: running the same command again
//     creates nothing. If it does not (the key was deleted, or FILE holds
//     another identity's key), the command refuses (exit 2) and changes
//     nothing; move FILE away to have a new key made and saved;
//   - when FILE does not exist, a new key is made if the service ID has no
//     working known key (-import-api-key-file or E2E_IMPORT_API_KEY), and
//     saved in FILE;
//   - without -save-api-key, a known key is required and checked the same
//     way; no key is ever created.
//
// -check only checks and changes nothing.
//
// Credentials: IBMCLOUD_API_KEY (or -api-key-file) with rights to manage
// IAM in the account; SL_USERNAME and SL_API_KEY for the classic check when
// they differ. Secrets are never taken from flags. -endpoints FILE points
// the services elsewhere (a JSON file of URLs, such as examples/cloudsim
// prints).
//
// Exit codes (of the built program: `go run` reports any failure as "exit
// status N" and exits 1 itself): 0 every check passed, 1 failure, 2 usage
// error (also a refusal made before anything was created), 3 a check
// failed (the report says which and how to fix it; a bucket that does not
// exist is found before anything is created), 5 a service cannot be
// reached (DNS, connection refused, TLS, timeout; said once, with the host).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cli"
	"github.com/e2eimage/e2eimage/secret"
)

func main() {
	cli.Main(func(ctx context.Context) int { return run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv) })
}

const usage = `Usage: prepare -root-key-crn CRN -bucket NAME [flags]

Creates the IAM objects classic E2E encrypted images need (authorization
server-protect -> key service, a service ID with an API key and its access
policies), only where missing, then checks every preparation step.
Environment: IBMCLOUD_API_KEY, IBMCLOUD_REGION, SL_USERNAME, SL_API_KEY,
E2E_IMPORT_API_KEY. Exit codes of the built program (go run turns every
failure into 1): 0 ready, 1 failure, 2 usage or refused, 3 not ready,
5 a service cannot be reached.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	getenv := cli.Getenv(lookup)
	fs := cli.NewFlagSet("prepare", usage, stderr)
	rootKey := fs.String("root-key-crn", "", "Key Protect or HPCS root key `CRN` (required)")
	bucket := fs.String("bucket", "", "Regional COS `bucket` that will hold the images (required)")
	region := fs.String("region", getenv("IBMCLOUD_REGION"), "COS `region` of the bucket (env IBMCLOUD_REGION; default: the key's)")
	cosInstance := fs.String("cos-instance", "", "COS instance `CRN or GUID` holding the bucket (required with a service ID)")
	serviceID := fs.String("service-id", "e2eimage-import", "service ID `name` for the import; \"\" for none")
	saveKey := fs.String("save-api-key", "", "`file` to store a new service ID API key in (mode 0600); if it exists, the key saved in it is checked and used, and none is made")
	importKeyFile := fs.String("import-api-key-file", "", "`file` with the service ID's current API key (default: env E2E_IMPORT_API_KEY)")
	cosKeyAuthz := fs.Bool("cos-key-authorization", false, "also authorize COS to read the key (KP-encrypted buckets)")
	osCode := fs.String("os-code", "", "OS reference `code` to check against the classic API (default: none, only the credentials)")
	check := fs.Bool("check", false, "only check; create nothing")
	var cf cli.CloudFlags
	cf.Register(fs, cli.Help{})
	if exit, ok := cli.Parse(fs, args); !ok {
		return exit
	}
	fail := cli.Failer{Prefix: "prepare", W: stderr}.Fail
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fs.Args())
	}
	if *rootKey == "" || *bucket == "" {
		return fail(2, "-root-key-crn and -bucket are required")
	}
	if *serviceID != "" && *cosInstance == "" {
		return fail(2, "-cos-instance is required with a service ID (-service-id \"\" for none)")
	}
	apiKey, err := cf.APIKey(getenv)
	if err != nil {
		return fail(2, "%v", err)
	}
	importKey, err := cli.SecretFrom(*importKeyFile, getenv("E2E_IMPORT_API_KEY"))
	if err != nil {
		return fail(2, "%v", err)
	}
	cloud := ibmcloud.Config{APIKey: apiKey, RootKeyCRN: *rootKey, Region: *region, COSInstance: *cosInstance, Private: cf.Private}
	if cf.Endpoints != "" {
		if cloud.Endpoints, err = cf.LoadEndpoints(); err != nil {
			return fail(2, "%v", err)
		}
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
		KeyService: clients.Keys, IAM: clients.IAM, COS: clients.COS, Classic: clients.Classic,
		Bucket: *bucket, OSCode: *osCode, COSInstanceID: *cosInstance, COSKeyAuthorization: *cosKeyAuthz,
		Prepare: !*check, ImportAPIKey: importKey,
		ServiceID: iam.ServiceIDSpec{Name: *serviceID, Description: "imports E2E-encrypted images (made by e2eimage)"},
	}
	if *saveKey != "" {
		path := *saveKey
		plan.SaveAPIKey = func(_ context.Context, sid iam.ServiceID, keyID string, key *secret.String) error {
			if err := ibmcloud.WriteSecretFile(path, key); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "prepare: saved the new API key %s of service ID %s in %s\n", keyID, sid.ID, path)
			return nil
		}
	} else if !*check && *serviceID != "" && importKey.Empty() {
		// A key made now could not be kept: refuse rather than make a key
		// nobody can use.
		return fail(2, "give -save-api-key FILE (IAM shows a new API key only once), or the service ID's current key (-import-api-key-file or E2E_IMPORT_API_KEY)")
	}
	if !*check {
		// An access policy for a bucket that is not there would be made
		// for nothing (and name whatever bucket is made under that name
		// later): refuse before anything is created. Other answers are
		// left to the preflight, which explains them.
		if _, err := clients.COS.CheckBucket(ctx, *bucket, ""); errors.Is(err, cos.ErrBucketNotFound) {
			return fail(3, "bucket %s not found: create it (a Regional bucket in the root key's region) or fix -bucket, and run again; nothing was created", *bucket)
		}
	}
	if !*check && *serviceID != "" {
		// Decide on the service ID's key before anything is created: a
		// key IAM makes and nobody can keep is lost for good.
		known, note, err := cli.ImportKey(ctx, clients.IAM, clients.Auth, *serviceID, *saveKey, importKey)
		switch {
		case errors.Is(err, cli.ErrKeyRefused):
			return fail(2, "%v", err)
		case err != nil:
			return fail(1, "%v", err)
		}
		fmt.Fprintln(stderr, "prepare:", note)
		plan.ImportAPIKey = known
	}

	res, err := e2e.Prepare(ctx, plan)
	if res != nil {
		if cf.JSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				return fail(1, "writing the result: %v", jerr)
			}
		} else {
			for _, s := range res.Steps {
				fmt.Fprintln(stdout, cli.SetupFix(s.String(), "prepare without -check"))
			}
			for _, c := range res.Preflight {
				status := "ok     "
				if !c.OK {
					status = "MISSING"
				}
				fmt.Fprintf(stdout, "%s  %-50s %s\n", status, c.Name, c.Detail)
				if c.Fix != "" {
					fmt.Fprintf(stdout, "         fix: %s\n", cli.SetupFix(c.Fix, "prepare without -check"))
				}
			}
			for _, r := range res.Resources() {
				fmt.Fprintf(stdout, "%-16s %s  %s\n", r.Kind, r.ID, r.Detail)
			}
		}
	}
	var pe *e2e.PreflightError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &pe):
		return fail(3, "not ready: %d check(s) failed", len(pe.Report.Failed()))
	case errors.Is(err, e2e.ErrPlan):
		return fail(2, "%v", cli.FlagError(err, nil))
	case errors.Is(err, e2e.ErrUnreachable):
		return fail(5, "%v (check the network, the proxy and the endpoints)", err)
	}
	return fail(1, "%v", err)
}
