package logsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/akutan/akutan/snapshot"
)

// Log store kinds for Raft's own log. See DESIGN.md for the measurements
// behind the default.
const (
	StorePebble = "pebble"
	StoreWAL    = "wal"
	StoreBolt   = "bolt"
)

// Peer is a member of the initial cluster.
type Peer struct {
	ID       string
	RaftAddr string
}

// Config configures one log replica.
type Config struct {
	// ID names the replica; it must be unique and stable across restarts.
	ID string
	// RaftAddr is the TCP address Raft listens on and advertises.
	RaftAddr string
	// GRPCAddr is the address the gRPC service listens on and advertises.
	GRPCAddr string
	// DataDir holds the Raft log, snapshots and the entry store.
	DataDir string
	// Bootstrap starts a new cluster of Peers (which must include this
	// replica) if DataDir holds no Raft state. Without it, the replica waits
	// to be added to a running cluster with AddVoter.
	Bootstrap bool
	Peers     []Peer

	// MaxEntryBytes limits one Akutan entry; MaxBatchBytes one append.
	MaxEntryBytes int
	MaxBatchBytes int
	// MaxSupportedVersion is the highest log version this replica applies.
	MaxSupportedVersion uint32
	// RaftStore is the Raft log store kind: StorePebble, StoreWAL or StoreBolt.
	RaftStore string

	// Raft timing and snapshotting.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	MaxAppendEntries   int
	// ApplyTimeout bounds how long an append waits to enter Raft's queue.
	ApplyTimeout time.Duration

	// Archiver, when set, archives committed entries on the leader so that
	// the prefix can be discarded. The leader hands it entries as they
	// commit, and every ArchiveInterval (100 ms) so that it can cut by age
	// while the log is quiet. When Archiver is nil and ArchiveStore is set,
	// the replica archives into ArchiveStore with a SegmentArchiver sized
	// by Segments.
	Archiver        Archiver
	ArchiveInterval time.Duration
	ArchiveStore    snapshot.Store
	Segments        SegmentConfig

	// Registerer receives the replica's metrics (docs/metrics.md); nil
	// registers them on a private registry that nothing reads.
	Registerer prometheus.Registerer

	// Logger receives the server's and Raft's events (Raft's hclog output
	// is routed into it). When nil, the server logs text to stderr at
	// LogLevel (trace, debug, info, warn, error).
	Logger   *slog.Logger
	LogLevel string

	// ReadyMaxLag bounds how far this replica's applied index may be behind
	// the commit index it knows for Ready to pass.
	ReadyMaxLag uint64

	// GRPCOptions are added to the gRPC server's options (the lifecycle's
	// interceptors, limits and keepalive); the server adds its own receive
	// limit, MaxBatchBytes + 1 MiB. GRPCRegister, when set, is called with
	// the server after the log service is registered and before it serves
	// (the health service and reflection).
	GRPCOptions  []grpc.ServerOption
	GRPCRegister func(*grpc.Server)
}

// DefaultConfig returns a configuration with every tunable set; callers fill
// in ID, addresses, DataDir and Peers.
func DefaultConfig() Config {
	return Config{
		MaxEntryBytes:       8 << 20,
		MaxBatchBytes:       32 << 20,
		MaxSupportedVersion: MaxSupportedVersion,
		RaftStore:           StoreWAL,
		HeartbeatTimeout:    1000 * time.Millisecond,
		ElectionTimeout:     1000 * time.Millisecond,
		LeaderLeaseTimeout:  500 * time.Millisecond,
		CommitTimeout:       50 * time.Millisecond,
		SnapshotThreshold:   65536,
		SnapshotInterval:    2 * time.Minute,
		TrailingLogs:        10240,
		MaxAppendEntries:    256,
		ApplyTimeout:        10 * time.Second,
		ArchiveInterval:     100 * time.Millisecond,
		Segments:            DefaultSegmentConfig(),
		LogLevel:            "warn",
		ReadyMaxLag:         1000,
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ID == "" {
		bad("node id is empty")
	}
	if c.RaftAddr == "" {
		bad("raft address is empty")
	}
	if c.GRPCAddr == "" {
		bad("grpc address is empty")
	}
	if c.DataDir == "" {
		bad("data dir is empty")
	}
	if c.Bootstrap {
		found := false
		ids := map[string]bool{}
		for _, p := range c.Peers {
			if p.ID == "" || p.RaftAddr == "" {
				bad("peer %q has an empty id or address", p.ID+"="+p.RaftAddr)
			}
			if ids[p.ID] {
				bad("peer id %q appears twice", p.ID)
			}
			ids[p.ID] = true
			found = found || p.ID == c.ID
		}
		if len(c.Peers) > 0 && !found {
			bad("bootstrap peers do not include this node %q", c.ID)
		}
	}
	if c.MaxEntryBytes <= 0 || c.MaxBatchBytes < c.MaxEntryBytes {
		bad("max entry bytes %d and max batch bytes %d: need 0 < entry <= batch", c.MaxEntryBytes, c.MaxBatchBytes)
	}
	if c.MaxSupportedVersion < 1 {
		bad("max supported version must be at least 1")
	}
	switch c.RaftStore {
	case StorePebble, StoreWAL, StoreBolt:
	default:
		bad("raft store %q is not one of %s", c.RaftStore, strings.Join([]string{StorePebble, StoreWAL, StoreBolt}, ", "))
	}
	if c.HeartbeatTimeout <= 0 || c.ElectionTimeout <= 0 || c.LeaderLeaseTimeout <= 0 || c.CommitTimeout <= 0 {
		bad("raft timeouts must be positive")
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader lease timeout %v exceeds heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 || c.SnapshotInterval <= 0 {
		bad("snapshot threshold and interval must be positive")
	}
	if c.MaxAppendEntries <= 0 || c.MaxAppendEntries > 1024 {
		bad("max append entries %d must be in 1..1024", c.MaxAppendEntries)
	}
	if c.ApplyTimeout <= 0 || c.ArchiveInterval <= 0 {
		bad("apply timeout and archive interval must be positive")
	}
	if c.Archiver == nil && c.ArchiveStore != nil {
		if err := c.Segments.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
