// Package lostproxy is a loopback HTTP proxy that counts the requests it
// forwards and can lose answers: it forwards a matching request, lets the
// service process it completely, reads the whole response and then closes
// the connection without sending a byte of it. The client sees a
// connection error although the service did the work: the case that
// makes a create request dangerous to repeat (a second import, a second
// server), which internal/faults cannot produce because its faults stop a
// request before the service sees it.
//
// What this package does NOT do: TLS, HTTP/2, or faults other than lost
// answers (internal/faults has those).
package lostproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Rule selects requests by method, path and query substrings (empty
// fields match everything). Lose is how many matching answers to lose,
// after letting After matching requests through.
type Rule struct {
	Name          string
	Method        string
	PathContains  string
	QueryContains string
	Lose          int
	After         int
}

func (r *Rule) matches(req *http.Request) bool {
	return (r.Method == "" || r.Method == req.Method) &&
		strings.Contains(req.URL.Path, r.PathContains) &&
		strings.Contains(req.URL.RawQuery, r.QueryContains)
}

// Proxy forwards to one target and applies its rules.
type Proxy struct {
	URL    string // the proxy's base URL (http://127.0.0.1:port plus the target's path)
	target *url.URL
	srv    *http.Server
	ln     net.Listener
	client *http.Client

	mu     sync.Mutex
	rules  []Rule
	hits   map[string]int // matching requests forwarded, by rule name
	lost   map[string]int // answers lost, by rule name
	served int
	// ok counts the 2xx answers to matching requests, by rule name and
	// request URI (path and query).
	ok map[string]map[string]int
}

// Start listens on a loopback port and forwards to target (scheme, host and
// an optional path prefix, which the proxy's URL repeats).
func Start(target string, rules ...Rule) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("lostproxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lostproxy: listening: %w", err)
	}
	p := &Proxy{
		URL:    "http://" + ln.Addr().String() + u.Path,
		target: u,
		ln:     ln,
		client: &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		rules:  rules,
		hits:   map[string]int{},
		lost:   map[string]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	p.client.CloseIdleConnections()
	return err
}

// Hits is how many requests matched the named rule (lost or not).
func (p *Proxy) Hits(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[name]
}

// Succeeded returns, for the named rule, how many 2xx answers the service
// gave to each request URI (path and query), lost answers included: a
// request that did its work twice shows a count of 2.
func (p *Proxy) Succeeded(name string) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.ok[name]))
	for k, v := range p.ok[name] {
		out[k] = v
	}
	return out
}

// succeeded records a 2xx answer to req.
func (p *Proxy) succeeded(req *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matches(req) {
			continue
		}
		if p.ok == nil {
			p.ok = map[string]map[string]int{}
		}
		if p.ok[r.Name] == nil {
			p.ok[r.Name] = map[string]int{}
		}
		p.ok[r.Name][req.URL.RequestURI()]++
	}
}

// Lost is how many answers the named rule lost.
func (p *Proxy) Lost(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost[name]
}

// TotalLost is how many answers every rule lost together.
func (p *Proxy) TotalLost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.lost {
		n += v
	}
	return n
}

// Report lists every rule with its hits and lost answers.
func (p *Proxy) Report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, r := range p.rules {
		fmt.Fprintf(&b, "%s: %d hits, %d lost; ", r.Name, p.hits[r.Name], p.lost[r.Name])
	}
	fmt.Fprintf(&b, "%d requests", p.served)
	return b.String()
}

// decide records req against the rules and says whether to lose its answer.
func (p *Proxy) decide(req *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.served++
	lose := false
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matches(req) {
			continue
		}
		p.hits[r.Name]++
		if !lose && p.hits[r.Name] > r.After && p.lost[r.Name] < r.Lose {
			p.lost[r.Name]++
			lose = true
		}
	}
	return lose
}

// ServeHTTP forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lose := p.decide(r)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.Host = r.Host // signatures (S3 SigV4) cover the Host the client used
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, "lostproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		p.succeeded(r)
	}
	if lose {
		_, _ = io.Copy(io.Discard, resp.Body) // the service has finished
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil && !errors.Is(err, context.Canceled) {
		panic(http.ErrAbortHandler)
	}
}
