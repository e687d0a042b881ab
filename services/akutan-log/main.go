// Command akutan-log runs one replica of Akutan's replicated log.
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
	"time"

	"github.com/akutan/akutan/internal/lifecycle"
	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/snapshot"
	_ "github.com/akutan/akutan/snapshot/s3store" // the s3:// scheme of OpenStore
)

const usage = `akutan-log runs one replica of Akutan's Raft-replicated log.

Start a new three-replica cluster (run once per replica, same --peers):

  akutan-log --id log1 --raft-addr 127.0.0.1:7001 --grpc-addr 127.0.0.1:7101 \
    --data-dir data/log1 --bootstrap --peers log1=127.0.0.1:7001,log2=127.0.0.1:7002,log3=127.0.0.1:7003

With --archive, the leader archives committed entries into object storage
(segments of --segment-bytes, cut at least every --segment-age), which lets
"akutan log truncate" discard the prefix; readers fetch it from the archive.
Without it nothing is archived, the log refuses every discard and grows until
its disk fills; the replica logs a warning at startup. Give every replica
the same --archive (the views' --store), since any of them may lead.

A replica started without --bootstrap and an empty data dir waits to be
added with the AddVoter RPC. A restarted replica recovers from its data dir;
--bootstrap is ignored when the data dir already holds Raft state.

It is ready (/readyz on --http-addr, gRPC health SERVING) while it knows a
leader and has applied to within --ready-max-lag of the commit index.
Once serving it logs msg=serving with its addresses. SIGTERM or SIGINT
stops it gracefully.

Flags:
`

// options are the parsed flags.
type options struct {
	proc       *lifecycle.Process
	cfg        logsvc.Config
	archiveURL string
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
	if msg := archiveWarning(o); msg != "" {
		log.Warn(msg)
	}
	if o.archiveURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		store, err := snapshot.OpenStore(ctx, o.archiveURL)
		cancel()
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		cfg.ArchiveStore = store
	}
	cfg.Logger = log
	cfg.Registerer = p.Registry
	cfg.GRPCOptions = p.ServerOptions()
	cfg.GRPCRegister = p.RegisterGRPC
	srv, err := logsvc.Start(cfg)
	if err != nil {
		return err
	}
	p.SetReady(srv.Ready)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		_ = srv.Close()
		return err
	}
	log.Info("serving", "id", cfg.ID, "raft", srv.RaftAddr(), "grpc", srv.GRPCAddr(), "http", p.HTTPAddr())
	<-ctx.Done()
	log.Info("shutting down")
	_ = p.Close()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func parseFlags(args []string) (options, error) {
	o := options{proc: lifecycle.New("akutan-log", "log", usage), cfg: logsvc.DefaultConfig()}
	fs, cfg := o.proc.Flags, &o.cfg
	var peers string
	var maxVersion uint
	fs.StringVar(&cfg.ID, "id", "", "replica ID, unique in the cluster and stable across restarts (required)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "", "host:port for Raft traffic between replicas (required)")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "", "host:port for the gRPC log service (required)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and entries (required)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new cluster of --peers if the data dir holds no Raft state")
	fs.StringVar(&peers, "peers", "", "initial members for --bootstrap, as id=raft-host:port,...; empty means this replica alone")
	fs.StringVar(&cfg.RaftStore, "raft-store", cfg.RaftStore, "Raft log store: pebble, wal or bolt (see logsvc/DESIGN.md)")
	fs.IntVar(&cfg.MaxEntryBytes, "max-entry-bytes", cfg.MaxEntryBytes, "largest accepted entry, in bytes")
	fs.IntVar(&cfg.MaxBatchBytes, "max-batch-bytes", cfg.MaxBatchBytes, "largest accepted append batch, in bytes (the gRPC receive limit is this + 1 MiB)")
	fs.UintVar(&maxVersion, "max-supported-version", uint(o.proc.MaxLogVersion(cfg.MaxSupportedVersion)), "highest log version to apply; for tests and staged upgrades only: lower it to simulate an old build, raise it to simulate an upgraded one (akutan log set-version)")
	fs.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", cfg.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&cfg.ElectionTimeout, "election-timeout", cfg.ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&cfg.LeaderLeaseTimeout, "leader-lease-timeout", cfg.LeaderLeaseTimeout, "Raft leader lease; at most the heartbeat timeout")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", cfg.SnapshotThreshold, "Raft entries between snapshots")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "how often to check whether to snapshot")
	fs.Uint64Var(&cfg.TrailingLogs, "trailing-logs", cfg.TrailingLogs, "Raft entries kept after a snapshot for slow followers")
	fs.StringVar(&o.archiveURL, "archive", "", "object store to archive the log into before its prefix may be discarded: s3://bucket/prefix, file:///dir or a directory; empty: no archive, so the log is never truncated (a warning at startup)")
	fs.IntVar(&cfg.Segments.SegmentBytes, "segment-bytes", cfg.Segments.SegmentBytes, "cut an archive segment at this many bytes of entries (before compression)")
	fs.DurationVar(&cfg.Segments.SegmentAge, "segment-age", cfg.Segments.SegmentAge, "cut an archive segment once its oldest entry has waited this long")
	fs.DurationVar(&cfg.ArchiveInterval, "archive-interval", cfg.ArchiveInterval, "how often the leader hands new entries to the archive")
	fs.Uint64Var(&cfg.ReadyMaxLag, "ready-max-lag", cfg.ReadyMaxLag, "Raft entries the applied index may be behind the commit index while ready")
	if err := o.proc.Parse(args); err != nil {
		return o, err
	}
	cfg.MaxSupportedVersion = uint32(maxVersion)
	var err error
	if cfg.Peers, err = parsePeers(peers); err != nil {
		return o, err
	}
	if o.archiveURL != "" {
		// Validate checks segment sizes only when a store is set.
		if err := cfg.Segments.Validate(); err != nil {
			return o, err
		}
	}
	return o, cfg.Validate()
}

// archiveWarning says why this replica's log can never shrink, or "".
// Archiving has no default store: a replica must not write into a bucket
// it was not given.
func archiveWarning(o options) string {
	if o.archiveURL == "" && o.cfg.Archiver == nil {
		return "no --archive: the log is not archived, so it refuses every discard, grows until its disk fills, and nothing of it is backed up"
	}
	return ""
}

func parsePeers(s string) ([]logsvc.Peer, error) {
	if s == "" {
		return nil, nil
	}
	var out []logsvc.Peer
	for _, p := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want id=host:port", p)
		}
		out = append(out, logsvc.Peer{ID: id, RaftAddr: addr})
	}
	return out, nil
}
