package viewsvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// errStreamDone ends a Stream call from inside fn once decoding has stopped.
var errStreamDone = errors.New("stream done")

// Run applies the log from the last applied index + 1 until ctx is done,
// the view is closed, or applying fails; see the package doc for the rules.
// It returns nil when ctx is done or the view closes, and the error that
// stopped the view otherwise. The view keeps answering lookups at the
// indexes it applied either way. Run must not be called twice at once.
func (v *View) Run(ctx context.Context, log LogReader) error {
	v.mu.Lock()
	switch {
	case v.closed:
		v.mu.Unlock()
		return ErrClosed
	case v.running:
		v.mu.Unlock()
		return errors.New("view is already running")
	case v.stopErr != nil:
		err := v.stopErr
		v.mu.Unlock()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v.running, v.cancelRun, v.runDone = true, cancel, make(chan struct{})
	v.tail, _ = log.(LogTail)
	done := v.runDone
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.running, v.cancelRun = false, nil
		if v.state != viewpb.State_STOPPED {
			v.state = viewpb.State_BOOTING
		}
		v.mu.Unlock()
		close(done)
	}()
	if v.needBoot {
		if err := v.boot(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	v.mu.Lock()
	from, version := v.applied+1, v.logVersion
	if stop := v.cfg.StopAt; stop > 0 && v.applied > stop {
		v.mu.Unlock()
		return fmt.Errorf("the view has applied index %d, past the index %d it should stop at", from-1, stop)
	}
	v.state = viewpb.State_CATCHING_UP
	v.mu.Unlock()
	ckDone := make(chan struct{})
	go func() {
		defer close(ckDone)
		v.checkpointLoop(ctx)
	}()
	defer func() { cancel(); <-ckDone }()

	items := make(chan []item, 16)
	prog := &progress{}
	go v.watchCaughtUp(ctx, log, prog)
	go v.watchLog(ctx, log, prog)
	applyErr := make(chan error, 1)
	go func() {
		err := v.applyLoop(ctx, items)
		if err != nil {
			cancel() // stop the stream
		}
		applyErr <- err
	}()
	v.streamLoop(ctx, log, from, version, items, prog)
	close(items)
	err := <-applyErr
	if err != nil {
		v.mu.Lock()
		v.stopErr = fmt.Errorf("%w: %w", ErrStopped, err)
		v.state = viewpb.State_STOPPED
		v.broadcastLocked()
		err = v.stopErr
		v.mu.Unlock()
		v.log.Error("view stopped applying the log", "err", err)
	}
	return err
}

// streamLoop reads and decodes the log into items until ctx is done or
// decoding meets an entry the view must stop at. When the reader fails it
// backs off and resumes at the next undecoded index.
func (v *View) streamLoop(ctx context.Context, log LogReader, next uint64, version uint32, items chan<- []item, prog *progress) {
	dec := &decoder{space: v.cfg.Space, rng: v.cfg.Range, maxVersion: v.cfg.MaxSupportedVersion, version: version}
	delay := backoff.New(v.cfg.RetryMin, v.cfg.RetryMax)
	stopAt := v.cfg.StopAt
	if stopAt > 0 && next > stopAt {
		<-ctx.Done() // already there: apply nothing more
		return
	}
	for ctx.Err() == nil {
		err := log.Stream(ctx, next, func(entries []LogEntry) error {
			batch := make([]item, 0, len(entries))
			var stop error
			for _, e := range entries {
				if stopAt > 0 && next > stopAt {
					stop = errStreamDone
					break
				}
				if e.Index != next {
					stop = fmt.Errorf("%w: got index %d, want %d", ErrLogGap, e.Index, next)
					break
				}
				it := dec.decode(e)
				batch = append(batch, it)
				next++
				if it.kind == itemError || (stopAt > 0 && next > stopAt) {
					stop = errStreamDone
					break
				}
			}
			// Hand over what was decoded even when stopping: next has
			// moved past it.
			if len(batch) > 0 {
				prog.delivered(next - 1)
				select {
				case items <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
				delay.Reset()
			}
			return stop
		})
		if errors.Is(err, errStreamDone) || ctx.Err() != nil {
			// Wait for the applier to finish or for ctx.
			<-ctx.Done()
			return
		}
		v.log.Warn("log stream failed; retrying", "from", next, "err", err)
		if delay.Wait(ctx) != nil {
			return
		}
	}
}

// applyLoop applies decoded items, many entries per Pebble commit, until
// items closes or an item says stop. It commits when the batch is full or
// when nothing else is ready, never inside an entry. It returns the error the
// view stops with, or nil.
func (v *View) applyLoop(ctx context.Context, items <-chan []item) (err error) {
	defer func() {
		// A wait for the disk that ctx ended is an ordinary stop, like
		// the wait for items; the uncommitted batch is applied again.
		if errors.Is(err, errDiskWaitEnded) {
			err = nil
		}
	}()
	a, err := newApplier(ctx, v)
	if err != nil {
		return err
	}
	defer a.close()
	var queue []item
	for {
		if len(queue) == 0 {
			var ok bool
			select {
			case queue, ok = <-items:
			default:
				// Nothing is ready: publish what is applied, then wait.
				if err := a.commit(); err != nil {
					return err
				}
				select {
				case queue, ok = <-items:
				case <-ctx.Done():
					return nil
				}
			}
			if !ok {
				return a.commit()
			}
			continue
		}
		it := &queue[0]
		queue = queue[1:]
		if err := a.applyItem(it); err != nil {
			err = fmt.Errorf("log index %d: %w", it.index, err)
			if it.kind != itemError {
				// The entry may have written part of itself: drop the
				// whole batch, which the log still holds.
				return err
			}
			// An error item wrote nothing: keep what came before it.
			if cerr := a.commit(); cerr != nil {
				return cerr
			}
			return err
		}
		a.last = it.index
		if a.full() {
			if err := a.commit(); err != nil {
				return err
			}
		}
	}
}

// LogTail is an optional LogReader capability: the index of the log's last
// entry. A view whose reader has it reports SERVING once it has applied that
// far. Without it, a view reports SERVING once it has applied everything
// delivered and the log has delivered nothing for Config.CaughtUpIdle.
type LogTail interface {
	LastIndex(ctx context.Context) (uint64, error)
}

// progress is what the stream has delivered, for watchCaughtUp.
type progress struct {
	mu    sync.Mutex
	index uint64
	at    time.Time
}

func (p *progress) delivered(index uint64) {
	p.mu.Lock()
	p.index, p.at = index, time.Now()
	p.mu.Unlock()
}

func (p *progress) get() (uint64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index, p.at
}

// watchCaughtUp moves the view from CATCHING_UP to SERVING once it has
// reached the end of the log; a view stays SERVING while it runs.
func (v *View) watchCaughtUp(ctx context.Context, log LogReader, prog *progress) {
	tail, _ := log.(LogTail)
	start := time.Now()
	t := time.NewTicker(v.cfg.CaughtUpIdle / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		applied := v.LastApplied()
		caughtUp := false
		if stop := v.cfg.StopAt; stop > 0 {
			caughtUp = applied >= stop
		} else if tail != nil {
			tctx, cancel := context.WithTimeout(ctx, v.cfg.RetryMax)
			last, err := tail.LastIndex(tctx)
			cancel()
			caughtUp = err == nil && applied >= last
		} else {
			index, at := prog.get()
			if at.IsZero() {
				at = start
			}
			caughtUp = applied >= index && time.Since(at) >= v.cfg.CaughtUpIdle
		}
		if caughtUp && v.markServing() {
			return
		}
	}
}

// markServing reports SERVING if the view is catching up, and whether the
// view is now serving.
func (v *View) markServing() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state == viewpb.State_CATCHING_UP {
		v.state = viewpb.State_SERVING
		v.log.Info("view caught up with the log", "applied", v.applied)
	}
	return v.state == viewpb.State_SERVING
}

// headState is a fact's newest version: live with an id, or not live.
type headState struct {
	live bool
	id   uint64
}

// headCache answers "what is this fact's newest version?" for the applier
// without searching Pebble's memtables, which are slow to search (a skiplist
// of random keys, with no bloom filter). It holds the heads of every fact
// written since the last flush it started, in two generations, and reads
// everything older from an iterator that sees only flushed sstables, where
// prefix bloom filters answer most misses.
//
//  1. Every head the applier writes goes into cur.
//  2. When cur holds HeadCacheFacts heads (after a commit), the cache starts a
//     flush of everything committed so far, and cur becomes prev.
//  3. When that flush is done, prev is dropped and the durable iterator is
//     reopened, so it sees what prev held.
//  4. A lookup tries cur, then prev, then the durable iterator. By 1 to 3,
//     every write missing from cur and prev is in a flushed sstable that the
//     iterator sees.
//
// Before any of that, the fact filter (factfilter.go) may say that a fact
// was never written, which ends the lookup. It holds every body written since
// the cache opened, and once the loader has scanned what was in the view
// before, every body at all; until then its "no" is not trusted.
type headCache struct {
	db       *pebble.DB
	log      *slog.Logger
	limit    int
	cur      *headMap
	prev     *headMap
	spare    *headMap // an empty map, sized, for the next cur
	prevDone <-chan struct{}
	it       *pebble.Iterator // OnlyReadGuaranteedDurable

	filter     factFilter
	loaded     bool // filter covers every fact, not only new ones
	loadDone   chan filterLoad
	stopLoad   context.CancelFunc
	filterHits int // lookups the filter answered, for tests
}

// filterLoad is what the filter loader found.
type filterLoad struct {
	f     *factFilter
	facts int
	err   error
}

func newHeadCache(ctx context.Context, db *pebble.DB, space Space, limit int, log *slog.Logger) (*headCache, error) {
	// Make everything committed so far visible to durable-only iterators.
	done, err := db.AsyncFlush()
	if err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	if err := waitFlush(ctx, done); err != nil {
		return nil, err
	}
	c := &headCache{db: db, log: log, limit: limit, cur: newHeadMap(min(limit, 1<<16))}
	if err := c.reopen(); err != nil {
		return nil, err
	}
	// Scan what the view held before this point in the background; every
	// later write goes through put, so the two together are complete.
	snap := db.NewSnapshot()
	ctx, cancel := context.WithCancel(context.Background())
	c.loadDone, c.stopLoad = make(chan filterLoad, 1), cancel
	go func() {
		defer closeQuietly(snap)
		start := time.Now()
		f, n, err := loadFactFilter(ctx, snap, space)
		if err == nil {
			log.Debug("fact filter loaded", "facts", n, "bytes", f.bytes(), "took", time.Since(start))
		}
		c.loadDone <- filterLoad{f: f, facts: n, err: err}
	}()
	return c, nil
}

func (c *headCache) reopen() error {
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
	it, err := c.db.NewIter(&pebble.IterOptions{OnlyReadGuaranteedDurable: true, UseL6Filters: true})
	if err != nil {
		return err
	}
	c.it = it
	return nil
}

func (c *headCache) close() {
	if c.stopLoad != nil {
		c.stopLoad()
		if c.loadDone != nil {
			<-c.loadDone
		}
		c.stopLoad = nil
	}
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
}

// get returns the head of the fact with the given MVCC prefix in the
// hash-first table; body is the prefix's body, the cache key, and hash its
// factHash.
func (c *headCache) get(hash uint64, body, prefix []byte) (headState, error) {
	if h, ok := c.cur.get(hash, body); ok {
		return h, nil
	}
	if h, ok := c.prev.get(hash, body); ok {
		return h, nil
	}
	if c.loaded && !c.filter.mayContain(hash) {
		c.filterHits++
		return headState{}, nil
	}
	if !c.it.SeekPrefixGE(prefix) {
		return headState{}, c.it.Error()
	}
	val, err := c.it.ValueAndErr()
	if err != nil {
		return headState{}, err
	}
	live, id, err := keys.ParseValue(val)
	if err != nil {
		return headState{}, fmt.Errorf("fact %x: %w", c.it.Key(), err)
	}
	return headState{live: live, id: id}, nil
}

func (c *headCache) put(hash uint64, body []byte, h headState) {
	c.filter.add(hash)
	c.cur.put(hash, body, h)
}

// takeFilter adopts the loader's filter if it has finished.
func (c *headCache) takeFilter() {
	if c.loadDone == nil {
		return
	}
	select {
	case l := <-c.loadDone:
		c.loadDone = nil
		c.loaded = l.err == nil
		if l.err != nil {
			// Without it every lookup goes to Pebble: slower, still right.
			c.log.Warn("fact filter: loading failed; head lookups go to the store", "err", l.err)
			return
		}
		c.filter.merge(l.f)
	default:
	}
}

// committed moves the generations along after a commit (steps 2 and 3).
func (c *headCache) committed(ctx context.Context) error {
	c.takeFilter()
	if c.prev != nil {
		select {
		case <-c.prevDone:
			if err := c.dropPrev(); err != nil {
				return err
			}
		default:
		}
	}
	if c.cur.len() < c.limit {
		return nil
	}
	if c.prev != nil {
		// The last flush is still running: wait for it.
		if err := waitFlush(ctx, c.prevDone); err != nil {
			return err
		}
		if err := c.dropPrev(); err != nil {
			return err
		}
	}
	done, err := c.db.AsyncFlush()
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	next := c.spare
	if next == nil {
		next = newHeadMap(min(c.limit, 1<<16))
	}
	c.prev, c.prevDone, c.cur, c.spare = c.cur, done, next, nil
	return nil
}

func (c *headCache) dropPrev() error {
	c.prev.reset() // keeps its memory for reuse
	c.spare, c.prev, c.prevDone = c.prev, nil, nil
	return c.reopen()
}

// errDiskWaitEnded ends a wait for Pebble's flushes (a full disk holds them
// for as long as it stays full) when the apply loop's ctx is done.
var errDiskWaitEnded = errors.New("wait for the disk ended")

// waitFlush waits for a flush Pebble started, or for ctx.
func waitFlush(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errDiskWaitEnded
	}
}

// waitDisk waits while Pebble's flushes fail or the disk has less than
// pebblelog.DefaultReserve free (pebblelog.Health.Check), so that the
// applier adds no memtable that cannot be flushed: past
// MemTableStopWritesThreshold a commit would block, out of ctx's reach, and
// on a disk that is quite full Pebble's fatal MANIFEST write comes next.
// Pebble retries a failed flush with back-off, and free space is read again
// every second; once both are fine applying resumes where it stopped.
// Status reports the error meanwhile.
func (v *View) waitDisk(ctx context.Context) error {
	for {
		ch := v.disk.Changed()
		if v.disk.Check() == nil {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return errDiskWaitEnded
		}
	}
}

// applier builds one Pebble batch from many log entries. Heads come from the
// headCache; pending transactions and transaction records written by the
// batch itself come from overlay maps.
type applier struct {
	v       *View
	ctx     context.Context // the apply loop's; ends waits for the disk
	cache   *headCache
	w       writeSet
	b       *pebble.Batch     // reused for every commit
	pending map[uint64][]byte // tx index -> envelope; nil when decided in this batch
	records map[uint64][]byte // tx index -> its record, written in this batch
	record  []byte            // record of the transaction being applied
	key     []byte
	key2    []byte
	val     []byte
	last    uint64 // last entry in the batch
	version uint32 // new log version, 0 if unchanged
	// rejected is the view's record of invalid entries, including those of
	// this batch; it reaches the view when the batch commits.
	rejected      Rejected
	rejectedDirty bool
}

func newApplier(ctx context.Context, v *View) (*applier, error) {
	cache, err := newHeadCache(ctx, v.db, v.cfg.Space, v.cfg.HeadCacheFacts, v.log)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	rej := v.rejected
	v.mu.Unlock()
	return &applier{v: v, ctx: ctx, cache: cache, pending: map[uint64][]byte{}, records: map[uint64][]byte{}, rejected: rej}, nil
}

func (a *applier) close() {
	a.reset()
	a.cache.close()
	if a.b != nil {
		_ = a.b.Close()
	}
}

func (a *applier) full() bool {
	return a.w.len() >= a.v.cfg.MaxBatchOps || a.w.size() >= a.v.cfg.MaxBatchBytes
}

func (a *applier) applyItem(it *item) error {
	switch it.kind {
	case itemNoop:
	case itemError:
		return it.err
	case itemRejected:
		a.rejected = Rejected{Count: a.rejected.Count + 1, LastIndex: it.index, LastReason: it.err.Error()}
		a.rejectedDirty = true
		a.v.log.Warn("log entry rejected: applied as a no-op", "index", it.index, "reason", it.err)
	case itemVersion:
		a.version = it.version
	case itemTx:
		return a.applyOps(&it.ops, it.index, it.index)
	case itemPending:
		a.pending[it.index] = it.raw
		a.w.set(keys.PendingKey(a.key[:0], it.index), it.raw)
	case itemDecision:
		return a.decide(it.txIndex, it.commit, it.index)
	}
	return nil
}

// decide applies or drops a pending transaction. A decision for an index
// that holds no pending transaction (decided before, or never held) changes
// nothing: only the first decision counts.
func (a *applier) decide(txIndex uint64, commit bool, at uint64) error {
	raw, ok := a.pending[txIndex]
	if !ok {
		var err error
		raw, err = a.v.get(keys.PendingKey(nil, txIndex))
		if err != nil {
			return err
		}
	}
	if raw == nil {
		return nil
	}
	a.pending[txIndex] = nil
	a.w.delete(keys.PendingKey(a.key[:0], txIndex))
	if !commit {
		return nil
	}
	tx, err := pendingTx(raw)
	if err != nil {
		return fmt.Errorf("pending transaction %d: %w", txIndex, err)
	}
	dec := &decoder{space: a.v.cfg.Space, rng: a.v.cfg.Range}
	ops, err := dec.resolve(&tx, txIndex, false)
	if err != nil {
		return err
	}
	return a.applyOps(&ops, txIndex, at)
}

// applyOps applies one transaction's deletes, then its inserts, at version.
// txIndex is the index its ids come from, which names its record.
func (a *applier) applyOps(ops *txOps, txIndex, version uint64) error {
	space := a.v.cfg.Space
	for _, d := range ops.deletes {
		body := d.body
		if body == nil {
			b, err := a.bodyOfID(d.factID)
			if err != nil {
				return err
			}
			if b == nil {
				continue // not a fact of this view
			}
			body = b
		}
		a.key = keys.AppendFactPrefix(a.key[:0], space, keys.BodyHash(space, body), body)
		fh := factHash(body)
		h, err := a.cache.get(fh, body, a.key)
		if err != nil {
			return err
		}
		if !h.live || (d.body == nil && h.id != d.factID) {
			continue
		}
		a.write(body, version, keys.TombstoneValue)
		a.cache.put(fh, body, headState{})
	}
	a.record = a.record[:0]
	for _, ins := range ops.inserts {
		a.key = keys.AppendFactPrefix(a.key[:0], space, keys.BodyHash(space, ins.body), ins.body)
		fh := factHash(ins.body)
		var h headState
		if ins.fresh {
			// Only this transaction can have written it (see resolve).
			h, _ = a.cache.cur.get(fh, ins.body)
		} else {
			var err error
			if h, err = a.cache.get(fh, ins.body, a.key); err != nil {
				return err
			}
		}
		if h.live {
			continue // already live: keep the existing fact
		}
		a.val = keys.LiveValue(a.val[:0], ins.id)
		a.write(ins.body, version, a.val)
		a.cache.put(fh, ins.body, headState{live: true, id: ins.id})
		a.record = keys.AppendTxRecord(a.record, ins.id, ins.body)
	}
	if len(a.record) > 0 {
		rec := bytes.Clone(a.record)
		a.records[txIndex] = rec
		a.w.set(keys.TxRecordKey(a.key[:0], txIndex), rec)
	}
	return nil
}

// write sets one version of a fact in both fact tables; a.key holds its
// prefix in the hash-first table.
func (a *applier) write(body []byte, version uint64, value []byte) {
	a.key = keys.AppendVersion(a.key, version)
	a.w.set(a.key, value)
	a.key2 = keys.AppendOrderedPrefix(a.key2[:0], a.v.cfg.Space, body)
	a.key2 = keys.AppendVersion(a.key2, version)
	a.w.set(a.key2, value)
}

// bodyOfID finds the body of the fact with id among the facts this view
// created, from the record of the transaction that created it; nil if none.
func (a *applier) bodyOfID(id uint64) ([]byte, error) {
	txIndex := id >> positionBits
	rec, ok := a.records[txIndex]
	if !ok {
		var err error
		rec, err = a.v.get(keys.TxRecordKey(nil, txIndex))
		if err != nil {
			return nil, err
		}
	}
	body, err := keys.FindInTxRecord(rec, id)
	if err != nil {
		return nil, fmt.Errorf("record of index %d: %w", txIndex, err)
	}
	return body, nil
}

// commit writes the batch with the last applied index and publishes it.
func (a *applier) commit() error {
	if a.last == 0 {
		a.reset()
		return nil
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], a.last)
	a.w.set(metaApplied, buf[:])
	if a.version != 0 {
		var vb [4]byte
		binary.BigEndian.PutUint32(vb[:], a.version)
		a.w.set(metaLogVersion, vb[:])
	}
	if a.rejectedDirty {
		a.w.set(metaRejected, a.rejected.marshal())
	}
	if a.b == nil {
		a.b = a.v.db.NewBatch(pebble.WithMaxRetainedSizeBytes(2 * a.v.cfg.MaxBatchBytes))
	}
	b := a.b
	defer b.Reset() // keep its buffer for the next commit
	if err := a.v.waitDisk(a.ctx); err != nil {
		return err
	}
	if err := a.w.apply(b); err != nil {
		return err
	}
	// Not durable until the memtable flushes (views keep no WAL): a crash
	// loses at most a suffix of batches, which Run applies again.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit through index %d: %w", a.last, err)
	}
	v := a.v
	v.mu.Lock()
	v.applied = a.last
	if a.version != 0 {
		v.logVersion = a.version
	}
	v.rejected = a.rejected
	v.broadcastLocked()
	v.mu.Unlock()
	a.reset()
	return a.cache.committed(a.ctx)
}

// reset drops the batch and the overlays.
func (a *applier) reset() {
	a.w.reset()
	clear(a.pending)
	clear(a.records)
	a.last, a.version = 0, 0
	a.rejectedDirty = false
}
