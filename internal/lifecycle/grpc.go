package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/internal/lifecycle/rpcconf"
)

// rpcMetrics are the gRPC server metrics of one process.
type rpcMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRPCMetrics(role string, reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: fmt.Sprintf("akutan_%s_requests_total", role),
			Help: "gRPC requests served, by full method name and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    fmt.Sprintf("akutan_%s_request_duration_seconds", role),
			Help:    "Time to serve a gRPC request (a stream: until it ends), by full method name.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *rpcMetrics) observe(method string, start time.Time, err error) {
	m.requests.WithLabelValues(method, status.Code(err).String()).Inc()
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// AddInterceptors adds interceptors that run inside the shared ones (after
// metrics, logging and panic recovery), in order. Call it before
// ServerOptions.
func (p *Process) AddInterceptors(unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unary = append(p.unary, unary...)
	p.stream = append(p.stream, stream...)
}

// ServerOptions are the options every gRPC server of the process is
// created with: message limits and keepalive (rpcconf), and the
// interceptor chain, outermost first: metrics, request logging at debug
// level, panic recovery (the call answers INTERNAL, the stack is logged,
// the process goes on serving), then any AddInterceptors added. The server
// adds its own grpc.MaxRecvMsgSize.
func (p *Process) ServerOptions() []grpc.ServerOption {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, v any) error {
		p.Logger.Error("panic in a gRPC handler; answering INTERNAL and serving on",
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		return status.Errorf(codes.Internal, "internal error: %v", v)
	})
	unary := append([]grpc.UnaryServerInterceptor{p.unaryMetrics, p.unaryLog, recovery.UnaryServerInterceptor(rec)}, p.unary...)
	stream := append([]grpc.StreamServerInterceptor{p.streamMetrics, p.streamLog, recovery.StreamServerInterceptor(rec)}, p.stream...)
	return append(rpcconf.ServerOptions(),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
}

// RegisterGRPC adds the standard health service (following the readiness
// check) and server reflection to srv. Call it after registering the
// server's own services, so that each is known to the health service by
// name too.
func (p *Process) RegisterGRPC(srv *grpc.Server) {
	p.ready.register(srv)
	reflection.Register(srv)
}

func (p *Process) unaryMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	p.rpc.observe(info.FullMethod, start, err)
	return resp, err
}

func (p *Process) streamMetrics(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	p.rpc.observe(info.FullMethod, start, err)
	return err
}

func (p *Process) unaryLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !p.Logger.Enabled(ctx, slog.LevelDebug) {
		return h(ctx, req)
	}
	start := time.Now()
	resp, err := h(ctx, req)
	p.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (p *Process) streamLog(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !p.Logger.Enabled(ss.Context(), slog.LevelDebug) {
		return h(srv, ss)
	}
	start := time.Now()
	err := h(srv, ss)
	p.logCall(ss.Context(), info.FullMethod, start, err)
	return err
}

func (p *Process) logCall(ctx context.Context, method string, start time.Time, err error) {
	attrs := []any{"method", method, "code", status.Code(err).String(), "duration", time.Since(start)}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	p.Logger.DebugContext(ctx, "grpc request", attrs...)
}
