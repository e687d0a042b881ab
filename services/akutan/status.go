package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/akutan/akutan/proto/apipb"
)

// statusCmd prints the cluster status and exits non-zero unless the cluster is
// fully available.
func statusCmd(ctx context.Context, args []string, out io.Writer) error {
	fs, addr := apiFlags("status", "status [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("status takes no arguments")
	}
	client, closeFn, err := dialAPI(*addr)
	if err != nil {
		return err
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := client.Status(cctx, &apipb.StatusRequest{})
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(b))
	} else {
		printStatus(out, st)
	}
	if !st.FullyAvailable.GetOk() {
		return exitError{1}
	}
	return nil
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
}

func okOr(err string) string {
	if err == "" {
		return "ok"
	}
	return err
}
