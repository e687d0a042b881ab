package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/infra/topology"
)

func (a *app) topologyCmd() *cobra.Command {
	return a.group("topology", "the declarative topology file: check it, list its servers",
		a.topologyServersCmd(), a.topologyCheckCmd())
}

// topologyFlags are the flags that read a topology file and override it.
type topologyFlags struct {
	file                 string
	basePort             int
	partitions, replicas int
}

func (f *topologyFlags) add(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVarP(&f.file, "topology", "f", "", "the topology file (required)")
	fs.IntVar(&f.basePort, "base-port", 0, "derive the addresses the file leaves out from this port base instead of its ports.base")
	fs.IntVar(&f.partitions, "partitions", 0, "replace every space's partitioning in every DC by this many even ranges")
	fs.IntVar(&f.replicas, "replicas", 0, "give every range of every space in every DC this many views")
}

// load reads, overrides and validates the file.
func (f *topologyFlags) load() (*topology.Topology, error) {
	if f.file == "" {
		return nil, usageError("--topology (-f) is required")
	}
	t, err := topology.Load(f.file)
	if err != nil {
		return nil, err
	}
	if f.basePort != 0 {
		if t.Ports == nil {
			t.Ports = &topology.Ports{}
		}
		t.Ports.Base = f.basePort
	}
	if f.partitions < 0 || f.replicas < 0 {
		return nil, usageError("--partitions and --replicas take a number >= 1")
	}
	t.SetEven(f.partitions, f.replicas)
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.file, err)
	}
	return t, nil
}

const topologyServersLong = `servers lists every server the topology file asks for, one per line,
DC by DC in file order (log voters, then views, then API servers), with
these tab-separated fields, "-" where one does not apply:

  ROLE  DC  NAME  ADDR  RAFT  SPACE  START  END

ROLE is log, view or api; ADDR the gRPC address; RAFT a log voter's Raft
address; SPACE (HashSP or HashPO), START and END a view's hash range
[START, END), in 0x hex, END max for 2^64. With --json: one document, a
list of servers (range_end 0 stands for 2^64). The local stack
(localstack/lib.sh) reads this.`

func (a *app) topologyServersCmd() *cobra.Command {
	var f topologyFlags
	var dc, role string
	c := &cobra.Command{
		Use:         "servers -f FILE [--dc DC] [--role log|view|api] [--base-port N]",
		Short:       "list the servers of a topology file",
		Long:        topologyServersLong,
		Args:        noArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			var want topology.Role
			if role != "" {
				var err error
				if want, err = topology.ParseRole(role); err != nil {
					return usageError("--role: %v", err)
				}
			}
			t, err := f.load()
			if err != nil {
				return err
			}
			if dc != "" && !hasDC(t, dc) {
				return usageError("--dc %q: the file has no such datacenter", dc)
			}
			var list []topology.Server
			for _, s := range t.Servers() {
				if (dc == "" || s.DC == dc) && (want == "" || s.Role == want) {
					list = append(list, s)
				}
			}
			if a.jsonOut {
				out := make([]map[string]any, 0, len(list))
				for _, s := range list {
					out = append(out, serverJSON(s))
				}
				return a.printJSON(out)
			}
			for _, s := range list {
				fmt.Fprintln(a.stdout, serverLine(s))
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&dc, "dc", "", "only this datacenter's servers")
	c.Flags().StringVar(&role, "role", "", "only servers of this role: log, view or api")
	return c
}

func (a *app) topologyCheckCmd() *cobra.Command {
	var f topologyFlags
	c := &cobra.Command{
		Use:   "check -f FILE",
		Short: "validate a topology file; exit code 3 when it has problems",
		Long: `check reads a topology file strictly and validates it, printing every
problem with its place. Exit code 0 when the file is valid, 3 when it has
problems, 1 when it cannot be read or parsed.`,
		Args:        noArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := f.load()
			var verr *topology.ValidationError
			if errors.As(err, &verr) {
				for _, p := range verr.Problems {
					fmt.Fprintln(a.stdout, p)
				}
				return problems
			}
			if err != nil {
				return err
			}
			servers := t.Servers()
			counts := map[topology.Role]int{}
			for _, s := range servers {
				counts[s.Role]++
			}
			fmt.Fprintf(a.stdout, "ok: %d datacenter(s), %d log voter(s), %d view(s), %d API server(s)\n",
				len(t.Datacenters), counts[topology.RoleLog], counts[topology.RoleView], counts[topology.RoleAPI])
			return nil
		},
	}
	f.add(c)
	return c
}

func hasDC(t *topology.Topology, name string) bool {
	for _, d := range t.Datacenters {
		if d != nil && d.Name == name {
			return true
		}
	}
	return false
}

// dash is s, or "-" when empty: a field that read(1) keeps in place.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// serverLine is one tab-separated line of topology servers.
func serverLine(s topology.Server) string {
	space, start, end := "-", "-", "-"
	if s.Role == topology.RoleView {
		space, start, end = s.Space.String(), fmt.Sprintf("%#x", s.Range.Start), "max"
		if s.Range.End != 0 {
			end = fmt.Sprintf("%#x", s.Range.End)
		}
	}
	return strings.Join([]string{string(s.Role), dash(s.DC), s.Name, dash(s.Addr), dash(s.Raft), space, start, end}, "\t")
}

func serverJSON(s topology.Server) map[string]any {
	out := map[string]any{"name": s.Name, "role": string(s.Role), "dc": s.DC, "addr": s.Addr}
	switch s.Role {
	case topology.RoleLog:
		out["raft"] = s.Raft
	case topology.RoleView:
		out["space"] = s.Space.String()
		out["range_start"] = s.Range.Start
		out["range_end"] = s.Range.End // 0 stands for 2^64
		out["partition"] = s.Partition
		out["replica"] = s.Replica
	}
	return out
}
