package testenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connWaitLimit bounds every wait for connection counts; it is reached only
// when a test fails.
const connWaitLimit = 30 * time.Second

// Conns counts the connections open at the server side of one or more
// servers, per service name, from http.Server ConnState events, and lets a
// test wait for a count without polling: every change wakes the waiters.
// A connection is counted from StateNew until StateClosed or
// StateHijacked. The zero value is not usable; call NewConns.
type Conns struct {
	mu      sync.Mutex
	open    map[string]int
	changed chan struct{} // closed and replaced at every change
	total   *atomic.Int32 // mirror of the sum, for StartCounting's callers
}

// NewConns returns a counter with no connection open.
func NewConns() *Conns {
	return &Conns{open: map[string]int{}, changed: make(chan struct{}), total: new(atomic.Int32)}
}

// Track is an http.Server ConnState hook for the server of service.
func (c *Conns) Track(service string, s http.ConnState) {
	d := 0
	switch s {
	case http.StateNew:
		d = 1
	case http.StateClosed, http.StateHijacked:
		d = -1
	default:
		return
	}
	c.mu.Lock()
	c.open[service] += d
	if c.open[service] == 0 {
		delete(c.open, service)
	}
	c.total.Add(int32(d))
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Open returns the number of open connections per service (services with
// none are absent).
func (c *Conns) Open() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.open))
	for k, v := range c.open {
		out[k] = v
	}
	return out
}

// WaitFor waits until ok holds for the open connections per service, and
// fails the test, naming what, when it does not within 30 seconds. It
// wakes on every ConnState event, never on a timer.
func (c *Conns) WaitFor(tb testing.TB, what string, ok func(open map[string]int) bool) {
	tb.Helper()
	limit := time.NewTimer(connWaitLimit)
	defer limit.Stop()
	for {
		c.mu.Lock()
		open := make(map[string]int, len(c.open))
		for k, v := range c.open {
			open[k] = v
		}
		changed := c.changed
		c.mu.Unlock()
		if ok(open) {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			tb.Fatalf("%s: still %s after %v", what, describeOpen(open), connWaitLimit)
			return
		}
	}
}

func describeOpen(open map[string]int) string {
	if len(open) == 0 {
		return "no connection open"
	}
	var parts []string
	for k, v := range open {
		parts = append(parts, fmt.Sprintf("%s: %d open", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// counters maps the counts StartCounting returned to their Conns.
var counters sync.Map // *atomic.Int32 -> *Conns

// StartCounting starts the unstarted test server srv with a hook that counts
// the connections open on the server's side, and closes it when the test
// ends. Tests of CloseIdleConnections read the count with WaitConns.
func StartCounting(tb testing.TB, srv *httptest.Server) *atomic.Int32 {
	tb.Helper()
	c := NewConns()
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) { c.Track("server", s) }
	counters.Store(c.total, c)
	srv.Start()
	tb.Cleanup(srv.Close)
	return c.total
}

// WaitConns waits until open (from StartCounting) reaches want, waking on
// each connection event, and fails the test, naming what, when it does not
// within 30 seconds.
func WaitConns(tb testing.TB, open *atomic.Int32, want int32, what string) {
	tb.Helper()
	v, ok := counters.Load(open)
	if !ok {
		tb.Fatalf("%s: the count does not come from StartCounting", what)
		return
	}
	v.(*Conns).WaitFor(tb, what, func(o map[string]int) bool { return int32(o["server"]) == want })
}
