package atsim_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const keyCRN = "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1"

func sample() []simcore.Event {
	return []simcore.Event{
		{Action: "kms.secrets.wrap", Outcome: "success", EventTime: t0, Target: simcore.Target{ID: keyCRN, Name: "root"},
			Initiator: simcore.Initiator{ID: "IBMid-1", Name: "owner@example.com"}, ResponseData: map[string]any{"keyState": 1, "keyVersionId": "v1"}},
		{Action: "kms.secrets.unwrap", Outcome: "failure", EventTime: t0.Add(time.Minute), Target: simcore.Target{ID: keyCRN, Name: "root"},
			Reason: simcore.Reason{ReasonCode: 422}},
		{Action: "kms.secrets-metadata.read", Outcome: "success", EventTime: t0.Add(2 * time.Minute), Target: simcore.Target{ID: "crn:other", Name: "other key"}},
		{Action: "audit-log.vsi-image-template.create", Outcome: "success", EventTime: t0.Add(3 * time.Minute), Message: "Image template created"},
	}
}

func newStore(t *testing.T) *atsim.Store {
	t.Helper()
	s := atsim.NewStore(0)
	for _, ev := range sample() {
		s.Record(ev)
	}
	return s
}

func TestStoreIsBoundedAndOrdered(t *testing.T) {
	t.Parallel()
	s := atsim.NewStore(3)
	changed := s.Changed()
	for i := range 5 {
		s.Record(simcore.Event{Action: fmt.Sprintf("a.b.%d", i), EventTime: t0.Add(time.Duration(i) * time.Second)})
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not closed by Record")
	}
	evs := s.Events()
	require.Len(t, evs, 3)
	require.Equal(t, "a.b.2", evs[0].Action)
	require.Equal(t, "a.b.4", evs[2].Action)
	require.Equal(t, 2, s.Dropped())
	require.Equal(t, 3, s.Len())
}

func TestFind(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	require.Len(t, s.Find(atsim.Filter{Action: "kms.secrets.wrap"}), 1)
	require.Len(t, s.Find(atsim.Filter{Action: "kms.*"}), 3)
	require.Len(t, s.Find(atsim.Filter{TargetID: keyCRN}), 2)
	require.Len(t, s.Find(atsim.Filter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}), 2)
}

func TestLuceneSubset(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	cases := map[string][]string{
		``:                                      {"kms.secrets.wrap", "kms.secrets.unwrap", "kms.secrets-metadata.read", "audit-log.vsi-image-template.create"},
		`*`:                                     {"kms.secrets.wrap", "kms.secrets.unwrap", "kms.secrets-metadata.read", "audit-log.vsi-image-template.create"},
		`action:kms.secrets.wrap`:               {"kms.secrets.wrap"},
		`action:KMS.Secrets.Wrap`:               {"kms.secrets.wrap"},
		`action:kms.secrets*`:                   {"kms.secrets.wrap", "kms.secrets.unwrap", "kms.secrets-metadata.read"},
		`action:"kms.secrets*"`:                 nil, // quoted: no wildcard
		`target.id:"` + keyCRN + `"`:            {"kms.secrets.wrap", "kms.secrets.unwrap"},
		`target.id:` + keyCRN:                   {"kms.secrets.wrap", "kms.secrets.unwrap"},
		`target.name:"other key"`:               {"kms.secrets-metadata.read"},
		`responseData.keyState:1`:               {"kms.secrets.wrap"},
		`reason.reasonCode:422`:                 {"kms.secrets.unwrap"},
		`responseData.keyVersionId:*`:           {"kms.secrets.wrap"},
		`action:kms.* AND outcome:failure`:      {"kms.secrets.unwrap"},
		`action:kms.* && NOT outcome:failure`:   {"kms.secrets.wrap", "kms.secrets-metadata.read"},
		`action:kms.* -outcome:failure`:         {"kms.secrets.wrap", "kms.secrets-metadata.read"},
		`outcome:failure OR action:audit-log.*`: {"kms.secrets.unwrap", "audit-log.vsi-image-template.create"},
		`(target.id:"` + keyCRN + `" OR target.id:"crn:other") AND (action:"kms.secrets.wrap" OR action:"kms.secrets-metadata.read")`: {"kms.secrets.wrap", "kms.secrets-metadata.read"},
		`"image template"`:                 {"audit-log.vsi-image-template.create"},
		`initiator.name:owner@example.com`: {"kms.secrets.wrap"},
		`nosuch.field:x`:                   nil,
	}
	for q, want := range cases {
		got, err := s.Search(q, time.Time{}, time.Time{}, 0)
		require.NoError(t, err, q)
		var acts []string
		for _, ev := range got {
			acts = append(acts, ev.Action)
		}
		require.Equal(t, want, acts, q)
	}
	limited, err := s.Search("action:kms.*", time.Time{}, time.Time{}, 2)
	require.NoError(t, err)
	require.Len(t, limited, 2)
}

func TestLuceneErrors(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		`action:[a TO b]`, `action:/re/`, `action:wrap~2`, `action:*wrap`, `action:w?ap`, `(action:a`,
		`action:"unterminated`, `action:`, `AND`, `action:a OR`, `action:a)`,
	} {
		_, err := atsim.Parse(q)
		require.Error(t, err, q)
		require.True(t, errors.Is(err, atsim.ErrSyntax), q)
	}
}

type fixture struct {
	srv       *httptest.Server
	token     string
	lastError map[string]any // the body of post's last non-200 answer
}

func newHTTP(t *testing.T) (*fixture, *atsim.Store) {
	t.Helper()
	iam, err := iamsim.New(iamsim.Config{AccountID: "acct", OwnerAPIKey: "owner-key-0123456789abcdef0123456789"})
	require.NoError(t, err)
	tok, _, err := iam.IssueToken("owner-key-0123456789abcdef0123456789")
	require.NoError(t, err)
	s := newStore(t)
	srv := httptest.NewServer(s.Handler(atsim.HandlerConfig{AccountID: "acct", Identity: iam, Authz: iam}))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, token: tok}, s
}

func (f *fixture) post(t *testing.T, body, token string) (*http.Response, []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var msgs []map[string]any
	f.lastError = nil
	if resp.StatusCode != http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&f.lastError))
		return resp, nil
	}
	sc := bufio.NewScanner(resp.Body)
	prev := ""
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			require.Equal(t, ": success", prev, "each item follows a keep-alive comment")
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(data), &m))
			msgs = append(msgs, m)
		}
		prev = line
	}
	return resp, msgs
}

func TestQueryEndpoint(t *testing.T) {
	t.Parallel()
	f, _ := newHTTP(t)
	body := `{"query":"action:kms.secrets.*","metadata":{"start_date":"` + t0.Format(time.RFC3339) + `","end_date":"` +
		t0.Add(90*time.Second).Format(time.RFC3339) + `","syntax":"lucene","limit":10,"tier":"frequent_search"}}`
	resp, msgs := f.post(t, body, f.token)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Len(t, msgs, 2)
	require.Contains(t, msgs[0], "query_id")
	results := msgs[1]["result"].(map[string]any)["results"].([]any)
	require.Len(t, results, 2)
	first := results[0].(map[string]any)
	require.Equal(t, "applicationname", first["labels"].([]any)[0].(map[string]any)["key"])
	require.Equal(t, "ibm-audit-event", first["labels"].([]any)[0].(map[string]any)["value"])
	require.Equal(t, "timestamp", first["metadata"].([]any)[0].(map[string]any)["key"])
	var ev simcore.Event
	require.NoError(t, json.Unmarshal([]byte(first["user_data"].(string)), &ev))
	require.Equal(t, "kms.secrets.wrap", ev.Action)
	require.Equal(t, keyCRN, ev.Target.ID)

	// No token, a bad query, a bad syntax. Errors come in the API error
	// form with logs-go-sdk's codes.
	resp, _ = f.post(t, body, "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "unauthenticated", f.lastError["errors"].([]any)[0].(map[string]any)["code"])
	require.NotEmpty(t, f.lastError["trace"])
	require.EqualValues(t, http.StatusUnauthorized, f.lastError["status_code"])
	resp, _ = f.post(t, `{"query":"action:[a TO b]"}`, f.token)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = f.post(t, `{"query":"x","metadata":{"syntax":"dataprime"}}`, f.token)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = f.post(t, `{"query":"x","metadata":{"limit":50001}}`, f.token)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// No match still answers a result message.
	_, msgs = f.post(t, `{"query":"action:none"}`, f.token)
	require.Len(t, msgs, 2)
	require.Empty(t, msgs[1]["result"].(map[string]any)["results"])
}

func TestEventsEndpoint(t *testing.T) {
	t.Parallel()
	f, _ := newHTTP(t)
	get := func(q string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/events?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := f.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return m
	}
	m := get("action=kms.*&limit=2&offset=1")
	require.EqualValues(t, 3, m["total"])
	require.Len(t, m["events"], 2)
	m = get("target=" + keyCRN)
	require.EqualValues(t, 2, m["total"])
}

func ExampleParse() {
	s := atsim.NewStore(0)
	s.Record(simcore.Event{Action: "kms.secrets.wrap", Outcome: "success", Target: simcore.Target{ID: "crn:v1:bluemix:public:kms:us-south:a/1:2:key:3"}})
	s.Record(simcore.Event{Action: "kms.secrets.unwrap", Outcome: "failure"})
	evs, err := s.Search(`action:kms.secrets.* AND NOT outcome:failure`, time.Time{}, time.Time{}, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range evs {
		fmt.Println(ev.Action, ev.Target.ID)
	}
	_, err = atsim.Parse(`action:[a TO b]`)
	fmt.Println(errors.Is(err, atsim.ErrSyntax))
	// Output:
	// kms.secrets.wrap crn:v1:bluemix:public:kms:us-south:a/1:2:key:3
	// true
}
