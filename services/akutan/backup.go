package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/snapshot"
	_ "github.com/akutan/akutan/snapshot/s3store" // the s3:// scheme of OpenStore
)

// openStore opens the store at --store. For the local stack's default
// bucket it supplies the local MinIO's credentials when none are set.
func (a *app) openStore(ctx context.Context) (snapshot.Store, error) {
	return openStoreURL(ctx, a.store)
}

func openStoreURL(ctx context.Context, url string) (snapshot.Store, error) {
	if url == "" {
		return nil, usageError("no store (--store)")
	}
	if url == defaultStore && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		os.Setenv("AWS_ACCESS_KEY_ID", "akutan-local")
		os.Setenv("AWS_SECRET_ACCESS_KEY", "akutan-local-secret")
	}
	return snapshot.OpenStore(ctx, url)
}

func (a *app) backupCmd() *cobra.Command {
	return a.group("backup", "the bucket: create it, list and verify what it holds, back up now, prune, the cluster registry",
		a.backupInitCmd(), a.backupListCmd(), a.backupVerifyCmd(), a.backupNowCmd(), a.backupPruneCmd(), a.backupClustersCmd())
}

func (a *app) backupInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "create the bucket if needed",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			s, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			if b, ok := s.(interface{ EnsureBucket(context.Context) error }); ok {
				if err := b.EnsureBucket(ctx); err != nil {
					return err
				}
			}
			// Create both catalogs where they are absent, then the marker.
			// A store whose catalogs were lost (the marker or segments are
			// there) is refused rather than given empty ones.
			if _, err := snapshot.InitBucket(ctx, s, "akutan backup init"); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"store": a.store, "ready": true})
			}
			fmt.Fprintln(a.stdout, "store ready:", a.store)
			return nil
		},
	}
}

func (a *app) backupListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "checkpoints, archive coverage, restorable indexes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			s, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			inv, _, _, err := backup.Load(ctx, s)
			if err != nil {
				return err
			}
			if a.jsonOut {
				if inv.Checkpoints == nil {
					inv.Checkpoints = []snapshot.CheckpointRef{}
				}
				if inv.Restorable == nil {
					inv.Restorable = []backup.Interval{}
				}
				return a.printJSON(inv)
			}
			out := a.stdout
			if inv.Segments == 0 {
				fmt.Fprintln(out, "archive: empty")
			} else {
				fmt.Fprintf(out, "archive: indexes %d..%d in %d segments, %s (%s before compression, ratio %.2f)\n",
					inv.ArchiveFirst, inv.ArchivedThrough, inv.Segments, humanBytes(inv.ArchiveBytes), humanBytes(inv.ArchiveRawBytes),
					float64(inv.ArchiveRawBytes)/max(float64(inv.ArchiveBytes), 1))
			}
			fmt.Fprintf(out, "checkpoints: %d\n", len(inv.Checkpoints))
			if len(inv.Checkpoints) > 0 {
				w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(w, "  CLUSTER\tSPACE\tRANGE\tINDEX\tSIZE\tCREATED")
				for _, c := range inv.Checkpoints {
					fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%s\t%s\n", orNone(c.Cluster), c.Space, c.Range(), c.Index,
						humanBytes(c.Bytes), c.Created.UTC().Format(time.RFC3339))
				}
				w.Flush()
			}
			if len(inv.Restorable) == 0 {
				fmt.Fprintln(out, "restorable: nothing yet (needs an archive from index 1, or checkpoints covering both spaces plus the archive after them)")
			}
			for _, r := range inv.Restorable {
				fmt.Fprintf(out, "restorable: indexes %d..%d\n", r.First, r.Last)
			}
			return nil
		},
	}
}

// verifyResult is the JSON of backup verify.
type verifyResult struct {
	Segments    int           `json:"segments"`
	Checkpoints int           `json:"checkpoints"`
	Files       int           `json:"files"`
	Bytes       int64         `json:"bytes"`
	Problems    []problemJSON `json:"problems"`
	Deep        *deepJSON     `json:"deep,omitempty"`
	OK          bool          `json:"ok"`
}

type problemJSON struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

type deepJSON struct {
	Index uint64     `json:"index"`
	SP    digestJSON `json:"sp"`
	PO    digestJSON `json:"po"`
	OK    bool       `json:"ok"`
}

type digestJSON struct {
	Index uint64 `json:"index"`
	Facts uint64 `json:"facts"`
	Sum1  uint64 `json:"sum1"`
	Sum2  uint64 `json:"sum2"`
}

func (a *app) backupVerifyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "verify",
		Short: "check every checksum; exit code 3 if verification found problems",
		Long: `verify reads every archived segment and every checkpoint file and checks
their checksums. --deep also restores both spaces at the newest archived
index into a temporary dir and compares their digests. Exit code 3 when
verification found problems.`,
		Args: noArgs,
	}
	deep := c.Flags().Bool("deep", false, "also restore the newest restorable index into a temporary dir and compare digests")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		s, err := a.openStore(ctx)
		if err != nil {
			return err
		}
		bar := newProgress(a.progressOut(), "verify", false)
		rep, err := snapshot.Verify(ctx, s, snapshot.VerifyOptions{Progress: bar.set})
		bar.done()
		if err != nil {
			return err
		}
		res := verifyResult{Segments: rep.Segments, Checkpoints: rep.Checkpoints, Files: rep.Files, Bytes: rep.Bytes, Problems: []problemJSON{}, OK: rep.OK()}
		for _, p := range rep.Problems {
			res.Problems = append(res.Problems, problemJSON{p.Key, p.Reason})
		}
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "checked %d segments, %d checkpoints with %d files, %s\n", rep.Segments, rep.Checkpoints, rep.Files, humanBytes(rep.Bytes))
			for _, p := range rep.Problems {
				fmt.Fprintf(a.stdout, "PROBLEM %s\n", p)
			}
			if !rep.OK() {
				fmt.Fprintf(a.stdout, "%d problems\n", len(rep.Problems))
			}
		}
		if rep.OK() && *deep {
			d, err := deepVerify(ctx, s)
			if err != nil {
				return err
			}
			res.Deep, res.OK = d, d.OK
			if !a.jsonOut {
				fmt.Fprintf(a.stdout, "deep: restored both spaces at index %d: HashSP %+v, HashPO %+v\n", d.Index, d.SP, d.PO)
				if !d.OK {
					fmt.Fprintln(a.stdout, "PROBLEM the two spaces restore to different facts")
				}
			}
		}
		if a.jsonOut {
			if err := a.printJSON(res); err != nil {
				return err
			}
		} else if res.OK {
			fmt.Fprintln(a.stdout, "ok")
		}
		if !res.OK {
			return problems
		}
		return nil
	}
	return c
}

// nowResult is the JSON of backup now.
type nowResult struct {
	Views           []nowView `json:"views"`
	ArchivedThrough uint64    `json:"archived_through"`
	Failed          int       `json:"failed"`
	Error           string    `json:"error,omitempty"`
	// Unreachable lists the API servers that did not answer: their
	// datacenters' views were not checkpointed.
	Unreachable []unreachableAPI `json:"unreachable_api_servers"`
}

type nowView struct {
	Address    string `json:"address"`
	Space      string `json:"space"`
	RangeStart uint64 `json:"range_start"`
	RangeEnd   uint64 `json:"range_end"`
	Index      uint64 `json:"index"`
	Bytes      int64  `json:"bytes"`
	Error      string `json:"error,omitempty"`
}

func (a *app) backupNowCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "now",
		Short: "checkpoint every view and flush the log archive",
		Long: `now has every view write a checkpoint, two at a time, and then has the log
(--log) flush its archive, so the bucket holds everything committed so far
(infra/backup.Now). The views are found through the status of one API
server of each datacenter in --api (each knows only its own datacenter's
views); a datacenter whose API servers do not answer is reported, and its
views are not checkpointed.`,
		Args: noArgs,
	}
	timeout := c.Flags().Duration("timeout", 5*time.Minute, "how long to wait for the checkpoints")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		client, err := newAPIClient(a.api)
		if err != nil {
			return err
		}
		defer client.Close()
		sts := gatherStatus(ctx, client)
		if len(sts.dcs) == 0 {
			return noServer(sts.errs)
		}
		for _, u := range sts.unreachable {
			fmt.Fprintf(a.stderr, "API server %s did not answer; its datacenter's views are not checkpointed: %s\n", u.Address, u.Error)
		}
		admin, err := a.admin()
		if err != nil {
			return err
		}
		defer admin.Close()
		opts := backup.NowOptions{Log: admin}
		for _, st := range sts.dcs {
			for _, v := range st.Views {
				opts.Views = append(opts.Views, backup.View{Address: v.Address, Space: v.Space, Start: v.RangeStart, End: v.RangeEnd, Reachable: v.Reachable})
			}
		}
		bar := newProgress(a.progressOut(), "checkpoints", true)
		opts.Progress = bar.set
		rep, err := backup.Now(ctx, opts)
		bar.done()
		if err == nil && len(sts.unreachable) > 0 {
			err = problems // some datacenter's views were not reached
		}
		if a.jsonOut {
			res := nowResult{Views: []nowView{}, Error: errString(err), Unreachable: append([]unreachableAPI{}, sts.unreachable...)}
			if rep != nil {
				res.ArchivedThrough, res.Failed = rep.ArchivedThrough, rep.Failed
				for _, v := range rep.Views {
					res.Views = append(res.Views, nowView{v.Address, v.Space, v.Start, v.End, v.Index, v.Bytes, errString(v.Err)})
				}
			}
			if jerr := a.printJSON(res); jerr != nil {
				return jerr
			}
			return err
		}
		if rep != nil {
			for _, v := range rep.Views {
				if v.Err != nil {
					fmt.Fprintf(a.stdout, "view %s %s [%#x, %s): checkpoint failed: %v\n", v.Address, v.Space, v.Start, rangeEnd(v.End), v.Err)
					continue
				}
				fmt.Fprintf(a.stdout, "view %s %s [%#x, %s): checkpoint at index %d, %s\n", v.Address, v.Space, v.Start, rangeEnd(v.End), v.Index, humanBytes(v.Bytes))
			}
			if err == nil || errors.Is(err, backup.ErrViewsFailed) {
				fmt.Fprintf(a.stdout, "log: archived through index %d\n", rep.ArchivedThrough)
			}
		}
		return err
	}
	return c
}
