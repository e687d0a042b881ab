package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/internal/buildinfo"
)

// Binaries is a directory of server binaries (akutan-log, akutan-view,
// akutan-api) as their --version describes them.
type Binaries struct {
	// Dir is the directory, absolute.
	Dir string
	// Build is each role's build as its server reports it once running
	// (Info's member build, a view's and an API server's Status).
	Build map[topology.Role]string
	// LogVersion is the highest log entry version all three support.
	LogVersion uint32
}

// binaryOf names each role's binary.
var binaryOf = map[topology.Role]string{
	topology.RoleLog:  "akutan-log",
	topology.RoleView: "akutan-view",
	topology.RoleAPI:  "akutan-api",
}

// ErrBinaries is wrapped by ReadBinaries' errors: the directory lacks a
// server binary, or one does not say what it supports.
var ErrBinaries = errors.New("unusable binaries")

// ReadBinaries runs each server binary in dir with --version, in an empty
// environment so that no AKUTAN_* setting of the caller's bears on it.
func ReadBinaries(ctx context.Context, dir string) (*Binaries, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b := &Binaries{Dir: abs, Build: map[topology.Role]string{}}
	var errs []error
	for _, role := range []topology.Role{topology.RoleLog, topology.RoleView, topology.RoleAPI} {
		path := filepath.Join(abs, binaryOf[role])
		if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("%w: %s is not an executable file", ErrBinaries, path))
			continue
		}
		cmd := exec.CommandContext(ctx, path, "--version")
		cmd.Env = []string{}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s --version: %v: %s", ErrBinaries, path, err, strings.TrimSpace(out.String())))
			continue
		}
		build, v, err := buildinfo.ParseBanner(out.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrBinaries, path, err))
			continue
		}
		b.Build[role] = build
		if b.LogVersion == 0 || v < b.LogVersion {
			b.LogVersion = v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// String is one line: the builds and the log version they read.
func (b *Binaries) String() string {
	seen := map[string]bool{}
	var builds []string
	for _, role := range []topology.Role{topology.RoleLog, topology.RoleView, topology.RoleAPI} {
		if !seen[b.Build[role]] {
			seen[b.Build[role]] = true
			builds = append(builds, b.Build[role])
		}
	}
	return fmt.Sprintf("%s: %s; log entry versions up to %d", b.Dir, strings.Join(builds, " / "), b.LogVersion)
}

// CheckLog refuses when the log's entry version is above what b supports:
// a server started on them would stop applying at the log's entries, and
// a version change cannot be undone. A log that did not answer is refused
// too, its version being unknown.
func (b *Binaries) CheckLog(st *State) error {
	if st.Log == nil {
		return refuse("no log replica answered (%v), so the log's entry version is unknown", st.LogErr)
	}
	if v := st.Log.GetLogVersion(); v > b.LogVersion {
		return refuse("the log is at entry version %d and the binaries in %s support versions up to %d only: a server started on them would stop at the log's entries (a version change cannot be undone)", v, b.Dir, b.LogVersion)
	}
	return nil
}

// Builds is what the servers report running now, by name: each log voter
// (its member's build in the log's Info), each view its DC lists (its
// Status), each API server that answers; and each temporary server that
// the driver runs (with its build when it reports one). A server missing
// or with "" did not say.
func (p *Procedures) Builds(ctx context.Context, st *State) (map[string]string, error) {
	builds := map[string]string{}
	for _, s := range p.Servers {
		switch s.Role {
		case topology.RoleLog:
			if m := st.member(s.Name); m != nil {
				builds[s.Name] = m.Build
			}
			continue
		case topology.RoleView:
			if v := st.View(s.DC, s.Addr); v != nil {
				builds[s.Name] = v.Build
			}
		case topology.RoleAPI:
			if resp, err := p.Obs.APIStatus(ctx, s.Addr); err == nil {
				builds[s.Name] = resp.Version
			}
		}
		tmp := p.Driver.Temporary(s)
		up, err := p.Driver.Running(ctx, tmp.Name)
		if err != nil {
			return nil, err
		}
		if !up {
			continue
		}
		builds[tmp.Name] = ""
		if v := st.View(s.DC, tmp.Addr); s.Role == topology.RoleView && v != nil {
			builds[tmp.Name] = v.Build
		}
	}
	return builds, nil
}

// UpgradePlan moves the servers of dc (every DC when empty) with role
// (every role when empty) onto the binaries bins, in RestartPlan's order:
//
//  1. each log voter in place, one at a time: leadership moved away, the
//     voter stopped (behind the quorum gate) and started on the new
//     binaries, then waited for until it has caught up and reports the
//     new build;
//  2. each view is replaced by one on the new binaries that boots from
//     the bucket: while it is its range's only view in its DC a temporary
//     twin on the new binaries covers the range first; the view is
//     retired, stopped and wiped, started on the new binaries, and waited
//     for until it is up to date and reports the new build, and only then
//     is the twin retired;
//  3. each API server is restarted on the new binaries (through a
//     temporary one on them while it is its DC's only one) and waited for
//     until it answers with the new build.
//
// A server that reports bins' build already (builds, from Builds) is
// skipped, and a temporary server an interrupted run left behind is
// retired, so a rerun continues. Rolling back is the same plan with the
// old binaries. It is refused (ErrRefused), and every step checks again,
// when the log's entry version is above what bins support.
func (p *Procedures) UpgradePlan(bins *Binaries, st *State, builds map[string]string, dc string, role topology.Role) (*Plan, error) {
	if _, ok := p.Driver.(BinaryDriver); !ok {
		return nil, fmt.Errorf("the driver %T cannot switch a server's binaries", p.Driver)
	}
	if err := bins.CheckLog(st); err != nil {
		return nil, err
	}
	title := "upgrade"
	if role != "" {
		title += " of " + string(role) + " servers"
	}
	if dc != "" {
		title += " in " + dc
	}
	plan := &Plan{Title: title + " to the binaries in " + bins.Dir}
	pick := func(s topology.Server, r topology.Role) bool {
		return s.Role == r && (role == "" || role == r) && (dc == "" || s.DC == dc)
	}
	var skipped []string
	add := func(s topology.Server, steps func(topology.Server, *Binaries) []Step) {
		if builds[s.Name] == bins.Build[s.Role] {
			skipped = append(skipped, s.Name)
			plan.Steps = append(plan.Steps, p.leftoverSteps(s, builds)...)
			return
		}
		plan.Steps = append(plan.Steps, steps(s, bins)...)
	}
	for _, s := range p.Servers {
		if pick(s, topology.RoleLog) {
			add(s, func(s topology.Server, b *Binaries) []Step { return p.logSteps(s, false, b) })
		}
	}
	for _, d := range p.dcs() {
		for _, s := range p.Servers {
			if s.DC == d && pick(s, topology.RoleView) {
				add(s, func(s topology.Server, b *Binaries) []Step { return p.viewSteps(s, true, b) })
			}
		}
		for _, s := range p.Servers {
			if s.DC == d && pick(s, topology.RoleAPI) {
				add(s, func(s topology.Server, b *Binaries) []Step { return p.apiSteps(s, false, b) })
			}
		}
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		plan.Title += fmt.Sprintf(" (%d already on it: %s)", len(skipped), strings.Join(skipped, ", "))
	}
	for i := range plan.Steps {
		plan.Steps[i].Check = withLogCheck(bins, plan.Steps[i].Check)
	}
	return plan, nil
}

// withLogCheck runs bins.CheckLog before the step's own gate: the log's
// version may change while the procedure runs.
func withLogCheck(bins *Binaries, gate func(context.Context, *State) error) func(context.Context, *State) error {
	return func(ctx context.Context, st *State) error {
		if err := bins.CheckLog(st); err != nil {
			return err
		}
		if gate == nil {
			return nil
		}
		return gate(ctx, st)
	}
}

// useBinaries moves the server name onto bins (nothing without them: a
// restart or a replacement).
func (p *Procedures) useBinaries(ctx context.Context, name string, bins *Binaries) error {
	if bins == nil {
		return nil
	}
	return p.Driver.(BinaryDriver).UseBinaries(ctx, name, bins.Dir)
}

// leftoverSteps retire the temporary server of s, already upgraded, that
// an interrupted run left running.
func (p *Procedures) leftoverSteps(s topology.Server, builds map[string]string) []Step {
	tmp := p.Driver.Temporary(s)
	if _, running := builds[tmp.Name]; !running {
		return nil
	}
	switch s.Role {
	case topology.RoleView:
		return []Step{p.retireTwinStep(s, tmp)}
	case topology.RoleAPI:
		return []Step{p.stopTmpAPIStep(s, tmp)}
	}
	return nil
}

// apiBuild reads the build the API server at addr reports.
func (p *Procedures) apiBuild(addr string) func(context.Context, *State) string {
	return func(ctx context.Context, _ *State) string {
		resp, err := p.Obs.APIStatus(ctx, addr)
		if err != nil {
			return ""
		}
		return resp.Version
	}
}

// waitBuild waits until the server name of role reports bins' build (get
// reads it from an observation); without bins it does nothing.
func (p *Procedures) waitBuild(ctx context.Context, name string, bins *Binaries, role topology.Role, get func(context.Context, *State) string) error {
	if bins == nil {
		return nil
	}
	want := bins.Build[role]
	start := time.Now()
	return waitFor(ctx, p.Obs, p.poll(), p.wait(), func(st *State) (bool, string) {
		if got := get(ctx, st); got != want {
			return false, fmt.Sprintf("%s reports build %q, want %q", name, got, want)
		}
		p.printf("      %s reports build %s after %.1fs\n", name, want, time.Since(start).Seconds())
		return true, ""
	})
}
