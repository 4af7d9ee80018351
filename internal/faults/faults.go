// Package faults injects failures into HTTP traffic, deterministically from a
// seed, so that tests can show how clients behave when a cloud service is
// slow, refuses, drops the connection or never answers.
//
// An Injector holds a list of rules. It is applied either as middleware in
// front of an in-process handler (Middleware) or as a streaming reverse proxy
// in front of an external server such as versitygw (NewProxy). Each request is
// matched against the rules in the order they were added:
//
//   - Latency rules that match add their Delay and evaluation continues;
//   - the first other rule that matches and fires decides the outcome:
//     an HTTP status (Status), a dropped connection (Reset) or a hang until
//     the client gives up (Timeout).
//
// Probabilities are drawn from a generator seeded by New, so a sequence of
// requests sees the same faults on every run. Requests that arrive
// concurrently draw in arrival order, which the scheduler decides.
//
// What this package does NOT do: it does not corrupt payload bytes, reorder
// requests, throttle bandwidth, or inject faults into HTTP/2 or TLS traffic
// (Reset needs an HTTP/1 connection that can be hijacked).
package faults

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is what a rule does to a matching request.
type Kind int

// The kinds of fault.
const (
	// Latency delays the request by Rule.Delay, then lets it through (or
	// lets a later rule decide).
	Latency Kind = iota
	// Status answers with Rule.Status (default 503) without calling the
	// service. 429 and 503 carry a Retry-After header.
	Status
	// Reset closes the connection without a response. With
	// Rule.AfterBytes > 0 it lets that many body bytes pass first (request
	// body bytes for requests that carry one, such as uploads; response
	// body bytes otherwise), then closes the connection mid-body. Where
	// the connection cannot be hijacked (HTTP/2, a ResponseRecorder) it
	// aborts the handler with http.ErrAbortHandler, the net/http way of
	// dropping a response.
	Reset
	// Timeout hangs until the client gives up, the server shuts down, or
	// Rule.Delay has passed (when non-zero; then it answers 504).
	Timeout
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Latency:
		return "latency"
	case Status:
		return "status"
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultStatus is the status a Status rule answers with when Rule.Status is 0.
const DefaultStatus = http.StatusServiceUnavailable

// Rule says which requests to disturb and how. Empty match fields match
// everything.
type Rule struct {
	// Service matches the service name given to Middleware or NewProxy
	// exactly ("kms", "s3", ...).
	Service string
	// Method matches the HTTP method exactly (GET, PUT, ...).
	Method string
	// PathContains matches when the URL path contains it.
	PathContains string
	// QueryContains matches when the raw query contains it ("uploads",
	// "partNumber=2", ...).
	QueryContains string

	// Kind is what to do.
	Kind Kind
	// Status is the code a Status rule answers with (default 503).
	Status int
	// RetryAfter is the Retry-After a Status rule sends, rounded up to whole
	// seconds. It is always sent with 429 and 503 (so 0 sends
	// "Retry-After: 0", which makes retrying clients retry at once), and
	// with other codes only when positive.
	RetryAfter time.Duration
	// Delay is how long a Latency rule waits; for Timeout, the longest it
	// hangs before answering 504 (0 = until the client or server gives up).
	Delay time.Duration
	// AfterBytes makes a Reset cut the connection mid-body; see Reset.
	AfterBytes int64
	// Body replaces the default error body of a Status rule.
	Body string

	// Probability of firing for a matching request; 0 or 1 means always.
	Probability float64
	// Count is the most injections this rule makes; 0 = unlimited.
	Count int
	// After lets the first After matching requests through untouched.
	After int
}

type ruleState struct {
	id       int
	rule     Rule
	matched  int // matching requests seen
	injected int
}

// Injector applies rules to HTTP requests. It is safe for concurrent use.
// The zero value is not usable; call New.
type Injector struct {
	mu      sync.Mutex
	rng     *rand.Rand
	nextID  int
	rules   []*ruleState
	total   int
	perSvc  map[string]int
	perRule map[int]int
}

// New returns an injector with no rules whose random draws come from seed.
func New(seed int64) *Injector {
	return &Injector{
		rng:     rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		perSvc:  make(map[string]int),
		perRule: make(map[int]int),
	}
}

// Add appends a rule and returns its id for Remove and Hits.
func (in *Injector) Add(r Rule) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.nextID++
	in.rules = append(in.rules, &ruleState{id: in.nextID, rule: r})
	return in.nextID
}

// Remove deletes the rule with the given id; unknown ids are ignored.
func (in *Injector) Remove(id int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, rs := range in.rules {
		if rs.id == id {
			in.rules = append(in.rules[:i], in.rules[i+1:]...)
			return
		}
	}
}

// Clear deletes every rule. Counters are kept.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
}

// Injected returns how many faults (of every kind, latency included) have
// been injected in total.
func (in *Injector) Injected() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.total
}

// Counts returns the number of injected faults per service name.
func (in *Injector) Counts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	m := make(map[string]int, len(in.perSvc))
	for k, v := range in.perSvc {
		m[k] = v
	}
	return m
}

// Hits returns how many times the rule with the given id has fired (it keeps
// counting after the rule is removed).
func (in *Injector) Hits(id int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.perRule[id]
}

// decision is what the injector decided for one request.
type decision struct {
	delay time.Duration
	fault *Rule // nil: let the request through after delay
}

func (r *Rule) matches(service string, req *http.Request) bool {
	return (r.Service == "" || r.Service == service) &&
		(r.Method == "" || strings.EqualFold(r.Method, req.Method)) &&
		(r.PathContains == "" || strings.Contains(req.URL.Path, r.PathContains)) &&
		(r.QueryContains == "" || strings.Contains(req.URL.RawQuery, r.QueryContains))
}

func (in *Injector) decide(service string, req *http.Request) decision {
	in.mu.Lock()
	defer in.mu.Unlock()
	var d decision
	for _, rs := range in.rules {
		r := &rs.rule
		if !r.matches(service, req) {
			continue
		}
		rs.matched++
		if rs.matched <= r.After {
			continue
		}
		if r.Count > 0 && rs.injected >= r.Count {
			continue
		}
		if p := r.Probability; p > 0 && p < 1 && in.rng.Float64() >= p {
			continue
		}
		rs.injected++
		in.total++
		in.perSvc[service]++
		in.perRule[rs.id]++
		if r.Kind == Latency {
			d.delay += r.Delay
			continue
		}
		rc := *r
		d.fault = &rc
		return d
	}
	return d
}

// Middleware returns next wrapped so that the injector's rules for service
// apply to every request it serves.
func (in *Injector) Middleware(service string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := in.decide(service, r)
		if d.delay > 0 {
			t := time.NewTimer(d.delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if d.fault == nil {
			next.ServeHTTP(w, r)
			return
		}
		apply(w, r, service, d.fault, next)
	})
}

func apply(w http.ResponseWriter, r *http.Request, service string, f *Rule, next http.Handler) {
	switch f.Kind {
	case Status:
		writeStatus(w, service, f)
	case Reset:
		if f.AfterBytes <= 0 {
			resetNow(w)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			// Cut the upload: take AfterBytes of the body, then drop.
			buf := make([]byte, 32<<10)
			var got int64
			for got < f.AfterBytes {
				n := int64(len(buf))
				if rem := f.AfterBytes - got; rem < n {
					n = rem
				}
				m, err := r.Body.Read(buf[:n])
				got += int64(m)
				if err != nil {
					break
				}
			}
			resetNow(w)
			return
		}
		cw := &cutWriter{ResponseWriter: w, left: f.AfterBytes}
		next.ServeHTTP(cw, r)
		if !cw.cut {
			// The body was shorter than AfterBytes: drop the connection
			// anyway so the fault is observable.
			cw.hijackClose()
		}
	case Timeout:
		var limit <-chan time.Time
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			limit = t.C
		}
		select {
		case <-r.Context().Done():
			// The client or the server gave up: drop the connection so
			// that no response (not even an empty 200) goes out.
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
		case <-limit:
			g := *f
			g.Status = http.StatusGatewayTimeout
			writeStatus(w, service, &g)
		}
	default:
		next.ServeHTTP(w, r)
	}
}

func writeStatus(w http.ResponseWriter, service string, f *Rule) {
	code := f.Status
	if code == 0 {
		code = DefaultStatus
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || f.RetryAfter > 0 {
		secs := int64(math.Ceil(f.RetryAfter.Seconds()))
		if secs < 0 {
			secs = 0
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	body := f.Body
	ctype := "application/json"
	if body == "" {
		body, ctype = defaultBody(service, code)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// defaultBody returns an error body in the style of the service, so that
// clients parse it the way they parse the real service's errors.
func defaultBody(service string, code int) (body, contentType string) {
	msg := fmt.Sprintf("fault injected: %d %s", code, http.StatusText(code))
	switch service {
	case "s3":
		s3code := "InternalError"
		switch code {
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			s3code = "SlowDown"
		case http.StatusForbidden:
			s3code = "AccessDenied"
		case http.StatusNotFound:
			s3code = "NoSuchKey"
		}
		return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Error><Code>` + s3code + `</Code><Message>` + msg + `</Message><Resource></Resource><RequestId>fault</RequestId></Error>`, "application/xml"
	case "kms", "hpcs":
		return fmt.Sprintf(`{"metadata":{"collectionType":"application/vnd.ibm.kms.error+json","collectionTotal":1},"resources":[{"errorMsg":%q,"reasons":[{"code":"FAULT_INJECTED","message":%q,"status":%d}]}]}`, msg, msg, code), "application/json"
	case "softlayer":
		return fmt.Sprintf(`{"error":%q,"code":"SoftLayer_Exception_Public"}`, msg), "application/json"
	case "iam", "iam_identity", "iam_policy":
		return fmt.Sprintf(`{"errorCode":"FAULT_INJECTED","errorMessage":%q,"context":{"requestId":"fault"}}`, msg), "application/json"
	}
	return fmt.Sprintf(`{"error":%q,"status":%d}`, msg, code), "application/json"
}

// resetNow closes the client connection without writing anything.
func resetNow(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, a recorder): abort the response, which
		// net/http turns into a reset stream or a closed connection.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// cutWriter passes left response body bytes through, then closes the
// connection.
type cutWriter struct {
	http.ResponseWriter
	left int64
	cut  bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if int64(len(p)) <= c.left {
		n, err := c.ResponseWriter.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	c.hijackClose()
	return n, errCut
}

func (c *cutWriter) hijackClose() {
	if c.cut {
		return
	}
	c.cut = true
	rc := http.NewResponseController(c.ResponseWriter)
	_ = rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		_ = conn.Close()
	}
}

// Flush passes a flush through unless the connection is already cut.
func (c *cutWriter) Flush() {
	if !c.cut {
		_ = http.NewResponseController(c.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

var errCut = fmt.Errorf("faults: connection cut by an injected reset")
