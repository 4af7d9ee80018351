// Command order orders a classic virtual server from an (E2E-encrypted)
// image template and waits until it is provisioned.
//
// Usage:
//
//	order (-template-id ID | -template-name NAME | -state FILE) -hostname H -domain D -datacenter DC [flags]
//
// The template is named by id, by name, or by the state file of
// examples/import or examples/e2e. It must be Active. The order is checked
// first (generateOrderTemplate and verifyOrder, free of charge); -dry-run
// stops there and prints the price.
//
// Ordering is not repeated: when a server with the same hostname and domain
// exists, it is reported (and waited for) instead of ordering a second one.
// A createObject whose answer was lost is never re-sent blindly; running
// the command again finds the server by its name.
//
// Credentials: SL_USERNAME and SL_API_KEY (classic infrastructure), or else
// IBMCLOUD_API_KEY (with user name "apikey"). Secrets are never taken from
// flags. -endpoints FILE reads the classic endpoint ("softlayer") from a JSON
// file of URLs such as examples/cloudsim prints.
//
// Exit codes (of the built program: `go run` reports any failure as "exit
// status N" and exits 1 itself): 0 provisioned (or verified, with
// -dry-run), 1 failure, 2 usage error, 130 interrupted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cli"
)

func main() {
	cli.Main(func(ctx context.Context) int { return run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv) })
}

const usage = `Usage: order (-template-id ID | -template-name NAME | -state FILE) -hostname H -domain D -datacenter DC [flags]

Orders a virtual server from an Active image template and waits until it is
provisioned; an existing server with the same hostname and domain is reported
instead of ordering another. Environment: SL_USERNAME and SL_API_KEY, or
IBMCLOUD_API_KEY. Exit codes of the built program (go run turns every
failure into 1): 0 done, 1 failure, 2 usage, 130 interrupted.

Flags:
`

// output is what -json prints.
type output struct {
	Server   *classic.Server     `json:"server,omitempty"`
	Existing bool                `json:"existing,omitempty"`
	Quote    *classic.OrderQuote `json:"quote,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	getenv := cli.Getenv(lookup)
	fs := cli.NewFlagSet("order", usage, stderr)
	templateID := fs.Int("template-id", 0, "image template `id`")
	templateName := fs.String("template-name", "", "image template `name`")
	state := fs.String("state", "", "state `file` of examples/import or examples/e2e naming the template")
	hostname := fs.String("hostname", "", "server `hostname` (required)")
	domain := fs.String("domain", "", "server `domain` (required)")
	datacenter := fs.String("datacenter", "", "data `center`, e.g. dal13 (required)")
	cpus := fs.Int("cpus", 2, "CPUs")
	memory := fs.Int("memory", 4096, "memory in `MB`")
	monthly := fs.Bool("monthly", false, "monthly billing (default hourly)")
	speed := fs.Int("network-speed", 0, "port speed in `Mbps` (10, 100, 1000; default: the package's)")
	privateOnly := fs.Bool("private-network-only", false, "no public interface")
	var sshKeys cli.IntList
	fs.Var(&sshKeys, "ssh-key-id", "`id` of an SSH key in the account (repeatable)")
	userDataFile := fs.String("user-data-file", "", "cloud-init user data `file`")
	dryRun := fs.Bool("dry-run", false, "verify the order and print its price; order nothing")
	noWait := fs.Bool("no-wait", false, "do not wait for provisioning")
	timeout := fs.Duration("timeout", time.Hour, "how long to wait for provisioning")
	var cf cli.CloudFlags
	cf.Register(fs, cli.Help{NoAPIKeyFile: true,
		Endpoints: "JSON `file` of service URLs; its \"softlayer\" URL is used",
		Private:   "use the private classic endpoint"})
	if exit, ok := cli.Parse(fs, args); !ok {
		return exit
	}
	fail := cli.Failer{Prefix: "order", W: stderr}.Fail
	named := 0
	for _, set := range []bool{*templateID != 0, *templateName != "", *state != ""} {
		if set {
			named++
		}
	}
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected arguments %q", fs.Args())
	case named != 1:
		return fail(2, "name the template with exactly one of -template-id, -template-name and -state")
	case *hostname == "" || *domain == "" || *datacenter == "":
		return fail(2, "-hostname, -domain and -datacenter are required")
	}
	creds, ok := cli.ClassicCredentials(getenv)
	if !ok {
		return fail(2, "no credentials: set SL_USERNAME and SL_API_KEY, or IBMCLOUD_API_KEY")
	}
	var opts []classic.Option
	switch {
	case cf.Endpoints != "":
		ep, err := cf.LoadEndpoints()
		if err != nil {
			return fail(2, "%v", err)
		}
		if ep.SoftLayer == "" {
			return fail(2, "%s has no \"softlayer\" URL", cf.Endpoints)
		}
		opts = append(opts, classic.WithEndpoint(ep.SoftLayer), classic.WithPollInterval(50*time.Millisecond, time.Second))
	case cf.Private:
		opts = append(opts, classic.WithPrivateEndpoint())
	}
	cl, err := classic.New(creds, opts...)
	if err != nil {
		return fail(2, "%v", err)
	}

	ref := classic.TemplateRef{ID: *templateID}
	switch {
	case *templateName != "":
		t, err := cl.FindTemplateByName(ctx, *templateName)
		if err != nil {
			return fail(1, "finding template %q: %v", *templateName, err)
		}
		ref.ID = t.ID
	case *state != "":
		st, err := e2e.LoadState(*state)
		if err != nil {
			return fail(2, "%v", err)
		}
		if st.TemplateID == 0 {
			return fail(1, "%s records no template yet: finish the import first", *state)
		}
		ref.ID = st.TemplateID
	}
	spec := classic.ServerSpec{
		Hostname: *hostname, Domain: *domain, Datacenter: *datacenter, CPUs: *cpus, MemoryMB: *memory,
		Template: ref, Monthly: *monthly, NetworkSpeedMbps: *speed, PrivateNetworkOnly: *privateOnly, SSHKeyIDs: sshKeys,
	}
	if *userDataFile != "" {
		b, err := os.ReadFile(*userDataFile)
		if err != nil {
			return fail(2, "%v", err)
		}
		spec.UserData = string(b)
	}

	var out output
	if *dryRun {
		q, err := cl.VerifyServer(ctx, spec)
		if err != nil {
			return fail(1, "%v", err)
		}
		out.Quote = q
		return report(stdout, stderr, cf.JSON, out)
	}
	srv, err := cl.FindServer(ctx, *hostname, *domain)
	switch {
	case err == nil:
		out.Existing = true
		fmt.Fprintf(stderr, "order: server %d (%s) exists already; not ordering another\n", srv.ID, srv.FQDN)
	case errors.Is(err, classic.ErrNotFound):
		if srv, err = cl.CreateServer(ctx, spec); err != nil {
			return fail(1, "%v", err)
		}
		fmt.Fprintf(stderr, "order: ordered server %d (%s.%s) from template %d\n", srv.ID, srv.Hostname, srv.Domain, ref.ID)
	default:
		return fail(1, "looking for an existing server: %v", err)
	}
	if !*noWait && !srv.Provisioned() {
		wctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		last := ""
		srv, err = cl.WaitServer(wctx, srv.ID, classic.ServerProgress(func(s classic.Server) {
			if s.Transaction != last && s.Transaction != "" {
				last = s.Transaction
				fmt.Fprintf(stderr, "order: %s\n", s.Transaction)
			}
		}))
		if err != nil {
			if ctx.Err() != nil {
				return fail(130, "interrupted; the server was ordered, run the same command again to wait for it")
			}
			return fail(1, "waiting for the server: %v", err)
		}
	}
	out.Server = srv
	return report(stdout, stderr, cf.JSON, out)
}

func report(stdout, stderr io.Writer, asJSON bool, out output) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "order: writing the result:", err)
			return 1
		}
		return 0
	}
	if q := out.Quote; q != nil {
		fmt.Fprintf(stdout, "verified: template %d in %s, hourly %.3f, monthly %.2f, setup %.2f\n",
			q.TemplateID, q.Location, q.HourlyRecurring, q.MonthlyRecurring, q.Setup)
		for _, it := range q.Items {
			fmt.Fprintf(stdout, "  %s\n", it)
		}
	}
	if s := out.Server; s != nil {
		state := "provisioned " + s.ProvisionDate.Format(time.RFC3339)
		if !s.Provisioned() {
			state = "provisioning (" + s.Transaction + ")"
		}
		fmt.Fprintf(stdout, "server %d %s %s %s from template %d, public %s, private %s, %s\n", s.ID, s.GlobalIdentifier,
			s.FQDN, s.Datacenter, s.TemplateID, dash(s.PrimaryIP), dash(s.BackendIP), state)
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
