package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/restore"
	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/viewsvc"
)

// viewSpecs collects repeated --view flags.
type viewSpecs []restore.ViewSpec

func (v *viewSpecs) String() string { return fmt.Sprint(len(*v), " views") }

// Set parses NAME:SPACE:START:END:DIR, START and END as for akutan-view
// (decimal, 0x hex, END "max" for 2^64).
func (v *viewSpecs) Set(s string) error {
	parts := strings.SplitN(s, ":", 5)
	if len(parts) != 5 {
		return fmt.Errorf("--view %q: want NAME:SPACE:START:END:DIR", s)
	}
	space, err := viewsvc.ParseSpace(parts[1])
	if err != nil {
		return fmt.Errorf("--view %q: %w", s, err)
	}
	start, _, err := viewsvc.ParseHashBound(parts[2])
	if err != nil {
		return fmt.Errorf("--view %q: start: %w", s, err)
	}
	end, isMax, err := viewsvc.ParseHashBound(parts[3])
	if err != nil {
		return fmt.Errorf("--view %q: end: %w", s, err)
	}
	if isMax {
		end = 0
	}
	r := viewsvc.HashRange{Start: start, End: end}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("--view %q: %w", s, err)
	}
	*v = append(*v, restore.ViewSpec{Name: parts[0], Space: space, Range: r, Dir: parts[4]})
	return nil
}

// Type implements pflag.Value.
func (v *viewSpecs) Type() string { return "NAME:SPACE:START:END:DIR" }

// restoreResult is the JSON of restore.
type restoreResult struct {
	Index       uint64 `json:"index"`
	LogID       string `json:"log_id"`
	LogDir      string `json:"log_dir"`
	Views       int    `json:"views"`
	TargetStore string `json:"target_store"`
}

func (a *app) restoreCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "restore (--to-index N | --latest) --target-store URL --log-dir DIR --log-id ID --log-raft-addr ADDR --view NAME:SPACE:START:END:DIR ...",
		Short: "build a new cluster's log and views at exactly N from the bucket",
		Long: `restore builds a new cluster's log replica and views at exactly one log
index from the bucket (--store): every view from the newest checkpoints at or
below it plus the archive, a consistent cut. The restored cluster gets a new
timeline (--target-store, an empty prefix) where it archives and
checkpoints. Data dirs must be empty or absent.`,
		Args: noArgs,
	}
	f := c.Flags()
	toIndex := f.Uint64("to-index", 0, "restore at exactly this log index")
	latest := f.Bool("latest", false, "restore at the newest archived index")
	target := f.String("target-store", "", "store URL of the new timeline (an empty prefix); the restored cluster archives and checkpoints there (required)")
	logDir := f.String("log-dir", "", "data dir of the restored log replica (empty or absent) (required)")
	logID := f.String("log-id", "", "Raft server ID of the restored log replica (required)")
	raftAddr := f.String("log-raft-addr", "", "Raft address of the restored log replica (required)")
	var views viewSpecs
	f.Var(&views, "view", "a view of the new cluster, NAME:SPACE:START:END:DIR (repeat for each view)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		var missing []string
		for _, m := range []struct{ name, v string }{{"--target-store", *target}, {"--log-dir", *logDir}, {"--log-id", *logID}, {"--log-raft-addr", *raftAddr}} {
			if m.v == "" {
				missing = append(missing, m.name)
			}
		}
		if len(missing) > 0 {
			return usageError("restore: %s required", strings.Join(missing, ", "))
		}
		if *latest == (*toIndex != 0) {
			return usageError("restore: give exactly one of --to-index N and --latest")
		}
		if *target == a.store {
			return usageError("restore: --target-store must be a new prefix, not the source (--store)")
		}
		source, err := a.openStore(ctx)
		if err != nil {
			return err
		}
		dst, err := openStoreURL(ctx, *target)
		if err != nil {
			return err
		}
		bars := map[string]*progress{}
		logf := func(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }
		if a.jsonOut {
			logf = func(format string, args ...any) {
				if !a.quiet {
					fmt.Fprintf(a.stderr, format+"\n", args...)
				}
			}
		}
		n, err := restore.Run(ctx, restore.Options{
			Source: source,
			Target: dst,
			Index:  *toIndex,
			LogDir: *logDir,
			Log:    logsvc.RestoreConfig{ID: *logID, RaftAddr: *raftAddr},
			Views:  views,
			Progress: func(step string, done, total int64) {
				b := bars[step]
				if b == nil {
					b = newProgress(a.progressOut(), step, step == "restore views" || step == "check log")
					bars[step] = b
				}
				b.set(done, total)
				if done >= total {
					b.done()
				}
			},
			Logf: logf,
		})
		if err != nil {
			return err
		}
		if a.jsonOut {
			return a.printJSON(restoreResult{n, *logID, *logDir, len(views), *target})
		}
		fmt.Fprintf(a.stdout, "restored at index %d: log replica %s in %s, %d views; the new timeline is %s\n", n, *logID, *logDir, len(views), *target)
		return nil
	}
	return c
}

// deepVerify restores both spaces at the newest archived index into a
// temporary dir and compares their digests.
func deepVerify(ctx context.Context, s snapshot.Store) (*deepJSON, error) {
	dir, err := os.MkdirTemp("", "akutan-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res, err := restore.VerifyDeep(ctx, s, 0, dir)
	if err != nil {
		return nil, fmt.Errorf("deep verify: %w", err)
	}
	d := func(x viewsvc.Digest) digestJSON { return digestJSON{x.Index, x.Facts, x.Sum1, x.Sum2} }
	return &deepJSON{Index: res.Index, SP: d(res.SP), PO: d(res.PO), OK: res.OK()}, nil
}
