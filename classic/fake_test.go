package classic

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/secret"
)

// fakeSL is a small SoftLayer REST server for unit tests: it parses the
// URL shape softlayer-go produces (<Service>[/<id>][/<method>].json) and
// answers from per-method handlers.
type fakeSL struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	handlers map[string]func(req fakeReq) (int, any)
	reqs     []fakeReq
}

type fakeReq struct {
	Service, Method string
	ID              int
	HTTPMethod      string
	Mask, Filter    string
	ResultLimit     string
	Params          []json.RawMessage
	Body            string
	User, Pass      string
}

func newFakeSL(t *testing.T) *fakeSL {
	f := &fakeSL{t: t, handlers: map[string]func(fakeReq) (int, any){}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSL) endpoint() string { return f.srv.URL + "/rest/v3.1" }

// on registers a handler for "Service::method" (e.g.
// "SoftLayer_Virtual_Guest::createObject").
func (f *fakeSL) on(op string, h func(fakeReq) (int, any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[op] = h
}

func (f *fakeSL) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeReq(nil), f.reqs...)
}

func (f *fakeSL) count(op string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Service+"::"+r.Method == op {
			n++
		}
	}
	return n
}

func (f *fakeSL) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/rest/v3.1/"), ".json")
	parts := strings.Split(path, "/")
	req := fakeReq{Service: parts[0], HTTPMethod: r.Method}
	for _, p := range parts[1:] {
		if id, err := strconv.Atoi(p); err == nil {
			req.ID = id
		} else {
			req.Method = p
		}
	}
	if req.Method == "" {
		switch r.Method {
		case http.MethodGet:
			req.Method = "getObject"
		case http.MethodPost:
			req.Method = "createObject"
		case http.MethodDelete:
			req.Method = "deleteObject"
		case http.MethodPut:
			req.Method = "editObject"
		}
	}
	q := r.URL.Query()
	req.Mask, req.Filter, req.ResultLimit = q.Get("objectMask"), q.Get("objectFilter"), q.Get("resultLimit")
	req.User, req.Pass, _ = r.BasicAuth()
	body, _ := io.ReadAll(r.Body)
	req.Body = string(body)
	if len(body) > 0 {
		var env struct {
			Parameters []json.RawMessage `json:"parameters"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			f.t.Errorf("fakeSL: body is not {\"parameters\":[...]}: %v", err)
		}
		req.Params = env.Parameters
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	h := f.handlers[req.Service+"::"+req.Method]
	f.mu.Unlock()
	if h == nil {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error": "Function (\"" + req.Method + "\") is not a valid method for this service.",
			"code":  "SoftLayer_Exception_Public",
		})
		return
	}
	status, out := h(req)
	w.WriteHeader(status)
	switch v := out.(type) {
	case string:
		_, _ = io.WriteString(w, v)
	default:
		_ = json.NewEncoder(w).Encode(v)
	}
}

// slError is the REST error body.
func slError(code, msg string) map[string]string {
	return map[string]string{"error": msg, "code": code}
}

const testClassicKey = "classic-key-0123456789abcdef"

func newTestClient(t *testing.T, f *fakeSL, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(f.endpoint()), WithPollInterval(millis(1), millis(4)),
		func(o *options) { o.retryBase = time.Millisecond }}
	c, err := New(ClassicAPIKey("SL123", secret.NewString(testClassicKey)), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
