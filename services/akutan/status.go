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
		Short: "each datacenter's verdicts; exit code 3 unless all are fully available",
		Long: `status asks every API server of --api for its datacenter's state and
prints the log (global), then each datacenter: its verdicts (fully
available, healthy) and what is missing, its views and its API servers. A
datacenter is one cluster: an API server judges only its own datacenter's
views. Several API servers of one datacenter are asked once between them.

Exit code 0 when every datacenter that answered is fully available and no
API server failed to answer, 3 otherwise, 1 when none answered.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(a.api)
			if err != nil {
				return err
			}
			defer client.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			rep := gatherStatus(ctx, client)
			if len(rep.dcs) == 0 {
				return noServer(rep.errs)
			}
			if a.jsonOut {
				if err := a.printJSON(rep.json()); err != nil {
					return err
				}
			} else {
				rep.print(a.stdout)
			}
			if len(rep.unreachable) > 0 {
				return problems
			}
			for _, st := range rep.dcs {
				if !st.FullyAvailable.GetOk() {
					return problems
				}
			}
			return nil
		},
	}
}

// statusReport is what the API servers of --api said, one answer per
// datacenter.
type statusReport struct {
	dcs         []*apipb.StatusResponse // in the order of --api
	answeredBy  []string                // the address that answered for each
	unreachable []unreachableAPI
	errs        []error
}

type unreachableAPI struct {
	Address string `json:"address"`
	Error   string `json:"error"`
}

// gatherStatus asks each API server in turn, skipping those of a
// datacenter that already answered.
func gatherStatus(ctx context.Context, client *apiClient) *statusReport {
	rep := &statusReport{}
	seen := map[string]bool{}
	for _, addr := range client.addrs {
		if ctx.Err() != nil {
			break
		}
		st, err := statusOf(ctx, client, addr)
		if err != nil {
			rep.unreachable = append(rep.unreachable, unreachableAPI{addr, err.Error()})
			rep.errs = append(rep.errs, fmt.Errorf("api server %s: %w", addr, err))
			continue
		}
		dc := st.GetDc()
		if dc == "" {
			dc = addr // an API server started without --dc is its own cluster
		}
		if seen[dc] {
			continue
		}
		seen[dc] = true
		rep.dcs = append(rep.dcs, st)
		rep.answeredBy = append(rep.answeredBy, addr)
	}
	return rep
}

// statusOf asks the API server at addr for its datacenter's status.
func statusOf(ctx context.Context, client *apiClient, addr string) (*apipb.StatusResponse, error) {
	cc, err := client.ready(ctx, addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return apipb.NewAkutanClient(cc).Status(ctx, &apipb.StatusRequest{})
}

// log is the log's state as the most informed answer saw it: the log is
// global, every datacenter's API server asks the same replicas.
func (r *statusReport) log() *apipb.LogStatus {
	best := r.dcs[0].GetLog()
	for _, st := range r.dcs[1:] {
		if l := st.GetLog(); (l.GetAvailable() && !best.GetAvailable()) || (l.GetAvailable() == best.GetAvailable() && l.GetLastIndex() > best.GetLastIndex()) {
			best = l
		}
	}
	return best
}

func dcName(st *apipb.StatusResponse, addr string) string {
	if st.GetDc() != "" {
		return st.GetDc()
	}
	return addr
}

// json is status --json: the log, then per datacenter its verdicts, views
// and API servers, and the API servers that did not answer.
func (r *statusReport) json() map[string]any {
	dcs := []any{}
	for i, st := range r.dcs {
		views := []any{}
		for _, v := range st.GetViews() {
			m := protoJSON(v)
			m["dc"] = dcName(st, r.answeredBy[i])
			m["applied"] = v.GetLastApplied()
			views = append(views, m)
		}
		apis := []any{}
		for _, a := range st.GetApiServers() {
			apis = append(apis, protoJSON(a))
		}
		dcs = append(dcs, map[string]any{
			"dc":                    dcName(st, r.answeredBy[i]),
			"answered_by":           r.answeredBy[i],
			"version":               st.GetVersion(),
			"max_supported_version": st.GetMaxSupportedVersion(),
			"fully_available":       protoJSON(st.GetFullyAvailable()),
			"healthy":               protoJSON(st.GetHealthy()),
			"views":                 views,
			"api_servers":           apis,
		})
	}
	unreachable := []unreachableAPI{}
	unreachable = append(unreachable, r.unreachable...)
	return map[string]any{"log": protoJSON(r.log()), "dcs": dcs, "unreachable_api_servers": unreachable}
}

func (r *statusReport) print(out io.Writer) {
	printLog(out, r.log())
	for i, st := range r.dcs {
		fmt.Fprintln(out)
		printDC(out, st, r.answeredBy[i])
	}
	if len(r.unreachable) > 0 {
		fmt.Fprintln(out, "\nAPI servers that did not answer (their datacenters are not judged):")
		for _, u := range r.unreachable {
			fmt.Fprintf(out, "  %s\t%s\n", u.Address, u.Error)
		}
	}
}

func verdict(v *apipb.Verdict) string {
	if v.GetOk() {
		return "yes"
	}
	return "NO"
}

func printLog(out io.Writer, l *apipb.LogStatus) {
	avail := "available"
	if !l.GetAvailable() {
		avail = "UNAVAILABLE: " + l.GetError()
	}
	fmt.Fprintf(out, "log: %s; indexes %d..%d; leader %s; version %d\n", avail, l.GetFirstIndex(), l.GetLastIndex(), orNone(l.GetLeader()), l.GetVersion())
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  REPLICA\tADDRESS\tAPPLIED\tSUPPORTS\tSTATUS")
	for _, m := range l.GetMembers() {
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\n", m.Id, orNone(m.Address), m.AppliedIndex, versionOrNone(m.MaxSupportedVersion), okOr(m.Error))
	}
	w.Flush()
}

func versionOrNone(v uint32) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("v%d", v)
}

// printDC prints one datacenter's verdicts, views and API servers.
func printDC(out io.Writer, st *apipb.StatusResponse, answeredBy string) {
	fmt.Fprintf(out, "%s: fully available: %s    healthy: %s\n", dcName(st, answeredBy), verdict(st.FullyAvailable), verdict(st.Healthy))
	for _, m := range st.FullyAvailable.GetMissing() {
		fmt.Fprintf(out, "  missing for availability: %s\n", m)
	}
	for _, m := range st.Healthy.GetMissing() {
		fmt.Fprintf(out, "  missing for health: %s\n", m)
	}
	fmt.Fprintln(out, "  views:")
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "    ADDRESS\tSPACE\tRANGE\tAPPLIED\tLAG\tCHECKPOINT\tSTATE\tSTATUS")
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
		fmt.Fprintf(w, "    %s\t%s\t[%#x, %s)\t%d\t%d\t%d\t%s\t%s\n", v.Address, orNone(v.Space), v.RangeStart, end, v.LastApplied, v.Lag, v.CheckpointIndex, orNone(state), okOr(problem))
	}
	w.Flush()
	fmt.Fprintln(out, "  API servers:")
	for _, a := range st.ApiServers {
		fmt.Fprintf(out, "    %s\t%s\n", a.Address, okOr(a.Error))
	}
	if st.Version != "" {
		fmt.Fprintf(out, "  answered by %s (akutan-api %s)\n", answeredBy, st.Version)
	}
}
