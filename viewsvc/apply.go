package viewsvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/viewsvc/internal/keys"
)

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
