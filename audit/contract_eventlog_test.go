package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/secret"
)

// contract reads a fixture of testdata/contract (see its README for the
// published source of each).
func contract(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "contract", name))
	require.NoError(t, err)
	return b
}

// eventLogServer answers SoftLayer_Event_Log::getAllObjects over REST with
// a fixed page and records the objectFilter and resultLimit of each call.
type eventLogServer struct {
	mu      sync.Mutex
	filters []string
	limits  []string
}

func (s *eventLogServer) start(t *testing.T, page []byte) *classic.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rest/v3.1/SoftLayer_Event_Log/getAllObjects.json" {
			http.Error(w, `{"error":"unexpected call","code":"SoftLayer_Exception"}`, http.StatusNotFound)
			return
		}
		s.mu.Lock()
		s.filters = append(s.filters, r.URL.Query().Get("objectFilter"))
		s.limits = append(s.limits, r.URL.Query().Get("resultLimit"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
	}))
	t.Cleanup(srv.Close)
	cl, err := classic.New(classic.ClassicAPIKey("2203114_e2e", secret.NewString("classic-key-0123456789")),
		classic.WithEndpoint(srv.URL+"/rest/v3.1"))
	require.NoError(t, err)
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

// The event log page is shaped as softlayer-python's SoftLayer_Event_Log
// fixture and SLDN's examples show it: microsecond dates with offsets, and
// SYSTEM records whose userId is "", null or absent. Every record is read,
// none fails the page, and the request's objectFilter is the golden one
// (dates in softlayer-python's form).
func TestContractEventLogPage(t *testing.T) {
	t.Parallel()
	page := contract(t, "eventlog-page.json")
	var s eventLogServer
	cl := s.start(t, page)

	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	l := audit.NewEventLog(cl)
	q := audit.Query{Start: t0, End: t0.Add(time.Minute), GuestIDs: []int{96114733}}
	evs, err := l.Window(context.Background(), q, q.Start, q.End)
	require.NoError(t, err)

	var published []json.RawMessage
	require.NoError(t, json.Unmarshal(page, &published))
	require.Len(t, evs, len(published), "every record of the page is read")
	n, skipped := l.Skipped()
	require.Zero(t, n, "%v", skipped)

	want := []struct {
		at        time.Time
		action    string
		initiator string
	}{
		{t0.Add(2*time.Second + 481233*time.Microsecond), "Disable Port", "SYSTEM"},
		{t0.Add(7*time.Second + 15872*time.Microsecond), "Security Group Added", "2203114_e2e-operator@example.com"},
		{t0.Add(9*time.Second + 990001*time.Microsecond), "Power On", "SYSTEM"},
		{t0.Add(11*time.Second + 500*time.Millisecond), "Reboot", "SYSTEM"},
	}
	for i, w := range want {
		e := evs[i]
		require.True(t, w.at.Equal(e.Time), "record %d: %v, want %v", i, e.Time, w.at)
		require.Equal(t, w.action, e.Action)
		require.Equal(t, w.initiator, e.Initiator)
		require.Equal(t, audit.ClassicEventLog, e.Source)
		require.Equal(t, "CCI", e.TargetType)
		require.Equal(t, "96114733", e.TargetID)
		require.True(t, q.Matches(&e), "record %d concerns the guest", i)
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, published[i]))
		require.JSONEq(t, compact.String(), string(e.Raw), "Raw is the record as sent")
	}

	// softlayer-go's datatype cannot hold the published SYSTEM record: read
	// through it, the whole page fails. That is why the event log is read
	// as raw records.
	_, err = cl.EventLogPage(context.Background(), "", 0, 100)
	require.ErrorContains(t, err, "userId")

	// The objectFilter sent is the golden one: softlayer-python's date
	// form, softlayer-go's filter shapes.
	require.Len(t, s.filters, 2)
	require.Equal(t, canonicalFilter(t, contract(t, "eventlog-filter.golden.json")), canonicalFilter(t, []byte(s.filters[0])))
	require.Equal(t, "0,100", s.limits[0])
	dates := regexp.MustCompile(`"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^"]*)"`).FindAllStringSubmatch(s.filters[0], -1)
	require.Len(t, dates, 2)
	for _, d := range dates {
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$`, d[1], "softlayer-python's format_event_log_date form")
	}
}

// canonicalFilter decodes an object filter with every "options" list
// sorted by option name: softlayer-go builds options from a map, so their
// order varies from call to call, and the service reads them by name.
func canonicalFilter(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, c := range m {
			if opts, ok := c.([]any); ok && k == "options" {
				sort.Slice(opts, func(i, j int) bool {
					return fmt.Sprint(opts[i].(map[string]any)["name"]) < fmt.Sprint(opts[j].(map[string]any)["name"])
				})
			}
			walk(c)
		}
	}
	walk(v)
	return v
}

// A record that cannot be read (no usable date) is skipped and counted; the
// rest of its page is kept.
func TestContractEventLogSkipsUnreadableRecord(t *testing.T) {
	t.Parallel()
	var recs []json.RawMessage
	require.NoError(t, json.Unmarshal(contract(t, "eventlog-page.json"), &recs))
	recs = append(recs, json.RawMessage(`{"eventName":"Power Off","objectName":"CCI","objectId":96114733,"eventCreateDate":"yesterday","userId":""}`))
	page, err := json.Marshal(recs)
	require.NoError(t, err)
	var s eventLogServer
	cl := s.start(t, page)

	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	l := audit.NewEventLog(cl)
	r := audit.NewReader([]audit.Source{l})
	evs, err := r.Collect(context.Background(), audit.Query{Start: t0, End: t0.Add(time.Minute), GuestIDs: []int{96114733}})
	require.NoError(t, err)
	require.Len(t, evs, 4)
	n, skipped := r.Skipped()
	require.Equal(t, 1, n)
	require.Len(t, skipped, 1)
	require.Equal(t, audit.ClassicEventLog, skipped[0].Source)
	require.Equal(t, "offset 0, record 4", skipped[0].Where)
	require.Contains(t, skipped[0].Reason, "eventCreateDate")
}
