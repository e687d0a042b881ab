package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
)

const setVersionLong = `set-version appends a version change to version N to the log: entries after
it may be written in format N. It cannot be undone: a server that supports
only an older version stops applying the log at the change, and stays
stopped until it is upgraded.

So it first checks that every critical server reports support for N:
  - every log replica (the log's members, from --log);
  - every view of every datacenter, as the API servers see them;
  - every API server of --api (so list them all).
It names each server that does not support N or could not be asked, and
then refuses (exit code 3) and appends nothing. The log itself refuses the
change too unless every log replica supports N.

--dry-run prints the checks and the entry it would append, and appends
nothing. Otherwise the change needs --yes, or a "yes" typed on a terminal.
Running it again once the log is at N changes nothing. With --json it
prints one document: the checks, what was refused, and what was appended.

Exit codes: 0 done (or nothing to do, or a dry run whose checks pass),
1 error, 2 usage (also: no --yes and no terminal), 3 refused: a server does
not support N or could not be asked.`

func (a *app) logSetVersionCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "set-version N",
		Short: "raise the log entry version to N once every server supports it; cannot be undone",
		Long:  setVersionLong,
		Args:  argsBetween(1, 1),
	}
	dryRun := c.Flags().Bool("dry-run", false, "print the checks and the entry it would append; append nothing")
	yes := c.Flags().Bool("yes", false, "confirm the change, which cannot be undone (otherwise asked on a terminal)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		n, err := strconv.ParseUint(args[0], 10, 32)
		if err != nil || n < 2 {
			return usageError("set-version: N must be a version above 1, got %q", args[0])
		}
		admin, err := a.admin()
		if err != nil {
			return err
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
		defer cancel()
		p, err := a.planVersion(ctx, admin, uint32(n))
		if err != nil {
			return err
		}
		p.DryRun = *dryRun
		switch {
		case p.From >= p.To:
			// Nothing to append: done already, or a step down.
		case len(p.Refused) > 0, *dryRun:
		case !*yes && !a.confirm(p):
			return exitError{code: exitUsage, err: fmt.Errorf("not confirmed: the change to version %d cannot be undone; run again with --yes", p.To)}
		default:
			p.Index, err = admin.ChangeVersion(ctx, p.From, p.To)
			p.Appended = err == nil
			p.Error = errString(err)
		}
		if perr := a.printVersionPlan(p); perr != nil {
			return perr
		}
		switch {
		case p.From > p.To:
			return fmt.Errorf("the log is at version %d; versions only go up", p.From)
		case p.From == p.To:
			return nil
		case len(p.Refused) > 0:
			return exitError{code: exitProblems, err: fmt.Errorf("refused: %d server(s) do not support version %d or could not be asked: %s",
				len(p.Refused), p.To, strings.Join(p.Refused, ", "))}
		case errors.Is(err, logerr.ErrVersionRefused):
			return exitError{code: exitProblems, err: err}
		}
		return err
	}
	return c
}

// versionCheck is one server's answer to "do you support version N?".
type versionCheck struct {
	// Kind is log, view or api.
	Kind   string `json:"kind"`
	Server string `json:"server"`
	DC     string `json:"dc"`
	// Supports is the highest version the server reports, 0 when it could
	// not be asked.
	Supports uint32 `json:"supports"`
	OK       bool   `json:"ok"`
	Problem  string `json:"problem,omitempty"`
}

func (c versionCheck) name() string {
	if c.DC != "" {
		return fmt.Sprintf("%s %s (%s)", c.Kind, c.Server, c.DC)
	}
	return c.Kind + " " + c.Server
}

// versionPlan is what set-version found and did.
type versionPlan struct {
	From     uint32         `json:"from_version"`
	To       uint32         `json:"to_version"`
	DryRun   bool           `json:"dry_run"`
	Checks   []versionCheck `json:"checks"`
	Refused  []string       `json:"refused"`
	Entry    string         `json:"entry"`
	Appended bool           `json:"appended"`
	Index    uint64         `json:"index,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// planVersion asks the log, and every API server of --api, for what each
// critical server supports. The checks come log replicas first, then views
// by DC and address, then API servers.
func (a *app) planVersion(ctx context.Context, admin *logclient.Admin, to uint32) (*versionPlan, error) {
	in, err := admin.Info(ctx, &logpb.InfoRequest{Linearizable: true})
	if err != nil {
		return nil, fmt.Errorf("ask the log: %w", err)
	}
	p := &versionPlan{From: in.LogVersion, To: to, Refused: []string{},
		Entry: fmt.Sprintf("a version change to %d, as an entry of version %d", to, in.LogVersion)}
	for _, m := range in.Members {
		p.Checks = append(p.Checks, checkVersion("log", m.Id, "", m.MaxSupportedVersion, m.Error, to))
	}
	var apis []versionCheck
	views := map[string]versionCheck{}
	asked := map[string]bool{}
	for _, addr := range a.api {
		if asked[addr] {
			continue
		}
		asked[addr] = true
		st, err := a.apiStatus(ctx, addr)
		if err != nil {
			apis = append(apis, checkVersion("api", addr, "", 0, err.Error(), to))
			continue
		}
		apis = append(apis, checkVersion("api", addr, st.Dc, st.MaxSupportedVersion, "", to))
		for _, v := range st.Views {
			supports, why := v.MaxSupportedVersion, v.Error
			if !v.Reachable {
				supports = 0
				if why == "" {
					why = "unreachable"
				}
			}
			// Another API server may have reached a view this one did not.
			if old, seen := views[v.Address]; !seen || old.Supports == 0 {
				views[v.Address] = checkVersion("view", v.Address, v.Dc, supports, why, to)
			}
		}
	}
	var vs []versionCheck
	for _, c := range views {
		vs = append(vs, c)
	}
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].DC != vs[j].DC {
			return vs[i].DC < vs[j].DC
		}
		return vs[i].Server < vs[j].Server
	})
	if len(vs) == 0 {
		vs = append(vs, versionCheck{Kind: "view", Server: "-", Problem: "no API server reported any view"})
	}
	p.Checks = append(append(p.Checks, vs...), apis...)
	for _, c := range p.Checks {
		if !c.OK {
			p.Refused = append(p.Refused, c.name())
		}
	}
	return p, nil
}

// checkVersion judges one server: supports is 0 when it could not be
// asked, and why then says why.
func checkVersion(kind, server, dc string, supports uint32, why string, to uint32) versionCheck {
	c := versionCheck{Kind: kind, Server: server, DC: dc, Supports: supports, OK: supports >= to}
	switch {
	case supports == 0:
		c.Problem = "could not be asked: " + why
	case !c.OK:
		c.Problem = fmt.Sprintf("supports only up to version %d", supports)
	}
	return c
}

// apiStatus asks one API server for its status.
func (a *app) apiStatus(ctx context.Context, addr string) (*apipb.StatusResponse, error) {
	client, err := newAPIClient([]string{addr})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var st *apipb.StatusResponse
	err = client.read(ctx, 10*time.Second, func(ctx context.Context, c apipb.AkutanClient) error {
		st, err = c.Status(ctx, &apipb.StatusRequest{})
		return err
	})
	return st, err
}

// confirm asks on the terminal whether to go ahead; without a terminal it
// answers no.
func (a *app) confirm(p *versionPlan) bool {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	fmt.Fprintf(a.stderr, "Change the log version from %d to %d? This cannot be undone. Type yes to go ahead: ", p.From, p.To)
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

func (a *app) printVersionPlan(p *versionPlan) error {
	if a.jsonOut {
		return a.printJSON(p)
	}
	fmt.Fprintf(a.stdout, "log version %d, asked to change to %d\n", p.From, p.To)
	w := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tSERVER\tDC\tSUPPORTS\tCHECK")
	for _, c := range p.Checks {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", c.Kind, c.Server, orNone(c.DC), c.Supports, okOr(c.Problem))
	}
	w.Flush()
	switch {
	case p.From == p.To:
		fmt.Fprintf(a.stdout, "the log is already at version %d: nothing to do\n", p.To)
	case p.From > p.To:
	case len(p.Refused) > 0:
		fmt.Fprintf(a.stdout, "refused: not every server supports version %d, so nothing was appended\n", p.To)
	case p.DryRun:
		fmt.Fprintf(a.stdout, "dry run: would append %s; nothing was appended\n", p.Entry)
		fmt.Fprintln(a.stdout, "the change cannot be undone; run without --dry-run, with --yes, to make it")
	case p.Appended:
		fmt.Fprintf(a.stdout, "appended %s at index %d: the log is at version %d (this cannot be undone)\n", p.Entry, p.Index, p.To)
	}
	return nil
}
