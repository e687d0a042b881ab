package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/akutan/akutan/proto/viewpb"
)

// View is one view to checkpoint, as the cluster status names it.
type View struct {
	Address string
	Space   string
	// Start and End bound its hash range; End 0 means 2^64.
	Start, End uint64
	// Reachable is false when the status could not reach it; it is
	// reported as failed without a call.
	Reachable bool
}

// Archiver flushes the log's archive; logclient.Admin is one.
type Archiver interface {
	ArchiveNow(ctx context.Context) (uint64, error)
}

// NowOptions say what "backup now" acts on.
type NowOptions struct {
	Views []View
	Log   Archiver
	// Checkpoint has one view write a checkpoint and returns its index and
	// size; nil calls the view's Checkpoint RPC over gRPC.
	Checkpoint func(ctx context.Context, addr string) (index uint64, bytes int64, err error)
	// Parallel bounds the checkpoints in flight (they are heavy); 0 means 2.
	Parallel int
	// Progress, if set, is called as views finish.
	Progress func(done, total int64)
}

// ViewResult is what one view did.
type ViewResult struct {
	View
	Index uint64
	Bytes int64
	Err   error
}

// NowReport is the outcome of Now.
type NowReport struct {
	// Views are sorted by address.
	Views []ViewResult
	// ArchivedThrough is the log's archive end after the flush.
	ArchivedThrough uint64
	// Failed counts the views that did not checkpoint.
	Failed int
}

// ErrViewsFailed means some views did not checkpoint; the report says
// which and why.
var ErrViewsFailed = errors.New("views did not checkpoint")

// Now forces a checkpoint on every view and then flushes the log's
// archive, so that the bucket holds everything committed so far. The
// archive is flushed after the checkpoints, so it reaches at least every
// checkpoint's index. A view's failure does not stop the others; Now then
// returns the whole report with an error wrapping ErrViewsFailed. A failed
// archive flush is an error of its own.
func Now(ctx context.Context, opts NowOptions) (*NowReport, error) {
	checkpoint := opts.Checkpoint
	if checkpoint == nil {
		checkpoint = grpcCheckpoint
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 2
	}
	rep := &NowReport{Views: make([]ViewResult, len(opts.Views))}
	var mu sync.Mutex
	var finished int64
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, v := range opts.Views {
		rep.Views[i].View = v
		if !v.Reachable {
			rep.Views[i].Err = errors.New("unreachable")
			continue
		}
		g.Go(func() error {
			r := &rep.Views[i]
			r.Index, r.Bytes, r.Err = checkpoint(ctx, v.Address)
			if opts.Progress != nil {
				mu.Lock()
				finished++
				opts.Progress(finished, int64(len(opts.Views)))
				mu.Unlock()
			}
			return nil // one view's failure is reported, not fatal
		})
	}
	g.Wait()
	sort.SliceStable(rep.Views, func(i, j int) bool { return rep.Views[i].Address < rep.Views[j].Address })
	for _, r := range rep.Views {
		if r.Err != nil {
			rep.Failed++
		}
	}
	if opts.Log == nil {
		return rep, errors.New("backup now: no log to flush")
	}
	through, err := opts.Log.ArchiveNow(ctx)
	if err != nil {
		return rep, fmt.Errorf("archive flush: %w", err)
	}
	rep.ArchivedThrough = through
	if rep.Failed > 0 {
		return rep, fmt.Errorf("%d of %d %w", rep.Failed, len(rep.Views), ErrViewsFailed)
	}
	return rep, nil
}

func grpcCheckpoint(ctx context.Context, addr string) (uint64, int64, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, 0, err
	}
	defer cc.Close()
	resp, err := viewpb.NewViewClient(cc).Checkpoint(ctx, &viewpb.CheckpointRequest{})
	if err != nil {
		return 0, 0, err
	}
	return resp.Index, resp.Bytes, nil
}
