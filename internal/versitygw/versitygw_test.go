package versitygw

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestStartAnswersAndStops(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want a loopback http URL", s.URL)
	}
	if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() {
		t.Fatalf("backend dir %q: %v", s.Dir, err)
	}
	// An unsigned request must be refused by S3 authentication, which shows
	// the process is an S3 server and not just an open port.
	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned GET status = %d, want 403", resp.StatusCode)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	c := &http.Client{}
	if resp, err := c.Get(s.URL + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("server still answers after Stop (status %d)", resp.StatusCode)
	}
}
