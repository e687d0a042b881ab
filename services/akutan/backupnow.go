package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/proto/viewpb"
)

// backupNow forces a checkpoint on every reachable view (found through the
// API server's status) and then an archive flush of the log, so that the
// bucket holds everything committed so far.
func backupNow(ctx context.Context, args []string, out io.Writer) error {
	fs, apiAddr := apiFlags("backup now", "backup now [--api host:port] [--log host:port,...]")
	logAddrs := fs.String("log", defaultLog, "comma-separated gRPC addresses of log replicas")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the checkpoints")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client, closeFn, err := dialAPI(*apiAddr)
	if err != nil {
		return err
	}
	defer closeFn()
	st, err := client.Status(ctx, &apipb.StatusRequest{})
	if err != nil {
		return err
	}

	type result struct {
		view *apipb.ViewStatus
		resp *viewpb.CheckpointResponse
		err  error
	}
	results := make([]result, len(st.Views))
	bar := newByteProgress(os.Stderr, "checkpoints")
	bar.count = true
	var mu sync.Mutex
	var finished int64
	tick := func() {
		mu.Lock()
		defer mu.Unlock()
		finished++
		bar.set(finished, int64(len(results)))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2) // checkpoints are heavy: two at a time
	for i, v := range st.Views {
		results[i].view = v
		if !v.Reachable {
			results[i].err = errors.New("unreachable")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cc, err := grpc.NewClient(v.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				results[i].err = err
				return
			}
			defer cc.Close()
			results[i].resp, results[i].err = viewpb.NewViewClient(cc).Checkpoint(ctx, &viewpb.CheckpointRequest{})
			tick()
		}()
	}
	wg.Wait()
	bar.done()
	sort.Slice(results, func(i, j int) bool { return results[i].view.Address < results[j].view.Address })
	failed := 0
	for _, r := range results {
		if r.err != nil {
			failed++
			fmt.Fprintf(out, "view %s %s [%#x, %s): checkpoint failed: %v\n", r.view.Address, r.view.Space, r.view.RangeStart, rangeEnd(r.view.RangeEnd), r.err)
			continue
		}
		fmt.Fprintf(out, "view %s %s [%#x, %s): checkpoint at index %d, %s\n", r.view.Address, r.view.Space, r.view.RangeStart, rangeEnd(r.view.RangeEnd), r.resp.Index, humanBytes(r.resp.Bytes))
	}

	ar, err := anyReplica(ctx, splitAddrs(*logAddrs), func(ctx context.Context, c logpb.LogClient) (*logpb.ArchiveNowResponse, error) {
		return c.ArchiveNow(ctx, &logpb.ArchiveNowRequest{})
	})
	if err != nil {
		return fmt.Errorf("archive flush: %w", logerr.FromStatus(err))
	}
	fmt.Fprintf(out, "log: archived through index %d\n", ar.ArchivedThrough)
	if failed > 0 {
		return fmt.Errorf("%d of %d views did not checkpoint", failed, len(results))
	}
	return nil
}

func rangeEnd(end uint64) string {
	if end == 0 {
		return "2^64"
	}
	return fmt.Sprintf("%#x", end)
}
