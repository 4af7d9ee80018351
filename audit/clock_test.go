package audit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// skew is how far the services' clocks in these tests run ahead of the
// local one (as a separately started simulator's does).
const skew = 2 * time.Hour

// skewedCloudLogs is a Cloud Logs query endpoint whose clock runs skew
// ahead: its Date header says so, and its one event happened 30 seconds
// before its now. It answers only what falls in the query's window.
func skewedCloudLogs(t *testing.T) (*httptest.Server, time.Time) {
	at := time.Now().Add(skew - 30*time.Second).UTC().Truncate(time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var q queryRequest
		require.NoError(t, json.Unmarshal(b, &q))
		from, err1 := time.Parse(time.RFC3339Nano, q.Metadata.StartDate)
		to, err2 := time.Parse(time.RFC3339Nano, q.Metadata.EndDate)
		require.NoError(t, err1)
		require.NoError(t, err2)
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "text/event-stream")
		var results []any
		if !at.Before(from) && at.Before(to) {
			results = append(results, result(atEvent{Action: ActionWrap, Outcome: "success", EventTime: at.Format(time.RFC3339),
				Target: atTarget{ID: keyCRN, Name: "root", TypeURI: "kms/secrets"}}))
		}
		_, _ = io.WriteString(w, sse(map[string]any{"result": map[string]any{"results": results}}))
	}))
	t.Cleanup(srv.Close)
	return srv, at
}

func TestWindowEndsAtTheServiceClock(t *testing.T) {
	t.Parallel()
	srv, at := skewedCloudLogs(t)
	c, err := NewCloudLogs(srv.URL, bearer(t))
	require.NoError(t, err)
	r := NewReader([]Source{c})
	start := time.Now().Add(-time.Hour)

	// A window that ends at the local clock's now misses the event: this
	// is what e2e and examples/audit did.
	evs, err := r.Collect(context.Background(), Query{Start: start, End: time.Now(), KeyCRNs: []string{keyCRN}})
	require.NoError(t, err)
	require.Empty(t, evs, "the local clock lags the service's")

	// A window whose End is left zero ends at the service's clock.
	now, err := r.ServiceNow(context.Background())
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(skew), now, time.Minute, "ServiceNow reads the service's Date")
	evs, err = r.Collect(context.Background(), Query{Start: start, KeyCRNs: []string{keyCRN}})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.True(t, evs[0].Time.Equal(at))
}

// clockPager is an event log pager whose service clock runs skew ahead,
// as *classic.Client reports it (ServiceTime).
type clockPager struct {
	fakePager
	reads int
}

func (p *clockPager) EventLogRecords(ctx context.Context, f string, offset, limit int) ([]json.RawMessage, error) {
	p.mu.Lock()
	p.reads++
	p.mu.Unlock()
	return p.fakePager.EventLogRecords(ctx, f, offset, limit)
}

func (p *clockPager) ServiceTime() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reads == 0 {
		return time.Now(), false
	}
	return time.Now().Add(skew), true
}

func TestEventLogWindowEndsAtTheServiceClock(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(skew - time.Minute).UTC()
	p := &clockPager{}
	p.recs = append(p.recs, elRecord(at, "CCI", 7, "Power On"))
	r := NewReader([]Source{NewEventLog(p)})
	start := time.Now().Add(-time.Hour)

	evs, err := r.Collect(context.Background(), Query{Start: start, End: time.Now(), GuestIDs: []int{7}})
	require.NoError(t, err)
	require.Empty(t, evs, "the local clock lags the service's")

	evs, err = r.Collect(context.Background(), Query{Start: start, GuestIDs: []int{7}})
	require.NoError(t, err)
	require.Len(t, evs, 1, "the window ended at the service's clock")
}

func TestServiceNowWithoutClocksIsLocal(t *testing.T) {
	t.Parallel()
	r := NewReader([]Source{NewEventLog(&fakePager{})})
	before := time.Now()
	now, err := r.ServiceNow(context.Background())
	require.NoError(t, err)
	require.False(t, now.Before(before))
}

// clockedSource is a Source with a Clock that counts the windows asked of it.
type clockedSource struct {
	now     time.Time
	windows int
}

func (c *clockedSource) Window(_ context.Context, _ Query, _, _ time.Time) ([]Event, error) {
	c.windows++
	return nil, nil
}

func (c *clockedSource) Now(context.Context) (time.Time, error) { return c.now, nil }

// TestWindowEndsNoLaterThanTheServiceClock: an End far ahead of the services'
// now (as -until 2100 gives) is read up to that now only, not slice by slice
// to the year 2100.
func TestWindowEndsNoLaterThanTheServiceClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	src := &clockedSource{now: now}
	r := NewReader([]Source{src})
	q := Query{Start: now.Add(-3 * time.Hour), End: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	_, err := r.Collect(context.Background(), q)
	require.NoError(t, err)
	require.Equal(t, 3, src.windows, "three one-hour slices up to the services' now, not %d", src.windows)
}
