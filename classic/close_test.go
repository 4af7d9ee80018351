package classic

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/stretchr/testify/require"
)

// newCountingFakeSL is newFakeSL with a count of the connections open at
// the server.
func newCountingFakeSL(t *testing.T) (*fakeSL, *atomic.Int32) {
	f := &fakeSL{t: t, handlers: map[string]func(fakeReq) (int, any){}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	open := testenv.StartCounting(t, f.srv)
	f.on("SoftLayer_Event_Log::getAllObjects", func(fakeReq) (int, any) { return 200, []map[string]any{} })
	return f, open
}

// By default the client has a transport of its own: CloseIdleConnections
// closes its connections and leaves those of http.DefaultTransport.
func TestCloseIdleConnectionsOwnTransport(t *testing.T) {
	f, open := newCountingFakeSL(t)
	c := newTestClient(t, f)
	ctx := context.Background()
	_, err := c.EventLogPage(ctx, "{}", 10, 0)
	require.NoError(t, err)
	testenv.WaitConns(t, open, 1, "after a call")

	// Someone else's connection on http.DefaultTransport.
	resp, err := http.Get(f.srv.URL + "/rest/v3.1/SoftLayer_Event_Log/getAllObjects.json")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	testenv.WaitConns(t, open, 2, "with http.DefaultTransport's")

	c.CloseIdleConnections()
	testenv.WaitConns(t, open, 1, "after CloseIdleConnections (http.DefaultTransport's stays)")
	_, err = c.EventLogPage(ctx, "{}", 10, 0)
	require.NoError(t, err, "the client stays usable")
	c.CloseIdleConnections()
	testenv.WaitConns(t, open, 1, "after the second CloseIdleConnections")
}

func TestCloseIdleConnectionsWithHTTPClient(t *testing.T) {
	f, open := newCountingFakeSL(t)
	c := newTestClient(t, f, WithHTTPClient(&http.Client{Transport: endpoint.NewTransport()}))
	_, err := c.EventLogPage(context.Background(), "{}", 10, 0)
	require.NoError(t, err)
	testenv.WaitConns(t, open, 1, "after a call")
	c.CloseIdleConnections()
	testenv.WaitConns(t, open, 0, "after CloseIdleConnections")
}
