package audit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	iampkg "github.com/e2eimage/e2eimage/iam"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/secret"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

const keyCRN = "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1"

// --- event log -------------------------------------------------------------

func TestEventLogFilters(t *testing.T) {
	t.Parallel()
	l := NewEventLog(nil)
	q := Query{Start: t0, End: t0.Add(time.Hour), GuestIDs: []int{7, 8}, TemplateIDs: []int{3},
		KeyCRNs: []string{keyCRN}, Actions: []string{"Create", "Import Complete"}}
	fs := l.Filters(q, t0.Add(500*time.Millisecond), t0.Add(90*time.Second+time.Millisecond))
	require.Len(t, fs, 2, "one filter per object kind; key CRNs are not in the event log")

	type crit struct {
		Operation any `json:"operation"`
		Options   []struct {
			Name  string `json:"name"`
			Value []any  `json:"value"`
		} `json:"options"`
	}
	opt := func(c crit, name string) []any {
		for _, o := range c.Options {
			if o.Name == name {
				return o.Value
			}
		}
		t.Fatalf("no option %q in %+v", name, c)
		return nil
	}
	for i, want := range []struct {
		object string
		ids    []any
	}{{"CCI", []any{7.0, 8.0}}, {"Image", []any{3.0}}} {
		var f map[string]crit
		require.NoError(t, json.Unmarshal([]byte(fs[i]), &f), fs[i])
		require.Equal(t, want.object, f["objectName"].Operation)
		require.Equal(t, "in", f["objectId"].Operation)
		require.Equal(t, want.ids, opt(f["objectId"], "data"))
		require.Equal(t, "in", f["eventName"].Operation)
		require.Equal(t, []any{"Create", "Import Complete"}, opt(f["eventName"], "data"))
		require.Equal(t, "betweenDate", f["eventCreateDate"].Operation)
		// Widened to whole seconds (betweenDate is inclusive), written
		// with microseconds and an offset as softlayer-python does.
		require.Equal(t, []any{"2026-03-04T10:00:00.000000+00:00"}, opt(f["eventCreateDate"], "startDate"))
		require.Equal(t, []any{"2026-03-04T10:01:31.000000+00:00"}, opt(f["eventCreateDate"], "endDate"))
	}

	// No resources: the whole window.
	fs = l.Filters(Query{Start: t0, End: t0.Add(time.Hour)}, t0, t0.Add(time.Minute))
	require.Len(t, fs, 1)
	require.NotContains(t, fs[0], "objectName")
	require.Contains(t, fs[0], `"endDate"`)

	fs = NewEventLog(nil, WithObjectNames("VSI", "Template")).Filters(q, t0, t0.Add(time.Minute))
	require.Contains(t, fs[0], `"VSI"`)
	require.Contains(t, fs[1], `"Template"`)
}

type fakePager struct {
	mu          sync.Mutex
	recs        []json.RawMessage
	ignoreLimit bool
	calls       []string
	err         error
}

func (p *fakePager) EventLogRecords(_ context.Context, f string, offset, limit int) ([]json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf("%d,%d", offset, limit))
	if p.err != nil {
		return nil, p.err
	}
	if p.ignoreLimit {
		return p.recs, nil
	}
	if offset >= len(p.recs) {
		return nil, nil
	}
	return p.recs[offset:min(offset+limit, len(p.recs))], nil
}

// elRecord is an event log record as the service sends it.
func elRecord(at time.Time, object string, id int, name string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"eventCreateDate": at.Format(EventLogDateLayout), "objectName": object, "objectId": id, "eventName": name,
		"label": "label", "username": "user@example.com", "traceId": "trace", "userType": "CUSTOMER",
	})
	return b
}

func TestEventLogPaging(t *testing.T) {
	t.Parallel()
	p := &fakePager{}
	for i := range 250 {
		p.recs = append(p.recs, elRecord(t0.Add(time.Duration(i)*time.Second), "CCI", 7, "Power On"))
	}
	l := NewEventLog(p, WithPageSize(100))
	q := Query{Start: t0, End: t0.Add(time.Hour), GuestIDs: []int{7}}
	evs, err := l.Window(context.Background(), q, t0.Add(10*time.Second), t0.Add(200*time.Second))
	require.NoError(t, err)
	require.Equal(t, []string{"0,100", "100,100", "200,100"}, p.calls)
	require.Len(t, evs, 190, "trimmed to [from, to)")
	e := evs[0]
	require.Equal(t, ClassicEventLog, e.Source)
	require.Equal(t, "Power On", e.Action)
	require.Equal(t, "7", e.TargetID)
	require.Equal(t, "CCI", e.TargetType)
	require.Equal(t, "user@example.com", e.Initiator)
	require.Equal(t, "trace", e.CorrelationID)
	require.Equal(t, t0.Add(10*time.Second), e.Time)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(e.Raw, &raw))
	require.Equal(t, "Power On", raw["eventName"])

	// A server that ignores resultLimit is read once, not forever.
	p2 := &fakePager{recs: p.recs, ignoreLimit: true}
	evs, err = NewEventLog(p2, WithPageSize(100)).Window(context.Background(), q, t0, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, p2.calls, 1)
	require.Len(t, evs, 250)

	// Errors say what was being done.
	p3 := &fakePager{err: errors.New("boom")}
	_, err = NewEventLog(p3).Window(context.Background(), q, t0, t0.Add(time.Hour))
	require.ErrorContains(t, err, "classic event log")
	require.ErrorContains(t, err, "boom")
}

// --- server-sent events ----------------------------------------------------

func TestReadEventStream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"one event", "data: {\"a\":1}\n\n", []string{`{"a":1}`}},
		{"no space after colon", "data:{\"a\":1}\n\n", []string{`{"a":1}`}},
		{"only one space is stripped", "data:  x\n\n", []string{" x"}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []string{"{\"a\":\n1}"}},
		{"keep-alive comments", ": ping\n\n: ping\ndata: x\n: ping\n\n", []string{"x"}},
		{"other fields ignored", "event: message\nid: 7\nretry: 100\ndata: x\n\n", []string{"x"}},
		{"CRLF", "data: x\r\n\r\ndata: y\r\n\r\n", []string{"x", "y"}},
		{"CR", "data: x\r\rdata: y\r\r", []string{"x", "y"}},
		{"unterminated last event", "data: x\n\ndata: y", []string{"x", "y"}},
		{"blank lines only", "\n\n\n", nil},
		{"empty", "", nil},
		{"field without colon", "data\n\n", []string{""}},
		{"empty data then more", "data:\ndata: z\n\n", []string{"\nz"}},
		{"unknown field", "foo: bar\n\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := ReadEventStream(strings.NewReader(tc.in), func(d []byte, _ int) error {
				got = append(got, string(d))
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	// Byte-at-a-time delivery changes nothing.
	var got []string
	err := ReadEventStream(io.MultiReader(oneByte("data: a\r\n\r\ndata: b\n\n")...), func(d []byte, _ int) error {
		got = append(got, string(d))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, got)

	// fn's error stops the read; lines are reported.
	stop := errors.New("stop")
	var lines []int
	err = ReadEventStream(strings.NewReader(": hi\ndata: a\n\ndata: b\n\n"), func(d []byte, line int) error {
		lines = append(lines, line)
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, []int{3}, lines)
}

func oneByte(s string) []io.Reader {
	var rs []io.Reader
	for i := range len(s) {
		rs = append(rs, strings.NewReader(s[i:i+1]))
	}
	return rs
}

// --- Cloud Logs --------------------------------------------------------------

type atEvent struct {
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"`
	EventTime string    `json:"eventTime"`
	Target    atTarget  `json:"target"`
	Initiator atInitBy  `json:"initiator"`
	Message   string    `json:"message"`
	Reason    *atReason `json:"reason,omitempty"`
}
type atTarget struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	TypeURI string `json:"typeURI"`
}
type atInitBy struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}
type atReason struct {
	ReasonForFailure string `json:"reasonForFailure"`
}

func result(e atEvent) map[string]any {
	b, _ := json.Marshal(e)
	return map[string]any{"metadata": []any{map[string]any{"key": "timestamp", "value": e.EventTime}},
		"labels": []any{}, "user_data": string(b)}
}

func sse(msgs ...any) string {
	var b strings.Builder
	for _, m := range msgs {
		if s, ok := m.(string); ok {
			b.WriteString(s)
			continue
		}
		j, _ := json.Marshal(m)
		fmt.Fprintf(&b, "data: %s\n\n", j)
	}
	return b.String()
}

type capturedQuery struct {
	Auth, Accept, ContentType string
	Body                      queryRequest
}

func newCloudLogsServer(t *testing.T, respond func(q queryRequest) (int, string)) (*httptest.Server, *[]capturedQuery) {
	var mu sync.Mutex
	var got []capturedQuery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "POST", r.Method)
		require.Equal(t, "/v1/query", r.URL.Path)
		var c capturedQuery
		c.Auth, c.Accept, c.ContentType = r.Header.Get("Authorization"), r.Header.Get("Accept"), r.Header.Get("Content-Type")
		require.NoError(t, json.NewDecoder(r.Body).Decode(&c.Body))
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		status, body := respond(c.Body)
		if status == 200 {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func bearer(t *testing.T) core.Authenticator {
	a, err := core.NewBearerTokenAuthenticator("tok-123")
	require.NoError(t, err)
	return a
}

func TestCloudLogsSearch(t *testing.T) {
	t.Parallel()
	wrap := atEvent{Action: ActionWrap, Outcome: "success", EventTime: "2026-03-04T10:00:05.25+0000",
		Target: atTarget{ID: keyCRN, Name: "root", TypeURI: "kms/secrets"}, Initiator: atInitBy{ID: "iam-ServiceId-1", Name: "e2e"},
		Message: "Key Protect: wrap secret root"}
	fail := atEvent{Action: ActionUnwrap, Outcome: "failure", EventTime: "2026-03-04T10:00:06Z",
		Target: atTarget{ID: keyCRN}, Initiator: atInitBy{ID: "iam-ServiceId-1"}, Reason: &atReason{ReasonForFailure: "bad ciphertext"}}
	srv, got := newCloudLogsServer(t, func(q queryRequest) (int, string) {
		return 200, sse(": keep-alive\n\n",
			map[string]any{"query_id": map[string]any{"query_id": "q1"}},
			map[string]any{"warning": map[string]any{"message": "something"}},
			map[string]any{"result": map[string]any{"results": []any{result(wrap)}}},
			": keep-alive\n\n",
			map[string]any{"result": map[string]any{"results": []any{result(fail)}}})
	})
	c, err := NewCloudLogs(srv.URL+"/", bearer(t))
	require.NoError(t, err)
	evs, err := c.Search(context.Background(), `target.id:"x"`, t0, t0.Add(time.Hour), 50)
	require.NoError(t, err)
	require.Len(t, evs, 2)

	q := (*got)[0]
	require.Equal(t, "Bearer tok-123", q.Auth)
	require.Equal(t, "text/event-stream", q.Accept)
	require.Equal(t, "application/json", q.ContentType)
	require.Equal(t, `target.id:"x"`, q.Body.Query)
	require.Equal(t, "lucene", q.Body.Metadata.Syntax)
	require.Equal(t, "frequent_search", q.Body.Metadata.Tier)
	require.Equal(t, 50, q.Body.Metadata.Limit)
	require.Equal(t, "2026-03-04T10:00:00Z", q.Body.Metadata.StartDate)
	require.Equal(t, "2026-03-04T11:00:00Z", q.Body.Metadata.EndDate)

	e := evs[0]
	require.Equal(t, ActivityTracker, e.Source)
	require.Equal(t, ActionWrap, e.Action)
	require.Equal(t, OutcomeSuccess, e.Outcome)
	require.Equal(t, keyCRN, e.TargetID)
	require.Equal(t, "root", e.TargetName)
	require.Equal(t, "kms/secrets", e.TargetType)
	require.Equal(t, "e2e", e.Initiator)
	require.Equal(t, "Key Protect: wrap secret root", e.Message)
	require.True(t, e.Time.Equal(t0.Add(5250*time.Millisecond)), e.Time)
	require.JSONEq(t, mustJSON(wrap), string(e.Raw))

	require.Equal(t, OutcomeFailure, evs[1].Outcome)
	require.Equal(t, "bad ciphertext", evs[1].FailureReason)
	require.Equal(t, "iam-ServiceId-1", evs[1].Initiator, "falls back to the initiator id")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCloudLogsMalformed(t *testing.T) {
	t.Parallel()
	key := secret.NewString("secret-api-key-123")
	good := result(atEvent{Action: ActionWrap, EventTime: "2026-03-04T10:00:00Z"})
	cases := []struct {
		name   string
		status int
		body   string
		check  func(t *testing.T, err error)
	}{
		{"HTTP error with errors[]", 403, `{"errors":[{"code":"forbidden","message":"no access for secret-api-key-123"}],"status_code":403}`,
			func(t *testing.T, err error) {
				var qe *QueryError
				require.ErrorAs(t, err, &qe)
				require.Equal(t, 403, qe.StatusCode)
				require.Equal(t, "forbidden", qe.Code)
				require.Contains(t, qe.Message, "no access")
			}},
		{"HTTP error in text", 502, "bad gateway", func(t *testing.T, err error) {
			var qe *QueryError
			require.ErrorAs(t, err, &qe)
			require.Equal(t, "bad gateway", qe.Message)
		}},
		{"error in the stream", 200, sse(map[string]any{"query_id": map[string]any{"query_id": "q"}},
			map[string]any{"error": map[string]any{"message": "query timed out", "code": map[string]any{"rate_limit_reached": map[string]any{}}}}),
			func(t *testing.T, err error) {
				var qe *QueryError
				require.ErrorAs(t, err, &qe)
				require.Equal(t, 200, qe.StatusCode)
				require.Equal(t, "query timed out", qe.Message)
				require.Contains(t, qe.Code, "rate_limit_reached")
			}},
		{"message not JSON", 200, "data: {\"result\":\n\n", func(t *testing.T, err error) {
			var se *StreamError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 2, se.Line)
		}},
		{"API error item in the stream", 200, sse(map[string]any{"query_id": map[string]any{"query_id": "q"}},
			map[string]any{"errors": []any{map[string]any{"code": "unauthorized", "message": "key secret-api-key-123 may not read"}},
				"trace": "t-1", "status_code": 403}),
			func(t *testing.T, err error) {
				var qe *QueryError
				require.ErrorAs(t, err, &qe)
				require.Equal(t, 403, qe.StatusCode)
				require.True(t, qe.InStream)
				require.Equal(t, "unauthorized", qe.Code)
				require.Equal(t, "t-1", qe.Trace)
				require.Contains(t, err.Error(), "trace t-1")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newCloudLogsServer(t, func(queryRequest) (int, string) { return tc.status, tc.body })
			c, err := NewCloudLogs(srv.URL, bearer(t), WithSecrets(key))
			require.NoError(t, err)
			evs, err := c.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
			require.Nil(t, evs)
			require.Error(t, err)
			require.NotContains(t, err.Error(), key.Reveal())
			tc.check(t, err)
		})
	}

	// Results that are not audit events are skipped and counted; the rest
	// of the answer is kept.
	bad := []any{
		map[string]any{"user_data": "{nope"},
		map[string]any{"user_data": ""},
		map[string]any{"user_data": `{"eventTime":"2026-03-04T10:00:00Z"}`},
		map[string]any{"user_data": `{"action":"a.b.c","eventTime":"yesterday"}`},
	}
	srv0, _ := newCloudLogsServer(t, func(queryRequest) (int, string) {
		return 200, sse(map[string]any{"result": map[string]any{"results": append([]any{good}, bad...)}})
	})
	c0, err := NewCloudLogs(srv0.URL, bearer(t))
	require.NoError(t, err)
	evs0, err := c0.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, evs0, 1)
	n, skipped := c0.Skipped()
	require.Equal(t, len(bad), n)
	var reasons []string
	for _, sk := range skipped {
		require.Equal(t, ActivityTracker, sk.Source)
		reasons = append(reasons, sk.Where+": "+sk.Reason)
	}
	require.Equal(t, []string{
		"stream line 2, result 1: user_data is not an event: invalid character 'n' looking for beginning of object key string",
		"stream line 2, result 2: empty user_data",
		"stream line 2, result 3: user_data has no action",
		`stream line 2, result 4: no readable eventTime ("yesterday") or timestamp`,
	}, reasons)

	// The metadata timestamp stands in for a missing eventTime; unknown
	// messages are skipped.
	srv, _ := newCloudLogsServer(t, func(queryRequest) (int, string) {
		return 200, sse(map[string]any{"something_new": 1}, map[string]any{"result": map[string]any{"results": []any{map[string]any{
			"metadata":  []any{map[string]any{"key": "timestamp", "value": "2026-03-04T10:00:01Z"}},
			"user_data": `{"action":"kms.secrets.wrap"}`}}}})
	})
	c, err := NewCloudLogs(srv.URL, bearer(t))
	require.NoError(t, err)
	evs, err := c.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, t0.Add(time.Second), evs[0].Time)
}

// storeServer answers queries from a list of events like Cloud Logs: the
// window's events, oldest first, at most limit.
func storeServer(t *testing.T, events []atEvent) (*httptest.Server, *[]capturedQuery) {
	return newCloudLogsServer(t, func(q queryRequest) (int, string) {
		from, _ := time.Parse(time.RFC3339Nano, q.Metadata.StartDate)
		to, _ := time.Parse(time.RFC3339Nano, q.Metadata.EndDate)
		var results []any
		for _, e := range events {
			at, _ := parseEventTime(e.EventTime)
			if !at.Before(from) && !at.After(to) && len(results) < q.Metadata.Limit { // inclusive end, on purpose
				results = append(results, result(e))
			}
		}
		return 200, sse(map[string]any{"result": map[string]any{"results": results}})
	})
}

func TestCloudLogsSplitsFullWindows(t *testing.T) {
	t.Parallel()
	var events []atEvent
	for i := range 40 {
		events = append(events, atEvent{Action: ActionWrap, EventTime: t0.Add(time.Duration(i) * 90 * time.Second).Format(time.RFC3339),
			Target: atTarget{ID: keyCRN}})
	}
	srv, got := storeServer(t, events)
	c, err := NewCloudLogs(srv.URL, bearer(t), WithQueryLimit(7))
	require.NoError(t, err)
	q := Query{Start: t0, End: t0.Add(time.Hour), KeyCRNs: []string{keyCRN}}
	evs, err := c.Window(context.Background(), q, q.Start, q.End)
	require.NoError(t, err)
	require.Len(t, evs, 40, "every event exactly once, although the server's end bound is inclusive")
	seen := map[time.Time]bool{}
	for _, e := range evs {
		require.False(t, seen[e.Time], "duplicate %v", e.Time)
		seen[e.Time] = true
	}
	require.Greater(t, len(*got), 6, "full windows were split")
	for _, g := range *got {
		require.Equal(t, 7, g.Body.Metadata.Limit)
		require.Equal(t, `target.id:"`+keyCRN+`"`, g.Body.Query)
	}

	// Too many events in one second cannot be split further.
	var burst []atEvent
	for range 10 {
		burst = append(burst, atEvent{Action: ActionWrap, EventTime: t0.Format(time.RFC3339)})
	}
	srv2, _ := storeServer(t, burst)
	c2, err := NewCloudLogs(srv2.URL, bearer(t), WithQueryLimit(5))
	require.NoError(t, err)
	_, err = c2.Window(context.Background(), q, q.Start, q.End)
	require.ErrorIs(t, err, ErrTooManyEvents)
}

func TestLuceneQuery(t *testing.T) {
	t.Parallel()
	require.Equal(t, "*", LuceneQuery(Query{}))
	require.Equal(t, `target.id:"a\"b\\c"`, LuceneQuery(Query{KeyCRNs: []string{`a"b\c`}}))
	require.Equal(t, `target.id:"k" OR action:audit-log.*`, LuceneQuery(Query{KeyCRNs: []string{"k"}, GuestIDs: []int{1}}))
	require.Equal(t, `(action:audit-log.*) AND (action:"a" OR action:"b")`,
		LuceneQuery(Query{TemplateIDs: []int{1}, Actions: []string{"a", "b"}}))
	require.Equal(t, `action:"a"`, LuceneQuery(Query{Actions: []string{"a"}}))
}

func TestNewCloudLogsWithIAM(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"http://logs.example.com", "ftp://127.0.0.1", "https://u:p@x.example.com", "https://"} {
		_, err := NewCloudLogs(bad, bearer(t))
		require.Error(t, err, bad)
	}
	_, err := NewCloudLogs("https://x.api.us-south.logs.cloud.ibm.com", nil)
	require.Error(t, err)
	skip := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test checks that it is refused
	_, err = NewCloudLogs("https://x.api.us-south.logs.cloud.ibm.com", bearer(t), WithHTTPClient(skip))
	require.ErrorIs(t, err, endpoint.ErrSkipVerify)
	// The whole chain with a local IAM: the token it grants is the bearer;
	// a failing IAM does not leak the key.
	key := secret.NewString("my-iam-api-key-0000")
	var fail bool
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/identity/token", r.URL.Path)
		require.NoError(t, r.ParseForm())
		if fail {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"errorCode":"BXNIM0415E","errorMessage":"Provided API key `+r.Form.Get("apikey")+` could not be found."}`)
			return
		}
		now := time.Now().Unix()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + r.Form.Get("apikey")[:2], "refresh_token": "r",
			"token_type": "Bearer", "expires_in": 3600, "expiration": now + 3600})
	}))
	defer iam.Close()
	srv, got := newCloudLogsServer(t, func(queryRequest) (int, string) { return 200, sse() })
	auth, err := iampkg.NewAuthenticator(key, iampkg.WithURL(iam.URL))
	require.NoError(t, err)
	c, err := NewCloudLogs(srv.URL, auth, WithSecrets(key))
	require.NoError(t, err)
	_, err = c.Search(context.Background(), "*", t0, t0.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Equal(t, "Bearer at-my", (*got)[0].Auth)

	fail = true
	auth2, err := iampkg.NewAuthenticator(key, iampkg.WithURL(iam.URL))
	require.NoError(t, err)
	c2, err := NewCloudLogs(srv.URL, auth2, WithSecrets(key))
	require.NoError(t, err)
	_, err = c2.Search(context.Background(), "*", t0, t0.Add(time.Minute), 10)
	require.Error(t, err)
	require.NotContains(t, err.Error(), key.Reveal())
}

// --- matching and merging ----------------------------------------------------

func TestQueryMatches(t *testing.T) {
	t.Parallel()
	q := Query{Start: t0, End: t0.Add(time.Hour), KeyCRNs: []string{keyCRN}, TemplateIDs: []int{3},
		TemplateGUIDs: []string{"tg"}, GuestIDs: []int{7}}
	at := func(action, id string) Event {
		return Event{Source: ActivityTracker, Time: t0, Action: action, TargetID: id}
	}
	el := func(obj string, id string) Event {
		return Event{Source: ClassicEventLog, Time: t0, TargetType: obj, TargetID: id}
	}
	// The kind of a classic target comes from the documented action; the
	// CRN's resource type is not documented and is not read.
	const crn = "crn:v1:bluemix:public:audit-log:us-south:a/acct::some-undocumented-type:"
	cases := []struct {
		name string
		e    Event
		want bool
	}{
		{"key", at(ActionWrap, keyCRN), true},
		{"other key", at(ActionWrap, strings.Replace(keyCRN, "k1", "k2", 1)), false},
		{"template by id", at(ActionTemplateCreate, crn+"3"), true},
		{"template by guid", at(ActionTemplateCreate, crn+"tg"), true},
		{"guest", at(ActionProvision, crn+"7"), true},
		{"guest port action", at("audit-log.vsi-port.disable", crn+"7"), true},
		{"guest id in a template action", at(ActionTemplateCreate, crn+"7"), false},
		{"template id in a guest action", at(ActionProvision, crn+"3"), false},
		{"other guest", at(ActionProvision, crn+"8"), false},
		{"guest id in another service's action", at("is.instance.create", crn+"7"), false},
		{"not a CRN", at(ActionProvision, "7"), false},
		{"event log guest", el("CCI", "7"), true},
		{"event log other guest", el("CCI", "3"), false},
		{"event log template", el("Image", "3"), true},
		{"event log bad id", el("Image", "x"), false},
		{"before the window", Event{Source: ActivityTracker, Time: t0.Add(-time.Nanosecond), TargetID: keyCRN}, false},
		{"at the end", Event{Source: ActivityTracker, Time: t0.Add(time.Hour), TargetID: keyCRN}, false},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, q.Matches(&tc.e), tc.name)
	}
	q.Actions = []string{ActionWrap}
	e := at(ActionWrap, keyCRN)
	e.Action = ActionUnwrap
	require.False(t, q.Matches(&e))
	e.Action = ActionWrap
	require.True(t, q.Matches(&e))
	all := Query{Start: t0, End: t0.Add(time.Hour)}
	require.True(t, all.Matches(&Event{Time: t0, TargetID: "anything"}))
}

type fakeSource struct {
	mu     sync.Mutex
	events []Event
	calls  [][2]time.Time
	err    error
}

func (s *fakeSource) Window(_ context.Context, q Query, from, to time.Time) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, [2]time.Time{from, to})
	if s.err != nil {
		return nil, s.err
	}
	return s.events, nil // deliberately everything: Reader must trim
}

func TestReaderMergesSortsAndFilters(t *testing.T) {
	t.Parallel()
	ev := func(src SourceName, min int, action, target string) Event {
		return Event{Source: src, Time: t0.Add(time.Duration(min) * time.Minute), Action: action, TargetID: target}
	}
	a := &fakeSource{events: []Event{
		ev(ActivityTracker, 50, ActionProvision, "crn:v1:bluemix:public:audit-log:us-south:a/x::vsi:7"),
		ev(ActivityTracker, 1, ActionWrap, keyCRN),
		ev(ActivityTracker, 61, ActionWrap, keyCRN), // after the window
		ev(ActivityTracker, 20, ActionWrap, "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:other"),
	}}
	b := &fakeSource{events: []Event{
		{Source: ClassicEventLog, Time: t0.Add(30 * time.Minute), Action: "Import Complete", TargetType: "Image", TargetID: "3"},
		{Source: ClassicEventLog, Time: t0.Add(1 * time.Minute), Action: "Create", TargetType: "CCI", TargetID: "7"},
		{Source: ClassicEventLog, Time: t0.Add(-1 * time.Minute), Action: "Create", TargetType: "CCI", TargetID: "7"},
	}}
	r := NewReader([]Source{a, b}, WithSlice(25*time.Minute))
	q := Query{Start: t0, End: t0.Add(time.Hour), KeyCRNs: []string{keyCRN}, TemplateIDs: []int{3}, GuestIDs: []int{7}}
	got, err := r.Collect(context.Background(), q)
	require.NoError(t, err)
	var names []string
	for _, e := range got {
		names = append(names, fmt.Sprintf("%s %s %s", e.Time.Sub(t0), e.Source, e.Action))
	}
	require.Equal(t, []string{
		"1m0s activity-tracker kms.secrets.wrap",
		"1m0s classic-event-log Create",
		"30m0s classic-event-log Import Complete",
		"50m0s activity-tracker audit-log.vsi.provision",
	}, names)
	require.Equal(t, [][2]time.Time{{t0, t0.Add(25 * time.Minute)}, {t0.Add(25 * time.Minute), t0.Add(50 * time.Minute)},
		{t0.Add(50 * time.Minute), t0.Add(time.Hour)}}, a.calls, "the window is read slice by slice")

	// Stopping the iteration stops the reading.
	a.calls = nil
	for range r.Events(context.Background(), q) {
		break
	}
	require.Len(t, a.calls, 1)
}

func TestReaderErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := NewReader([]Source{&fakeSource{}, &fakeSource{err: boom}})
	n := 0
	for _, err := range r.Events(context.Background(), Query{Start: t0, End: t0.Add(time.Hour)}) {
		n++
		require.ErrorIs(t, err, boom)
	}
	require.Equal(t, 1, n)

	_, err := r.Collect(context.Background(), Query{Start: t0, End: t0})
	require.ErrorContains(t, err, "Start before End")
	_, err = NewReader(nil).Collect(context.Background(), Query{Start: t0, End: t0.Add(time.Hour)})
	require.ErrorContains(t, err, "no sources")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = NewReader([]Source{&fakeSource{}}).Collect(ctx, Query{Start: t0, End: t0.Add(time.Hour)})
	require.ErrorIs(t, err, context.Canceled)
}

func TestCloudLogsRetries(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	statuses := []int{503, 429, 200}
	srv, got := newCloudLogsServer(t, func(queryRequest) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		st := statuses[0]
		if len(statuses) > 1 {
			statuses = statuses[1:]
		}
		if st != 200 {
			return st, `{"errors":[{"code":"busy","message":"try later"}]}`
		}
		return 200, sse(map[string]any{"result": map[string]any{"results": []any{result(atEvent{Action: ActionWrap, EventTime: "2026-03-04T10:00:00Z"})}}})
	})
	c, err := NewCloudLogs(srv.URL, bearer(t))
	require.NoError(t, err)
	c.retryBase = time.Millisecond
	evs, err := c.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Len(t, *got, 3)

	// Out of attempts: the last error.
	statuses = []int{429}
	c2, err := NewCloudLogs(srv.URL, bearer(t), WithQueryAttempts(2))
	require.NoError(t, err)
	c2.retryBase = time.Millisecond
	_, err = c2.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	var qe *QueryError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, 429, qe.StatusCode)
	require.Len(t, *got, 5)

	// A client error is not retried.
	statuses = []int{400}
	_, err = c2.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	require.ErrorAs(t, err, &qe)
	require.Len(t, *got, 6)

	// Nor is a dead server retried past the attempts, and the error says so.
	srv.Close()
	_, err = c2.Search(context.Background(), "*", t0, t0.Add(time.Hour), 10)
	require.ErrorContains(t, err, "querying Cloud Logs")
}

func TestEventLogObjectNamesReachMatches(t *testing.T) {
	t.Parallel()
	p := &fakePager{recs: []json.RawMessage{
		elRecord(t0, "VSI", 7, "Create"),
		elRecord(t0, "Template", 3, "Import Complete"),
		elRecord(t0, "User", 7, "Login"), // same id, another kind of object
	}}
	r := NewReader([]Source{NewEventLog(p, WithObjectNames("VSI", "Template"))})
	evs, err := r.Collect(context.Background(), Query{Start: t0, End: t0.Add(time.Minute), GuestIDs: []int{7}, TemplateIDs: []int{3}})
	require.NoError(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, e.TargetType+"/"+e.Action)
	}
	require.ElementsMatch(t, []string{"VSI/Create", "Template/Import Complete"}, got)
}

// --- expected events -----------------------------------------------------------

func TestExpectedActionsAreDocumented(t *testing.T) {
	t.Parallel()
	run := Query{KeyCRNs: []string{keyCRN}, TemplateIDs: []int{3}, TemplateGUIDs: []string{"tg"}, GuestIDs: []int{7}}
	require.Equal(t, []string{ActionWrap, ActionProvision}, ExpectedActions(run),
		"the wrap and the provisioning; IBM documents no event for an import")
	require.Empty(t, ExpectedActions(Query{TemplateIDs: []int{3}}), "an import alone expects nothing")
	require.Equal(t, []string{ActionWrap}, ExpectedActions(Query{KeyCRNs: []string{keyCRN}}))
	for _, a := range []string{ActionWrap, ActionUnwrap, ActionTemplateCreate, ActionProvision} {
		src, ok := Documented(a)
		require.True(t, ok, a)
		require.Contains(t, src, a, "the source names the action")
	}
	src, _ := Documented(ActionTemplateCreate)
	require.Contains(t, src, "for an instance")
	_, ok := Documented("audit-log.vsi-image-template.import")
	require.False(t, ok)

	evs := []Event{
		{Action: ActionWrap, Outcome: OutcomeSuccess},
		{Action: ActionProvision, Outcome: OutcomeFailure},
		{Action: "Power On"}, // an event log record: no outcome
	}
	require.Equal(t, []string{ActionProvision}, Missing(evs, []string{ActionWrap, ActionProvision}))
	require.Equal(t, []string{ActionProvision, ActionWrap}, Missing(nil, []string{ActionProvision, ActionWrap}))
	require.Empty(t, Missing(evs, []string{"Power On"}))
}
