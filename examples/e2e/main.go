// Command e2e runs the whole IBM Cloud classic End to End encryption flow
// (e2e.Run): preflight, DEK generation and wrapping, encryption and upload
// in one stream, image import, an optional server order, and the audit
// trail, printing each step, the resources it made and the audit events.
//
// Usage:
//
//	e2e                      # against the embedded simulator: no account, no arguments
//	e2e -image DISK -root-key-crn CRN -bucket NAME -cos-instance CRN [flags]   # IBM Cloud
//
// # Two modes
//
// The flags choose the mode, never the environment: IBM Cloud with
// -sim=false or with any flag only IBM Cloud uses (-root-key-crn, -bucket,
// -cos-instance, -region, -api-key-file, -endpoints, -logs-url, -private,
// -import-api-key-file), else the simulator. IBMCLOUD_API_KEY, which users
// of the ibmcloud CLI often have set, does not turn the no-argument demo
// into a real run. The first line on standard error names the mode; a
// missing IBM Cloud flag is reported with how to run the simulator instead.
//
// Simulator (the default, or -sim): the
// program starts a local IBM Cloud (internal/cloudsim) in-process with a fast
// clock, builds a small bootable-looking sample disk (or reads -image), and
// runs everything against a fresh account, including the preparation a new
// account needs: the server-protect -> kms authorization, a service ID with
// an API key, and its access policies on COS and Key Protect. It finishes
// in seconds. Nothing leaves the machine; the keys it uses are fake keys of
// the simulator. The simulator lives in this process and ends with it: on
// SIGINT or SIGTERM the run stops (also while it waits for an image on
// standard input), the simulator is closed and its files removed, and the
// program exits 130. On Linux it also stops when its parent process ends:
// `go run` runs the program as its child and ends on SIGTERM without
// passing the signal on.
//
// IBM Cloud (-sim=false, or an IBM Cloud flag): the program
// talks to the real services. It needs an API key (IBMCLOUD_API_KEY or
// -api-key-file), a Key Protect or HPCS root key (-root-key-crn), a Regional
// bucket in the key's region (-bucket) and an image (-image). The IAM
// preparation runs only with -prepare (it needs rights to manage IAM);
// without it, preflight checks that every step is in place and names what
// is missing. The import uses the service ID -service-id, whose API key is
// read from -import-api-key-file or E2E_IMPORT_API_KEY, or created by
// -prepare (then saved to -save-api-key, mode 0600: IAM shows it only
// once). When the -save-api-key file exists, -prepare checks that the key
// saved in it still authenticates as the service ID and uses it, creating
// none; if it does not, the command refuses (exit 2) before creating
// anything. -service-id "" imports with the API key itself; otherwise
// -cos-instance (the COS instance holding the bucket, as given to
// examples/prepare) is required, as the service ID's access policy names it. A server is ordered
// when -hostname is given. The audit trail reads the classic event log and,
// with -logs-url (the IBM Cloud Logs instance Activity Tracker routes to),
// Activity Tracker, once by default (-audit-wait keeps reading while the
// expected events are missing; the missing ones are reported).
// -endpoints points every service elsewhere, for example at a simulator
// started by examples/cloudsim (its first output line is such a file).
//
// # From an existing image template
//
// -from-template NAME|ID encrypts an unencrypted image template already in
// the account instead of -image: the template is exported to the bucket
// (copyToIcos), its boot disk is encrypted as it streams from COS into the
// encrypted object's upload (nothing on local disk), imported and ordered,
// and the plaintext export is deleted once the encrypted template is
// Active (-keep-export keeps it). The name, note and OS code default to the
// template's. -cleanup deletes what a stopped run left (same -state). The
// simulator's fresh account holds one such template, e2e-sample:
// `e2e -from-template e2e-sample` runs the whole cloud-side flow locally.
//
// # Secrets
//
// Secrets come only from the environment or from files, never from the
// command line: IBMCLOUD_API_KEY (or -api-key-file) for IBM Cloud,
// SL_USERNAME and SL_API_KEY for classic infrastructure when they differ from
// the IBM Cloud key, E2E_IMPORT_API_KEY (or -import-api-key-file) for the
// import's service ID key, and a DEK of your own with -key-file (raw 32 or 64
// bytes) or -key-env NAME (base64). Without one, the key service generates
// a 32-byte DEK (-dek-bits 512 makes a 64-byte one here). Neither the DEK nor
// any API key is ever printed or stored; the state file keeps only the
// wrapped DEK.
//
// # Resuming
//
// Every step is idempotent: the state file (-state, default
// <name>.e2e-state.json in IBM Cloud mode, a temporary file in simulator
// mode) records what is done, so running the same command again after a
// failure or an interruption resumes without uploading, importing or ordering
// twice.
//
// # Output
//
// Steps and progress bars go to standard error as they happen; the resources
// and the audit trail go to standard output, or, with -json, the whole
// e2e.Result as one JSON document.
//
// Exit codes (of the built program: `go run` reports any failure as "exit
// status N" and exits 1 itself): 0 success, 1 failure, 2 usage error (a
// flag, or a refusal before anything was created), 3 preflight failed
// (nothing was uploaded), 4 another run holds the state file (nothing was
// done), 5 a service cannot be reached (DNS, connection refused, TLS,
// timeout; said once, with the host), 130 interrupted (run it again to
// resume).
package main

import (
	"context"
	"os"

	"github.com/e2eimage/e2eimage/internal/cli"
)

func main() {
	cli.Main(func(ctx context.Context) int {
		return run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv,
			stopWithParent: cli.StopWithParent})
	})
}
