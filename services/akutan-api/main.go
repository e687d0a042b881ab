// Command akutan-api runs one Akutan API server.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/akutan/akutan/apisvc"
	"github.com/akutan/akutan/internal/debugserver"
)

const usage = `akutan-api serves Akutan's public gRPC API: writes go to the log, lookups
fan out over the views. It keeps no state; run as many as you like.

  akutan-api --listen 127.0.0.1:7201 --log 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 \
    --views 127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303,127.0.0.1:7304

Flags:
`

func main() {
	cfg, debugAddr, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "akutan-api:", err)
		os.Exit(2)
	}
	if debugAddr != "" {
		dbg, err := debugserver.Start(debugAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "akutan-api:", err)
			os.Exit(1)
		}
		defer dbg.Close()
		fmt.Fprintf(os.Stderr, "akutan-api: profiles on http://%s/debug/pprof/\n", dbg.Addr())
	}
	srv, err := apisvc.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "akutan-api:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "akutan-api: serving on %s\n", srv.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Fprintln(os.Stderr, "akutan-api: shutting down")
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "akutan-api: shutdown:", err)
		os.Exit(1)
	}
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

func parseFlags(args []string) (apisvc.Config, string, error) {
	cfg := apisvc.DefaultConfig()
	fs := flag.NewFlagSet("akutan-api", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var logs, views, viewsDNS, peers, debugAddr string
	fs.StringVar(&cfg.Listen, "listen", "", "host:port to serve the API on (required)")
	fs.StringVar(&logs, "log", "", "comma-separated gRPC addresses of the log replicas (required)")
	fs.StringVar(&views, "views", "", "comma-separated gRPC addresses of view servers")
	fs.StringVar(&viewsDNS, "views-dns", "", "comma-separated host:port DNS names whose addresses are view servers, re-resolved periodically (e.g. a Kubernetes headless service)")
	fs.StringVar(&peers, "peers", "", "comma-separated addresses of the other API servers, for cluster status")
	fs.Uint64Var(&cfg.MaxLag, "max-lag", cfg.MaxLag, "log entries a view may lag and still count as up to date")
	fs.DurationVar(&cfg.Views.HedgeFloor, "hedge-floor", cfg.Views.HedgeFloor, "least time to wait before hedging a view call to another replica")
	fs.DurationVar(&cfg.Views.PingInterval, "ping-interval", cfg.Views.PingInterval, "how often to check every view's status")
	fs.DurationVar(&cfg.Views.ResolveInterval, "resolve-interval", cfg.Views.ResolveInterval, "how often to re-resolve --views-dns")
	fs.DurationVar(&cfg.DefaultTimeout, "timeout", cfg.DefaultTimeout, "deadline for calls that arrive without one")
	fs.StringVar(&debugAddr, "debug-addr", "", "host:port to serve Go profiles (/debug/pprof/) on; off when empty")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Log, cfg.Views.Static, cfg.Views.DNS, cfg.Peers = list(logs), list(views), list(viewsDNS), list(peers)
	return cfg, debugAddr, cfg.Validate()
}
