package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/truncate"
)

func (a *app) logTruncateCmd() *cobra.Command {
	def := truncate.DefaultConfig()
	c := &cobra.Command{
		Use:   "truncate",
		Short: "discard the log prefix that the archive and checkpoints make unnecessary; says why",
		Long: `truncate plans the log's truncation (infra/truncate) from the bucket's
catalogs (--store) and the log (--log), prints the plan and why, and
discards the prefix, once or every --every. With --json it prints the plan
as one document, or with --every one plan per line.`,
		Args: noArgs,
	}
	f := c.Flags()
	dryRun := f.Bool("dry-run", false, "print the plan and why, discard nothing")
	every := f.Duration("every", 0, "keep running, planning and discarding at this interval (0: once)")
	delay := f.Duration("delay", def.Delay, "count only checkpoints created at least this long ago")
	clusters := f.String("clusters", "", "the critical clusters, comma-separated; every point of each must be checkpointed (default: the bucket's cluster registry, akutan backup clusters, read on every plan)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if *dryRun && *every > 0 {
			return usageError("--dry-run plans once; it does not combine with --every")
		}
		ctx := cmd.Context()
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		store, err := a.openStore(octx)
		cancel()
		if err != nil {
			return err
		}
		if len(a.log) == 0 {
			return usageError("no log replica addresses (--log)")
		}
		log := truncate.NewGRPCLog(a.log)
		defer log.Close()
		co := &truncate.Coordinator{
			Config:       truncate.Config{Clusters: cleanAddrs([]string{*clusters}), Delay: *delay},
			Store:        store,
			Log:          log,
			FromRegistry: *clusters == "",
		}
		if !co.FromRegistry {
			if err := co.Config.Validate(); err != nil {
				return exitError{code: exitUsage, err: err}
			}
		}
		if *every <= 0 {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			p, err := co.Once(cctx, *dryRun)
			if p != nil {
				if a.jsonOut {
					if jerr := a.printJSON(planJSON(p, *dryRun, err)); jerr != nil {
						return jerr
					}
				} else {
					if *dryRun {
						fmt.Fprint(a.stdout, "dry run: nothing is discarded\n")
					}
					fmt.Fprint(a.stdout, p)
				}
			}
			return err
		}
		first := true
		err = co.Run(ctx, *every, func(p *truncate.Plan, err error) {
			if a.jsonOut {
				if p != nil || err != nil {
					a.printJSONLine(planJSON(p, false, err))
				}
				return
			}
			stamp := time.Now().UTC().Format(time.RFC3339)
			if err != nil {
				fmt.Fprintf(a.stdout, "%s: truncate: %v\n", stamp, err)
				return
			}
			if p.Done || first {
				fmt.Fprintf(a.stdout, "%s:\n%s", stamp, p)
			}
			first = false
		})
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return c
}

// truncatePlan is the JSON of a truncation plan.
type truncatePlan struct {
	At           time.Time        `json:"at"`
	DryRun       bool             `json:"dry_run"`
	DelaySeconds float64          `json:"delay_seconds"`
	LogFirst     uint64           `json:"log_first_index"`
	LogLast      uint64           `json:"log_last_index"`
	LogArchived  uint64           `json:"log_archived_through"`
	ArchiveFirst uint64           `json:"archive_first"`
	ArchiveLast  uint64           `json:"archive_last"`
	Clusters     []truncateClustr `json:"clusters"`
	Discard      uint64           `json:"discard_before"`
	Act          bool             `json:"act"`
	Reason       string           `json:"reason"`
	Done         bool             `json:"done"`
	FirstAfter   uint64           `json:"first_index_after"`
	Error        string           `json:"error,omitempty"`
}

type truncateClustr struct {
	Cluster     string `json:"cluster"`
	Discardable uint64 `json:"discardable"`
	Space       string `json:"limit_space"`
	RangeStart  uint64 `json:"limit_range_start"`
	RangeEnd    uint64 `json:"limit_range_end"`
	Covered     bool   `json:"covered"`
	Checkpoint  uint64 `json:"limit_checkpoint_index"`
	Manifest    string `json:"limit_checkpoint_manifest"`
	Eligible    int    `json:"checkpoints_counted"`
	TooNew      int    `json:"checkpoints_too_new"`
}

func planJSON(p *truncate.Plan, dryRun bool, err error) truncatePlan {
	if p == nil {
		return truncatePlan{At: time.Now().UTC(), Clusters: []truncateClustr{}, Error: errString(err)}
	}
	out := truncatePlan{
		At: p.At.UTC(), DryRun: dryRun, DelaySeconds: p.Delay.Seconds(),
		LogFirst: p.Log.First, LogLast: p.Log.Last, LogArchived: p.Log.ArchivedThrough,
		ArchiveFirst: p.ArchiveFirst, ArchiveLast: p.ArchiveLast, Clusters: []truncateClustr{},
		Discard: p.Discard, Act: p.Act(), Reason: p.Reason, Done: p.Done, FirstAfter: p.FirstAfter,
		Error: errString(err),
	}
	for _, c := range p.Clusters {
		out.Clusters = append(out.Clusters, truncateClustr{
			Cluster: c.Cluster, Discardable: c.Discardable, Space: c.Limit.Space,
			RangeStart: c.Limit.Range.Start, RangeEnd: c.Limit.Range.End, Covered: c.Limit.Covered,
			Checkpoint: c.Limit.Checkpoint.Index, Manifest: c.Limit.Checkpoint.Manifest,
			Eligible: c.Eligible, TooNew: c.TooNew,
		})
	}
	return out
}
