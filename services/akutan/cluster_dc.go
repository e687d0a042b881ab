package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/cluster"
)

func (a *app) clusterAddDCCmd() *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:   "add-dc DC -f TOPOLOGY [--dry-run]",
		Short: "provision a datacenter's cluster, from the bucket, for the running database",
		Long: `add-dc provisions the cluster of DC, which the topology file lists (add it
there first), for a running database whose log prefix may long be
discarded. It registers DC in the bucket's cluster registry (--store) as
not critical, joins the log voters the file gives DC as voters and waits
until they catch up, starts its API servers, and starts its views on empty
data dirs: each boots from the bucket's checkpoints and replays the log's
tail (or the archive), never copying from another datacenter's servers, and
is waited for until up to date. Once DC is fully available it is marked
critical, so the truncation coordinator from then on keeps the log's prefix
until DC's own checkpoints cover it.

With DC registered critical and fully available there is nothing to do. An
interrupted run continues when run again; --dry-run prints the plan only.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDCPlan(cmd, &f, args[0], (*cluster.Procedures).AddDCPlan)
		},
	}
	f.add(c)
	return c
}

func (a *app) clusterRemoveDCCmd() *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:   "remove-dc DC -f TOPOLOGY [--dry-run]",
		Short: "retire a datacenter's cluster: non-critical first, then its servers",
		Long: `remove-dc retires the cluster of DC. It first marks DC non-critical in the
bucket's cluster registry (--store), so the truncation coordinator stops
counting on DC's checkpoints before anything goes; then stops DC's API
servers (its clients go to the other datacenters), unpublishes, stops and
wipes its views, removes its log voters from the Raft configuration (each
only when the other voters keep a quorum) and wipes them, and finally drops
DC from the registry. It refuses (exit code 3) to remove the last
datacenter with views, and to start while no other datacenter is fully
available. It does not edit the topology file: delete DC from it afterwards,
or cluster apply would provision DC again. Running it again continues an
interrupted removal; --dry-run prints the plan only.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.runDCPlan(cmd, &f, args[0], (*cluster.Procedures).RemoveDCPlan)
			if err == nil && !f.dryRun {
				fmt.Fprintf(a.stdout, "now delete datacenter %s from %s: while the file lists it, cluster apply would provision it again\n", args[0], f.topo.file)
			}
			return err
		},
	}
	f.add(c)
	return c
}

// runDCPlan observes the database, plans add-dc or remove-dc of dc with
// the bucket's cluster registry, and runs the plan.
func (a *app) runDCPlan(cmd *cobra.Command, f *clusterFlags, dc string,
	planOf func(*cluster.Procedures, context.Context, *cluster.State, cluster.Registry, string) (*cluster.Plan, error)) error {
	ctx := cmd.Context()
	p, run, done, err := a.procedures(f)
	if err != nil {
		return err
	}
	defer done()
	if !hasDC(f.loaded, dc) {
		return usageError("%s: %v", dc, cluster.ErrNoSuchDC)
	}
	store, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	st, err := p.Obs.Observe(ctx)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	plan, err := planOf(p, ctx, st, cluster.StoreRegistry{Store: store}, dc)
	if errors.Is(err, cluster.ErrNoSuchDC) {
		return usageError("%v", err)
	}
	if err != nil {
		return refusal(err)
	}
	return refusal(run.Run(ctx, plan))
}
