package logsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// SegmentArchiver is the Archiver that writes the log to object storage as
// snapshot segments (format in package snapshot). It buffers the entries
// the leader hands it and cuts a segment when the buffer reaches
// SegmentBytes of entries or its oldest entry has waited SegmentAge. For
// each segment it uploads the object, then adds it to the log catalog with
// a conditional write, and only then reports it durable.
//
// Segments are uploaded create-only (If-None-Match): a key that holds
// another object stops the archiver with ErrArchiveConflict, never an
// overwrite. A log catalog lost from an initialised store
// (snapshot.ErrCatalogMissing) stops it too: it never starts a new one.
//
// It tolerates what a leader change brings: entries it has buffered or the
// catalog already holds are skipped (an earlier leader archived them but
// the watermark had not replicated), and a catalog that another archiver
// extended meanwhile is re-read rather than overwritten. Two archivers that
// write the same range write the same bytes under the same key.
type SegmentArchiver struct {
	store snapshot.Store
	cfg   SegmentConfig

	// checked is the archived segment verifyArchived read last.
	checked []snapshot.SegmentEntry

	mu      sync.Mutex
	marked  bool                    // the store's marker is known to be there
	loaded  bool                    // durable reflects the catalog
	durable uint64                  // the catalog's last index
	buf     []snapshot.SegmentEntry // durable+1, durable+2, …
	bytes   int                     // entry bytes in buf
	since   time.Time               // when buf[0] arrived
	now     func() time.Time

	cat       *snapshot.LogCatalog // the catalog as last read or written
	cuts      int                  // segments this archiver cut, for tests
	compacted int                  // merges this archiver wrote, for tests
}

var (
	_ Archiver  = (*SegmentArchiver)(nil)
	_ Flusher   = (*SegmentArchiver)(nil)
	_ Compactor = (*SegmentArchiver)(nil)
)

// Compactor is an Archiver that merges what it archived into fewer, larger
// objects. The archive loop calls Compact after each step that succeeded,
// once the watermark is replicated, so that compaction never delays it.
type Compactor interface {
	// Compact does at most one merge and reports whether it did one.
	Compact(ctx context.Context) (bool, error)
}

// Flusher is an Archiver that can write out everything it buffers at once.
// ArchiveNow uses it.
type Flusher interface {
	// Flush makes every entry handed over so far durable and returns the
	// highest durably archived index.
	Flush(ctx context.Context) (durableThrough uint64, err error)
}

// SegmentConfig sizes archive segments.
type SegmentConfig struct {
	// SegmentBytes cuts a segment once this many bytes of entries (before
	// compression) are buffered.
	SegmentBytes int
	// SegmentAge cuts a segment once its oldest entry has waited this long,
	// so that a quiet log is still archived promptly.
	SegmentAge time.Duration
	// Compaction merges the small segments this cuts into larger ones
	// (snapshot.PickCompaction); MaxRawBytes 0 means SegmentBytes. The
	// zero policy merges nothing.
	Compaction snapshot.CompactionPolicy
}

// DefaultSegmentConfig returns segments cut at 8 MiB or once their oldest
// entry has waited 250 ms, whichever comes first: with the archive loop's
// 100 ms tick and an upload, an acknowledged write reaches the bucket
// within about half a second (the bucket-only RPO; docs/benchmarks.md).
// Compaction keeps the many small segments this cuts bounded.
func DefaultSegmentConfig() SegmentConfig {
	return SegmentConfig{
		SegmentBytes: 8 << 20,
		SegmentAge:   250 * time.Millisecond,
		Compaction:   snapshot.CompactionPolicy{Fanout: 16, MaxLevel: 3},
	}
}

// Validate reports every problem at once.
func (c SegmentConfig) Validate() error {
	var errs []error
	if c.SegmentBytes <= 0 || c.SegmentBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("segment bytes %d must be in 1..1 GiB", c.SegmentBytes))
	}
	if c.SegmentAge <= 0 {
		errs = append(errs, fmt.Errorf("segment age %v must be positive", c.SegmentAge))
	}
	if p := c.Compaction; p.Fanout < 0 || p.MaxLevel < 0 || p.MaxRawBytes < 0 || p.MaxRawBytes > snapshot.MaxSegmentRawBytes {
		errs = append(errs, fmt.Errorf("compaction fanout %d, max level %d and max raw bytes %d must not be negative, nor the bytes above %d",
			p.Fanout, p.MaxLevel, p.MaxRawBytes, int64(snapshot.MaxSegmentRawBytes)))
	}
	return errors.Join(errs...)
}

// NewSegmentArchiver archives into store (which a caller may have wrapped
// with snapshot.Prefixed).
func NewSegmentArchiver(store snapshot.Store, cfg SegmentConfig) *SegmentArchiver {
	return &SegmentArchiver{store: store, cfg: cfg, now: time.Now}
}

// errArchiveGap: the entries handed over do not follow the archive.
var errArchiveGap = errors.New("entries do not follow the archive")

// ErrArchiveMismatch: the archive holds a different entry at an index than
// the log. The log and the archive are different histories; most likely a
// restored cluster was pointed at the old cluster's prefix instead of a new
// one. The archiver stops rather than count the log's entries as archived.
var ErrArchiveMismatch = errors.New("the archive holds a different history than this log")

// ErrArchiveConflict: a segment key the archiver is about to write holds
// another object already: another history (a second cluster archiving
// under the same prefix, say) owns it. The archiver never overwrites a
// segment, and stops rather than count its entries as archived. An
// identical object there (a retry whose first answer was lost) is no
// conflict.
var ErrArchiveConflict = errors.New("the archive's segment key holds another history's object")

// verifyArchived checks that the archive's entry at e.Index is e, reading
// the segment that holds it (and keeping it for the next entries). It runs
// only for entries an earlier leader archived, so rarely.
func (a *SegmentArchiver) verifyArchived(ctx context.Context, e Entry) error {
	if n := len(a.checked); n == 0 || e.Index < a.checked[0].Index || e.Index > a.checked[n-1].Index {
		cat, _, err := snapshot.LoadLogCatalog(ctx, a.store)
		if err != nil {
			return fmt.Errorf("load log catalog: %w", err)
		}
		ref, ok := cat.Find(e.Index)
		if !ok {
			return fmt.Errorf("archive entry %d: the catalog (%d..%d) does not hold it", e.Index, cat.FirstArchived(), cat.ArchivedThrough())
		}
		if a.checked, err = snapshot.ReadSegment(ctx, a.store, ref); err != nil {
			return err
		}
	}
	if got := a.checked[e.Index-a.checked[0].Index]; !bytes.Equal(got.Data, e.Data) {
		a.loaded = false
		return fmt.Errorf("entry %d: %w (a restored cluster must archive under a new prefix)", e.Index, ErrArchiveMismatch)
	}
	return nil
}

// Archive implements Archiver.
func (a *SegmentArchiver) Archive(ctx context.Context, entries []Entry) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(ctx); err != nil {
		return 0, err
	}
	for _, e := range entries {
		next := a.durable + uint64(len(a.buf)) + 1
		if e.Index <= a.durable {
			// Archived already, by an earlier leader: skip it, but only
			// once it is known to be this entry.
			if err := a.verifyArchived(ctx, e); err != nil {
				return 0, err
			}
			continue
		}
		if e.Index < next {
			continue // buffered already
		}
		if e.Index > next {
			if a.durable == 0 && len(a.buf) == 0 {
				// An empty archive may start anywhere: a log restored
				// into a fresh bucket starts past 1.
				a.durable = e.Index - 1
			} else {
				a.loaded = false // look at the catalog again next time
				return 0, fmt.Errorf("archive entry %d: %w, which ends at %d", e.Index, errArchiveGap, next-1)
			}
		}
		if len(a.buf) == 0 {
			a.since = a.now()
		}
		a.buf = append(a.buf, snapshot.SegmentEntry{Index: e.Index, Data: e.Data})
		a.bytes += len(e.Data)
	}
	for a.bytes >= a.cfg.SegmentBytes {
		if err := a.cut(ctx, false); err != nil {
			return a.reported(), err
		}
	}
	if len(a.buf) > 0 && a.now().Sub(a.since) >= a.cfg.SegmentAge {
		if err := a.cut(ctx, true); err != nil {
			return a.reported(), err
		}
	}
	return a.reported(), nil
}

// Flush implements Flusher.
func (a *SegmentArchiver) Flush(ctx context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(ctx); err != nil {
		return 0, err
	}
	for len(a.buf) > 0 {
		if err := a.cut(ctx, a.bytes < a.cfg.SegmentBytes); err != nil {
			return a.reported(), err
		}
	}
	return a.durable, nil
}

// reported is what Archive reports: the catalog's end as last known; 0
// when it is not known, which the leader treats as no progress.
func (a *SegmentArchiver) reported() uint64 {
	if !a.loaded {
		return 0
	}
	return a.durable
}

// load reads the catalog's end unless already known, dropping buffered
// entries the catalog holds. A store never initialised is initialised
// (snapshot.InitBucket: both catalogs, then the marker); a catalog that
// was lost (snapshot.ErrCatalogMissing) stops archiving until an operator
// restores it: a new catalog would orphan every archived segment.
func (a *SegmentArchiver) load(ctx context.Context) error {
	if a.loaded {
		return nil
	}
	cat, etag, err := snapshot.LoadLogCatalog(ctx, a.store)
	if err == nil && (etag == "" || !a.marked) {
		// A store never initialised, or one written before markers
		// existed (a catalog but no marker): initialise it, so that a
		// catalog lost from now on is told from one never created.
		if _, err = snapshot.InitBucket(ctx, a.store, "log archiver"); err == nil {
			a.marked = true
			cat, _, err = snapshot.LoadLogCatalog(ctx, a.store)
		}
	}
	if errors.Is(err, snapshot.ErrCatalogMissing) {
		return fmt.Errorf("archiving stopped: %w", err)
	}
	if err != nil {
		return fmt.Errorf("load log catalog: %w", err)
	}
	a.setDurable(cat.ArchivedThrough())
	a.loaded, a.cat = true, cat
	return nil
}

// setDurable records the catalog's end and trims the buffer to follow it.
// A buffer that no longer follows it (the catalog went back, which only an
// operator does) is dropped; the leader hands the entries over again from
// its watermark.
func (a *SegmentArchiver) setDurable(end uint64) {
	if len(a.buf) > 0 && end+1 < a.buf[0].Index {
		a.buf, a.bytes = nil, 0
	}
	for len(a.buf) > 0 && a.buf[0].Index <= end {
		a.bytes -= len(a.buf[0].Data)
		a.buf = a.buf[1:]
	}
	if len(a.buf) == 0 {
		a.buf, a.bytes = nil, 0
	}
	a.durable = end
}

// cut writes the oldest SegmentBytes of the buffer (all of it when all is
// set) as one segment and adds it to the catalog.
func (a *SegmentArchiver) cut(ctx context.Context, all bool) error {
	n, size := 0, 0
	for n < len(a.buf) && (all || size < a.cfg.SegmentBytes) {
		size += len(a.buf[n].Data)
		n++
	}
	seg := a.buf[:n]
	first, last := seg[0].Index, seg[n-1].Index
	obj, err := snapshot.EncodeSegment(seg)
	if err != nil {
		return err
	}
	key := snapshot.SegmentKey(first, last)
	if err := a.upload(ctx, key, obj); err != nil {
		a.loaded = false
		return fmt.Errorf("upload segment %d..%d: %w", first, last, err)
	}
	ref := snapshot.SegmentRef{First: first, Last: last, Key: key, Size: int64(len(obj)), CRC32C: snapshot.CRC32C(obj), RawBytes: int64(size)}
	var raced bool
	cat, err := snapshot.UpdateLogCatalog(ctx, a.store, func(c *snapshot.LogCatalog) error {
		raced = false
		end := c.ArchivedThrough()
		switch {
		case len(c.Segments) == 0 || end+1 == first:
			return c.Add(ref)
		case end >= last:
			return snapshot.ErrNoChange // another archiver got there first
		default:
			raced = true // the catalog ends inside or before the segment
			return snapshot.ErrNoChange
		}
	})
	if err != nil {
		a.loaded = false
		return fmt.Errorf("add segment %d..%d to the log catalog: %w", first, last, err)
	}
	a.cat = cat
	end := cat.ArchivedThrough()
	if raced && end+1 < first {
		a.loaded = false
		return fmt.Errorf("segment %d..%d: %w, which ends at %d", first, last, errArchiveGap, end)
	}
	if got, ok := cat.Find(first); !ok || got != ref {
		// Another archiver's segments hold (some of) these entries: count
		// them archived only once they are known to be these entries.
		for _, e := range seg {
			if e.Index > end {
				break
			}
			if err := a.verifyArchived(ctx, Entry{Index: e.Index, Data: e.Data}); err != nil {
				a.loaded = false
				return err
			}
		}
	}
	a.cuts++
	// Either our segment is in, or another archiver's reach the same or
	// a point inside ours: follow the catalog and cut again from there.
	a.setDurable(end)
	return nil
}

// upload writes a segment only if its key is free (If-None-Match), so it
// never overwrites one: segments are immutable, and two archivers of the
// same history write the same bytes under the same key. A key that holds
// exactly obj already (an earlier try, or another archiver of this
// history) is fine; one that holds anything else is ErrArchiveConflict.
func (a *SegmentArchiver) upload(ctx context.Context, key string, obj []byte) error {
	_, err := a.store.PutIf(ctx, key, obj, snapshot.Condition{IfAbsent: true})
	if !errors.Is(err, snapshot.ErrPrecondition) {
		return err
	}
	have, _, err := snapshot.ReadAll(ctx, a.store, key)
	if err != nil {
		return fmt.Errorf("read the object already at %s: %w", key, err)
	}
	if !bytes.Equal(have, obj) {
		return fmt.Errorf("%s holds %d bytes with CRC-32C %08x, this log's segment has %d bytes with %08x: %w (a restored cluster must archive under a new prefix)",
			key, len(have), snapshot.CRC32C(have), len(obj), snapshot.CRC32C(obj), ErrArchiveConflict)
	}
	return nil
}

// Compact implements Compactor: it merges the oldest run of segments that
// the compaction policy picks from the catalog (snapshot.PickCompaction)
// into one segment, uploaded create-only like every segment, then swaps it
// for the run in the catalog with one conditional write. Garbage collection
// deletes the run's objects once the merged one is older than the grace
// period (snapshot.CollectGarbage). A catalog that changed meanwhile (another
// archiver compacted or extended it) is re-read by the update; one that no
// longer lists the run leaves it to whoever changed it.
func (a *SegmentArchiver) Compact(ctx context.Context) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.cfg.Compaction
	if p.MaxRawBytes == 0 {
		p.MaxRawBytes = int64(a.cfg.SegmentBytes)
	}
	if !p.Enabled() {
		return false, nil
	}
	if a.cat == nil {
		cat, _, err := snapshot.LoadLogCatalog(ctx, a.store)
		if err != nil {
			return false, fmt.Errorf("compact: load log catalog: %w", err)
		}
		a.cat = cat
	}
	run, level := snapshot.PickCompaction(a.cat, p)
	if run == nil {
		return false, nil
	}
	first, last := run[0].First, run[len(run)-1].Last
	fail := func(what string, err error) (bool, error) {
		a.cat = nil // read the catalog again next time
		return false, fmt.Errorf("compact segments %d..%d (%d of level %d): %s: %w", first, last, len(run), level-1, what, err)
	}
	obj, ref, err := snapshot.MergeSegments(ctx, a.store, run, level)
	if err != nil {
		return fail("read", err)
	}
	if err := a.upload(ctx, ref.Key, obj); err != nil {
		return fail("upload", err)
	}
	cat, err := snapshot.UpdateLogCatalog(ctx, a.store, func(c *snapshot.LogCatalog) error {
		return c.ReplaceSegments(run, ref)
	})
	if err != nil {
		return fail("update the log catalog", err)
	}
	a.cat = cat
	if got, ok := cat.Find(first); !ok || got != ref {
		return false, nil // another archiver changed the run first
	}
	a.compacted++
	return true, nil
}
