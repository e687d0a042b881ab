package viewsvc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
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
	v.state = viewpb.State_CATCHING_UP
	from, version := v.applied+1, v.logVersion
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

	items := make(chan []item, 16)
	prog := &progress{}
	go v.watchCaughtUp(ctx, log, prog)
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
	backoff := v.cfg.RetryMin
	for ctx.Err() == nil {
		err := log.Stream(ctx, next, func(entries []LogEntry) error {
			batch := make([]item, 0, len(entries))
			var stop error
			for _, e := range entries {
				if e.Index != next {
					stop = fmt.Errorf("%w: got index %d, want %d", ErrLogGap, e.Index, next)
					break
				}
				it := dec.decode(e)
				batch = append(batch, it)
				next++
				if it.kind == itemError {
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
				backoff = v.cfg.RetryMin
			}
			return stop
		})
		if errors.Is(err, errStreamDone) || ctx.Err() != nil {
			// Wait for the applier to finish or for ctx.
			<-ctx.Done()
			return
		}
		v.log.Warn("log stream failed; retrying", "from", next, "err", err, "backoff", backoff)
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, v.cfg.RetryMax)
	}
}

// applyLoop applies decoded items, many entries per Pebble commit, until
// items closes or an item says stop. It returns the error the view stops
// with, or nil.
func (v *View) applyLoop(ctx context.Context, items <-chan []item) error {
	a := &applier{v: v, heads: map[string]headState{}, ids: map[uint64]string{}, pending: map[uint64][]byte{}}
	defer a.reset()
	for {
		var batch []item
		var ok bool
		select {
		case batch, ok = <-items:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
		}
		var stopErr error
		for {
			if err := a.applyItems(batch); err != nil {
				if !a.clean {
					// The failing entry may have written part of itself:
					// drop the whole batch, which the log still holds.
					return err
				}
				stopErr = err
				break
			}
			if a.full() {
				break
			}
			// Take whatever else is ready into the same commit.
			select {
			case batch, ok = <-items:
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if err := a.commit(); err != nil {
			return err
		}
		if stopErr != nil {
			return stopErr
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
		if tail != nil {
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

// applier builds one Pebble batch from many log entries. Reads go to the
// overlay maps first, for what the batch itself wrote, and then to the
// committed database.
type applier struct {
	v       *View
	b       *pebble.Batch
	it      *pebble.Iterator // over the committed database, for heads
	heads   map[string]headState
	ids     map[uint64]string // fact id -> body; "" when deleted in this batch
	pending map[uint64][]byte // tx index -> envelope; nil when decided in this batch
	key     []byte
	val     []byte
	last    uint64 // last entry in the batch
	version uint32 // new log version, 0 if unchanged
	ops     int
	clean   bool // the last failure left the batch consistent
}

func (a *applier) batch() *pebble.Batch {
	if a.b == nil {
		a.b = a.v.db.NewBatch()
	}
	return a.b
}

func (a *applier) full() bool {
	return a.ops >= a.v.cfg.MaxBatchOps || (a.b != nil && a.b.Len() >= a.v.cfg.MaxBatchBytes)
}

// applyItems applies items in order, stopping at an error item or a failure.
func (a *applier) applyItems(items []item) error {
	for i := range items {
		it := &items[i]
		if err := a.applyItem(it); err != nil {
			// An error item wrote nothing, so the batch before it can commit.
			a.clean = it.kind == itemError
			return fmt.Errorf("log index %d: %w", it.index, err)
		}
		a.last = it.index
	}
	return nil
}

func (a *applier) applyItem(it *item) error {
	switch it.kind {
	case itemNoop:
	case itemError:
		return it.err
	case itemVersion:
		a.version = it.version
	case itemTx:
		return a.applyOps(&it.ops, it.index)
	case itemPending:
		a.pending[it.index] = it.raw
		a.ops++
		return a.batch().Set(keys.PendingKey(a.key[:0], it.index), it.raw, nil)
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
	if err := a.batch().Delete(keys.PendingKey(a.key[:0], txIndex), nil); err != nil {
		return err
	}
	a.ops++
	if !commit {
		return nil
	}
	var env entrypb.Envelope
	if err := proto.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%w: pending transaction %d: %v", ErrMalformedEntry, txIndex, err)
	}
	dec := &decoder{space: a.v.cfg.Space, rng: a.v.cfg.Range}
	ops, err := dec.resolve(env.GetTransaction(), txIndex)
	if err != nil {
		return err
	}
	return a.applyOps(&ops, at)
}

// applyOps applies one transaction's deletes, then its inserts, at version.
func (a *applier) applyOps(ops *txOps, version uint64) error {
	for _, d := range ops.deletes {
		body := d.body
		if body == nil {
			b, err := a.bodyOfID(d.factID)
			if err != nil {
				return err
			}
			if b == nil {
				continue // not a live fact of this view
			}
			body = b
		}
		h, err := a.head(body)
		if err != nil {
			return err
		}
		if !h.live || (d.body == nil && h.id != d.factID) {
			continue
		}
		if err := a.write(body, version, keys.TombstoneValue); err != nil {
			return err
		}
		if err := a.batch().Delete(keys.FactIDKey(a.key[:0], h.id), nil); err != nil {
			return err
		}
		a.heads[string(body)] = headState{}
		a.ids[h.id] = ""
	}
	for _, ins := range ops.inserts {
		h, err := a.head(ins.body)
		if err != nil {
			return err
		}
		if h.live {
			continue // already live: keep the existing fact
		}
		a.val = keys.LiveValue(a.val[:0], ins.id)
		if err := a.write(ins.body, version, a.val); err != nil {
			return err
		}
		if err := a.batch().Set(keys.FactIDKey(a.key[:0], ins.id), ins.body, nil); err != nil {
			return err
		}
		s := string(ins.body)
		a.heads[s] = headState{live: true, id: ins.id}
		a.ids[ins.id] = s
	}
	return nil
}

// write sets one version of a fact in both fact tables.
func (a *applier) write(body []byte, version uint64, value []byte) error {
	space := a.v.cfg.Space
	b := a.batch()
	a.key = keys.AppendFactPrefix(a.key[:0], space, keys.BodyHash(space, body), body)
	a.key = keys.AppendVersion(a.key, version)
	if err := b.Set(a.key, value, nil); err != nil {
		return err
	}
	a.key = keys.AppendOrderedPrefix(a.key[:0], space, body)
	a.key = keys.AppendVersion(a.key, version)
	a.ops += 3
	return b.Set(a.key, value, nil)
}

// bodyOfID finds the body of the live fact with id, or nil if this view
// holds no live fact with that id.
func (a *applier) bodyOfID(id uint64) ([]byte, error) {
	if s, ok := a.ids[id]; ok {
		if s == "" {
			return nil, nil
		}
		return []byte(s), nil
	}
	return a.v.get(keys.FactIDKey(a.key[:0], id))
}

// head returns the newest version of the fact with body.
func (a *applier) head(body []byte) (headState, error) {
	if h, ok := a.heads[string(body)]; ok {
		return h, nil
	}
	if a.it == nil {
		it, err := a.v.db.NewIter(nil)
		if err != nil {
			return headState{}, err
		}
		a.it = it
	}
	space := a.v.cfg.Space
	a.key = keys.AppendFactPrefix(a.key[:0], space, keys.BodyHash(space, body), body)
	if !a.it.SeekPrefixGE(a.key) {
		return headState{}, a.it.Error()
	}
	val, err := a.it.ValueAndErr()
	if err != nil {
		return headState{}, err
	}
	live, id, err := keys.ParseValue(val)
	if err != nil {
		return headState{}, fmt.Errorf("fact %x: %w", a.it.Key(), err)
	}
	return headState{live: live, id: id}, nil
}

// commit writes the batch with the last applied index and publishes it.
func (a *applier) commit() error {
	if a.last == 0 {
		a.reset()
		return nil
	}
	b := a.batch()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], a.last)
	if err := b.Set(metaApplied, buf[:], nil); err != nil {
		return err
	}
	if a.version != 0 {
		var vb [4]byte
		binary.BigEndian.PutUint32(vb[:], a.version)
		if err := b.Set(metaLogVersion, vb[:], nil); err != nil {
			return err
		}
	}
	// No fsync: a batch is atomic in the WAL either way, so a crash loses at
	// most a suffix of batches, which Run applies again from the log.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit through index %d: %w", a.last, err)
	}
	v := a.v
	v.mu.Lock()
	v.applied = a.last
	if a.version != 0 {
		v.logVersion = a.version
	}
	v.broadcastLocked()
	v.mu.Unlock()
	a.reset()
	return nil
}

// reset drops the batch, the iterator and the overlays.
func (a *applier) reset() {
	if a.it != nil {
		_ = a.it.Close()
		a.it = nil
	}
	if a.b != nil {
		_ = a.b.Close()
		a.b = nil
	}
	clear(a.heads)
	clear(a.ids)
	clear(a.pending)
	a.last, a.version, a.ops = 0, 0, 0
}
