package audit

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

// countedCloudLogs is a Cloud Logs query server that answers no events and
// counts the connections open on its side.
func countedCloudLogs(t *testing.T) (*httptest.Server, *atomic.Int32) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, sse(map[string]any{"result": map[string]any{"results": []any{}}}))
	}))
	return srv, testenv.StartCounting(t, srv)
}

// By default CloudLogs has a transport of its own: CloseIdleConnections
// closes its connections and leaves those of http.DefaultTransport.
func TestCloudLogsCloseIdleConnections(t *testing.T) {
	srv, open := countedCloudLogs(t)
	c, err := NewCloudLogs(srv.URL, bearer(t))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Search(ctx, "x", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	testenv.WaitConns(t, open, 1, "after a query")

	// Someone else's connection on http.DefaultTransport.
	resp, err := http.Post(srv.URL+"/v1/query", "application/json", nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	testenv.WaitConns(t, open, 2, "with http.DefaultTransport's")

	c.CloseIdleConnections()
	testenv.WaitConns(t, open, 1, "after CloseIdleConnections (http.DefaultTransport's stays)")
	_, err = c.Search(ctx, "x", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err, "CloudLogs stays usable")
	c.CloseIdleConnections()
	testenv.WaitConns(t, open, 1, "after the second CloseIdleConnections")
}

func TestCloudLogsCloseIdleConnectionsWithHTTPClient(t *testing.T) {
	srv, open := countedCloudLogs(t)
	c, err := NewCloudLogs(srv.URL, bearer(t), WithHTTPClient(&http.Client{Transport: endpoint.NewTransport()}))
	require.NoError(t, err)
	_, err = c.Search(context.Background(), "x", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	testenv.WaitConns(t, open, 1, "after a query")
	c.CloseIdleConnections()
	testenv.WaitConns(t, open, 0, "after CloseIdleConnections")
}
