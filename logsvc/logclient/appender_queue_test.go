package logclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
)

// gatedLog is a log service that holds every Append until open is closed,
// like a log without a leader or with a slow disk, and then stores the
// entries at consecutive indexes.
type gatedLog struct {
	logpb.UnimplementedLogServer
	open    chan struct{}
	mu      sync.Mutex
	entries [][]byte
}

func (g *gatedLog) Append(ctx context.Context, req *logpb.AppendRequest) (*logpb.AppendResponse, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	first := uint64(len(g.entries) + 1)
	g.entries = append(g.entries, req.Entries...)
	return &logpb.AppendResponse{FirstIndex: first}, nil
}

// startGatedLog serves a gatedLog on loopback and returns it and its
// address.
func startGatedLog(t *testing.T) (*gatedLog, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedLog{open: make(chan struct{})}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	logpb.RegisterLogServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return g, lis.Addr().String()
}

// queueTestConfig holds ten 100 KiB entries in its queue.
func queueTestConfig() (AppenderConfig, int) {
	cfg := DefaultAppenderConfig()
	cfg.MaxBatchBytes, cfg.MaxQueueBytes = 256<<10, 1<<20
	return cfg, 100 << 10
}

func entry(caller, i, size int) []byte {
	b := bytes.Repeat([]byte{'.'}, size)
	copy(b, fmt.Sprintf("c%02d-%03d", caller, i))
	return b
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestAppendQueueBytesBounded: while the log holds every append, many
// callers of large entries fill the queue up to MaxQueueBytes and no
// further, and the rest wait; once the log answers, every caller proceeds,
// and every entry is in the log exactly once, at the index its Append
// returned, each caller's entries in the order it appended them.
func TestAppendQueueBytesBounded(t *testing.T) {
	log, addr := startGatedLog(t)
	cfg, size := queueTestConfig()
	a := NewAppender([]string{addr}, cfg)
	defer a.Close()

	const callers, each = 16, 5 // 16 entries at once would be 1.6 MiB
	var maxHeld int64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			maxHeld = max(maxHeld, a.held.Load())
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	indexes := make([][]uint64, callers)
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				index, err := a.Append(ctx, entry(c, i, size))
				if err != nil {
					errs <- fmt.Errorf("caller %d, entry %d: %w", c, i, err)
					return
				}
				indexes[c] = append(indexes[c], index)
			}
		}()
	}

	// The queue fills to what fits, ten entries, and stays there.
	full := int64(cfg.MaxQueueBytes / size * size)
	if !waitFor(10*time.Second, func() bool { return a.held.Load() == full }) {
		t.Fatalf("queue holds %d bytes, want %d", a.held.Load(), full)
	}
	time.Sleep(100 * time.Millisecond)
	if got := a.held.Load(); got != full {
		t.Errorf("queue holds %d bytes while the log answers nothing, want %d", got, full)
	}
	log.mu.Lock()
	stored := len(log.entries)
	log.mu.Unlock()
	if stored != 0 {
		t.Fatalf("the gated log stored %d entries", stored)
	}

	close(log.open)
	wg.Wait()
	close(stopSampling)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if maxHeld > int64(cfg.MaxQueueBytes) {
		t.Errorf("the queue held up to %d bytes, over its %d", maxHeld, cfg.MaxQueueBytes)
	}
	if got := a.held.Load(); got != 0 {
		t.Errorf("%d bytes still held after every append was answered", got)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.entries) != callers*each {
		t.Fatalf("log holds %d entries, want %d", len(log.entries), callers*each)
	}
	for c, got := range indexes {
		for i, index := range got {
			if i > 0 && index <= got[i-1] {
				t.Errorf("caller %d: entry %d at index %d, after entry %d at %d", c, i, index, i-1, got[i-1])
			}
			if index < 1 || index > uint64(len(log.entries)) || !bytes.Equal(log.entries[index-1], entry(c, i, size)) {
				t.Errorf("caller %d: entry %d is not at the index %d its Append returned", c, i, index)
			}
		}
	}
}

// TestAppendLargerThanQueue: an entry larger than the whole queue is
// refused at once, not after the caller's deadline.
func TestAppendLargerThanQueue(t *testing.T) {
	_, addr := startGatedLog(t)
	cfg, _ := queueTestConfig()
	a := NewAppender([]string{addr}, cfg)
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.Append(ctx, make([]byte, cfg.MaxQueueBytes+1))
	if !errors.Is(err, logerr.ErrEntryTooLarge) || time.Since(start) > time.Second {
		t.Errorf("append larger than the queue: %v after %v, want %v at once", err, time.Since(start), logerr.ErrEntryTooLarge)
	}
	if got := a.held.Load(); got != 0 {
		t.Errorf("a refused entry holds %d bytes", got)
	}
}

// TestAppendQueueWaitEnds: a caller waiting for room gives up when its
// context ends, taking nothing; Close fails both the queued callers and
// those waiting for room, and gives all the room back.
func TestAppendQueueWaitEnds(t *testing.T) {
	_, addr := startGatedLog(t)
	cfg, size := queueTestConfig()
	a := NewAppender([]string{addr}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := cfg.MaxQueueBytes / size
	errs := make(chan error, n+1)
	for i := range n + 1 { // the last one waits for room
		go func() {
			_, err := a.Append(ctx, entry(0, i, size))
			errs <- err
		}()
	}
	full := int64(n * size)
	if !waitFor(10*time.Second, func() bool { return a.held.Load() == full }) {
		t.Fatalf("queue holds %d bytes, want %d", a.held.Load(), full)
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := a.Append(short, entry(1, 0, size)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("append to a full queue past its deadline: %v, want %v", err, context.DeadlineExceeded)
	}
	if got := a.held.Load(); got != full {
		t.Errorf("after a wait that gave up the queue holds %d bytes, want %d", got, full)
	}

	// Close answers the queued and the waiting callers, and abandons the
	// batch in flight.
	done := make(chan struct{})
	go func() { _ = a.Close(); close(done) }()
	for range n + 1 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("an append succeeded against a log that answers nothing")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("appends still waiting after Close")
		}
	}
	<-done
	if got := a.held.Load(); got != 0 {
		t.Errorf("%d bytes still held after Close", got)
	}
}
