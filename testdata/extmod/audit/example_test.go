package audit_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/secret"
)

// Read the trail of one run from IBM Cloud: the classic event log and
// Activity Tracker events in a Cloud Logs instance, merged by time.
func ExampleReader_Events() {
	apiKey := secret.NewString(os.Getenv("IBMCLOUD_API_KEY"))
	cl, err := classic.New(classic.IBMCloudAPIKey(apiKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := iam.NewAuthenticator(apiKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer auth.CloseIdleConnections()
	logs, err := audit.NewCloudLogs("https://<instance-guid>.api.us-south.logs.cloud.ibm.com", auth, audit.WithSecrets(apiKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	r := audit.NewReader([]audit.Source{audit.NewEventLog(cl), logs})

	q := audit.Query{
		Start:       time.Now().Add(-2 * time.Hour),
		End:         time.Now(),
		KeyCRNs:     []string{"crn:v1:bluemix:public:kms:us-south:a/<account>:<instance>:key:<key>"},
		TemplateIDs: []int{1234567},
		GuestIDs:    []int{7654321},
	}
	for e, err := range r.Events(context.Background(), q) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Time.Format(time.RFC3339), e.Source, e.Action, e.Outcome, e.TargetID)
	}
}

// staticSource is a Source over a fixed list, to show how Reader merges.
type staticSource []audit.Event

func (s staticSource) Window(_ context.Context, _ audit.Query, _, _ time.Time) ([]audit.Event, error) {
	return s, nil
}

// Reader keeps the events of the query's window and resources, from every
// source, sorted by time.
func ExampleReader_Collect() {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	key := "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1"
	at := staticSource{
		{Time: t0.Add(20 * time.Minute), Source: audit.ActivityTracker, Action: audit.ActionProvision,
			TargetID: "crn:v1:bluemix:public:audit-log:us-south:a/acct::vsi:42"},
		{Time: t0.Add(1 * time.Minute), Source: audit.ActivityTracker, Action: audit.ActionWrap, TargetID: key},
		{Time: t0.Add(-time.Hour), Source: audit.ActivityTracker, Action: audit.ActionWrap, TargetID: key}, // too early
	}
	el := staticSource{
		{Time: t0.Add(5 * time.Minute), Source: audit.ClassicEventLog, Action: "Create", TargetType: "CCI", TargetID: "42"},
		{Time: t0.Add(6 * time.Minute), Source: audit.ClassicEventLog, Action: "Create", TargetType: "CCI", TargetID: "43"}, // another server
	}
	r := audit.NewReader([]audit.Source{at, el})
	evs, err := r.Collect(context.Background(), audit.Query{Start: t0, End: t0.Add(time.Hour), KeyCRNs: []string{key}, GuestIDs: []int{42}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range evs {
		fmt.Println(e.Time.Sub(t0), e.Source, e.Action)
	}
	// Output:
	// 1m0s activity-tracker kms.secrets.wrap
	// 5m0s classic-event-log Create
	// 20m0s activity-tracker audit-log.vsi.provision
}

// ReadEventStream reads the server-sent events of the Cloud Logs query API.
func ExampleReadEventStream() {
	stream := ": keep-alive\n\ndata: {\"query_id\":{\"query_id\":\"q1\"}}\n\ndata: {\"result\":\ndata: {\"results\":[]}}\n\n"
	_ = audit.ReadEventStream(strings.NewReader(stream), func(data []byte, line int) error {
		fmt.Printf("line %d: %q\n", line, data)
		return nil
	})
	// Output:
	// line 4: "{\"query_id\":{\"query_id\":\"q1\"}}"
	// line 7: "{\"result\":\n{\"results\":[]}}"
}

func ExampleLuceneQuery() {
	fmt.Println(audit.LuceneQuery(audit.Query{
		KeyCRNs:  []string{"crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1"},
		GuestIDs: []int{42},
		Actions:  []string{audit.ActionWrap, audit.ActionProvision},
	}))
	// Output: (target.id:"crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1" OR action:audit-log.*) AND (action:"kms.secrets.wrap" OR action:"audit-log.vsi.provision")
}
