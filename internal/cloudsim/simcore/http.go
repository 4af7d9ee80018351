package simcore

import (
	"net"
	"net/http"
)

// RemoteHost returns the address of the client that sent r, without the
// port: what events record as the initiator's host.
func RemoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// StatusRecorder is an http.ResponseWriter that remembers the status it
// answered with, for a handler that logs or acts on the outcome of an
// inner one.
type StatusRecorder struct {
	http.ResponseWriter
	// Status is the status written, http.StatusOK once a body was written
	// without one, and 0 while nothing was written.
	Status int
}

// WriteHeader records code (the first one only, as net/http does) and
// passes it on.
func (w *StatusRecorder) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records the implicit 200 of a body written without a status.
func (w *StatusRecorder) Write(p []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
