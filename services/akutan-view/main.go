package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/akutan/akutan/internal/lifecycle"
	"github.com/akutan/akutan/internal/lifecycle/rpcconf"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/snapshot"
	_ "github.com/akutan/akutan/snapshot/s3store" // the s3:// scheme of OpenStore
	"github.com/akutan/akutan/viewsvc"
)

const usage = `akutan-view runs one Akutan DiskView: the facts of one hash range of one
space, applied from the log into Pebble and served over gRPC (view.proto).

Serve the lower half of the HashSP space from a three-replica log:

  akutan-view --space sp --range-start 0 --range-end 0x8000000000000000 \
    --data-dir data/view-sp-0 --log 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 \
    --listen 127.0.0.1:7201

A restarted view resumes from its data dir after the last entry it applied;
the data dir remembers its space and range and refuses any other.

With --store (a directory, or s3://bucket/prefix?endpoint=...&path_style=true
with credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) the view
writes a checkpoint there every --checkpoint-interval (10m by default, the
first at a random point of the first interval; 0 turns them off), and on
the Checkpoint RPC. The log can only be truncated below indexes that
checkpoints cover, so a view with --store and no checkpoints, or one without
--store, lets the log grow; either logs a warning at startup. A view started
on an empty data dir boots from the newest checkpoints covering its range,
then replays the log after them; entries the log has discarded are read from
the log archive in the same store (or the one --archive names; a view
without --store may still read the archive). --stop-at N applies exactly to
index N and stays there (restore to a point).

It is ready (/readyz on --http-addr, gRPC health SERVING) while it is
SERVING and within --max-lag entries of the log's last index. Once
listening it logs msg=serving with grpc=HOST:PORT. SIGTERM or SIGINT stops
it gracefully.

Flags:
`

// defaultCheckpointInterval is --checkpoint-interval for a view with
// --store: often enough that the log truncates well before a disk sized for
// a day of writes fills, and a booting view replays at most a few minutes
// of the log after its checkpoint; rare enough that uploading a view's
// whole state (a new checkpoint shares no files with the last) stays a
// small part of its bandwidth. The checkpointer starts its clock at a
// random point of the first interval, so views started together spread
// their uploads.
const defaultCheckpointInterval = 10 * time.Minute

// options are the parsed flags.
type options struct {
	proc     *lifecycle.Process
	cfg      viewsvc.Config
	store    string
	archive  string
	logAddrs []string
	listen   string
	maxLag   uint64
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp) || errors.Is(err, lifecycle.ErrExit):
		os.Exit(0)
	case err != nil:
		opts.proc.Logger.Error("invalid configuration", "err", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		opts.proc.Logger.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	o := options{proc: lifecycle.New("akutan-view", "view", usage), cfg: viewsvc.DefaultConfig()}
	fs := o.proc.Flags
	var space, start, end, logs string
	var maxVersion uint
	fs.StringVar(&space, "space", "", "hash space: sp (HashSP, for LookupS/SP/SPO) or po (HashPO, for LookupPO/POCmp) (required)")
	fs.StringVar(&start, "range-start", "0", "first hash of the range, inclusive: a uint64 in decimal or 0x hex")
	fs.StringVar(&end, "range-end", "max", "end of the range, exclusive: a uint64 in decimal or 0x hex, or max for 2^64")
	fs.StringVar(&o.cfg.Dir, "data-dir", "", "Pebble data directory; created if missing (required)")
	fs.StringVar(&logs, "log", "", "gRPC addresses of the log replicas, comma-separated (required); the view tails the first (put this datacenter's first) and fails over to the others only while it is down")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "host:port for the gRPC view service; port 0 picks a free port")
	fs.UintVar(&maxVersion, "max-supported-version", uint(o.proc.MaxLogVersion(viewsvc.MaxSupportedVersion)), "highest log version to apply; for tests and staged upgrades only: lower it to simulate an old build, raise it to simulate an upgraded one (akutan log set-version)")
	fs.Int64Var(&o.cfg.CacheSize, "cache-bytes", o.cfg.CacheSize, "Pebble block cache size in bytes")
	fs.IntVar(&o.cfg.MaxLookups, "max-lookups", o.cfg.MaxLookups, "most lookups one request may carry")
	fs.Uint64Var(&o.maxLag, "max-lag", viewsvc.DefaultMaxLag, "log entries the view may be behind the log's last index and still be ready (/readyz, gRPC health)")
	fs.StringVar(&o.archive, "archive", "", "log archive to read the entries the log has discarded from (default: the --store)")
	fs.StringVar(&o.store, "store", "", "object store for checkpoints: a directory, or s3://bucket/prefix?endpoint=URL&path_style=true; an empty data dir boots from it")
	fs.StringVar(&o.cfg.Cluster, "cluster", "", "name of this view cluster (datacenter), recorded in its checkpoints")
	fs.DurationVar(&o.cfg.CheckpointInterval, "checkpoint-interval", defaultCheckpointInterval,
		"with --store, write a checkpoint this often, the first at a random point of the first interval (0: only on request, and the log cannot be truncated past this view)")
	fs.Uint64Var(&o.cfg.CheckpointEntries, "checkpoint-entries", 0, "and only once this many entries were applied since the last checkpoint")
	fs.Uint64Var(&o.cfg.StopAt, "stop-at", 0, "apply the log to exactly this index and stay there (0: follow the log)")
	if err := o.proc.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if space == "" {
		errs = append(errs, errors.New("--space is required"))
	} else if s, err := viewsvc.ParseSpace(space); err != nil {
		errs = append(errs, fmt.Errorf("--space: %w", err))
	} else {
		o.cfg.Space = s
	}
	if v, max, err := viewsvc.ParseHashBound(start); err != nil || max {
		errs = append(errs, fmt.Errorf("--range-start %q: want a uint64", start))
	} else {
		o.cfg.Range.Start = v
	}
	if v, max, err := viewsvc.ParseHashBound(end); err != nil {
		errs = append(errs, fmt.Errorf("--range-end: %w", err))
	} else if !max && v == 0 {
		errs = append(errs, errors.New("--range-end 0 would be empty; use max for 2^64"))
	} else {
		o.cfg.Range.End = v // 0 (max) stands for 2^64
	}
	for _, a := range strings.Split(logs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.logAddrs = append(o.logAddrs, a)
		}
	}
	if len(o.logAddrs) == 0 {
		errs = append(errs, errors.New("--log is required"))
	}
	o.cfg.MaxSupportedVersion = uint32(maxVersion)
	if o.store == "" {
		// The default interval applies only with a store; one asked for
		// without a store is refused by Validate below.
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "checkpoint-interval" })
		if !set {
			o.cfg.CheckpointInterval = 0
		}
	}
	if o.cfg.Dir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	} else {
		check := o.cfg
		if o.store != "" {
			// The store is opened in run; Open checks the whole config again.
			check.CheckpointInterval = 0
		}
		if err := check.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// run opens the view, applies the log and serves until SIGTERM or SIGINT.
func run(o options) error {
	p := o.proc
	logger := p.Logger
	o.cfg.Logger = logger
	o.cfg.Registerer = p.Registry
	if msg := checkpointWarning(o); msg != "" {
		logger.Warn(msg, "store", o.store, "checkpoint_interval", o.cfg.CheckpointInterval)
	}
	// Both stores count their requests in the bucket metrics
	// (docs/metrics.md), which have no label for which store it was.
	if o.store != "" {
		store, err := snapshot.OpenStore(context.Background(), o.store)
		if err != nil {
			return err
		}
		o.cfg.Store = snapshot.InstrumentStore(store, p.Registry)
	}
	view, err := viewsvc.Open(o.cfg)
	if err != nil {
		return err
	}
	defer view.Close()
	reader := logclient.NewReader(o.logAddrs).PreferFirst(0)
	switch {
	case o.archive != "":
		archive, err := snapshot.OpenStore(context.Background(), o.archive)
		if err != nil {
			return err
		}
		reader.UseArchive(snapshot.InstrumentStore(archive, p.Registry))
	case o.cfg.Store != nil:
		// The log's discarded prefix is read from the archive, which lives
		// in the same store by default.
		reader.UseArchive(o.cfg.Store)
	}
	defer reader.Close()

	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	srv := grpc.NewServer(append(p.ServerOptions(), grpc.MaxRecvMsgSize(rpcconf.ViewMaxRecvBytes))...)
	viewpb.RegisterViewServer(srv, viewsvc.NewServer(view))
	p.RegisterGRPC(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	tail := logReader{reader}
	p.SetReady(func(ctx context.Context) error { return viewsvc.Ready(ctx, view, tail, o.maxLag) })
	if err := p.Start(ctx); err != nil {
		srv.Stop()
		return err
	}
	applied := make(chan error, 1)
	go func() { applied <- view.Run(ctx, tail) }()
	logger.Info("serving", "space", o.cfg.Space.String(), "range", o.cfg.Range.String(),
		"grpc", lis.Addr().String(), "http", p.HTTPAddr(), "applied", view.LastApplied())

	select {
	case <-ctx.Done():
	case err := <-served:
		_ = p.Close()
		return fmt.Errorf("grpc server: %w", err)
	}
	logger.Info("shutting down")
	_ = p.Close()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		srv.Stop()
	}
	cancel()
	if err := <-applied; err != nil {
		logger.Warn("the view had stopped applying the log", "err", err)
	}
	return view.Close()
}

// checkpointWarning says why this view holds the log back, or "". The
// truncator discards the log only below indexes that checkpoints cover at
// every point (infra/truncate), so a view that writes none keeps the whole
// log, on disk, on every replica.
func checkpointWarning(o options) string {
	switch {
	case o.store == "":
		return "no --store: this view writes no checkpoints, so nothing it holds is backed up, its range adds no checkpoint coverage that would let the log be truncated, and a replacement view must replay the log"
	case o.cfg.CheckpointInterval == 0:
		return "checkpoints are off (--checkpoint-interval 0): this view writes one only when asked (akutan backup now), so the log cannot be truncated past its newest checkpoint and grows until its disk fills"
	}
	return ""
}

// logReader adapts the log client to the view's LogReader.
type logReader struct{ r *logclient.Reader }

func (l logReader) Stream(ctx context.Context, from uint64, fn func([]viewsvc.LogEntry) error) error {
	return l.r.Stream(ctx, from, func(entries []logclient.Entry) error {
		out := make([]viewsvc.LogEntry, len(entries))
		for i, e := range entries {
			out[i] = viewsvc.LogEntry{Index: e.Index, Data: e.Data}
		}
		return fn(out)
	})
}

// LastIndex lets the view know exactly when it has caught up.
func (l logReader) LastIndex(ctx context.Context) (uint64, error) { return l.r.LastIndex(ctx) }

var _ viewsvc.LogTail = logReader{}
