// Package policytest has the servers of the clients' HTTP policy tests: a
// host that redirects every request to a second host, which counts what it
// receives, and an address where nothing listens.
package policytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Redirect is a pair of httptest servers: First answers every request with
// Code and a Location on Second (same path and query); Second counts the
// requests and request bytes it receives and answers 200 with Body.
type Redirect struct {
	First, Second *httptest.Server
	Code          int
	Body          string
	requests      atomic.Int32
	bytes         atomic.Int64
	firstHits     atomic.Int32
}

// NewRedirect starts the pair; both close when the test ends.
func NewRedirect(t testing.TB, code int, body string) *Redirect {
	t.Helper()
	r := &Redirect{Code: code, Body: body}
	r.Second = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		n, _ := io.Copy(io.Discard, req.Body)
		r.bytes.Add(n)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, r.Body)
	}))
	t.Cleanup(r.Second.Close)
	r.First = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.firstHits.Add(1)
		_, _ = io.Copy(io.Discard, req.Body)
		http.Redirect(w, req, r.Second.URL+req.URL.RequestURI(), r.Code)
	}))
	t.Cleanup(r.First.Close)
	return r
}

// SecondRequests is how many requests the second host received.
func (r *Redirect) SecondRequests() int { return int(r.requests.Load()) }

// SecondBytes is how many request body bytes the second host received.
func (r *Redirect) SecondBytes() int64 { return r.bytes.Load() }

// FirstRequests is how many requests the redirecting host received.
func (r *Redirect) FirstRequests() int { return int(r.firstHits.Load()) }

// Check fails the test unless the first host was asked at least once and
// the second host received nothing.
func (r *Redirect) Check(t testing.TB) {
	t.Helper()
	if r.FirstRequests() == 0 {
		t.Errorf("the redirecting host received no request: the test did not exercise the redirect")
	}
	if n, b := r.SecondRequests(), r.SecondBytes(); n != 0 || b != 0 {
		t.Errorf("the second host received %d requests (%d body bytes), want 0", n, b)
	}
}

// DeadURL returns an http URL on loopback where nothing listens (a server
// started and closed at once).
func DeadURL(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}
