// Command akutan-api runs one Akutan API server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akutan/akutan/apisvc"
	"github.com/akutan/akutan/apisvc/statuspage"
	"github.com/akutan/akutan/internal/lifecycle"
	"github.com/akutan/akutan/proto/apipb"
)

const usage = `akutan-api serves Akutan's public gRPC API: writes go to the log, lookups
fan out over the views. It keeps no state; run as many as you like.

  akutan-api --listen 127.0.0.1:7201 --log 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 \
    --views 127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303,127.0.0.1:7304 --dc dc1 \
    --http-addr 127.0.0.1:8201

A datacenter is one cluster: --views lists this datacenter's views and
--peers its other API servers, and the verdicts are this datacenter's.
--fallback-views (off by default) names other datacenters' views to read
where none of this datacenter's can serve.

It is ready (/readyz on --http-addr, gRPC health SERVING) while its cluster
is fully available; a loop judges that about every second and exports it as
akutan_cluster_fully_available{dc} and akutan_cluster_healthy{dc}. The HTTP
listener serves the status page at /. Once serving it logs msg=serving with
its addresses. SIGTERM or SIGINT stops it gracefully.

Flags:
`

// options are the parsed flags.
type options struct {
	proc *lifecycle.Process
	cfg  apisvc.Config
}

func main() {
	o, err := parseFlags(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp) || errors.Is(err, lifecycle.ErrExit):
		os.Exit(0)
	case err != nil:
		o.proc.Logger.Error("invalid configuration", "err", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		o.proc.Logger.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func run(o options) error {
	p, cfg := o.proc, o.cfg
	log := p.Logger
	fully := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "akutan_cluster_fully_available",
		Help: "1 when the API server's cluster is fully available (every point of both spaces served by an up-to-date view, the log available, an API server up), else 0; labelled by the API server's --dc.",
	}, []string{"dc"})
	healthy := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "akutan_cluster_healthy",
		Help: "1 when the API server's cluster is healthy (three up-to-date views at every point, the log available, three API servers), else 0; labelled by the API server's --dc.",
	}, []string{"dc"})
	p.Registry.MustRegister(fully, healthy)
	gauge := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	cfg.Verdicts = func(f, h bool) {
		fully.WithLabelValues(cfg.DC).Set(gauge(f))
		healthy.WithLabelValues(cfg.DC).Set(gauge(h))
	}
	cfg.Logger = log
	cfg.Registerer = p.Registry
	p.AddInterceptors(testInterceptors())
	cfg.GRPCOptions = p.ServerOptions()
	cfg.GRPCRegister = p.RegisterGRPC
	srv, err := apisvc.Start(cfg)
	if err != nil {
		return err
	}
	p.SetReady(srv.Ready)
	p.Handle("/", statuspage.Handler(func(ctx context.Context) (*apipb.StatusResponse, error) {
		return srv.Status(ctx, &apipb.StatusRequest{})
	}))
	p.Handle("/verdict/fully-available", apisvc.FullyAvailableHandler(func(ctx context.Context) (*apipb.StatusResponse, error) {
		return srv.Status(ctx, &apipb.StatusRequest{})
	}))
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		_ = srv.Close()
		return err
	}
	log.Info("serving", "grpc", srv.Addr(), "http", p.HTTPAddr(), "dc", cfg.DC)
	<-ctx.Done()
	log.Info("shutting down")
	_ = p.Close()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func list(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func parseFlags(args []string) (options, error) {
	o := options{proc: lifecycle.New("akutan-api", "api", usage), cfg: apisvc.DefaultConfig()}
	fs, cfg := o.proc.Flags, &o.cfg
	var logs, views, viewsDNS, viewsFile, fallback, fallbackFile, peers string
	fs.StringVar(&cfg.Listen, "listen", "", "host:port to serve the API on (required)")
	fs.StringVar(&logs, "log", "", "comma-separated gRPC addresses of the log replicas (required)")
	fs.StringVar(&views, "views", "", "comma-separated gRPC addresses of view servers")
	fs.StringVar(&viewsDNS, "views-dns", "", "comma-separated host:port DNS names whose addresses are view servers, re-resolved periodically (e.g. a Kubernetes headless service)")
	fs.StringVar(&viewsFile, "views-file", "", "file listing this datacenter's view addresses, one per line, re-read every --resolve-interval (the control plane rewrites it as it adds and retires views)")
	fs.StringVar(&fallbackFile, "fallback-views-file", "", "file listing other datacenters' view addresses for the fallback, like --views-file")
	fs.StringVar(&fallback, "fallback-views", "", "comma-separated gRPC addresses of other datacenters' views, read only where this datacenter's cannot serve (off when empty; counted in akutan_api_view_fallback_calls_total)")
	fs.StringVar(&peers, "peers", "", "comma-separated addresses of the other API servers of this datacenter, for cluster status")
	fs.StringVar(&cfg.DC, "dc", "", "name of this API server's datacenter (e.g. dc1): the dc label of its cluster metrics")
	fs.Uint64Var(&cfg.MaxLag, "max-lag", cfg.MaxLag, "log entries a view may lag and still count as up to date")
	fs.DurationVar(&cfg.Views.HedgeFloor, "hedge-floor", cfg.Views.HedgeFloor, "least time to wait before hedging a view call to another replica")
	fs.DurationVar(&cfg.Views.PingInterval, "ping-interval", cfg.Views.PingInterval, "how often to check every view's status")
	fs.DurationVar(&cfg.Views.ResolveInterval, "resolve-interval", cfg.Views.ResolveInterval, "how often to re-resolve --views-dns and re-read the view files")
	fs.DurationVar(&cfg.DefaultTimeout, "timeout", cfg.DefaultTimeout, "deadline for calls that arrive without one")
	var maxVersion uint
	fs.UintVar(&maxVersion, "max-supported-version", uint(o.proc.MaxLogVersion(cfg.MaxSupportedVersion)), "highest log entry version to support; for tests and staged upgrades only: raise it to simulate an upgraded build (akutan log set-version)")
	if err := o.proc.Parse(args); err != nil {
		return o, err
	}
	cfg.MaxSupportedVersion = uint32(maxVersion)
	cfg.Log, cfg.Views.Static, cfg.Views.DNS, cfg.Views.Fallback, cfg.Peers = list(logs), list(views), list(viewsDNS), list(fallback), list(peers)
	cfg.Views.Files, cfg.Views.FallbackFiles = list(viewsFile), list(fallbackFile)
	return o, cfg.Validate()
}
