package testenv

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// StartCounting starts the unstarted test server srv with a hook that counts
// the connections open on the server's side, and closes it when the test
// ends. Tests of CloseIdleConnections read the count with WaitConns.
func StartCounting(tb testing.TB, srv *httptest.Server) *atomic.Int32 {
	tb.Helper()
	open := new(atomic.Int32)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	return open
}

// WaitConns waits up to 2 s for open (from StartCounting) to reach want, and
// fails the test, naming what, when it does not.
func WaitConns(tb testing.TB, open *atomic.Int32, want int32, what string) {
	tb.Helper()
	for deadline := time.Now().Add(2 * time.Second); open.Load() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := open.Load(); got != want {
		tb.Fatalf("%s: %d connections open at the server, want %d", what, got, want)
	}
}
