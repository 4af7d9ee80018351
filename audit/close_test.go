package audit

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/endpoint"
)

// countedCloudLogs is a Cloud Logs query server that answers no events and
// counts the connections open on its side.
func countedCloudLogs(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var open atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, sse(map[string]any{"result": map[string]any{"results": []any{}}}))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &open
}

func requireOpen(t *testing.T, open *atomic.Int32, want int32, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return open.Load() == want }, 2*time.Second, 10*time.Millisecond,
		"%s: want %d connections open at the server", msg, want)
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
	requireOpen(t, open, 1, "after a query")

	// Someone else's connection on http.DefaultTransport.
	resp, err := http.Post(srv.URL+"/v1/query", "application/json", nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	requireOpen(t, open, 2, "with http.DefaultTransport's")

	c.CloseIdleConnections()
	requireOpen(t, open, 1, "after CloseIdleConnections (http.DefaultTransport's stays)")
	_, err = c.Search(ctx, "x", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err, "CloudLogs stays usable")
	c.CloseIdleConnections()
	requireOpen(t, open, 1, "after the second CloseIdleConnections")
}

func TestCloudLogsCloseIdleConnectionsWithHTTPClient(t *testing.T) {
	srv, open := countedCloudLogs(t)
	c, err := NewCloudLogs(srv.URL, bearer(t), WithHTTPClient(&http.Client{Transport: endpoint.NewTransport()}))
	require.NoError(t, err)
	_, err = c.Search(context.Background(), "x", t0, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	requireOpen(t, open, 1, "after a query")
	c.CloseIdleConnections()
	requireOpen(t, open, 0, "after CloseIdleConnections")
}
