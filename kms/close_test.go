package kms

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/endpoint"
)

// connCounter starts a test server for h that counts the connections open
// on its side.
func connCounter(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var open atomic.Int32
	srv := httptest.NewUnstartedServer(h)
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

// waitConns waits up to 2s for the server to count want open connections.
func waitConns(t *testing.T, open *atomic.Int32, want int32) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); open.Load() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := open.Load(); got != want {
		t.Fatalf("%d connections open at the server, want %d", got, want)
	}
}

func TestCloseIdleConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"own transport", nil},
		{"WithTransport", []Option{WithTransport(endpoint.NewTransport())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, open := connCounter(t, &scripted{})
			c, err := New(testKPCRN, &staticTokens{}, append([]Option{WithURL(srv.URL), WithRetryPolicy(fastPolicy(1))}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Wrap(context.Background(), testDEK(t)); err != nil {
				t.Fatal(err)
			}
			waitConns(t, open, 1) // kept alive for the next call
			c.CloseIdleConnections()
			waitConns(t, open, 0)
			// The client stays usable.
			if _, err := c.Wrap(context.Background(), testDEK(t)); err != nil {
				t.Fatalf("Wrap after CloseIdleConnections: %v", err)
			}
			c.CloseIdleConnections()
			waitConns(t, open, 0)
		})
	}
}
