package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/proto/apipb"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "cluster status; exit code 3 unless fully available",
		Long: `status prints the cluster's verdicts (fully available, healthy) and what
is missing, the log, every view and every API server, as one API server
sees them; it asks the next API server when one is unavailable.
Exit code 0 when the cluster is fully available, 3 when it is not, 1 when
no API server answered.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(a.api)
			if err != nil {
				return err
			}
			defer client.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var st *apipb.StatusResponse
			err = client.read(ctx, 10*time.Second, func(ctx context.Context, c apipb.AkutanClient) error {
				var err error
				st, err = c.Status(ctx, &apipb.StatusRequest{})
				return err
			})
			if err != nil {
				return err
			}
			if a.jsonOut {
				out := protoJSON(st)
				out["answered_by"] = client.addrs[client.next]
				if err := a.printJSON(out); err != nil {
					return err
				}
			} else {
				printStatus(a.stdout, st)
			}
			if !st.FullyAvailable.GetOk() {
				return problems
			}
			return nil
		},
	}
}

func verdict(v *apipb.Verdict) string {
	if v.GetOk() {
		return "yes"
	}
	return "NO"
}

func printStatus(out io.Writer, st *apipb.StatusResponse) {
	fmt.Fprintf(out, "fully available: %s    healthy: %s\n", verdict(st.FullyAvailable), verdict(st.Healthy))
	for _, m := range st.FullyAvailable.GetMissing() {
		fmt.Fprintf(out, "  missing for availability: %s\n", m)
	}
	for _, m := range st.Healthy.GetMissing() {
		fmt.Fprintf(out, "  missing for health: %s\n", m)
	}
	l := st.Log
	avail := "available"
	if !l.GetAvailable() {
		avail = "UNAVAILABLE: " + l.GetError()
	}
	fmt.Fprintf(out, "\nlog: %s; indexes %d..%d; leader %s\n", avail, l.GetFirstIndex(), l.GetLastIndex(), orNone(l.GetLeader()))
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  REPLICA\tADDRESS\tAPPLIED\tSTATUS")
	for _, m := range l.GetMembers() {
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s\n", m.Id, orNone(m.Address), m.AppliedIndex, okOr(m.Error))
	}
	w.Flush()
	fmt.Fprintln(out, "\nviews:")
	w = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  ADDRESS\tSPACE\tRANGE\tAPPLIED\tLAG\tCHECKPOINT\tSTATE\tSTATUS")
	for _, v := range st.Views {
		end := fmt.Sprintf("%#x", v.RangeEnd)
		if v.RangeEnd == 0 {
			end = "2^64"
		}
		state := v.State
		if !v.UpToDate && v.Reachable {
			state += " (stale)"
		}
		if v.BootBytesTotal > 0 && v.BootBytesDone < v.BootBytesTotal {
			state += fmt.Sprintf(" (downloading %s of %s)", humanBytes(v.BootBytesDone), humanBytes(v.BootBytesTotal))
		}
		problem := v.Error
		if problem == "" && v.CheckpointError != "" {
			problem = "checkpoint failed: " + v.CheckpointError
		}
		fmt.Fprintf(w, "  %s\t%s\t[%#x, %s)\t%d\t%d\t%d\t%s\t%s\n", v.Address, orNone(v.Space), v.RangeStart, end, v.LastApplied, v.Lag, v.CheckpointIndex, orNone(state), okOr(problem))
	}
	w.Flush()
	fmt.Fprintln(out, "\nAPI servers:")
	for _, a := range st.ApiServers {
		fmt.Fprintf(out, "  %s\t%s\n", a.Address, okOr(a.Error))
	}
	if st.Version != "" {
		fmt.Fprintf(out, "\nanswered by akutan-api %s\n", st.Version)
	}
}
