package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/snapshot"
)

// backupClustersCmd manages the cluster registry in the bucket: which
// clusters (datacenters) the database has and which are critical, as the
// truncation coordinator reads them (akutan log truncate without
// --clusters).
func (a *app) backupClustersCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "clusters [add NAME | set NAME | remove NAME]",
		Short: "the cluster registry: list, add, mark critical or not, remove",
		Long: `clusters lists the bucket's cluster registry (clusters.json): the
database's clusters and which are critical. The truncation coordinator
(akutan log truncate without --clusters) discards the log's prefix only
below what every critical cluster has checkpointed at every point.

  akutan backup clusters                      list
  akutan backup clusters add dc4 [--critical=false]
  akutan backup clusters set dc4 --critical=false
  akutan backup clusters remove dc4           only once it is not critical

Register a new cluster critical only once its views have checkpointed, or
the coordinator discards nothing until they have; mark a cluster
non-critical before retiring it.`,
		Args: argsBetween(0, 2),
	}
	critical := c.Flags().Bool("critical", true, "with add or set: whether the cluster is critical")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
		defer cancel()
		s, err := a.openStore(ctx)
		if err != nil {
			return err
		}
		var reg *snapshot.ClusterRegistry
		switch {
		case len(args) == 0:
			reg, _, err = snapshot.LoadClusterRegistry(ctx, s)
		case len(args) != 2:
			return usageError("%s needs a cluster name", args[0])
		case args[0] == "add" || args[0] == "set":
			name, add := args[1], args[0] == "add"
			reg, err = snapshot.UpdateClusterRegistry(ctx, s, func(r *snapshot.ClusterRegistry) error {
				known := false
				for _, e := range r.Clusters {
					known = known || e.Name == name
				}
				if !add && !known {
					return fmt.Errorf("%w: %s (add it first)", snapshot.ErrUnknownCluster, name)
				}
				return r.Set(name, *critical)
			})
		case args[0] == "remove":
			reg, err = snapshot.UpdateClusterRegistry(ctx, s, func(r *snapshot.ClusterRegistry) error { return r.Remove(args[1]) })
		default:
			return usageError("unknown clusters command %q: add, set or remove", args[0])
		}
		if err != nil {
			if errors.Is(err, snapshot.ErrUnknownCluster) {
				return exitError{code: exitUsage, err: err}
			}
			return err
		}
		if a.jsonOut {
			clusters := reg.Clusters
			if clusters == nil {
				clusters = []snapshot.ClusterEntry{}
			}
			return a.printJSON(map[string]any{"clusters": clusters, "critical": append([]string{}, reg.Critical()...)})
		}
		if len(reg.Clusters) == 0 {
			fmt.Fprintln(a.stdout, "no clusters registered")
			return nil
		}
		for _, e := range reg.Clusters {
			kind := "critical"
			if !e.Critical {
				kind = "not critical"
			}
			fmt.Fprintf(a.stdout, "%s\t%s\n", e.Name, kind)
		}
		return nil
	}
	return c
}
