package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/cluster"
	"github.com/akutan/akutan/infra/topology"
)

func (a *app) clusterUpgradeCmd() *cobra.Command {
	var f clusterFlags
	var bin, dc, role string
	c := &cobra.Command{
		Use:   "upgrade --bin DIR -f TOPOLOGY [--dc DC] [--role log|view|api] [--dry-run]",
		Short: "move the servers onto the binaries in DIR (an upgrade, or a rollback), checking health before every step",
		Long: `upgrade moves the servers of the topology onto the binaries in DIR
(akutan-log, akutan-view and akutan-api, as make build puts them in bin/):
the log voters in place, one at a time, leadership moved away first, each
rejoining and catching up before the next; then each datacenter's views,
each replaced by one on the new binaries that boots from the bucket and
must be up to date before the old one's state is deleted (a temporary view
covers a range that has only one view in its datacenter); then its API
servers (a temporary one serving while a datacenter has only one). Each
server must report the new build before the next step.

Rolling back is the same command with the old binaries. It is refused,
exit code 3, changing nothing, when the log's entry version is above what
the binaries in DIR support (their --version says; akutan log set-version
cannot be undone). Every step is gated like restart's (exit code 3 on a
refusal). A server already on DIR's build is skipped, so running it again
after an interruption continues. --dry-run prints the plan only.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bin == "" {
				return usageError("--bin DIR is required")
			}
			var r topology.Role
			if role != "" {
				var err error
				if r, err = topology.ParseRole(role); err != nil {
					return usageError("--role: %v", err)
				}
			}
			bins, err := cluster.ReadBinaries(cmd.Context(), bin)
			if err != nil {
				return usageError("--bin %s: %v", bin, err)
			}
			p, run, done, err := a.procedures(&f)
			if err != nil {
				return err
			}
			defer done()
			if dc != "" && !hasDC(f.loaded, dc) {
				return usageError("--dc %s: the topology has no such datacenter", dc)
			}
			fmt.Fprintf(a.stdout, "binaries %s\n", bins)
			st, err := p.Obs.Observe(cmd.Context())
			if err != nil {
				return err
			}
			builds, err := p.Builds(cmd.Context(), st)
			if err != nil {
				return err
			}
			plan, err := p.UpgradePlan(bins, st, builds, dc, r)
			if err != nil {
				return refusal(err)
			}
			return refusal(run.Run(cmd.Context(), plan))
		},
	}
	f.add(c)
	c.Flags().StringVar(&bin, "bin", "", "the directory of the binaries to run (required)")
	c.Flags().StringVar(&dc, "dc", "", "only this datacenter's servers")
	c.Flags().StringVar(&role, "role", "", "only servers of this role: log, view or api")
	return c
}
