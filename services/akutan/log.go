package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
)

func (a *app) logCmd() *cobra.Command {
	return a.group("log", "the replicated log: describe it, read it, change its membership, truncate it, change its version",
		a.logInfoCmd(), a.logTailCmd(),
		a.membershipCmd("add-voter ID RAFT-ADDR GRPC-ADDR", "add a replica to the Raft cluster", 3, 3),
		a.membershipCmd("remove ID", "remove a replica from the Raft cluster", 1, 1),
		a.membershipCmd("transfer-leader [ID]", "hand leadership to ID (or any voter)", 0, 1),
		a.logTruncateCmd(), a.logSetVersionCmd())
}

func (a *app) admin() (*logclient.Admin, error) {
	if len(a.log) == 0 {
		return nil, usageError("no log replica addresses (--log)")
	}
	return logclient.NewAdmin(a.log), nil
}

func (a *app) logInfoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "info",
		Short: "describe the log and its replicas; exit code 3 if a replica is unhealthy",
		Args:  noArgs,
	}
	lin := c.Flags().Bool("linearizable", false, "have the leader confirm its leadership and commit index")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		admin, err := a.admin()
		if err != nil {
			return err
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
		defer cancel()
		in, err := admin.Info(ctx, &logpb.InfoRequest{Linearizable: *lin})
		if err != nil {
			return err
		}
		if a.jsonOut {
			if err := a.printJSON(protoJSON(in)); err != nil {
				return err
			}
			return membersHealthy(in)
		}
		fmt.Fprintf(a.stdout, "log: first index %d, last index %d, archived through %d, version %d\n", in.FirstIndex, in.LastIndex, in.ArchivedThrough, in.LogVersion)
		fmt.Fprintf(a.stdout, "leader: %s (%s), term %d; answered by %s\n", orNone(in.LeaderId), orNone(in.LeaderAddress), in.Term, in.NodeId)
		w := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "MEMBER\tROLE\tRAFT\tGRPC\tAPPLIED\tSUPPORTS\tSTATUS")
		for _, m := range in.Members {
			role := "voter"
			if !m.Voter {
				role = "nonvoter"
			}
			if m.Id == in.LeaderId {
				role = "leader"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.Id, role, m.RaftAddress, orNone(m.GrpcAddress), m.AppliedIndex, m.MaxSupportedVersion, okOr(m.Error))
		}
		w.Flush()
		if in.Error != "" {
			return fmt.Errorf("replica %s: %s", in.NodeId, in.Error)
		}
		return membersHealthy(in)
	}
	return c
}

// membersHealthy fails with exit code 3 when a member is unreachable,
// unregistered or stopped, so scripts can wait for a healthy log.
func membersHealthy(in *logpb.InfoResponse) error {
	for _, m := range in.Members {
		if m.Error != "" {
			return problems
		}
	}
	return nil
}

// tailEntry is the JSON of one log entry.
type tailEntry struct {
	Index   uint64 `json:"index"`
	Version uint32 `json:"version"`
	// Command is transaction, decision, version_change, ping, or
	// undecodable.
	Command  string `json:"command"`
	Inserts  int    `json:"inserts,omitempty"`
	Deletes  int    `json:"deletes,omitempty"`
	NewNodes uint32 `json:"new_nodes,omitempty"`
	Commit   *bool  `json:"commit,omitempty"`
	TxIndex  uint64 `json:"tx_index,omitempty"`
	To       uint32 `json:"to_version,omitempty"`
	Bytes    int    `json:"bytes"`
	Summary  string `json:"summary"`
}

func (a *app) logTailCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "tail",
		Short: "print log entries (below the log's first index, from the archive)",
		Long: `tail prints the log's entries from --from through the last committed one,
or keeps following with --follow. Entries the log has discarded are read from
the archive (--store; "" for none). With --json it prints one document
{"entries": [...]}, or with --follow one entry per line.`,
		Args: noArgs,
	}
	from := c.Flags().Uint64("from", 1, "first index to print")
	follow := c.Flags().Bool("follow", false, "keep printing new entries as they commit")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		var last uint64
		if !*follow {
			admin, err := a.admin()
			if err != nil {
				return err
			}
			in, err := admin.Info(ctx, &logpb.InfoRequest{Linearizable: true, LocalOnly: true})
			admin.Close()
			if err != nil {
				return err
			}
			last = in.LastIndex
		}
		entries := []tailEntry{}
		if *follow || last >= *from {
			r := logclient.NewReader(a.log)
			defer r.Close()
			if a.store != "" {
				archive, err := a.openStore(ctx)
				if err != nil {
					return err
				}
				r.UseArchive(archive)
			}
			done := errors.New("done")
			err := r.Stream(ctx, *from, func(es []logclient.Entry) error {
				for _, e := range es {
					te := describe(e.Index, e.Data)
					switch {
					case a.jsonOut && *follow:
						if err := a.printJSONLine(te); err != nil {
							return err
						}
					case a.jsonOut:
						entries = append(entries, te)
					default:
						fmt.Fprintf(a.stdout, "%d\t%s\n", e.Index, te.Summary)
					}
					if !*follow && e.Index >= last {
						return done
					}
				}
				return nil
			})
			if err != nil && !errors.Is(err, done) && !errors.Is(err, context.Canceled) {
				return err
			}
		}
		if a.jsonOut && !*follow {
			return a.printJSON(map[string]any{"entries": entries})
		}
		return nil
	}
	return c
}

// describe decodes one entry for people and for JSON.
func describe(index uint64, data []byte) tailEntry {
	te := tailEntry{Index: index, Bytes: len(data)}
	var env entrypb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		te.Command = "undecodable"
		te.Summary = fmt.Sprintf("undecodable entry (%d bytes): %v", len(data), err)
		return te
	}
	te.Version = env.Version
	switch c := env.Command.(type) {
	case *entrypb.Envelope_Transaction:
		te.Command = "transaction"
		te.Inserts, te.Deletes, te.NewNodes = len(c.Transaction.Inserts), len(c.Transaction.Deletes), c.Transaction.NewNodes
		te.Summary = fmt.Sprintf("v%d transaction: %d inserts, %d deletes, %d new nodes", env.Version, te.Inserts, te.Deletes, te.NewNodes)
	case *entrypb.Envelope_Decision:
		te.Command = "decision"
		commit := c.Decision.Commit
		te.Commit, te.TxIndex = &commit, c.Decision.TxIndex
		te.Summary = fmt.Sprintf("v%d decision: commit=%v for %d", env.Version, commit, c.Decision.TxIndex)
	case *entrypb.Envelope_VersionChange:
		te.Command = "version_change"
		te.To = c.VersionChange.ToVersion
		te.Summary = fmt.Sprintf("v%d version change to %d", env.Version, te.To)
	case *entrypb.Envelope_Ping:
		te.Command = "ping"
		te.Summary = fmt.Sprintf("v%d ping %q", env.Version, c.Ping.Nonce)
	default:
		te.Command = "unknown"
		te.Summary = fmt.Sprintf("v%d unknown command (%d bytes)", env.Version, len(data))
	}
	return te
}

// membershipCmd is add-voter, remove or transfer-leader.
func (a *app) membershipCmd(use, short string, minArgs, maxArgs int) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  argsBetween(minArgs, maxArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			admin, err := a.admin()
			if err != nil {
				return err
			}
			defer admin.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var resp *logpb.MembershipResponse
			switch cmd.Name() {
			case "add-voter":
				resp, err = admin.AddVoter(ctx, args[0], args[1], args[2])
			case "remove":
				resp, err = admin.RemoveServer(ctx, args[0])
			default:
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				resp, err = admin.TransferLeader(ctx, id)
			}
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]string{"leader_id": resp.LeaderId})
			}
			fmt.Fprintf(a.stdout, "done; leader is %s\n", orNone(resp.LeaderId))
			return nil
		},
	}
}
