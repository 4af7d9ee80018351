// Command audit prints the audit trail of an End to End run: the Key
// Protect or HPCS events of its root key (wrap, unwrap, ...), the creation
// of its image template and the provisioning of its server, merged from the
// classic infrastructure event log and Activity Tracker (IBM Cloud Logs),
// sorted by time.
//
// Usage:
//
//	audit -state FILE [flags]
//	audit [-root-key-crn CRN] [-template-id ID]... [-guest-id ID]... [-since T] [-until T] [flags]
//
// -state reads the run's resources and start time from the state file of
// examples/e2e or examples/import. Otherwise name the resources; with none,
// every event of the window is printed. The window is [-since, -until):
// RFC 3339 times, or durations before now ("2h"); -since defaults to the
// state's start, else 24h, and -until to the services' now (their clock,
// read from their answers' Date, not the local one). -action keeps only the given
// actions (repeatable), e.g. kms.secrets.wrap.
//
// Activity Tracker events are read from the IBM Cloud Logs instance that
// Activity Tracker routes to (-logs-url https://<instance>.api.<region>.logs.cloud.ibm.com,
// needs IBMCLOUD_API_KEY); without it only the classic event log is read
// (credentials SL_USERNAME and SL_API_KEY, or IBMCLOUD_API_KEY). Activity
// Tracker shows events a few minutes after they happen. -endpoints FILE
// reads the classic, IAM and Cloud Logs URLs from a JSON file such as
// examples/cloudsim prints.
//
// Exit codes (of the built program; `go run` reports any failure as "exit
// status N" and exits 1 itself): 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/e2eimage/e2eimage/iam"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cli"
	"github.com/e2eimage/e2eimage/secret"
)

func main() {
	cli.Main(func(ctx context.Context) int {
		return run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv, time.Now)
	})
}

const usage = `Usage: audit (-state FILE | [-root-key-crn CRN] [-template-id ID]... [-guest-id ID]...) [flags]

Prints the audit events of an E2E run (key wraps, template creation, server
provisioning) from the classic event log and Activity Tracker.
Environment: IBMCLOUD_API_KEY, SL_USERNAME, SL_API_KEY.
Exit codes of the built program (go run turns every failure into 1):
0 success, 1 failure, 2 usage.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool), now func() time.Time) int {
	getenv := cli.Getenv(lookup)
	fs := cli.NewFlagSet("audit", usage, stderr)
	state := fs.String("state", "", "state `file` of examples/e2e or examples/import")
	var keys, guids, actions cli.StringList
	var templates, guests cli.IntList
	fs.Var(&keys, "root-key-crn", "root key `CRN` (repeatable)")
	fs.Var(&templates, "template-id", "image template `id` (repeatable)")
	fs.Var(&guids, "template-guid", "image template global `identifier` (repeatable)")
	fs.Var(&guests, "guest-id", "virtual server `id` (repeatable)")
	fs.Var(&actions, "action", "keep only this `action` (repeatable)")
	since := fs.String("since", "", "window start: RFC 3339 `time` or a duration before now (default: the state's start, else 24h)")
	until := fs.String("until", "", "window end: RFC 3339 `time` or a duration before now (default: now)")
	logsURL := fs.String("logs-url", "", "IBM Cloud Logs instance `URL` for Activity Tracker events")
	var cf cli.CloudFlags
	cf.Register(fs, cli.Help{NoAPIKeyFile: true,
		Endpoints: "JSON `file` of service URLs (softlayer, iam, activity_tracker)",
		Private:   "use the private classic endpoint",
		JSON:      "print the events as JSON"})
	if exit, ok := cli.Parse(fs, args); !ok {
		return exit
	}
	fail := cli.Failer{Prefix: "audit", W: stderr}.Fail
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fs.Args())
	}
	q := audit.Query{KeyCRNs: keys, TemplateIDs: templates, TemplateGUIDs: guids, GuestIDs: guests, Actions: actions}
	start := now().Add(-24 * time.Hour)
	if *state != "" {
		st, err := e2e.LoadState(*state)
		if err != nil {
			return fail(2, "%v", err)
		}
		q.KeyCRNs = append(q.KeyCRNs, st.RootKeyCRN)
		if st.TemplateID != 0 {
			q.TemplateIDs = append(q.TemplateIDs, st.TemplateID)
		}
		q.TemplateIDs = append(q.TemplateIDs, st.FailedTemplates...)
		if st.TemplateGUID != "" {
			q.TemplateGUIDs = append(q.TemplateGUIDs, st.TemplateGUID)
		}
		if st.GuestID != 0 {
			q.GuestIDs = append(q.GuestIDs, st.GuestID)
		}
		start = st.Started.Truncate(time.Second)
	}
	var err error
	if q.Start, err = parseTime(*since, start, now); err != nil {
		return fail(2, "-since: %v", err)
	}
	// Without -until the window ends at the services' clock (the events'
	// clock), which the reader reads from their answers.
	if q.End, err = parseTime(*until, time.Time{}, now); err != nil {
		return fail(2, "-until: %v", err)
	}
	if !q.End.IsZero() && !q.Start.Before(q.End) {
		return fail(2, "the window is empty: -since %s is not before -until %s", q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339))
	}

	ep, err := cf.LoadEndpoints()
	if err != nil {
		return fail(2, "%v", err)
	}
	if *logsURL != "" {
		ep.ActivityTracker = *logsURL
	}
	apiKey := getenv("IBMCLOUD_API_KEY")
	creds, ok := cli.ClassicCredentials(getenv)
	if !ok {
		return fail(2, "no credentials: set IBMCLOUD_API_KEY, or SL_USERNAME and SL_API_KEY")
	}
	var copts []classic.Option
	switch {
	case ep.SoftLayer != "":
		copts = append(copts, classic.WithEndpoint(ep.SoftLayer))
	case cf.Private:
		copts = append(copts, classic.WithPrivateEndpoint())
	}
	cl, err := classic.New(creds, copts...)
	if err != nil {
		return fail(2, "%v", err)
	}
	sources := []audit.Source{audit.NewEventLog(cl)}
	if ep.ActivityTracker != "" {
		if apiKey == "" {
			return fail(2, "reading Activity Tracker needs IBMCLOUD_API_KEY")
		}
		key := secret.NewString(apiKey)
		iamOpts := []iam.Option{}
		if ep.IAM != "" {
			iamOpts = append(iamOpts, iam.WithURL(ep.IAM))
		}
		auth, err := iam.NewAuthenticator(key, iamOpts...)
		if err != nil {
			return fail(2, "%v", err)
		}
		logs, err := audit.NewCloudLogs(ep.ActivityTracker, auth, audit.WithSecrets(key, creds.APIKey))
		if err != nil {
			return fail(2, "%v", err)
		}
		sources = append(sources, logs)
	} else {
		fmt.Fprintln(stderr, "audit: no -logs-url: reading the classic event log only")
	}

	reader := audit.NewReader(sources)
	if q.End.IsZero() {
		if q.End, err = reader.ServiceNow(ctx); err != nil {
			return fail(1, "%v", err)
		}
	}
	events, err := reader.Collect(ctx, q)
	if err != nil {
		return fail(1, "%v", err)
	}
	if cf.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if events == nil {
			events = []audit.Event{}
		}
		if err := enc.Encode(events); err != nil {
			return fail(1, "writing the events: %v", err)
		}
		return 0
	}
	for _, e := range events {
		outcome := e.Outcome
		if outcome == "" {
			outcome = "-"
		}
		fmt.Fprintf(stdout, "%s  %-17s  %-36s %-8s %s  %s\n", e.Time.UTC().Format(time.RFC3339), e.Source, e.Action, outcome,
			e.TargetID, e.Initiator)
	}
	fmt.Fprintf(stderr, "audit: %d events from %s to %s\n", len(events), q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339))
	return 0
}

// parseTime reads an RFC 3339 time or a duration before now; "" gives def.
func parseTime(s string, def time.Time, now func() time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now().Add(-d), nil
}
