package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/snapshot"
)

// pruneResult is the JSON of one retention pass.
type pruneResult struct {
	At                 time.Time `json:"at"`
	RetiredCheckpoints int       `json:"retired_checkpoints"`
	RetiredSegments    int       `json:"retired_segments"`
	KeepLogFrom        uint64    `json:"keep_log_from"`
	RetiredDeleted     int       `json:"retired_deleted"`
	OrphansDeleted     int       `json:"orphans_deleted"`
	BytesDeleted       int64     `json:"bytes_deleted"`
	OrphansKept        int       `json:"orphans_kept"`
	Error              string    `json:"error,omitempty"`
}

// backupPruneCmd applies the retention policy to the bucket and collects
// garbage (torn uploads, retired objects past the grace period), once or
// every --every.
func (a *app) backupPruneCmd() *cobra.Command {
	def := snapshot.DefaultRetentionPolicy()
	c := &cobra.Command{
		Use:   "prune",
		Short: "retention: keep K checkpoints per range and the archive they need; delete torn uploads after --grace",
		Long: `prune applies the retention policy to the bucket: it keeps --keep
checkpoints at every point of every (cluster, space) range and the archive
back to the oldest of them, and deletes retired and unreferenced objects
once they are older than --grace. Once, or every --every (then with --json
one document per line).`,
		Args: noArgs,
	}
	f := c.Flags()
	keep := f.Int("keep", def.KeepCheckpoints, "checkpoints to keep at every point of every (cluster, space) range; the archive is kept back to the oldest of them")
	grace := f.Duration("grace", def.Grace, "how long retired and unreferenced objects stay before they are deleted; longer than any boot, restore or upload")
	every := f.Duration("every", 0, "keep running at this interval (0: once)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		policy := def
		policy.KeepCheckpoints, policy.Grace = *keep, *grace
		if err := policy.Validate(); err != nil {
			return exitError{code: exitUsage, err: err}
		}
		s, err := a.openStore(ctx)
		if err != nil {
			return err
		}
		once := func() (pruneResult, error) {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			res := pruneResult{At: time.Now().UTC()}
			rep, err := snapshot.ApplyRetention(cctx, s, policy)
			if err != nil {
				return res, fmt.Errorf("retention: %w", err)
			}
			gc, err := snapshot.CollectGarbage(cctx, s, policy.Grace)
			if err != nil {
				return res, fmt.Errorf("garbage collection: %w", err)
			}
			res.RetiredCheckpoints, res.RetiredSegments, res.KeepLogFrom = rep.RetiredCheckpoints, rep.RetiredSegments, rep.KeepLogFrom
			res.RetiredDeleted = rep.Purge.RetiredDeleted + gc.RetiredDeleted
			res.OrphansDeleted, res.OrphansKept = gc.OrphansDeleted, gc.OrphansKept
			res.BytesDeleted = rep.Purge.BytesDeleted + gc.BytesDeleted
			return res, nil
		}
		print := func(res pruneResult, err error, line bool) error {
			if a.jsonOut {
				res.Error = errString(err)
				if line {
					return a.printJSONLine(res)
				}
				return a.printJSON(res)
			}
			stamp := res.At.Format(time.RFC3339)
			if err != nil {
				if line {
					fmt.Fprintf(a.stdout, "%s: %v\n", stamp, err)
				}
				return nil
			}
			keepFrom := "everything"
			if res.KeepLogFrom > 0 {
				keepFrom = fmt.Sprintf("from index %d", res.KeepLogFrom)
			}
			fmt.Fprintf(a.stdout, "%s: retired %d checkpoints and %d segments (archive kept %s); deleted %d retired and %d unreferenced objects (%s); %d unreferenced objects within the grace period\n",
				stamp, res.RetiredCheckpoints, res.RetiredSegments, keepFrom,
				res.RetiredDeleted, res.OrphansDeleted, humanBytes(res.BytesDeleted), res.OrphansKept)
			return nil
		}
		if *every <= 0 {
			res, err := once()
			if perr := print(res, err, false); perr != nil {
				return perr
			}
			return err
		}
		t := time.NewTicker(*every)
		defer t.Stop()
		for {
			res, err := once()
			print(res, err, true)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
	return c
}
