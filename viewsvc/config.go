package viewsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/akutan/akutan/snapshot"
)

// MaxSupportedVersion is the highest log version this build of the view
// understands.
const MaxSupportedVersion uint32 = 1

// Config configures a View. Start from DefaultConfig.
type Config struct {
	// Space and Range are the facts this view holds. They are recorded in
	// the data directory when it is created and must match on every open.
	Space Space
	Range HashRange
	// Dir is the Pebble data directory.
	Dir string
	// MaxSupportedVersion is the highest log version to apply; tests lower
	// or raise it. Defaults to the package constant.
	MaxSupportedVersion uint32

	// MaxBatchOps and MaxBatchBytes bound one Pebble commit: the applier
	// commits after the entry that reaches either. An entry is never split.
	MaxBatchOps   int
	MaxBatchBytes int
	// HeadCacheFacts is how many fact heads the applier remembers before it
	// flushes Pebble's memtable; about 100 bytes each, in up to two
	// generations (see headCache).
	HeadCacheFacts int
	// CaughtUpIdle is how long the log must deliver nothing, with everything
	// delivered applied, before the view first reports SERVING.
	CaughtUpIdle time.Duration
	// RetryMin and RetryMax bound the jittered back-off between attempts to
	// stream the log after the reader fails.
	RetryMin, RetryMax time.Duration

	// MaxLookups is the most lookups one request may carry.
	MaxLookups int
	// MaxAhead bounds how far past the log's committed end a read may ask:
	// a lookup or digest at a later index fails at once with ErrBeyondLog
	// (OutOfRange) instead of waiting out its deadline for an index that
	// may never come. Reads within it wait, since the log moves on.
	MaxAhead uint64
	// MaxWaiters bounds the reads waiting for the view to apply their
	// index; more fail at once with ErrTooManyWaiters (ResourceExhausted).
	MaxWaiters int
	// MaxFactsPerChunk bounds the facts in one streamed response message.
	MaxFactsPerChunk int
	// MaxChunkBytes bounds the bytes of one streamed response message,
	// roughly: a message ends at the fact that reaches it.
	MaxChunkBytes int

	// CacheSize is Pebble's block cache in bytes; MemTableSize its memtable.
	// Lookups are fast while the hash-first table fits in the cache.
	CacheSize    int64
	MemTableSize uint64
	// FS is the filesystem Pebble uses for the data directory; nil means
	// the operating system's. Tests inject write errors with it
	// (pebble's vfs/errorfs).
	FS vfs.FS

	// Store is the object store for checkpoints; nil disables checkpoints
	// and booting from the bucket. A view opened with a Store on an empty
	// data directory boots from the newest checkpoints covering its range
	// (see boot.go); with none it replays the log from index 1.
	Store snapshot.Store
	// Cluster names the view cluster (datacenter) in the checkpoints it
	// writes.
	Cluster string
	// CheckpointInterval and CheckpointEntries decide when the background
	// checkpointer writes a checkpoint: once at least CheckpointInterval has
	// passed since the last one and at least CheckpointEntries entries have
	// been applied since it. CheckpointInterval 0 disables the background
	// checkpointer (CheckpointNow still works).
	CheckpointInterval time.Duration
	CheckpointEntries  uint64
	// CheckpointFileBytes is the target size of one checkpoint data file
	// before compression.
	CheckpointFileBytes int64
	// BootParallelism is how many checkpoint files a booting view downloads
	// at once.
	BootParallelism int
	// StopAt, when not 0, makes the view apply the log up to exactly this
	// index and then stay there, serving reads at or below it: the view half
	// of restoring a cluster to a point. A view booting from the bucket uses
	// checkpoints at or below StopAt only.
	StopAt uint64

	// Registerer receives the view's metrics (docs/metrics.md); nil
	// registers them on a private registry that nothing reads.
	Registerer prometheus.Registerer

	// Logger receives operational messages. Defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every tunable set; the caller sets
// Space, Range and Dir.
func DefaultConfig() Config {
	return Config{
		MaxSupportedVersion: MaxSupportedVersion,
		MaxBatchOps:         100_000,
		MaxBatchBytes:       40 << 20,
		HeadCacheFacts:      1_000_000,
		CaughtUpIdle:        100 * time.Millisecond,
		RetryMin:            100 * time.Millisecond,
		RetryMax:            5 * time.Second,
		MaxLookups:          10_000,
		MaxAhead:            100_000,
		MaxWaiters:          10_000,
		MaxFactsPerChunk:    1000,
		MaxChunkBytes:       1 << 20,
		CacheSize:           1 << 30,
		MemTableSize:        64 << 20,
		CheckpointInterval:  0,
		CheckpointEntries:   0,
		CheckpointFileBytes: 64 << 20,
		BootParallelism:     4,
	}
}

// Validate reports every problem with the config at once.
func (c Config) Validate() error {
	var errs []error
	if c.Space != SpaceSP && c.Space != SpacePO {
		errs = append(errs, fmt.Errorf("space %v is not HashSP or HashPO", c.Space))
	}
	if err := c.Range.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("no data directory"))
	}
	if c.MaxSupportedVersion < 1 {
		errs = append(errs, errors.New("max supported version must be at least 1"))
	}
	if c.MaxBatchOps < 1 {
		errs = append(errs, errors.New("max batch ops must be positive"))
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, errors.New("max batch bytes must be positive"))
	}
	if c.HeadCacheFacts < 1 {
		errs = append(errs, errors.New("head cache facts must be positive"))
	}
	if c.CaughtUpIdle <= 0 {
		errs = append(errs, errors.New("caught-up idle time must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry back-off [%v, %v] is not a positive interval", c.RetryMin, c.RetryMax))
	}
	if c.MaxLookups < 1 {
		errs = append(errs, errors.New("max lookups must be positive"))
	}
	if c.MaxWaiters < 1 {
		errs = append(errs, errors.New("max waiters must be positive"))
	}
	if c.MaxChunkBytes < 1 {
		errs = append(errs, errors.New("max chunk bytes must be positive"))
	}
	if c.MaxFactsPerChunk < 1 {
		errs = append(errs, errors.New("max facts per chunk must be positive"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("cache size must not be negative"))
	}
	if c.MemTableSize < 1<<20 {
		errs = append(errs, errors.New("memtable size must be at least 1 MiB"))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, errors.New("checkpoint interval must not be negative"))
	}
	if c.CheckpointInterval > 0 && c.Store == nil {
		errs = append(errs, errors.New("a checkpoint interval needs an object store"))
	}
	if c.CheckpointFileBytes < 1<<20 {
		errs = append(errs, errors.New("checkpoint file bytes must be at least 1 MiB"))
	}
	if c.BootParallelism < 1 {
		errs = append(errs, errors.New("boot parallelism must be positive"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid view config: %w", errors.Join(errs...))
	}
	return nil
}
