package logclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
)

// Entry is one committed log entry.
type Entry struct {
	Index uint64
	Data  []byte
}

// Reader reads the log from any replica, and from the archive below the
// log's first retained index when it has one (UseArchive).
type Reader struct {
	addrs   []string
	conns   ConnPool
	archive *archive
	// preferFirst: read from addrs[0] whenever it answers, and from another
	// replica for at most returnAfter before trying it again.
	preferFirst bool
	returnAfter time.Duration
	current     atomic.Pointer[string] // the replica streaming now
}

// PreferFirst makes Stream read from the first replica of its list
// whenever it can, and fail over to the others only while it cannot: a
// view tails its own datacenter's replica, so the log's traffic to a
// datacenter crosses the WAN once per replica rather than once per view.
// After a failover Stream tries the first replica again every returnAfter
// (0: 10 s). It returns r.
func (r *Reader) PreferFirst(returnAfter time.Duration) *Reader {
	if returnAfter <= 0 {
		returnAfter = 10 * time.Second
	}
	r.preferFirst, r.returnAfter = true, returnAfter
	return r
}

// Current returns the address of the replica Stream reads from now, or ""
// between replicas.
func (r *Reader) Current() string {
	if p := r.current.Load(); p != nil {
		return *p
	}
	return ""
}

// NewReader returns a Reader over the replicas at addrs.
func NewReader(addrs []string) *Reader {
	return &Reader{addrs: append([]string(nil), addrs...)}
}

// UseArchive makes Stream read entries the log has discarded from the
// archive in store (the log catalog and its segments), and returns r.
func (r *Reader) UseArchive(store snapshot.Store) *Reader {
	r.archive = &archive{store: store}
	return r
}

// Close releases the connections.
func (r *Reader) Close() error {
	r.conns.Close()
	return nil
}

// Stream calls fn with committed entries in index order from from on, and
// keeps following the log until ctx ends or fn fails. When a replica fails
// it moves to another and resumes at the next index: fn sees every index
// once, with no gap. When from is below the log's first retained index it
// reads the archive, if the Reader has one, up to that index, and then
// follows the log again; a corrupt segment stops it with an error wrapping
// snapshot.ErrCorrupt, never with wrong entries. Without an archive it
// returns logerr.ErrTruncated (wrapped) when from is below every replica's
// first retained index.
func (r *Reader) Stream(ctx context.Context, from uint64, fn func([]Entry) error) error {
	if from == 0 {
		return logerr.New(logerr.ErrInvalidArgument, nil, "read from index 0: indexes start at 1")
	}
	next := from
	start := rand.N(len(r.addrs))
	if r.preferFirst {
		start = 0
	}
	delay := backoff.New(20*time.Millisecond, time.Second)
	var truncated error
	for attempt := 0; ; attempt++ {
		i := (start + attempt) % len(r.addrs)
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if r.preferFirst && i != 0 {
			sctx, cancel = context.WithTimeout(ctx, r.returnAfter)
		}
		progressed, err := r.streamFrom(sctx, r.addrs[i], &next, fn)
		timedOut := sctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.preferFirst && i != 0 && timedOut {
			// Time to try the first replica again; if it still fails, the
			// loop moves on to this one at once.
			start, attempt = 0, -1
			delay.Reset()
			continue
		}
		var fe fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		if progressed {
			delay.Reset()
			truncated = nil
		}
		if errors.Is(err, logerr.ErrTruncated) && r.archive != nil {
			var le *logerr.Error
			logFirst := next + 1
			if errors.As(err, &le) && le.Uint("first_index") > next {
				logFirst = le.Uint("first_index")
			}
			if err := r.archive.stream(ctx, &next, logFirst, fn); err != nil {
				var fe fnError
				if errors.As(err, &fe) {
					return fe.err
				}
				return fmt.Errorf("read from %d: %w", next, err)
			}
			delay.Reset()
			truncated = nil
			continue
		}
		if errors.Is(err, logerr.ErrTruncated) {
			if truncated == nil {
				truncated = err
			}
			// Every replica has discarded it: the archive must serve it.
			if attempt >= len(r.addrs)-1 && !progressed {
				return fmt.Errorf("read from %d: %w", next, truncated)
			}
		}
		if errors.Is(err, logerr.ErrInvalidArgument) {
			return err
		}
		if (attempt+1)%len(r.addrs) == 0 {
			if err := delay.Wait(ctx); err != nil {
				return err
			}
		}
	}
}

type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// streamFrom reads from one replica until it fails.
func (r *Reader) streamFrom(ctx context.Context, addr string, next *uint64, fn func([]Entry) error) (bool, error) {
	cc, err := r.conns.Get(addr)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := logpb.NewLogClient(cc).Read(ctx, &logpb.ReadRequest{From: *next})
	if err != nil {
		return false, logerr.FromStatus(err)
	}
	r.current.Store(&addr)
	defer r.current.Store(nil)
	progressed := false
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return progressed, fmt.Errorf("replica %s ended the stream", addr)
		}
		if err != nil {
			return progressed, logerr.FromStatus(err)
		}
		batch := make([]Entry, 0, len(resp.Entries))
		for _, e := range resp.Entries {
			switch {
			case e.Index < *next:
				continue // already delivered
			case e.Index > *next:
				return progressed, fmt.Errorf("replica %s skipped from %d to %d", addr, *next, e.Index)
			}
			batch = append(batch, Entry{Index: e.Index, Data: e.Data})
			*next++
		}
		if len(batch) == 0 {
			continue
		}
		progressed = true
		if err := fn(batch); err != nil {
			return progressed, fnError{err}
		}
	}
}

// LastIndex returns the log's committed end as the leader confirms it
// (a linearizable Info).
func (r *Reader) LastIndex(ctx context.Context) (uint64, error) {
	info, err := Info(ctx, &r.conns, r.addrs, &logpb.InfoRequest{Linearizable: true, LocalOnly: true})
	if err != nil {
		return 0, fmt.Errorf("log last index: %w", err)
	}
	return info.LastIndex, nil
}

// Info asks the replicas at addrs in turn, each for at most 3 seconds, until
// one answers req.
func Info(ctx context.Context, conns *ConnPool, addrs []string, req *logpb.InfoRequest) (*logpb.InfoResponse, error) {
	var errs []error
	for _, addr := range addrs {
		cc, err := conns.Get(addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		info, err := logpb.NewLogClient(cc).Info(cctx, req)
		cancel()
		if err == nil {
			return info, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, logerr.FromStatus(err)))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, errors.Join(errs...)
}
