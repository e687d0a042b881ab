package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// backupPrune applies the retention policy to the bucket and collects
// garbage (torn uploads, retired objects past the grace period), once or
// every --every.
func backupPrune(ctx context.Context, args []string, out io.Writer) error {
	fs, url := backupFlags("backup prune", "backup prune [--keep K] [--grace D] [--every D] [--store URL]")
	def := snapshot.DefaultRetentionPolicy()
	keep := fs.Int("keep", def.KeepCheckpoints, "checkpoints to keep at every point of every (cluster, space) range; the archive is kept back to the oldest of them")
	grace := fs.Duration("grace", def.Grace, "how long retired and unreferenced objects stay before they are deleted; longer than any boot, restore or upload")
	every := fs.Duration("every", 0, "keep running at this interval (0: once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	policy := def
	policy.KeepCheckpoints, policy.Grace = *keep, *grace
	if err := policy.Validate(); err != nil {
		return err
	}
	s, err := openStore(ctx, *url)
	if err != nil {
		return err
	}
	once := func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		now := time.Now()
		rep, err := snapshot.ApplyRetention(cctx, s, policy)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		gc, err := snapshot.CollectGarbage(cctx, s, policy.Grace)
		if err != nil {
			return fmt.Errorf("garbage collection: %w", err)
		}
		keepFrom := "everything"
		if rep.KeepLogFrom > 0 {
			keepFrom = fmt.Sprintf("from index %d", rep.KeepLogFrom)
		}
		fmt.Fprintf(out, "%s: retired %d checkpoints and %d segments (archive kept %s); deleted %d retired and %d unreferenced objects (%s); %d unreferenced objects within the grace period\n",
			now.UTC().Format(time.RFC3339), rep.RetiredCheckpoints, rep.RetiredSegments, keepFrom,
			rep.Purge.RetiredDeleted+gc.RetiredDeleted, gc.OrphansDeleted, humanBytes(rep.Purge.BytesDeleted+gc.BytesDeleted), gc.OrphansKept)
		return nil
	}
	if *every <= 0 {
		return once()
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		if err := once(); err != nil {
			fmt.Fprintf(out, "%s: %v\n", time.Now().UTC().Format(time.RFC3339), err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
