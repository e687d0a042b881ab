package pebblelog

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// IsDiskFull reports whether err says the disk has no space left
// (ENOSPC, or EDQUOT for a full quota), also when a library flattened it
// into text.
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "no space left on device") || strings.Contains(s, "disk quota exceeded")
}

// Health watches a Pebble database's flushes. Pebble retries a failed flush
// at once and forever (with the data still in memory), and a writer blocks
// without an error once the unflushed memtables reach
// MemTableStopWritesThreshold. Health turns that silence into an error its
// owner can report and wait on:
//
//  1. A flush that fails sets Err and wakes Changed; the first failure of
//     a run is logged (Pebble's own listener logs each one through Quiet).
//  2. Before the failed flush is retried, the flushing goroutine sleeps a
//     back-off that doubles from 10 ms to MaxBackoff, so a full disk does
//     not become a busy loop. (Pebble holds its mutex meanwhile; writes are
//     stalled anyway, and reads do not take it.)
//  3. The first flush that succeeds clears Err and wakes Changed.
//
// Compaction errors do not set Err: they stop no write until L0 fills. A
// compaction that failed on a full disk is retried after MaxBackoff.
type Health struct {
	// Name says which store, for log lines.
	Name string
	// Logger receives the lines; nil means slog.Default().
	Logger *slog.Logger
	// MaxBackoff caps the sleep before a failed flush is retried; 0 means
	// one second.
	MaxBackoff time.Duration
	// FS and Dir name the store's filesystem and directory for Check's
	// free-space test; with FS nil, Check tests flushes only.
	FS  vfs.FS
	Dir string
	// Reserve is the free space Check requires; 0 means DefaultReserve.
	Reserve uint64

	mu      sync.Mutex
	free    uint64    // free bytes at checked
	checked time.Time // when free was read
	err     error
	since   time.Time
	backoff time.Duration
	changed chan struct{}
}

// DefaultReserve is the free space a store keeps by default. Pebble treats
// some failed writes as fatal (its MANIFEST, closing a WAL): a writer that
// stops while this much is left stops before those, with a clear error.
const DefaultReserve = 16 << 20

// Check returns Err, or, when the filesystem has less than Reserve bytes
// free, an error wrapping syscall.ENOSPC that says so. Writers call it
// before each write; it reads the free space at most every 100 ms.
func (h *Health) Check() error {
	if err := h.Err(); err != nil {
		return err
	}
	if h.FS == nil {
		return nil
	}
	reserve := h.Reserve
	if reserve == 0 {
		reserve = DefaultReserve
	}
	h.mu.Lock()
	free, fresh := h.free, time.Since(h.checked) < 100*time.Millisecond
	h.mu.Unlock()
	if !fresh {
		u, err := h.FS.GetDiskUsage(h.Dir)
		if err != nil {
			return nil // unknown: let the write tell
		}
		free = u.AvailBytes
		h.mu.Lock()
		h.free, h.checked = free, time.Now()
		h.mu.Unlock()
	}
	if free < reserve {
		return fmt.Errorf("%s store: %w: %d bytes free in %s, below the reserve of %d", h.Name, syscall.ENOSPC, free, h.Dir, reserve)
	}
	return nil
}

// Err returns why the last flush failed, or nil once one has succeeded.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Changed returns a channel closed when Err next changes.
func (h *Health) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

func (h *Health) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Health) wakeLocked() {
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}

// EventListener returns the listener to add to pebble.Options (with
// AddEventListener, so that Pebble's own logging of background errors
// stays).
func (h *Health) EventListener() pebble.EventListener {
	return pebble.EventListener{
		FlushEnd: func(info pebble.FlushInfo) {
			// A flush with nothing to write reports "empty table": that is
			// not a failure.
			if info.Err == nil || strings.Contains(info.Err.Error(), "empty table") {
				h.flushed()
				return
			}
			h.flushFailed(info.Err)
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			// Pebble picks a failed compaction again at once; on a full
			// disk, wait a little first.
			if IsDiskFull(info.Err) {
				time.Sleep(h.maxBackoff())
			}
		},
	}
}

func (h *Health) flushFailed(err error) {
	werr := fmt.Errorf("%s store: flush failed: %w", h.Name, err)
	if IsDiskFull(err) {
		werr = fmt.Errorf("%s store: flush failed, no space left on device: %w", h.Name, err)
	}
	h.mu.Lock()
	first := h.err == nil
	if first {
		h.since = time.Now()
		h.backoff = 10 * time.Millisecond
	} else {
		h.backoff = min(2*h.backoff, h.maxBackoff())
	}
	h.err = werr
	h.wakeLocked()
	sleep := h.backoff
	h.mu.Unlock()
	if first {
		h.logger().Error("pebble: flush failed; writes stop until it succeeds", "store", h.Name, "err", err.Error(), "disk_full", IsDiskFull(err))
	}
	time.Sleep(sleep)
}

func (h *Health) maxBackoff() time.Duration {
	if h.MaxBackoff > 0 {
		return h.MaxBackoff
	}
	return time.Second
}

func (h *Health) flushed() {
	h.mu.Lock()
	was, since := h.err, h.since
	h.err, h.backoff = nil, 0
	if was != nil {
		h.wakeLocked()
	}
	h.mu.Unlock()
	if was != nil {
		h.logger().Warn("pebble: flushes succeed again", "store", h.Name, "failed_for", time.Since(since).Round(time.Millisecond))
	}
}
