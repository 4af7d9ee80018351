package faults

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// Proxy is a reverse proxy that applies an Injector's rules in front of an
// external server. Bodies stream through in both directions: nothing is
// buffered whole, so multi-gigabyte uploads pass with bounded memory.
type Proxy struct {
	handler   http.Handler
	transport *http.Transport
}

// NewProxy returns a streaming reverse proxy to target (scheme and host; a
// path prefix is prepended) with inj's rules for service applied before each
// request is forwarded. The Host header of the incoming request is kept, so
// AWS SigV4 signatures computed by the client for the proxy's address still
// verify at a server that checks them against the Host header it receives.
// Call Close when done to release idle upstream connections.
func NewProxy(target *url.URL, inj *Injector, service string) *Proxy {
	tr := &http.Transport{
		Proxy: nil, // never route loopback test traffic through an HTTP proxy
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport:     tr,
		FlushInterval: -1, // flush every write: stream, do not batch
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	return &Proxy{handler: inj.Middleware(service, rp), transport: tr}
}

// ServeHTTP forwards one request, unless a rule decides otherwise.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// Close releases the proxy's idle connections to the target.
func (p *Proxy) Close() {
	p.transport.CloseIdleConnections()
}
