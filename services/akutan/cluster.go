package main

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/cluster"
	"github.com/akutan/akutan/infra/topology"
)

func (a *app) clusterCmd() *cobra.Command {
	return a.group("cluster", "operator procedures on the running database: rolling restart, replace a failed server, apply the topology, upgrade, repartition, add or remove a datacenter",
		a.clusterRestartCmd(), a.clusterReplaceCmd(), a.clusterApplyCmd(), a.clusterUpgradeCmd(),
		a.clusterRepartitionCmd(), a.clusterAddDCCmd(), a.clusterRemoveDCCmd())
}

// clusterFlags are what every procedure takes: the topology, the driver
// and --dry-run.
type clusterFlags struct {
	topo   topologyFlags
	ctl    string
	dryRun bool
	settle time.Duration
	loaded *topology.Topology // by procedures
}

func (f *clusterFlags) add(c *cobra.Command) {
	f.topo.add(c)
	c.Flags().StringVar(&f.ctl, "ctl", "localstack/ctl.sh", "the local stack's driver script (the stack's environment, AKUTAN_STACK_DIR and AKUTAN_BASE_PORT, is passed on)")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the plan and the state now, change nothing")
	c.Flags().DurationVar(&f.settle, "settle", 30*time.Second, "observe a refusing step's gate again for this long before refusing (a leader election, a view catching up)")
}

// procedures loads the topology and wires the local driver and the
// observer; done releases them.
func (a *app) procedures(f *clusterFlags) (*cluster.Procedures, *cluster.Runner, func(), error) {
	t, err := f.topo.load()
	if err != nil {
		return nil, nil, nil, err
	}
	f.loaded = t
	if _, err := os.Stat(f.ctl); err != nil {
		return nil, nil, nil, usageError("--ctl %s: %v", f.ctl, err)
	}
	servers := t.Servers()
	obs := cluster.NewObserver(servers)
	// ctl.sh reads the same topology file (AKUTAN_TOPOLOGY).
	file, err := filepath.Abs(f.topo.file)
	if err != nil {
		return nil, nil, nil, err
	}
	p := &cluster.Procedures{
		Servers: servers,
		Driver:  &cluster.LocalDriver{Script: f.ctl, Out: a.stdout, Env: append(os.Environ(), "AKUTAN_TOPOLOGY="+file)},
		Obs:     obs,
		Admin:   obs.Admin(),
		Out:     a.stdout,
	}
	return p, &cluster.Runner{Obs: obs, Out: a.stdout, DryRun: f.dryRun, Settle: f.settle}, obs.Close, nil
}

// refusal gives a gate's refusal exit code 3, as a problem found.
func refusal(err error) error {
	if errors.Is(err, cluster.ErrRefused) {
		return exitError{code: exitProblems, err: err}
	}
	return err
}

func (a *app) clusterRestartCmd() *cobra.Command {
	var f clusterFlags
	var dc, role string
	c := &cobra.Command{
		Use:   "restart -f TOPOLOGY [--dc DC] [--role log|view|api] [--dry-run]",
		Short: "rolling restart, checking health before every step",
		Long: `restart restarts the servers of the topology one at a time: the log voters
first (leadership moved away, each rejoining and catching up before the
next), then each datacenter's views and API servers. A view that is its
range's only one in its datacenter is covered meanwhile by a temporary view
that boots from the bucket and must be up to date first; an API server that
is its datacenter's only one by a temporary API server. Before every step
it observes the database (log Info, each datacenter's Status) and refuses,
exit code 3, when the step would break a datacenter's full availability or
the log's quorum. It prints the plan first; --dry-run stops there. Running
it again after an interruption continues safely.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r topology.Role
			if role != "" {
				var err error
				if r, err = topology.ParseRole(role); err != nil {
					return usageError("--role: %v", err)
				}
			}
			p, run, done, err := a.procedures(&f)
			if err != nil {
				return err
			}
			defer done()
			if dc != "" && !hasDC(f.loaded, dc) {
				return usageError("--dc %s: the topology has no such datacenter", dc)
			}
			return refusal(run.Run(cmd.Context(), p.RestartPlan(dc, r)))
		},
	}
	f.add(c)
	c.Flags().StringVar(&dc, "dc", "", "only this datacenter's servers")
	c.Flags().StringVar(&role, "role", "", "only servers of this role: log, view or api")
	return c
}

func (a *app) clusterReplaceCmd() *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:   "replace SERVER -f TOPOLOGY [--dry-run]",
		Short: "recover a failed server (by its topology name)",
		Long: `replace recovers the server SERVER (its name in the topology, as akutan
topology servers lists it). A view is rebuilt on a wiped data dir, booting
from the bucket and replaying the log, while a temporary view of the same
range keeps its datacenter fully available. A log voter is removed from the
Raft configuration, wiped, started on the empty disk and added back as a
voter, then waited for until it has caught up. An API server is started
again. Health is checked before every step (exit code 3 on a refusal);
--dry-run prints the plan only.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, run, done, err := a.procedures(&f)
			if err != nil {
				return err
			}
			defer done()
			plan, err := p.ReplacePlan(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			return refusal(run.Run(cmd.Context(), plan))
		},
	}
	f.add(c)
	return c
}

func (a *app) clusterApplyCmd() *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:   "apply -f TOPOLOGY [--dry-run]",
		Short: "reconcile the running database toward the topology file",
		Long: `apply compares the topology file with what runs (the driver's processes,
the log's members, each datacenter's Status) and plans the difference:
start the log voters, views and API servers that do not run (a log voter
that is not a member joins on an empty disk and is added as a voter; a view
on an empty data dir boots from the bucket), publish the views a datacenter
does not list, and wait for each; then, only once those are up to date,
retire the views a datacenter lists that the topology does not (such as a
temporary view left by an interrupted procedure) and remove log members it
does not name. Every step is gated like restart's (exit code 3 on a
refusal). The plan is computed afresh on each run, so rerunning continues
an interrupted apply, and prints "nothing to do" once the database matches.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, run, done, err := a.procedures(&f)
			if err != nil {
				return err
			}
			defer done()
			st, err := p.Obs.Observe(cmd.Context())
			if err != nil {
				return err
			}
			plan, err := p.ApplyPlan(cmd.Context(), st)
			if err != nil {
				return err
			}
			return refusal(run.Run(cmd.Context(), plan))
		},
	}
	f.add(c)
	return c
}
