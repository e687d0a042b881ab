package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/akutan/akutan/infra/health"
	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
)

// Repartitioning is a split and merge of one space of one DC toward
// Target, as the topology file sees it: the file while old and new ranges
// run side by side, the file after, and the views to bring up and to
// retire. PlanRepartition computes it; Procedures.RepartitionPlan turns it
// into steps.
type Repartitioning struct {
	DC     string
	Space  model.Space
	Target []model.HashRange
	// Nothing is set when the file already has exactly Target and no
	// split in progress: there is nothing to do.
	Nothing bool
	// Continue is set when the file already holds the split in progress
	// (an interrupted run): InProgress is not written again.
	Continue bool
	// InProgress and Final are the file's contents (its own port base, not
	// an override) during the split and after it.
	InProgress, Final *topology.Topology
	// New are the views of the target ranges to start, publish and wait
	// for (when continuing, every target range's, which costs nothing for
	// those already up); Old are the views of the other ranges, to retire.
	// Their addresses are the ones the deployment runs with.
	New, Old []topology.Server
	// TargetViews are the views of every target range, kept or new: they
	// must cover the space, up to date, before an old view is retired.
	TargetViews []topology.Server
}

// ErrRepartition is wrapped by every reason PlanRepartition refuses.
var ErrRepartition = errors.New("cannot repartition")

func cannot(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRepartition, fmt.Sprintf(format, args...))
}

// maxNewViewPlace bounds the place n of a new view's port in its DC's view
// block (base+300+(d-1)*100+n, infra/topology): below TemporaryPortOffset,
// so that the view's temporary twin (+50) stays inside the block.
const maxNewViewPlace = TemporaryPortOffset - 1

// genName is a range name repartition gives: generation g, position p.
var genName = regexp.MustCompile(`^g([0-9]+)p[0-9]+$`)

// PlanRepartition plans the split and merge of space in the DC named dc of
// the topology file toward target (ranges that tile [0, 2^64), in order).
// basePort, when not 0, is the port base the deployment runs with in place
// of the file's (the local stack's AKUTAN_BASE_PORT).
//
// Without a split in progress, the DC's views are written out explicitly
// (topology.PinViews: every range keeps its name and addresses), the
// target ranges the space does not have yet are added with names of a new
// generation (g2p0, g2p1, ... or the generation after the highest the
// space has) and free ports of the DC's view block, split_in_progress
// set; the ranges that are in both are kept as they are. With a split in
// progress, the file must list every target range: the run continues it
// (or, when target is the old partitioning, undoes it). Either way Final
// lists the target ranges in hash order, without split_in_progress.
func PlanRepartition(file *topology.Topology, basePort int, dc string, space model.Space, target []model.HashRange) (*Repartitioning, error) {
	if err := checkTiling(target); err != nil {
		return nil, err
	}
	rp := &Repartitioning{DC: dc, Space: space, Target: target}
	work := file.Clone()
	current := resolved(work, basePort)
	if err := current.Validate(); err != nil {
		return nil, err
	}
	d, key := findSpace(work, dc, space)
	if d == 0 {
		return nil, cannot("the topology has no datacenter %s with views", dc)
	}
	if err := work.PinViews(dc, current.Servers()); err != nil {
		return nil, cannot("%v", err)
	}
	spec := work.Datacenters[d-1].Views[key]

	byRange := map[model.HashRange]*topology.Range{}
	for _, r := range spec.Ranges {
		hr := model.HashRange{Start: r.Start.Value, End: r.End.Value}
		if byRange[hr] != nil {
			return nil, cannot("%s's %s lists %v twice (%s and %s); fix the file", dc, space, hr, byRange[hr].Name, r.Name)
		}
		byRange[hr] = r
	}
	var missing []model.HashRange
	for _, hr := range target {
		if byRange[hr] == nil {
			missing = append(missing, hr)
		}
	}
	newRanges := map[model.HashRange]bool{}
	switch {
	case spec.SplitInProgress && len(missing) > 0:
		return nil, cannot("%s's %s is being repartitioned (split_in_progress) toward other ranges; finish that first: %s",
			dc, space, inProgressHint(spec))
	case spec.SplitInProgress:
		rp.Continue = true
		for _, hr := range target {
			newRanges[hr] = true
		}
	case len(missing) == 0 && len(spec.Ranges) == len(target):
		rp.Nothing = true
		return rp, nil
	default:
		if err := addRanges(work, resolved(work, basePort), d, spec, missing, basePort); err != nil {
			return nil, err
		}
		spec.SplitInProgress = true
		for _, hr := range missing {
			newRanges[hr] = true
		}
	}
	rp.InProgress = work

	final := work.Clone()
	fspec := final.Datacenters[d-1].Views[key]
	byRange = map[model.HashRange]*topology.Range{}
	for _, r := range fspec.Ranges {
		byRange[model.HashRange{Start: r.Start.Value, End: r.End.Value}] = r
	}
	fspec.Ranges = nil
	for _, hr := range target {
		fspec.Ranges = append(fspec.Ranges, byRange[hr])
	}
	fspec.SplitInProgress = false
	rp.Final = final

	for _, t := range []*topology.Topology{rp.InProgress, rp.Final} {
		for _, v := range []*topology.Topology{t, resolved(t, basePort)} {
			if err := v.Validate(); err != nil {
				return nil, fmt.Errorf("%w: the rewritten topology would be invalid: %v", ErrRepartition, err)
			}
		}
	}
	inTarget := map[model.HashRange]bool{}
	for _, hr := range target {
		inTarget[hr] = true
	}
	for _, s := range resolved(rp.InProgress, basePort).Servers() {
		if s.Role != topology.RoleView || s.DC != dc || s.Space != space {
			continue
		}
		switch {
		case !inTarget[s.Range]:
			rp.Old = append(rp.Old, s)
		case newRanges[s.Range]:
			rp.New = append(rp.New, s)
			fallthrough
		default:
			rp.TargetViews = append(rp.TargetViews, s)
		}
	}
	return rp, nil
}

// checkTiling wants ranges in order that tile [0, 2^64) exactly.
func checkTiling(ranges []model.HashRange) error {
	if len(ranges) == 0 {
		return cannot("no target ranges")
	}
	var reach uint64
	for i, r := range ranges {
		if err := r.Validate(); err != nil {
			return cannot("target range %d: %v", i, err)
		}
		if r.Start != reach || (i > 0 && reach == 0) {
			return cannot("target range %d %v does not start where the one before ends (%#x)", i, r, reach)
		}
		reach = r.End
	}
	if reach != 0 {
		return cannot("the target ranges end at %#x, not 2^64", reach)
	}
	return nil
}

// resolved is t with the deployment's port base, for its servers.
func resolved(t *topology.Topology, basePort int) *topology.Topology {
	if basePort == 0 || t.Ports == nil {
		return t
	}
	c := t.Clone()
	c.Ports.Base = basePort
	return c
}

// findSpace is the 1-based position of the DC named dc and the key of
// space in its views; 0 when there is none.
func findSpace(t *topology.Topology, dc string, space model.Space) (int, string) {
	for i, d := range t.Datacenters {
		if d == nil || d.Name != dc {
			continue
		}
		for k := range d.Views {
			if s, err := model.ParseSpace(k); err == nil && s == space {
				return i + 1, k
			}
		}
	}
	return 0, ""
}

// inProgressHint names the target of a split in progress: the ranges of
// the newest generation, when they tile the space.
func inProgressHint(spec *topology.Space) string {
	newest := 1
	for _, r := range spec.Ranges {
		if m := genName.FindStringSubmatch(r.Name); m != nil {
			if g, _ := strconv.Atoi(m[1]); g > newest {
				newest = g
			}
		}
	}
	var starts []string
	var ranges []model.HashRange
	for _, r := range spec.Ranges {
		if m := genName.FindStringSubmatch(r.Name); m != nil && m[1] == strconv.Itoa(newest) {
			ranges = append(ranges, model.HashRange{Start: r.Start.Value, End: r.End.Value})
		}
	}
	sortRanges(ranges)
	if newest < 2 || checkTiling(ranges) != nil {
		var all []string
		for _, r := range spec.Ranges {
			all = append(all, fmt.Sprintf("%s %v", r.Name, model.HashRange{Start: r.Start.Value, End: r.End.Value}))
		}
		return "its ranges are " + strings.Join(all, ", ") + "; rerun with --ranges listing the starts of the ranges to keep"
	}
	for _, r := range ranges {
		starts = append(starts, fmt.Sprintf("%#x", r.Start))
	}
	return fmt.Sprintf("rerun with --ranges %s (generation g%d) to complete it", strings.Join(starts, ","), newest)
}

func sortRanges(rs []model.HashRange) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Start < rs[j-1].Start; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// addRanges appends the ranges missing to spec (the space of the DC at
// position d, already pinned), named after a new generation, with as many
// views as the space's replicas, at free ports of the DC's view block.
func addRanges(file, current *topology.Topology, d int, spec *topology.Space, missing []model.HashRange, basePort int) error {
	dc := file.Datacenters[d-1].Name
	if current.Ports == nil {
		return cannot("the topology has no ports to derive the new views' addresses from; " +
			"list the new ranges with their addrs beside the old ones, with split_in_progress: true, and rerun to carry the split out")
	}
	if d > 6 {
		return cannot("derived view ports cover the first 6 datacenters; list %s's new ranges with addrs in the file, with split_in_progress: true, and rerun", dc)
	}
	gen := 1
	replicas := spec.Replicas
	for _, r := range spec.Ranges {
		if m := genName.FindStringSubmatch(r.Name); m != nil {
			if g, _ := strconv.Atoi(m[1]); g > gen {
				gen = g
			}
		}
		if spec.Replicas == 0 && len(r.Addrs) > replicas {
			replicas = len(r.Addrs)
		}
	}
	gen++
	replicas = max(replicas, 1)

	host := current.Ports.Host
	if host == "" {
		host = "127.0.0.1"
	}
	used := map[string]bool{}
	views := map[string]bool{}
	for _, s := range current.Servers() {
		used[s.Addr], used[s.Raft] = true, true
		if s.Role == topology.RoleView {
			views[s.Addr] = true
		}
	}
	addr := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	block := current.Ports.Base + 300 + (d-1)*100
	n := 0
	next := func() (string, error) {
		for n < maxNewViewPlace {
			n++
			port := block + n
			// Neither a server's port, nor its own twin's (+50), nor the
			// twin port of an existing view (-50).
			if used[addr(port)] || used[addr(port+TemporaryPortOffset)] || views[addr(port-TemporaryPortOffset)] {
				continue
			}
			used[addr(port)] = true
			return addr(port), nil
		}
		return "", cannot("%s has no free view port left among %d..%d (each new view also needs its port + %d free for a temporary twin)",
			dc, block+1, block+maxNewViewPlace, TemporaryPortOffset)
	}
	pos := map[model.HashRange]int{}
	for i, hr := range missing {
		pos[hr] = i
	}
	for _, hr := range missing {
		r := &topology.Range{
			Name:  fmt.Sprintf("g%dp%d", gen, pos[hr]),
			Start: topology.Bound{Value: hr.Start, Set: true},
			End:   topology.Bound{Value: hr.End, Max: hr.End == 0, Set: true},
		}
		for k := 0; k < replicas; k++ {
			a, err := next()
			if err != nil {
				return err
			}
			r.Addrs = append(r.Addrs, a)
		}
		spec.Ranges = append(spec.Ranges, r)
	}
	return nil
}

// RepartitionPlan carries out rp, rewriting the topology file at path:
//
//  1. write the split in progress (unless continuing one): old and new
//     ranges side by side, so ctl.sh (or the cloud's driver) knows the new
//     views;
//  2. start each new view (a view that does not run is wiped first, so it
//     boots from the bucket, cutting the checkpoints of the old ranges) and
//     publish it in the DC's views; then wait until each is up to date;
//  3. retire each old view from the DC's views, stop it and wipe its data
//     dir, gated by CheckStopView and by the new views' coverage: every
//     point of the space has an up-to-date new view;
//  4. write the final topology: the target ranges only.
//
// Every step is idempotent, so an interrupted run is continued by running
// the command again (PlanRepartition then sees the split in progress).
func (p *Procedures) RepartitionPlan(path string, rp *Repartitioning) *Plan {
	title := fmt.Sprintf("repartition %s's %s into %d range(s)", rp.DC, rp.Space, len(rp.Target))
	if rp.Nothing {
		return &Plan{Title: title + ": the topology already has exactly these ranges"}
	}
	if rp.Continue {
		title += ", continuing the split in progress"
	}
	plan := &Plan{Title: title}
	if !rp.Continue {
		var names []string
		for _, s := range rp.New {
			names = append(names, fmt.Sprintf("%s %v at %s", s.Name, s.Range, s.Addr))
		}
		plan.Steps = append(plan.Steps, Step{
			What: fmt.Sprintf("write %s with the split in progress: %d old view(s) and the new %s", path, len(rp.Old), strings.Join(names, ", ")),
			Do:   func(context.Context) error { return topology.Write(path, rp.InProgress) },
		})
	}
	for _, s := range rp.New {
		plan.Steps = append(plan.Steps, Step{
			What: fmt.Sprintf("start view %s (%s %v in %s at %s; an empty data dir boots from the bucket) and publish it", s.Name, s.Space, s.Range, s.DC, s.Addr),
			Do: func(ctx context.Context) error {
				up, err := p.Driver.Running(ctx, s.Name)
				if err != nil {
					return err
				}
				if !up {
					// A data dir left by something else than this view
					// must not be served; an interrupted run's view
					// boots again.
					if err := p.Driver.Wipe(ctx, s.Name); err != nil {
						return err
					}
					if err := p.Driver.Start(ctx, s.Name); err != nil {
						return err
					}
				}
				return p.Driver.PublishView(ctx, s.DC, s.Addr, true)
			},
		})
	}
	for _, s := range rp.New {
		plan.Steps = append(plan.Steps, Step{
			What: fmt.Sprintf("wait until %s is up to date", s.Name),
			Do:   func(ctx context.Context) error { return p.waitView(ctx, s.Name, s.DC, s.Addr) },
		})
	}
	for _, s := range rp.Old {
		plan.Steps = append(plan.Steps, Step{
			What: fmt.Sprintf("retire old view %s (%s %v at %s) from %s's views, stop it, wipe its data dir", s.Name, s.Space, s.Range, s.Addr, s.DC),
			Check: func(_ context.Context, st *State) error {
				if err := st.CheckCovered(s.DC, s.Space, rp.TargetViews); err != nil {
					return err
				}
				return st.CheckStopView(s.DC, s.Addr)
			},
			Do: func(ctx context.Context) error {
				if err := p.retireView(ctx, s.DC, s.Addr); err != nil {
					return err
				}
				if err := p.Driver.Stop(ctx, s.Name); err != nil {
					return err
				}
				return p.Driver.Wipe(ctx, s.Name)
			},
		})
	}
	plan.Steps = append(plan.Steps, Step{
		What: fmt.Sprintf("write %s with %s's %s in its %d target range(s), the split done", path, rp.DC, rp.Space, len(rp.Target)),
		Do:   func(context.Context) error { return topology.Write(path, rp.Final) },
	})
	return plan
}

// CheckCovered refuses unless dc's API servers list, among the views
// given, an up-to-date one at every point of space: the views that are
// to take over from the ones a step retires.
func (s *State) CheckCovered(dc string, space model.Space, views []topology.Server) error {
	if err := s.answered(dc); err != nil {
		return err
	}
	var in []health.View
	for _, v := range views {
		if st := s.View(dc, v.Addr); st != nil {
			in = append(in, health.View{Addr: st.Address, Space: st.Space, Start: st.RangeStart, End: st.RangeEnd, UpToDate: st.UpToDate})
		}
	}
	var missing []string
	for _, seg := range health.Coverage(in, space.String()) {
		if seg.UpToDate == 0 {
			missing = append(missing, seg.String())
		}
	}
	if len(missing) > 0 {
		return refuse("the new partitioning of %s's %s has no up-to-date view of %s", dc, space, strings.Join(missing, ", "))
	}
	return nil
}
