package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type handler struct {
	pattern string
	h       http.Handler
}

type httpServer struct {
	lis net.Listener
	srv *http.Server
}

func (h *httpServer) addr() string { return h.lis.Addr().String() }

// Handle mounts h at pattern (http.ServeMux syntax) on the HTTP listener,
// beside /metrics, /healthz, /readyz and /debug/pprof/. Call it before
// Start.
func (p *Process) Handle(pattern string, h http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handlers = append(p.handlers, handler{pattern, h})
}

// SetReady sets the readiness check: nil means ready, an error says why
// not. /readyz and the gRPC health service follow it. Until it is set the
// process is not ready ("starting").
func (p *Process) SetReady(check func(ctx context.Context) error) { p.ready.setCheck(check) }

// Ready is the current readiness verdict.
func (p *Process) Ready(ctx context.Context) error { return p.ready.verdict(ctx) }

// Start runs the readiness loop until ctx ends and, with --http-addr,
// the HTTP listener until Close.
func (p *Process) Start(ctx context.Context) error {
	go p.ready.loop(ctx)
	if p.httpAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{Registry: p.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := p.ready.verdict(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if p.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	p.mu.Lock()
	for _, h := range p.handlers {
		mux.Handle(h.pattern, h.h)
	}
	p.mu.Unlock()
	lis, err := net.Listen("tcp", p.httpAddr)
	if err != nil {
		return fmt.Errorf("http listener on %s: %w", p.httpAddr, err)
	}
	hs := &httpServer{lis: lis, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	p.mu.Lock()
	p.http = hs
	p.mu.Unlock()
	go func() {
		if err := hs.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.Logger.Error("http listener stopped", "err", err)
		}
	}()
	return nil
}

// Close reports NOT_SERVING on the health service and stops the HTTP
// listener.
func (p *Process) Close() error {
	p.ready.close()
	p.mu.Lock()
	hs := p.http
	p.mu.Unlock()
	if hs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return hs.srv.Close()
	}
	return nil
}
