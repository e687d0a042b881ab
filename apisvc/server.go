package apisvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/akutan/akutan/apisvc/internal/fanout"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/proto/viewpb"
)

// viewReader is what the API server needs from the view fanout.
type viewReader interface {
	LookupS(ctx context.Context, index uint64, subjects []uint64) ([][]*viewpb.LookupFact, error)
	LookupSP(ctx context.Context, index uint64, lookups []*viewpb.SPLookup) ([][]*viewpb.LookupFact, error)
	LookupSPO(ctx context.Context, index uint64, lookups []*viewpb.SPOLookup) ([][]*viewpb.LookupFact, error)
	LookupPO(ctx context.Context, index uint64, lookups []*viewpb.POLookup) ([][]*viewpb.LookupFact, error)
	LookupPOCmp(ctx context.Context, index uint64, lookups []*viewpb.POCmpLookup) ([][]*viewpb.LookupFact, error)
	LookupSPage(ctx context.Context, index uint64, subjects []uint64, pg fanout.Page) (*fanout.PageResult, error)
	LookupSPPage(ctx context.Context, index uint64, lookups []*viewpb.SPLookup, pg fanout.Page) (*fanout.PageResult, error)
	LookupSPOPage(ctx context.Context, index uint64, lookups []*viewpb.SPOLookup, pg fanout.Page) (*fanout.PageResult, error)
	LookupPOPage(ctx context.Context, index uint64, lookups []*viewpb.POLookup, pg fanout.Page) (*fanout.PageResult, error)
	LookupPOCmpPage(ctx context.Context, index uint64, lookups []*viewpb.POCmpLookup, pg fanout.Page) (*fanout.PageResult, error)
	RecentIndex(space viewpb.Space) uint64
	Views() []fanout.View
}

var _ viewReader = (*fanout.Fanout)(nil)

// Server is one API server.
type Server struct {
	apipb.UnimplementedAkutanServer

	cfg    Config
	views  viewReader
	recent recentFloor
	logVer logVersion // logversion.go
	fan    *fanout.Fanout
	app    *logclient.Appender
	conns  logclient.ConnPool // to log replicas and peer API servers
	grpc   *grpc.Server
	health *health.Server
	lis    net.Listener
	met    *serverMetrics // metrics.go
	ready  readyState     // ready.go
}

// Start connects to the log and the views and serves the API.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Views.Logger == nil {
		cfg.Views.Logger = cfg.Logger
	}
	fan, err := fanout.New(cfg.Views)
	if err != nil {
		return nil, fmt.Errorf("view fanout: %w", err)
	}
	s := &Server{cfg: cfg, views: fan, fan: fan, app: logclient.NewAppender(cfg.Log, logclient.DefaultAppenderConfig())}
	if s.met, err = newMetrics(cfg.Registerer, fan); err != nil {
		s.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if s.lis, err = net.Listen("tcp", cfg.Listen); err != nil {
		s.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	opts := append(append([]grpc.ServerOption(nil), cfg.GRPCOptions...), grpc.MaxRecvMsgSize(cfg.MaxTxBytes+8<<20))
	s.grpc = grpc.NewServer(opts...)
	apipb.RegisterAkutanServer(s.grpc, s)
	if cfg.GRPCRegister != nil {
		cfg.GRPCRegister(s.grpc)
	} else {
		s.health = health.NewServer()
		s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		s.health.SetServingStatus(apipb.Akutan_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(s.grpc, s.health)
	}
	go s.grpc.Serve(s.lis)
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops serving, finishing calls in progress for up to 5 seconds.
func (s *Server) Close() error {
	if s.health != nil {
		s.health.Shutdown()
	}
	if s.grpc != nil {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.grpc.Stop()
		}
	}
	var errs []error
	if s.app != nil {
		errs = append(errs, s.app.Close())
	}
	if s.fan != nil {
		errs = append(errs, s.fan.Close())
	}
	s.conns.Close()
	return errors.Join(errs...)
}

func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.DefaultTimeout)
}

// logInfo asks the log replicas in turn for Info. A linearizable answer
// is the leader's; members' details are filled in unless localOnly.
func (s *Server) logInfo(ctx context.Context, linearizable, localOnly bool) (*logpb.InfoResponse, error) {
	info, err := logclient.Info(ctx, &s.conns, s.cfg.Log, &logpb.InfoRequest{Linearizable: linearizable, LocalOnly: localOnly})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogUnavailable, err)
	}
	return info, nil
}
