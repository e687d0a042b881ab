package logsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/akutan/akutan/internal/lifecycle/hclogslog"
	"github.com/akutan/akutan/logsvc/internal/entrystore"
	"github.com/akutan/akutan/logsvc/internal/raftpebble"
	"github.com/akutan/akutan/logsvc/internal/storeguard"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
)

// MaxSupportedVersion is the highest log version this build applies.
const MaxSupportedVersion uint32 = 1

// forwardedKey marks a call a follower forwarded to the leader, so that it
// is never forwarded twice.
const forwardedKey = "akutan-forwarded"

// Server is one log replica: Raft, the entry store, and the gRPC service.
type Server struct {
	logpb.UnimplementedLogServer

	cfg      Config
	logger   hclog.Logger
	store    *entrystore.Store
	fsm      *fsm
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	raftLogs io.Closer
	grpc     *grpc.Server
	lis      net.Listener
	conns    *logclient.ConnPool

	archiveNow chan archiveRequest
	metrics    *serverMetrics // metrics.go

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Start opens the replica's stores, starts Raft, and serves gRPC.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("log config: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		logger:     hclogslog.New(serverLogger(cfg).With("replica", cfg.ID), ""),
		conns:      &logclient.ConnPool{},
		closing:    make(chan struct{}),
		archiveNow: make(chan archiveRequest),
	}
	if cfg.Archiver == nil && cfg.ArchiveStore != nil {
		s.cfg.Archiver = NewSegmentArchiver(cfg.ArchiveStore, cfg.Segments)
	}
	if err := s.open(); err != nil {
		s.shutdown()
		return nil, err
	}
	s.wg.Add(1)
	go s.registerLoop()
	if s.cfg.Archiver != nil {
		s.wg.Add(1)
		go s.archiveLoop()
	}
	return s, nil
}

func (s *Server) open() error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var err error
	if s.store, err = entrystore.Open(filepath.Join(cfg.DataDir, "entries")); err != nil {
		return err
	}
	s.fsm = &fsm{store: s.store, supported: cfg.MaxSupportedVersion, logger: s.logger, onHalt: s.onHalt}

	logs, stable, closer, err := openRaftStore(cfg.RaftStore, filepath.Join(cfg.DataDir, "raft-"+cfg.RaftStore), s.logger)
	if err != nil {
		return err
	}
	// A failed write of Raft's log (a full disk) stops the replica: Raft
	// would go on, but a store may refuse every later write (DESIGN.md, "A
	// full disk").
	logs = storeguard.Wrap(logs, func(err error) { s.fsm.halt(fmt.Errorf("raft log store: %w", err)) })
	s.raftLogs = closer
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "snapshots"), 2, s.logger.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := s.catchUpFromSnapshot(snaps); err != nil {
		return err
	}

	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raft address %q: %w", cfg.RaftAddr, err)
	}
	s.trans, err = raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 5, 10*time.Second, s.logger.Named("transport"))
	if err != nil {
		return fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	// The entry store is durable, so Raft need not rebuild it from a
	// snapshot at start; catchUpFromSnapshot covers a store left behind.
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = s.logger.Named("raft")

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, stable, snaps)
		if err != nil {
			return fmt.Errorf("check raft state: %w", err)
		}
		if !has {
			peers := cfg.Peers
			if len(peers) == 0 {
				peers = []Peer{{ID: cfg.ID, RaftAddr: cfg.RaftAddr}}
			}
			var conf raft.Configuration
			for _, p := range peers {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
			}
			if err := raft.BootstrapCluster(rc, logs, stable, snaps, s.trans, conf); err != nil {
				return fmt.Errorf("bootstrap cluster: %w", err)
			}
		}
	}
	if s.raft, err = raft.NewRaft(rc, s.fsm, logs, stable, snaps, s.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if err := s.registerMetrics(); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}

	if s.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return fmt.Errorf("grpc listen on %s: %w", cfg.GRPCAddr, err)
	}
	opts := append(append([]grpc.ServerOption(nil), cfg.GRPCOptions...), grpc.MaxRecvMsgSize(cfg.MaxBatchBytes+1<<20))
	s.grpc = grpc.NewServer(opts...)
	logpb.RegisterLogServer(s.grpc, s)
	if cfg.GRPCRegister != nil {
		cfg.GRPCRegister(s.grpc)
	}
	go s.grpc.Serve(s.lis)
	return nil
}

// catchUpFromSnapshot restores the entry store from the newest local Raft
// snapshot when the store is behind it (an interrupted restore, or a store
// lost outside our control), because Raft will only replay entries after
// the snapshot.
func (s *Server) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	head, err := entrystore.ReadSnapshotMeta(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", list[0].ID, err)
	}
	if head.RaftApplied <= s.store.Meta().RaftApplied {
		return nil
	}
	s.logger.Warn("entry store is behind the local snapshot; restoring", "store", s.store.Meta().RaftApplied, "snapshot", head.RaftApplied)
	_, rc, err = snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	return s.fsm.Restore(rc)
}

func openRaftStore(kind, dir string, logger hclog.Logger) (raft.LogStore, raft.StableStore, io.Closer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	switch kind {
	case StoreWAL:
		// raft-wal's Close leaves its metadata database open (and its file
		// locked), so the store owns that database and closes it too.
		meta := &metadb.BoltMetaDB{}
		w, err := raftwal.Open(dir, raftwal.WithLogger(logger.Named("raft-wal")), raftwal.WithMetaStore(meta))
		if err != nil {
			meta.Close()
			return nil, nil, nil, fmt.Errorf("open raft wal: %w", err)
		}
		return w, w, closers{w, meta}, nil
	case StoreBolt:
		b, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open raft boltdb: %w", err)
		}
		return b, b, b, nil
	default:
		p, err := raftpebble.Open(dir)
		if err != nil {
			return nil, nil, nil, err
		}
		return p, p, p, nil
	}
}

// closers closes each in order.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// serverLogger is cfg.Logger, or text on stderr at cfg.LogLevel.
func serverLogger(cfg Config) *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	level := slog.LevelWarn
	switch strings.ToLower(cfg.LogLevel) {
	case "trace":
		level = hclogslog.LevelTrace
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Ready reports nil when the replica is useful: it knows a leader, and its
// applied index is within ReadyMaxLag of the commit index it knows.
// Otherwise it says why not.
func (s *Server) Ready(context.Context) error {
	if s.raft == nil {
		return errors.New("raft is not running")
	}
	if st := s.raft.State(); st == raft.Shutdown {
		return errors.New("raft is shut down")
	}
	_, id := s.raft.LeaderWithID()
	if id == "" {
		return errors.New("no known leader")
	}
	commit, applied := s.raft.CommitIndex(), s.raft.AppliedIndex()
	if commit > applied+s.cfg.ReadyMaxLag {
		return fmt.Errorf("applied raft index %d is %d behind the commit index %d (bound %d)", applied, commit-applied, commit, s.cfg.ReadyMaxLag)
	}
	return nil
}

// GRPCAddr returns the address the gRPC service listens on.
func (s *Server) GRPCAddr() string { return s.lis.Addr().String() }

// RaftAddr returns the address Raft listens on.
func (s *Server) RaftAddr() string { return string(s.trans.LocalAddr()) }

// ID returns the replica's ID.
func (s *Server) ID() string { return s.cfg.ID }

// IsLeader reports whether this replica leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Close stops serving and shuts Raft down cleanly.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.shutdown() })
	return err
}

func (s *Server) shutdown() error {
	close(s.closing)
	if s.grpc != nil {
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			s.grpc.Stop()
		}
	}
	s.wg.Wait()
	var errs []error
	if s.raft != nil {
		errs = append(errs, s.raft.Shutdown().Error())
	}
	if s.trans != nil {
		errs = append(errs, s.trans.Close())
	}
	if s.raftLogs != nil {
		errs = append(errs, s.raftLogs.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	s.conns.Close()
	return errors.Join(errs...)
}

// onHalt hands leadership away when the leader cannot apply the log.
func (s *Server) onHalt(error) {
	if s.raft != nil && s.raft.State() == raft.Leader {
		s.raft.LeadershipTransfer()
	}
}

// leader returns the leader's ID and gRPC address, if known.
func (s *Server) leader() (id, grpcAddr string) {
	_, lid := s.raft.LeaderWithID()
	id = string(lid)
	return id, s.store.Meta().Members[id]
}

// leaderClient returns a client for the leader to forward a call to, or
// ErrNotLeader when the call must not or cannot be forwarded.
func (s *Server) leaderClient(ctx context.Context) (logpb.LogClient, context.Context, error) {
	id, addr := s.leader()
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		return nil, nil, logerr.NotLeader(id, addr)
	}
	if id == "" || addr == "" || id == s.cfg.ID {
		return nil, nil, logerr.NotLeader(id, addr)
	}
	// Forward only on a ready connection: then a failure before the
	// request left is reported as such, and the client may retry it.
	conn, ok := s.conns.Ready(ctx, addr, 300*time.Millisecond)
	if !ok {
		return nil, nil, logerr.New(logerr.ErrUnavailable, nil, "leader %s at %s is unreachable", id, addr)
	}
	out := metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.ID)
	return logpb.NewLogClient(conn), out, nil
}

// registerLoop makes sure the replicated member table holds this replica's
// gRPC address, so that others can forward to it and ask it for Info.
func (s *Server) registerLoop() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		if s.store.Meta().Members[s.cfg.ID] == s.GRPCAddr() {
			t.Reset(5 * time.Second)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.RegisterMember(ctx, &logpb.RegisterMemberRequest{Id: s.cfg.ID, GrpcAddress: s.GRPCAddr()})
		cancel()
		if err != nil {
			s.logger.Debug("register member", "error", err)
		}
	}
}
