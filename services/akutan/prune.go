package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/snapshot"
)

// pruneResult is the JSON of one retention pass.
type pruneResult struct {
	At time.Time `json:"at"`
	backup.PruneReport
	Error string `json:"error,omitempty"`
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
one document per line). It names every checkpoint it skipped as unverified
(not whole: it is kept but counts for nothing) and every corrupt catalog
entry it left alone (the pass then fails).`,
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
			rep, err := backup.Prune(cctx, s, policy)
			return pruneResult{At: time.Now().UTC(), PruneReport: *rep}, err
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
			for _, sk := range res.Skipped {
				fmt.Fprintf(a.stdout, "%s: skipped %s %s: %s\n", stamp, sk.Kind, sk.Key, sk.Reason)
			}
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
