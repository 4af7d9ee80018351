package simcore

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRemoteHost(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:5123": "192.0.2.7",
		"[::1]:80":       "::1",
		"127.0.0.1:0":    "127.0.0.1",
		"::1":            "::1", // no port: kept whole
		"":               "",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		if got := RemoteHost(r); got != want {
			t.Errorf("RemoteHost(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestStatusRecorder(t *testing.T) {
	for name, tc := range map[string]struct {
		h    http.HandlerFunc
		want int
	}{
		"nothing":   {func(http.ResponseWriter, *http.Request) {}, 0},
		"body only": {func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) }, http.StatusOK},
		"status":    {func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, http.StatusNoContent},
		"first status": {func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTeapot)
			w.WriteHeader(http.StatusOK)
		}, http.StatusTeapot},
	} {
		rr := httptest.NewRecorder()
		rec := &StatusRecorder{ResponseWriter: rr}
		tc.h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Status != tc.want {
			t.Errorf("%s: Status = %d, want %d", name, rec.Status, tc.want)
		}
		if err := http.NewResponseController(rec).Flush(); err != nil {
			t.Errorf("%s: Flush through the recorder: %v", name, err)
		}
	}
}
