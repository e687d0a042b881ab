package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ReadyInterval is how often the readiness loop evaluates the check.
const ReadyInterval = time.Second

// readyTimeout bounds one evaluation of the check.
const readyTimeout = 5 * time.Second

// errStarting is the verdict before the service set its check.
var errStarting = errors.New("starting")

// readiness caches the verdict of the process's readiness check. A loop
// refreshes it every interval and pushes it into the gRPC health service;
// /readyz and health Check answer the cached verdict while it is fresh (at
// most two intervals old) and evaluate the check themselves otherwise, so a
// process that was stopped (SIGSTOP, a long GC pause, a suspended VM) never
// answers with what it knew before.
type readiness struct {
	interval time.Duration
	health   *health.Server
	log      func() *slog.Logger

	evalMu sync.Mutex // one evaluation at a time

	mu       sync.Mutex
	check    func(context.Context) error
	err      error
	at       time.Time
	services []string
	closed   bool
}

func newReadiness(log func() *slog.Logger) *readiness {
	r := &readiness{interval: ReadyInterval, health: health.NewServer(), log: log, err: errStarting, services: []string{""}}
	r.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return r
}

func (r *readiness) setCheck(check func(context.Context) error) {
	r.mu.Lock()
	r.check = check
	r.at = time.Time{} // evaluate on the next request
	r.mu.Unlock()
}

// verdict is nil when the process is ready, else why not.
func (r *readiness) verdict(ctx context.Context) error {
	r.mu.Lock()
	err, at := r.err, r.at
	r.mu.Unlock()
	if !at.IsZero() && time.Since(at) < 2*r.interval {
		return err
	}
	return r.evaluate(ctx)
}

// evaluate runs the check now (or waits for an evaluation that started
// after the call) and records its verdict.
func (r *readiness) evaluate(ctx context.Context) error {
	start := time.Now()
	r.evalMu.Lock()
	defer r.evalMu.Unlock()
	r.mu.Lock()
	check, err, at := r.check, r.err, r.at
	r.mu.Unlock()
	if at.After(start) {
		return err
	}
	if check == nil {
		err = errStarting
	} else {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
		err = check(cctx)
		cancel()
	}
	r.set(err)
	return err
}

func (r *readiness) set(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	was := r.err
	r.err, r.at = err, time.Now()
	st := healthpb.HealthCheckResponse_SERVING
	if err != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	for _, s := range r.services {
		r.health.SetServingStatus(s, st)
	}
	switch {
	case err == nil && was != nil:
		r.log().Info("ready")
	case err != nil && (was == nil || was.Error() != err.Error()) && err != errStarting:
		r.log().Info("not ready", "reason", err.Error())
	}
}

// loop refreshes the verdict every interval until ctx ends.
func (r *readiness) loop(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		_ = r.evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// register serves the health service on srv, for the whole server ("")
// and for every service registered on srv so far.
func (r *readiness) register(srv *grpc.Server) {
	r.mu.Lock()
	st := healthpb.HealthCheckResponse_SERVING
	if r.err != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	for name := range srv.GetServiceInfo() {
		r.services = append(r.services, name)
		r.health.SetServingStatus(name, st)
	}
	r.mu.Unlock()
	healthpb.RegisterHealthServer(srv, &healthService{Server: r.health, r: r})
}

func (r *readiness) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.health.Shutdown() // every status NOT_SERVING from now on
}

// healthService is grpc's health server whose Check first makes sure the
// verdict is fresh; Watch and List are grpc's.
type healthService struct {
	*health.Server
	r *readiness
}

func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	_ = h.r.verdict(ctx)
	return h.Server.Check(ctx, req)
}
