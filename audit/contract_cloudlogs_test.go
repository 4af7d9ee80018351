package audit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
)

// cloudLogsServer answers every POST /v1/query with one fixture, and counts
// the queries.
func cloudLogsServer(t *testing.T, status int, contentType string, body []byte) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/query" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "unexpected request", http.StatusNotFound)
			return
		}
		n.Add(1)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func newLogs(t *testing.T, url string, opts ...audit.CloudLogsOption) *audit.CloudLogs {
	t.Helper()
	auth, err := core.NewBearerTokenAuthenticator("token-for-tests")
	require.NoError(t, err)
	c, err := audit.NewCloudLogs(url, auth, opts...)
	require.NoError(t, err)
	return c
}

var streamStart = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// A stream as the query API sends it (logs-go-sdk's reader and its
// comments): ": success" and empty ":" keep-alives, a query_id item, a
// warning item, then results. One result's user_data is an application
// log line, not an audit event: it is skipped and counted, and the other
// results are returned.
func TestContractCloudLogsStream(t *testing.T) {
	t.Parallel()
	url, _ := cloudLogsServer(t, http.StatusOK, "text/event-stream", contract(t, "cloudlogs-stream.sse"))
	c := newLogs(t, url)
	evs, err := c.Search(context.Background(), "*", streamStart, streamStart.Add(time.Hour), 1000)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, audit.ActionWrap, evs[0].Action)
	require.Equal(t, audit.OutcomeSuccess, evs[0].Outcome)
	require.True(t, streamStart.Add(5250*time.Millisecond).Equal(evs[0].Time), evs[0].Time)
	require.Equal(t, "e2e-import", evs[0].Initiator)
	require.Equal(t, "7d1c9e4a-2b3f-4c5d-8e6f-9a0b1c2d3e4f", evs[0].CorrelationID)
	require.Contains(t, evs[0].TargetID, ":key:f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9")
	require.Equal(t, audit.ActionUnwrap, evs[1].Action)

	n, skipped := c.Skipped()
	require.Equal(t, 1, n)
	require.Equal(t, audit.ActivityTracker, skipped[0].Source)
	require.Equal(t, "stream line 11, result 1", skipped[0].Where)
	require.Contains(t, skipped[0].Reason, "not an event")

	// A skipped result still took a place in the answer: with a limit of
	// 3, this answer (3 results, 2 events) is full, so the window is split
	// down to the narrowest one and reported as too full.
	full := newLogs(t, url, audit.WithQueryLimit(3))
	_, err = full.Window(context.Background(), audit.Query{Start: streamStart, End: streamStart.Add(time.Minute)}, streamStart, streamStart.Add(time.Minute))
	require.ErrorIs(t, err, audit.ErrTooManyEvents)
}

// An item in the API error form (errors, trace, status_code:
// logs-go-sdk's QueryResponseStreamItem) fails the query with a typed
// error instead of reading as zero events; a 429 inside the stream is
// retried like an HTTP 429.
func TestContractCloudLogsStreamAPIError(t *testing.T) {
	t.Parallel()
	url, queries := cloudLogsServer(t, http.StatusOK, "text/event-stream", contract(t, "cloudlogs-stream-api-error.sse"))
	c := newLogs(t, url, audit.WithQueryAttempts(1))
	evs, err := c.Search(context.Background(), "*", streamStart, streamStart.Add(time.Hour), 1000)
	require.Nil(t, evs)
	var qe *audit.QueryError
	require.ErrorAs(t, err, &qe)
	require.True(t, qe.InStream)
	require.Equal(t, http.StatusTooManyRequests, qe.StatusCode)
	require.Equal(t, "resource_exhausted", qe.Code)
	require.Equal(t, "Too many concurrent queries for this instance", qe.Message)
	require.Equal(t, "b7c6d5e4-f3a2-4190-8e7d-6c5b4a392817", qe.Trace)
	require.EqualValues(t, 1, queries.Load())

	// Through a Reader, the error reaches the caller.
	r := audit.NewReader([]audit.Source{newLogs(t, url, audit.WithQueryAttempts(1))})
	_, err = r.Collect(context.Background(), audit.Query{Start: streamStart, End: streamStart.Add(time.Minute)})
	require.ErrorAs(t, err, &qe)

	// With two attempts the 429 item is tried again.
	queries.Store(0)
	_, err = newLogs(t, url, audit.WithQueryAttempts(2)).Search(context.Background(), "*", streamStart, streamStart.Add(time.Hour), 10)
	require.ErrorAs(t, err, &qe)
	require.EqualValues(t, 2, queries.Load())
}

// An item of the error form ({"error":{"message"}}, logs-go-sdk's
// ApisDataprimeV1DataprimeError) fails the query too.
func TestContractCloudLogsStreamError(t *testing.T) {
	t.Parallel()
	url, _ := cloudLogsServer(t, http.StatusOK, "text/event-stream", contract(t, "cloudlogs-stream-error.sse"))
	_, err := newLogs(t, url).Search(context.Background(), "*", streamStart, streamStart.Add(time.Hour), 10)
	var qe *audit.QueryError
	require.ErrorAs(t, err, &qe)
	require.True(t, qe.InStream)
	require.Equal(t, http.StatusOK, qe.StatusCode)
	require.Contains(t, qe.Message, "unknown field")
}

// An HTTP error answered in the API error form keeps its code and trace.
func TestContractCloudLogsHTTPError(t *testing.T) {
	t.Parallel()
	url, _ := cloudLogsServer(t, http.StatusBadRequest, "application/json", contract(t, "cloudlogs-http-error.json"))
	_, err := newLogs(t, url).Search(context.Background(), "*", streamStart, streamStart.Add(time.Hour), 10)
	var qe *audit.QueryError
	require.ErrorAs(t, err, &qe)
	require.False(t, qe.InStream)
	require.Equal(t, http.StatusBadRequest, qe.StatusCode)
	require.Equal(t, "bad_request_or_unspecified", qe.Code)
	require.Equal(t, "0a1b2c3d-4e5f-4607-8819-2a3b4c5d6e7f", qe.Trace)
}
