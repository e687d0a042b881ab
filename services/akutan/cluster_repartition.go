package main

import (
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/cluster"
	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
)

const clusterRepartitionLong = `repartition splits and merges one space of one datacenter online: into
--partitions N even ranges, or into the uneven ranges that start at each
point of --ranges (0 first, in increasing order, 0x hex or decimal; each
range ends where the next starts, the last at 2^64).

It rewrites the topology file (-f), which stays the source of truth:
first with the datacenter's views written out explicitly (every range
keeps its name and address) and the new ranges beside the old ones, named
after a new generation (g2p0, g2p1, ...) at free ports of the datacenter's
view block, with split_in_progress; at the end with the target ranges
only. Only the comment lines at the top of the file are kept. Ranges in
both the old and the new partitioning are kept as they run.

Meanwhile: each new view starts on an empty data dir and boots from the
bucket (cutting the old ranges' checkpoints) and replays the log; it is
published in the datacenter's views, which the API servers re-read without
a restart; once every new view is up to date, each old view is retired
from the views, stopped and its data dir wiped, behind a gate that refuses
(exit code 3) unless the new views cover every point up to date and the
datacenter stays fully available. Reads and writes go on throughout.

It prints the plan first; --dry-run stops there and changes nothing, the
file included. An interrupted run is continued by running the same command
again; a file that already has exactly the target ranges has nothing to
do. Uneven ranges can also be written into the file by hand: the new
ranges (with names and addrs) beside the old, with split_in_progress: true;
then repartition with --ranges of the new ranges carries the split out.
AKUTAN_PARTITIONS and AKUTAN_REPLICAS must be unset: they override the
file's partitioning.`

func (a *app) clusterRepartitionCmd() *cobra.Command {
	var f clusterFlags
	var dc, space, ranges string
	var partitions int
	c := &cobra.Command{
		Use:   "repartition -f TOPOLOGY --dc DC --space sp|po (--partitions N | --ranges START,...) [--dry-run]",
		Short: "split and merge a datacenter's partitions of one space, online",
		Long:  clusterRepartitionLong,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Both flags read the environment like every flag; these
			// variables are the local stack's overrides of the whole
			// file, for ctl.sh too, which would undo the split.
			for _, v := range []string{"AKUTAN_PARTITIONS", "AKUTAN_REPLICAS"} {
				if a.getenv(v) != "" {
					return usageError("%s is set: it overrides the topology file's partitioning (ctl.sh reads it too); unset it to repartition", v)
				}
			}
			if dc == "" || space == "" {
				return usageError("--dc and --space are required")
			}
			sp, err := model.ParseSpace(space)
			if err != nil {
				return usageError("--space: %v", err)
			}
			target, err := targetRanges(partitions, ranges)
			if err != nil {
				return err
			}
			p, run, done, err := a.procedures(&f)
			if err != nil {
				return err
			}
			defer done()
			if !hasDC(f.loaded, dc) {
				return usageError("--dc %s: the topology has no such datacenter", dc)
			}
			// The file as written, without --base-port: that is what is
			// rewritten.
			file, err := topology.Load(f.topo.file)
			if err != nil {
				return err
			}
			rp, err := cluster.PlanRepartition(file, f.topo.basePort, dc, sp, target)
			if errors.Is(err, cluster.ErrRepartition) {
				return exitError{code: exitProblems, err: err}
			}
			if err != nil {
				return err
			}
			return refusal(run.Run(cmd.Context(), p.RepartitionPlan(f.topo.file, rp)))
		},
	}
	// Not clusterFlags.add: its --partitions overrides the file's
	// partitioning, while here it is the target.
	fs := c.Flags()
	fs.StringVarP(&f.topo.file, "topology", "f", "", "the topology file (required); it is rewritten")
	fs.IntVar(&f.topo.basePort, "base-port", 0, "the port base the deployment runs with instead of the file's ports.base (the local stack's AKUTAN_BASE_PORT)")
	fs.StringVar(&f.ctl, "ctl", "localstack/ctl.sh", "the local stack's driver script (the stack's environment, AKUTAN_STACK_DIR and AKUTAN_BASE_PORT, is passed on)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan and the state now, change nothing")
	fs.DurationVar(&f.settle, "settle", 30*time.Second, "observe a refusing step's gate again for this long before refusing (a view catching up)")
	fs.StringVar(&dc, "dc", "", "the datacenter (required)")
	fs.StringVar(&space, "space", "", "the space: sp (HashSP) or po (HashPO) (required)")
	fs.IntVar(&partitions, "partitions", 0, "the number of even ranges to split or merge into")
	fs.StringVar(&ranges, "ranges", "", "the start points of uneven target ranges, comma-separated, 0 first")
	return c
}

// targetRanges are the ranges of --partitions or --ranges (exactly one).
func targetRanges(partitions int, starts string) ([]model.HashRange, error) {
	switch {
	case partitions != 0 && starts != "":
		return nil, usageError("give --partitions or --ranges, not both")
	case partitions < 0 || partitions > 1024:
		return nil, usageError("--partitions %d: want 1..1024", partitions)
	case partitions > 0:
		return topology.EvenRanges(partitions), nil
	case starts == "":
		return nil, usageError("give --partitions N or --ranges START,START,...")
	}
	var out []model.HashRange
	for i, s := range strings.Split(starts, ",") {
		v, max, err := model.ParseHashBound(strings.TrimSpace(s))
		switch {
		case err != nil:
			return nil, usageError("--ranges: %v", err)
		case max:
			return nil, usageError("--ranges: %s: a range cannot start at 2^64", s)
		case i == 0 && v != 0:
			return nil, usageError("--ranges: the first range starts at 0, not %s", s)
		case i > 0 && v <= out[i-1].Start:
			return nil, usageError("--ranges: %s does not come after %#x", s, out[i-1].Start)
		}
		if i > 0 {
			out[i-1].End = v
		}
		out = append(out, model.HashRange{Start: v}) // End 0: 2^64 unless another follows
	}
	if len(out) > 1024 {
		return nil, usageError("--ranges: %d ranges, at most 1024", len(out))
	}
	return out, nil
}
