package viewsvc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/akutan/akutan/internal/pebblelog"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// layoutVersion is the version of the on-disk format in internal/keys. It is
// recorded in every data directory.
const layoutVersion = 1

// Metadata records.
var (
	metaIdentity   = keys.MetaKey("identity")
	metaApplied    = keys.MetaKey("applied")
	metaLogVersion = keys.MetaKey("log_version")
	// metaRejected is the view's Rejected record.
	metaRejected = keys.MetaKey("rejected")
	// metaBooting marks a directory created to boot from the bucket whose
	// boot has not finished; Run boots it (again) before applying.
	metaBooting = keys.MetaKey("booting")
	// metaCheckpoint is the index of the newest checkpoint this view wrote
	// or booted from. It is not part of the logical state.
	metaCheckpoint = keys.MetaKey("checkpoint")
)

// identity is what a data directory holds; it is fixed when the directory
// is created.
type identity struct {
	Layout int    `json:"layout"`
	Space  string `json:"space"`
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"` // 0 stands for 2^64
}

// State is where a view is in its life.
type State = viewpb.State

// Status describes a view.
type Status struct {
	Space               Space
	Range               HashRange
	LastApplied         uint64
	State               State
	MaxSupportedVersion uint32
	LogVersion          uint32
	// Err is why the view stopped applying, or why applying is stalled
	// (Pebble cannot flush, e.g. "no space left on device"; it resumes by
	// itself once flushes succeed); nil while it applies.
	Err error
	// CheckpointIndex is the index of the newest checkpoint this view wrote
	// or booted from; 0 if none.
	CheckpointIndex uint64
	// BootBytesDone and BootBytesTotal measure the download of checkpoints
	// while the view boots from the bucket.
	BootBytesDone, BootBytesTotal int64
	// CheckpointErr is why the last checkpoint attempt failed; nil after a
	// success.
	CheckpointErr error
	// Rejected counts the invalid entries this view applied as no-ops.
	Rejected Rejected
}

// Rejected records the log entries a view applied as no-ops because they
// were invalid (see the package doc), since its data dir was created or
// booted from the bucket.
type Rejected struct {
	Count      uint64
	LastIndex  uint64
	LastReason string
}

func (r Rejected) marshal() []byte {
	b := binary.BigEndian.AppendUint64(nil, r.Count)
	b = binary.BigEndian.AppendUint64(b, r.LastIndex)
	return append(b, r.LastReason...)
}

func unmarshalRejected(b []byte) (Rejected, error) {
	if len(b) < 16 {
		return Rejected{}, fmt.Errorf("rejected-entries record of %d bytes", len(b))
	}
	return Rejected{Count: binary.BigEndian.Uint64(b), LastIndex: binary.BigEndian.Uint64(b[8:]), LastReason: string(b[16:])}, nil
}

// View is one DiskView: the facts of one hash range of one space, stored in
// Pebble, applied from the log by Run and read by the lookup methods.
type View struct {
	cfg  Config
	log  *slog.Logger
	db   *pebble.DB
	disk *pebblelog.Health // whether Pebble's flushes fail

	mu         sync.Mutex
	applied    uint64
	logVersion uint32
	state      State
	stopErr    error
	rejected   Rejected
	tail       LogTail // the running log reader's end, if it tells one
	waiters    int     // reads in waitReadable
	running    bool
	closed     bool
	advanced   chan struct{} // closed and replaced when applied, stopErr or closed change
	readers    sync.WaitGroup
	runDone    chan struct{} // closed when the running Run returns
	cancelRun  context.CancelFunc

	// Checkpoints and booting (checkpoint.go, boot.go).
	needBoot        bool // boot from cfg.Store before applying
	checkpointIndex uint64
	checkpointErr   error
	bootDone        int64
	bootTotal       int64
	ckMu            sync.Mutex // one checkpoint at a time
	closeCtx        context.Context
	closeCancel     context.CancelFunc

	met *viewMetrics // metrics.go
}

// Open opens or creates the view's data directory. A directory made for
// another space or range is refused.
func Open(cfg Config) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fresh, err := dirEmpty(cfg.Dir)
	if err != nil {
		return nil, err
	}
	opts := pebbleOptions(cfg)
	// A full disk (or any write error) makes Pebble's flushes fail and
	// retry while writes stall; disk records it for Status and the applier
	// (DESIGN.md, "A full disk").
	disk := &pebblelog.Health{Name: "view", Logger: cfg.Logger, Dir: cfg.Dir}
	opts.AddEventListener(disk.EventListener())
	if cfg.FS != nil {
		opts.FS = cfg.FS
	}
	disk.FS = opts.FS
	db, err := pebble.Open(cfg.Dir, opts)
	if opts.Cache != nil {
		opts.Cache.Unref() // the DB holds its own reference
	}
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", cfg.Dir, err)
	}
	v := &View{
		cfg:        cfg,
		log:        cfg.Logger.With("space", cfg.Space.String(), "range", cfg.Range.String()),
		db:         db,
		disk:       disk,
		logVersion: 1,
		state:      viewpb.State_BOOTING,
		advanced:   make(chan struct{}),
	}
	v.closeCtx, v.closeCancel = context.WithCancel(context.Background())
	if err := v.load(fresh && cfg.Store != nil); err != nil {
		v.closeCancel()
		_ = db.Close()
		return nil, err
	}
	v.registerMetrics()
	// Working directories of checkpoints and boots a crash left behind.
	for _, pattern := range []string{"checkpoint-export-*", "checkpoint-boot"} {
		stale, _ := filepath.Glob(filepath.Join(cfg.Dir, pattern))
		for _, d := range stale {
			_ = os.RemoveAll(d)
		}
	}
	return v, nil
}

// dirEmpty reports whether dir is missing or holds nothing.
func dirEmpty(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read data directory: %w", err)
	}
	return len(ents) == 0, nil
}

// pebbleOptions tunes Pebble for a view: random (hash-first) keys written
// in large sorted batches, and prefix seeks that mostly miss. See DESIGN.md.
func pebbleOptions(cfg Config) *pebble.Options {
	opts := &pebble.Options{
		Comparer:                    keys.Comparer,
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                cfg.MemTableSize,
		MemTableStopWritesThreshold: 4,
		// Every flush of random keys overlaps all of L0; tolerate a longer
		// L0 before stopping writes, and flush into fewer, larger files.
		L0StopWritesThreshold: 32,
		// No WAL: everything a view holds comes from the log, so a crash may
		// lose what was not flushed and the view applies it again. Batches
		// still reach the memtable atomically and flushes keep their order,
		// so what survives is always a prefix of the batches, with the
		// applied index in the same batch as its data.
		DisableWAL: true,
		Logger:     pebblelog.Quiet{Name: "view", Logger: cfg.Logger},
	}
	opts.TargetFileSizes[0] = 16 << 20
	if cfg.CacheSize > 0 {
		opts.Cache = pebble.NewCache(cfg.CacheSize)
	}
	for i := range opts.Levels {
		// Prefix bloom filters (see keys.Split) answer most head lookups.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].BlockSize = 16 << 10
	}
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	opts.EnsureDefaults()
	return opts
}

// load checks or records the directory's identity and reads the applied
// state. boot marks a new directory for booting from the bucket.
func (v *View) load(boot bool) error {
	want := identity{Layout: layoutVersion, Space: v.cfg.Space.String(), Start: v.cfg.Range.Start, End: v.cfg.Range.End}
	raw, err := v.get(metaIdentity)
	if err != nil {
		return err
	}
	if raw == nil {
		b, _ := json.Marshal(want)
		batch := v.db.NewBatch()
		_ = batch.Set(metaIdentity, b, nil)
		if boot {
			_ = batch.Set(metaBooting, []byte{1}, nil)
		}
		if err := v.commitDurable(batch); err != nil {
			return fmt.Errorf("record identity: %w", err)
		}
	} else {
		var have identity
		if err := json.Unmarshal(raw, &have); err != nil {
			return fmt.Errorf("%w: identity record %q: %v", ErrConfigMismatch, raw, err)
		}
		if have != want {
			return fmt.Errorf("%w: directory holds %s %v layout %d, config asks for %s %v layout %d",
				ErrConfigMismatch, have.Space, HashRange{Start: have.Start, End: have.End}, have.Layout,
				want.Space, v.cfg.Range, want.Layout)
		}
	}
	if raw, err := v.get(metaApplied); err != nil {
		return err
	} else if len(raw) == 8 {
		v.applied = binary.BigEndian.Uint64(raw)
	}
	if raw, err := v.get(metaLogVersion); err != nil {
		return err
	} else if len(raw) == 4 {
		v.logVersion = binary.BigEndian.Uint32(raw)
	}
	if raw, err := v.get(metaRejected); err != nil {
		return err
	} else if raw != nil {
		if v.rejected, err = unmarshalRejected(raw); err != nil {
			return err
		}
	}
	if raw, err := v.get(metaCheckpoint); err != nil {
		return err
	} else if len(raw) == 8 {
		v.checkpointIndex = binary.BigEndian.Uint64(raw)
	}
	if raw, err := v.get(metaBooting); err != nil {
		return err
	} else if raw != nil {
		if v.cfg.Store == nil {
			return fmt.Errorf("%w: the directory holds an unfinished boot from the bucket; configure the store to finish it, or remove the directory",
				ErrConfigMismatch)
		}
		v.needBoot = true
	}
	return nil
}

// get reads a key, returning nil if it does not exist.
func (v *View) get(key []byte) ([]byte, error) {
	val, closer, err := v.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), val...), nil
}

// Space is the view's space.
func (v *View) Space() Space { return v.cfg.Space }

// Range is the view's hash range.
func (v *View) Range() HashRange { return v.cfg.Range }

// Status describes the view now.
func (v *View) Status() Status {
	diskErr := v.disk.Check()
	v.mu.Lock()
	defer v.mu.Unlock()
	stopErr := v.stopErr
	if stopErr == nil && diskErr != nil {
		stopErr = fmt.Errorf("applying stalled at index %d: %w", v.applied, diskErr)
	}
	return Status{
		Space:               v.cfg.Space,
		Range:               v.cfg.Range,
		LastApplied:         v.applied,
		State:               v.state,
		MaxSupportedVersion: v.cfg.MaxSupportedVersion,
		LogVersion:          v.logVersion,
		Err:                 stopErr,
		CheckpointIndex:     v.checkpointIndex,
		BootBytesDone:       v.bootDone,
		BootBytesTotal:      v.bootTotal,
		CheckpointErr:       v.checkpointErr,
		Rejected:            v.rejected,
	}
}

// LastApplied is the last log index the view has applied.
func (v *View) LastApplied() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.applied
}

// broadcastLocked wakes everyone waiting for the view to change.
func (v *View) broadcastLocked() {
	close(v.advanced)
	v.advanced = make(chan struct{})
}

// WaitApplied waits until the view has applied index, ctx is done, or the
// view stops or closes before reaching it.
func (v *View) WaitApplied(ctx context.Context, index uint64) error {
	for {
		v.mu.Lock()
		applied, stopErr, closed, ch := v.applied, v.stopErr, v.closed, v.advanced
		v.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case index <= applied:
			return nil
		case stopErr != nil:
			return fmt.Errorf("index %d will not be applied (applied through %d): %w", index, applied, stopErr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("index %d not applied in time (applied through %d): %w", index, applied, ctx.Err())
		}
	}
}

// waitReadable is WaitApplied for a client's read, bounded: an index more
// than Config.MaxAhead past the log's committed end fails at once with
// ErrBeyondLog, and at most Config.MaxWaiters reads wait at a time. The
// log's end is asked for only when index is that far past the view's own
// applied index, so ordinary reads cost nothing more.
func (v *View) waitReadable(ctx context.Context, index uint64) error {
	v.mu.Lock()
	applied, tail := v.applied, v.tail
	if index <= applied {
		v.mu.Unlock()
		return nil
	}
	if v.waiters >= v.cfg.MaxWaiters {
		v.mu.Unlock()
		return fmt.Errorf("%w: %d reads wait already", ErrTooManyWaiters, v.cfg.MaxWaiters)
	}
	v.waiters++
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.waiters--
		v.mu.Unlock()
	}()
	if index-applied > v.cfg.MaxAhead && tail != nil {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		last, err := tail.LastIndex(tctx)
		cancel()
		if err == nil && index-last > v.cfg.MaxAhead && index > last {
			return fmt.Errorf("%w: index %d, the log ends at %d (a read may ask at most %d past it)", ErrBeyondLog, index, last, v.cfg.MaxAhead)
		}
	}
	return v.WaitApplied(ctx, index)
}

// acquire registers a reader of the database; release with v.readers.Done.
func (v *View) acquire() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
	}
	v.readers.Add(1)
	return nil
}

// stopError returns why the view stopped applying, or nil.
func (v *View) stopError() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stopErr
}

// Close stops Run, waits for readers and closes the database.
func (v *View) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.broadcastLocked()
	cancel, done := v.cancelRun, v.runDone
	v.mu.Unlock()
	v.closeCancel() // stops checkpoints in progress
	if cancel != nil {
		cancel()
		<-done
	}
	v.readers.Wait()
	// Without a WAL, what is not flushed would be applied again on the
	// next open; a clean close saves that work. While flushes fail (a full
	// disk) Flush would wait for space: skip it, the log has it all.
	var ferr error
	if v.disk.Check() == nil {
		ferr = v.db.Flush()
	}
	if err := v.db.Close(); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("flush on close: %w", ferr)
	}
	return nil
}

// commitDurable commits b and makes it durable. Views keep no WAL (see
// pebbleOptions), so durable means flushed to an sstable.
func (v *View) commitDurable(b *pebble.Batch) error {
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	return v.db.Flush()
}

// closeQuietly closes c, ignoring its error; for read-only resources.
func closeQuietly(c io.Closer) { _ = c.Close() }
