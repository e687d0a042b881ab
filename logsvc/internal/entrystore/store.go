package entrystore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/akutan/akutan/internal/pebblelog"
)

// ErrCorrupt means the store's files do not hold a valid state.
var ErrCorrupt = errors.New("entry store corrupt")

// Key layout. Entries sort by index; metadata lives under its own prefix.
//
// An entry's value is uvarint(Raft index that wrote it) followed by the
// entry. The metadata key is written only when a rarely changing field
// changes (First, ArchivedThrough, LogVersion, Members) or a command wrote
// no entry: Last and RaftApplied are recovered from the last entry. Keeping
// the metadata key out of most batches keeps flushed tables from
// overlapping, so Pebble moves them down the LSM instead of rewriting them.
//
// Guard claims (compare-and-append) live at 'g' + key → big-endian index of
// the last append that claimed the key, with 'G' + index + key alongside so
// that discarding a prefix can drop the claims below it in key order.
var (
	guardPrefix      = byte('g')
	guardIndexPrefix = byte('G')
	entryPrefix      = []byte("e")
	metaKey          = []byte("m/meta")
	// restoringKey marks a restore in progress; see Restore.
	restoringKey = []byte("m/restoring")
)

// options tunes Pebble for an append-only log: large memtables and a
// lazy L0, so that sequential, non-overlapping flushes pile up in L0 and move
// down rather than being rewritten again and again.
func options(disk *pebblelog.Health) *pebble.Options {
	o := &pebble.Options{
		Logger:                    pebblelog.Quiet{Name: "entries"},
		MemTableSize:              64 << 20,
		L0CompactionThreshold:     8,
		L0CompactionFileThreshold: 1000,
		LBaseMaxBytes:             1 << 30,
	}
	o.AddEventListener(disk.EventListener())
	return o
}

func entryKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = entryPrefix[0]
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// Meta is the replicated metadata committed with the entries.
type Meta struct {
	// RaftApplied is the index of the last Raft log entry applied.
	RaftApplied uint64 `json:"raft_applied"`
	// First is the first retained index; Last the last applied one. The
	// store is empty when First == Last+1.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// ArchivedThrough is the highest index durably archived.
	ArchivedThrough uint64 `json:"archived_through"`
	// LogVersion is the log format version in force.
	LogVersion uint32 `json:"log_version"`
	// Members maps replica IDs to their gRPC addresses.
	Members map[string]string `json:"members,omitempty"`
}

func emptyMeta() Meta { return Meta{First: 1, Last: 0, LogVersion: 1} }

func (m Meta) clone() Meta {
	c := m
	c.Members = make(map[string]string, len(m.Members))
	for k, v := range m.Members {
		c.Members[k] = v
	}
	return c
}

// Entry is one committed Akutan entry.
type Entry struct {
	Index uint64
	Data  []byte
}

// Store is a Pebble database of entries and metadata.
type Store struct {
	db   *pebble.DB
	disk *pebblelog.Health // whether Pebble's flushes fail

	mu      sync.RWMutex
	meta    Meta
	changed chan struct{}
	broken  error
}

// Err returns why the store is unusable after a failed restore, or nil.
func (s *Store) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.broken
}

func (s *Store) setBroken(err error) {
	s.mu.Lock()
	s.broken = err
	s.meta = emptyMeta()
	s.meta.Members = map[string]string{}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// DiskErr returns why the store should take no more writes, or nil:
// Pebble's flushes fail (a full disk), or the disk has less than
// pebblelog.DefaultReserve free. While flushes fail, a commit would block
// once the unflushed memtables pile up; on a disk that is full, Pebble
// panics when it cannot write or close its WAL. The writer stops before
// either (fsm.go).
func (s *Store) DiskErr() error { return s.disk.Check() }

// Open opens or creates the store in dir.
func Open(dir string) (*Store, error) { return open(dir, nil) }

// open opens the store on fs; nil means the operating system's. Tests
// inject write errors through it.
func open(dir string, fs vfs.FS) (*Store, error) {
	disk := &pebblelog.Health{Name: "entries", Dir: dir}
	opts := options(disk)
	if fs == nil {
		fs = vfs.Default
	}
	opts.FS, disk.FS = fs, fs
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open entry store %s: %w", dir, err)
	}
	s := &Store{db: db, disk: disk, changed: make(chan struct{})}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) load() error {
	meta := emptyMeta()
	_, closer, err := s.db.Get(restoringKey)
	switch {
	case err == nil:
		closer.Close()
		// An interrupted restore: nothing here can be trusted. Start empty
		// so that the replica restores again from its Raft snapshot.
		if err := s.wipe(); err != nil {
			return err
		}
		s.meta = meta
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read restore marker: %w", err)
	}
	v, closer, err := s.db.Get(metaKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read metadata: %w", err)
	default:
		err = json.Unmarshal(v, &meta)
		closer.Close()
		if err != nil {
			return fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
		}
	}
	// Entries appended since the metadata was written extend it.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{entryPrefix[0]}, UpperBound: []byte{entryPrefix[0] + 1}})
	if err != nil {
		return err
	}
	if it.Last() {
		idx := binary.BigEndian.Uint64(it.Key()[1:])
		v, verr := it.ValueAndErr()
		if verr != nil {
			it.Close()
			return fmt.Errorf("read last entry: %w", verr)
		}
		raftIndex, n := binary.Uvarint(v)
		if n <= 0 {
			it.Close()
			return fmt.Errorf("%w: entry %d has no header", ErrCorrupt, idx)
		}
		meta.Last = max(meta.Last, idx)
		meta.RaftApplied = max(meta.RaftApplied, raftIndex)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("find last entry: %w", err)
	}
	if meta.First == 0 || meta.First > meta.Last+1 {
		return fmt.Errorf("%w: metadata first %d last %d", ErrCorrupt, meta.First, meta.Last)
	}
	// Check both ends of the retained range exist: a store missing them was
	// damaged outside our control.
	if meta.Last >= meta.First {
		for _, i := range []uint64{meta.First, meta.Last} {
			_, closer, err := s.db.Get(entryKey(i))
			if err != nil {
				return fmt.Errorf("%w: entry %d of [%d, %d]: %v", ErrCorrupt, i, meta.First, meta.Last, err)
			}
			closer.Close()
		}
	}
	if meta.Members == nil {
		meta.Members = map[string]string{}
	}
	s.meta = meta
	return nil
}

func guardKey(key []byte) []byte { return append([]byte{guardPrefix}, key...) }

func guardIndexKey(index uint64, key []byte) []byte {
	k := make([]byte, 9, 9+len(key))
	k[0] = guardIndexPrefix
	binary.BigEndian.PutUint64(k[1:], index)
	return append(k, key...)
}

func (s *Store) wipe() error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, p := range []byte{entryPrefix[0], guardPrefix, guardIndexPrefix} {
		if err := b.DeleteRange([]byte{p}, []byte{p + 1}, nil); err != nil {
			return err
		}
	}
	if err := b.Delete(metaKey, nil); err != nil {
		return err
	}
	if err := b.Delete(restoringKey, nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Meta returns a copy of the committed metadata.
func (s *Store) Meta() Meta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta.clone()
}

// Bounds returns the first retained and last applied index.
func (s *Store) Bounds() (first, last uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta.First, s.meta.Last
}

// Changed returns a channel closed at the next commit.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// ErrBelowFirst is returned by Read for an index that is no longer retained.
var ErrBelowFirst = errors.New("index below first retained index")

// Read returns up to maxEntries entries (and about maxBytes) from index from
// on, stopping at the last applied index. It returns ErrBelowFirst when from
// is below the first retained index, also when a concurrent discard removes
// entries during the read.
func (s *Store) Read(from uint64, maxEntries, maxBytes int) ([]Entry, error) {
	first, last := s.Bounds()
	if from < first {
		return nil, ErrBelowFirst
	}
	if from > last {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(from), UpperBound: entryKey(last + 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Entry
	size := 0
	next := from
	for ok := it.First(); ok; ok = it.Next() {
		idx := binary.BigEndian.Uint64(it.Key()[1:])
		if idx != next {
			// A gap can only be a prefix discarded under us.
			return nil, ErrBelowFirst
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("read entry %d: %w", idx, err)
		}
		data, err := stripHeader(idx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Index: idx, Data: data})
		next++
		size += len(v)
		if len(out) >= maxEntries || size >= maxBytes {
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read entries from %d: %w", from, err)
	}
	if len(out) == 0 {
		return nil, ErrBelowFirst
	}
	return out, nil
}

// stripHeader returns a copy of the entry in a stored value.
func stripHeader(idx uint64, v []byte) ([]byte, error) {
	_, n := binary.Uvarint(v)
	if n <= 0 {
		return nil, fmt.Errorf("%w: entry %d has no header", ErrCorrupt, idx)
	}
	return append([]byte(nil), v[n:]...), nil
}

// Batch stages changes for one atomic commit.
type Batch struct {
	s        *Store
	b        *pebble.Batch
	meta     Meta
	old      Meta
	appended bool
	buf      []byte
	claims   map[string]uint64 // guard claims staged in this batch
}

// ClaimedAt returns the index of the last append that claimed key, or 0.
func (b *Batch) ClaimedAt(key []byte) (uint64, error) {
	if idx, ok := b.claims[string(key)]; ok {
		return idx, nil
	}
	v, closer, err := b.s.db.Get(guardKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read guard: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: guard value of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Claim records that the append at index claimed keys.
func (b *Batch) Claim(index uint64, keys [][]byte) error {
	if b.claims == nil {
		b.claims = map[string]uint64{}
	}
	for _, k := range keys {
		if err := b.b.Set(guardKey(k), binary.BigEndian.AppendUint64(nil, index), nil); err != nil {
			return err
		}
		if err := b.b.Set(guardIndexKey(index, k), nil, nil); err != nil {
			return err
		}
		b.claims[string(k)] = index
	}
	return nil
}

// pruneClaims drops the guard claims made below index, unless the key was
// claimed again since.
func (b *Batch) pruneClaims(index uint64) error {
	it, err := b.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{guardIndexPrefix}, UpperBound: guardIndexKey(index, nil)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		claimed, key := binary.BigEndian.Uint64(k[1:9]), append([]byte(nil), k[9:]...)
		latest, err := b.ClaimedAt(key)
		if err != nil {
			it.Close()
			return err
		}
		if latest == claimed {
			b.b.Delete(guardKey(key), nil)
			delete(b.claims, string(key))
		}
		b.b.Delete(append([]byte(nil), k...), nil)
	}
	for key, claimed := range b.claims {
		if claimed < index {
			b.b.Delete(guardKey([]byte(key)), nil)
			b.b.Delete(guardIndexKey(claimed, []byte(key)), nil)
			delete(b.claims, key)
		}
	}
	return it.Close()
}

// NewBatch starts a batch from the committed metadata. Only one batch may be
// open at a time (the store has one writer).
func (s *Store) NewBatch() *Batch {
	m := s.Meta()
	return &Batch{s: s, b: s.db.NewBatch(), meta: m, old: m.clone()}
}

// Meta returns the metadata as the batch would commit it.
func (b *Batch) Meta() *Meta { return &b.meta }

// Append adds entries, written by the command at raftIndex, after the last
// index and returns the first new index.
func (b *Batch) Append(raftIndex uint64, entries [][]byte) (uint64, error) {
	first := b.meta.Last + 1
	key := entryKey(0)
	for i, e := range entries {
		binary.BigEndian.PutUint64(key[1:], first+uint64(i))
		b.buf = binary.AppendUvarint(b.buf[:0], raftIndex)
		b.buf = append(b.buf, e...)
		if err := b.b.Set(key, b.buf, nil); err != nil {
			return 0, err
		}
	}
	b.meta.Last += uint64(len(entries))
	b.appended = b.appended || len(entries) > 0
	return first, nil
}

// DiscardBefore removes the entries below index.
func (b *Batch) DiscardBefore(index uint64) error {
	if index <= b.meta.First {
		return nil
	}
	if err := b.b.DeleteRange(entryKey(b.meta.First), entryKey(index), nil); err != nil {
		return err
	}
	if err := b.pruneClaims(index); err != nil {
		return fmt.Errorf("prune guard claims below %d: %w", index, err)
	}
	b.meta.First = index
	return nil
}

// coldChanged reports whether a rarely changing field differs from old.
func (m *Meta) coldChanged(old *Meta) bool {
	if m.First != old.First || m.ArchivedThrough != old.ArchivedThrough || m.LogVersion != old.LogVersion || len(m.Members) != len(old.Members) {
		return true
	}
	for k, v := range m.Members {
		if old.Members[k] != v {
			return true
		}
	}
	return false
}

// Commit writes the batch atomically and wakes readers. If it returns an
// error, nothing of the batch was written.
//
// Pebble panics when it cannot write its WAL (a full disk, for instance):
// its commit pipeline cannot go on. Commit turns that panic into an error
// naming the cause, so that the replica stops with it (fsm.go) instead of
// crashing; the store takes no more writes, and a restart recovers it (the
// batch was not acknowledged, and Raft replays from RaftApplied).
func (b *Batch) Commit() (err error) {
	defer func() {
		r := recover()
		if r == nil {
			b.b.Close()
			return
		}
		// The batch stays with Pebble's broken pipeline: not closed.
		if e, ok := r.(error); ok {
			err = fmt.Errorf("commit entries through %d: pebble stopped: %w", b.meta.Last, e)
		} else {
			err = fmt.Errorf("commit entries through %d: pebble stopped: %v", b.meta.Last, r)
		}
	}()
	if !b.appended || b.meta.coldChanged(&b.old) {
		mv, err := json.Marshal(b.meta)
		if err != nil {
			return err
		}
		if err := b.b.Set(metaKey, mv, nil); err != nil {
			return err
		}
	}
	// No fsync: Raft's log is the durable record of every applied command,
	// and the replica re-applies whatever a power loss takes from here
	// (contract 2 and the package doc of logsvc).
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit entries through %d: %w", b.meta.Last, err)
	}
	b.s.publish(b.meta)
	return nil
}

// Abort drops the batch.
func (b *Batch) Abort() { b.b.Close() }

func (s *Store) publish(m Meta) {
	s.mu.Lock()
	s.meta = m
	s.broken = nil
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// InitEmpty gives a new, empty store the metadata m, so that its log starts
// at m.First (m.Last must be m.First-1) rather than at 1: a log restored
// from the archive starts right after the archived index it was restored
// at. The write is synced. It refuses a store that has ever been written.
func (s *Store) InitEmpty(m Meta) error {
	cur := s.Meta()
	if cur.RaftApplied != 0 || cur.Last != 0 || cur.First != 1 {
		return fmt.Errorf("init entry store: it already holds a log (first %d, last %d, raft applied %d)", cur.First, cur.Last, cur.RaftApplied)
	}
	if m.First == 0 || m.Last+1 != m.First || m.LogVersion == 0 {
		return fmt.Errorf("init entry store: first %d last %d version %d: need an empty log at a positive version", m.First, m.Last, m.LogVersion)
	}
	if m.Members == nil {
		m.Members = map[string]string{}
	}
	mv, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := s.db.Set(metaKey, mv, pebble.Sync); err != nil {
		return fmt.Errorf("init entry store: %w", err)
	}
	s.publish(m)
	return nil
}
