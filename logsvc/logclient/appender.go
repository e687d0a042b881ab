package logclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
)

// AppenderConfig tunes an Appender.
type AppenderConfig struct {
	// MaxBatchEntries and MaxBatchBytes bound one coalesced RPC.
	MaxBatchEntries int
	MaxBatchBytes   int
	// InFlight is how many batches may be in flight at once. One is the
	// default: while a batch is in flight the next one grows, and on a
	// disk-bound log fewer, larger Raft writes beat more, smaller ones
	// (16 callers on loopback: 5,672 entries/s with 1 in flight, 2,471 with
	// 2, 2,247 with 4). Raise it when round trips, not disks, dominate.
	InFlight int
	// Timeout bounds one append when the caller's context has no deadline.
	Timeout time.Duration
	// MaxQueueBytes bounds the bytes of the entries Append holds, queued or
	// in flight, so that a slow or unreachable log cannot make callers pile
	// up memory without limit (the queue also holds at most
	// 4*MaxBatchEntries entries). An Append that would exceed it waits, in
	// the order the callers came and until its context ends, for earlier
	// entries to be answered; an entry larger than MaxQueueBytes is refused
	// at once with logerr.ErrEntryTooLarge, since it could never fit. 0
	// means DefaultMaxQueueBytes. AppendBatch and AppendGuarded hold their
	// entries in the caller and are not counted.
	MaxQueueBytes int
}

// DefaultMaxQueueBytes is the default AppenderConfig.MaxQueueBytes: four
// batches of the default MaxBatchBytes, and eight of the API server's
// largest transaction.
const DefaultMaxQueueBytes = 64 << 20

// DefaultAppenderConfig returns the defaults.
func DefaultAppenderConfig() AppenderConfig {
	return AppenderConfig{MaxBatchEntries: 10000, MaxBatchBytes: 16 << 20, InFlight: 1, Timeout: 30 * time.Second,
		MaxQueueBytes: DefaultMaxQueueBytes}
}

// Appender appends entries to the log. It is safe for concurrent use.
type Appender struct {
	cfg   AppenderConfig
	addrs []string
	conns ConnPool
	queue chan *pending
	// room holds MaxQueueBytes: an Append takes its entry's bytes before
	// it queues and gives them back once the entry is answered. Its
	// waiters are served first come, first served. held counts the bytes
	// taken, for tests.
	room *semaphore.Weighted
	held atomic.Int64

	mu     sync.Mutex
	leader string // gRPC address of the last known leader

	closing chan struct{}
	closed  context.Context // done once Close begins; ends waits for room
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type pending struct {
	ctx   context.Context
	data  []byte
	index uint64
	err   error
	done  chan struct{}
}

// NewAppender returns an Appender for the replicas at addrs.
func NewAppender(addrs []string, cfg AppenderConfig) *Appender {
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	}
	a := &Appender{cfg: cfg, addrs: append([]string(nil), addrs...), queue: make(chan *pending, 4*cfg.MaxBatchEntries),
		room: semaphore.NewWeighted(int64(cfg.MaxQueueBytes)), closing: make(chan struct{})}
	a.closed, a.stop = context.WithCancel(context.Background())
	for i := 0; i < cfg.InFlight; i++ {
		a.wg.Add(1)
		go a.flusher()
	}
	return a
}

// Close stops the Appender. Queued appends, and appends waiting for room
// in the queue, fail with logerr.ErrUnavailable; a batch in flight is
// abandoned, its outcome unknown (logerr.ErrUnknownOutcome) if it had left.
func (a *Appender) Close() error {
	a.stop()
	close(a.closing)
	a.wg.Wait()
	for {
		select {
		case p := <-a.queue:
			a.answer([]*pending{p}, 0, errClosed())
		default:
			a.conns.Close()
			return nil
		}
	}
}

func errClosed() error { return logerr.New(logerr.ErrUnavailable, nil, "appender closed") }

// Append appends one encoded envelope and returns its index. Concurrent
// calls share RPCs. If ctx ends after the entry was sent, the entry may
// still be committed. Append waits while the entries it holds for other
// callers fill MaxQueueBytes.
func (a *Appender) Append(ctx context.Context, data []byte) (uint64, error) {
	if err := a.reserve(ctx, len(data)); err != nil {
		return 0, err
	}
	p := &pending{ctx: ctx, data: data, done: make(chan struct{})}
	select {
	case a.queue <- p:
	case <-ctx.Done():
		a.release(len(data))
		return 0, ctx.Err()
	case <-a.closing:
		a.release(len(data))
		return 0, errClosed()
	}
	select {
	case <-p.done:
		return p.index, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// AppendBatch appends entries in one RPC, at consecutive indexes, and
// returns the first index. It does not coalesce with other calls.
func (a *Appender) AppendBatch(ctx context.Context, entries [][]byte) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.Timeout)
		defer cancel()
	}
	return a.send(ctx, &logpb.AppendRequest{Entries: entries})
}

// AppendGuarded appends entries in one RPC if no append after index since
// claimed any of keys, and then claims them (compare-and-append). A refusal
// is logerr.ErrGuardConflict with the conflicting index in its metadata
// "conflict_index"; nothing was appended.
func (a *Appender) AppendGuarded(ctx context.Context, entries [][]byte, since uint64, keys [][]byte) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.Timeout)
		defer cancel()
	}
	return a.send(ctx, &logpb.AppendRequest{Entries: entries, GuardKeys: keys, GuardSince: since})
}

// reserve takes n bytes of room in the queue, waiting for them until ctx
// ends or the Appender closes.
func (a *Appender) reserve(ctx context.Context, n int) error {
	if n > a.cfg.MaxQueueBytes {
		return logerr.New(logerr.ErrEntryTooLarge, nil,
			"entry of %d bytes is larger than the appender's whole queue of %d bytes", n, a.cfg.MaxQueueBytes)
	}
	if !a.room.TryAcquire(int64(n)) {
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(a.closed, cancel)
		err := a.room.Acquire(wctx, int64(n))
		stop()
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return errClosed()
		}
	}
	a.held.Add(int64(n))
	return nil
}

// release gives back n bytes that reserve took.
func (a *Appender) release(n int) {
	a.held.Add(-int64(n))
	a.room.Release(int64(n))
}

func (a *Appender) flusher() {
	defer a.wg.Done()
	for {
		var first *pending
		select {
		case first = <-a.queue:
		case <-a.closing:
			return
		}
		batch := []*pending{first}
		size := len(first.data)
	drain:
		for len(batch) < a.cfg.MaxBatchEntries && size < a.cfg.MaxBatchBytes {
			select {
			case p := <-a.queue:
				batch = append(batch, p)
				size += len(p.data)
			default:
				break drain
			}
		}
		a.flush(batch)
	}
}

func (a *Appender) flush(batch []*pending) {
	// Drop callers that gave up while queued: nothing of theirs was sent.
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			a.answer([]*pending{p}, 0, err)
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	entries := make([][]byte, len(live))
	for i, p := range live {
		entries[i] = p.data
	}
	ctx, cancel := context.WithTimeout(a.closed, a.cfg.Timeout)
	first, err := a.send(ctx, &logpb.AppendRequest{Entries: entries})
	cancel()
	a.answer(live, first, err)
}

// answer completes ps, which were appended at consecutive indexes from
// first unless err, and gives their room in the queue back.
func (a *Appender) answer(ps []*pending, first uint64, err error) {
	n := 0
	for i, p := range ps {
		if err == nil {
			p.index = first + uint64(i)
		}
		p.err = err
		close(p.done)
		n += len(p.data)
	}
	a.release(n)
}

// send delivers one batch, following the leader and retrying only what
// surely did not happen.
func (a *Appender) send(ctx context.Context, req *logpb.AppendRequest) (uint64, error) {
	delay := backoff.New(20*time.Millisecond, time.Second)
	tried := 0
	var lastErr error
	for {
		addr := a.target(tried)
		tried++
		cc, ok := a.conns.Ready(ctx, addr, 500*time.Millisecond)
		if ok {
			resp, err := logpb.NewLogClient(cc).Append(ctx, req)
			if err == nil {
				// Go straight to the leader next time, not via a follower.
				a.setLeader(cmp.Or(resp.LeaderAddress, addr))
				return resp.FirstIndex, nil
			}
			err = logerr.FromStatus(err)
			var le *logerr.Error
			switch {
			case errors.As(err, &le) && errors.Is(err, logerr.ErrNotLeader):
				if l := le.Meta["leader_address"]; l != "" && l != addr {
					a.setLeader(l)
					lastErr = err
					continue // safe: nothing was appended
				}
			case errors.As(err, &le) && errors.Is(err, logerr.ErrUnavailable):
				// Safe: the replica did not take it.
			case errors.As(err, &le):
				return 0, err
			case status.Code(err) == codes.Canceled || status.Code(err) == codes.DeadlineExceeded:
				return 0, logerr.New(logerr.ErrUnknownOutcome, nil, "append to %s: %v", addr, err)
			default:
				return 0, logerr.New(logerr.ErrUnknownOutcome, nil, "append to %s: %v", addr, err)
			}
			lastErr = err
		} else {
			lastErr = fmt.Errorf("replica %s not reachable", addr)
		}
		a.setLeader("")
		if tried%len(a.addrs) == 0 {
			if err := delay.Wait(ctx); err != nil {
				return 0, fmt.Errorf("append: %w (last error: %v)", err, lastErr)
			}
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("append: %w (last error: %v)", ctx.Err(), lastErr)
		}
	}
}

// target picks the known leader, else walks the replicas in turn.
func (a *Appender) target(tried int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leader != "" {
		return a.leader
	}
	return a.addrs[tried%len(a.addrs)]
}

func (a *Appender) setLeader(addr string) {
	a.mu.Lock()
	a.leader = addr
	a.mu.Unlock()
}
