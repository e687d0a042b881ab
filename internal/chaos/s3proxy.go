package chaos

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// S3Fault is what an S3Proxy does to the requests it fails.
type S3Fault int

const (
	// S3OK forwards every request.
	S3OK S3Fault = iota
	// S3InternalError answers 500 InternalError without forwarding.
	S3InternalError
	// S3SlowDown answers 503 SlowDown without forwarding.
	S3SlowDown
	// S3LostReply forwards the request and answers 500 InternalError in
	// place of the store's reply: the request took effect, the client
	// cannot tell.
	S3LostReply
)

func (f S3Fault) String() string {
	return [...]string{"ok", "500 InternalError", "503 SlowDown", "500 after applying"}[f]
}

// S3Proxy is a reverse proxy in front of an S3 endpoint that fails a
// fraction of the requests while a fault is set. It keeps the Host header,
// so SigV4 signatures made for the proxy's address still verify.
type S3Proxy struct {
	srv   *httptest.Server
	proxy *httputil.ReverseProxy

	mu    sync.Mutex
	fault S3Fault
	rate  float64

	// Failed counts the requests failed, by fault.
	Failed [4]atomic.Int64
	// Forwarded counts the requests forwarded.
	Forwarded atomic.Int64
}

// NewS3Proxy starts a proxy on 127.0.0.1 in front of endpoint
// (http://host:port).
func NewS3Proxy(endpoint string) (*S3Proxy, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	p := &S3Proxy{proxy: httputil.NewSingleHostReverseProxy(u)}
	p.srv = httptest.NewUnstartedServer(p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.srv.Listener = ln
	p.srv.Start()
	return p, nil
}

// Endpoint is the proxy's URL, for a store URL's endpoint parameter.
func (p *S3Proxy) Endpoint() string { return p.srv.URL }

// Close stops the proxy.
func (p *S3Proxy) Close() { p.srv.Close() }

// Set fails the given fraction of requests with f; S3OK heals.
func (p *S3Proxy) Set(f S3Fault, rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.rate = f, rate
}

func (p *S3Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f, rate := p.fault, p.rate
	p.mu.Unlock()
	if f == S3OK || rand.Float64() >= rate {
		p.Forwarded.Add(1)
		p.proxy.ServeHTTP(w, r)
		return
	}
	p.Failed[f].Add(1)
	switch f {
	case S3InternalError:
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case S3SlowDown:
		s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	case S3LostReply:
		rec := httptest.NewRecorder()
		p.proxy.ServeHTTP(rec, r)
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	}
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><Resource></Resource><RequestId>chaos</RequestId></Error>`, code, msg)
}
