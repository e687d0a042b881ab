package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/apipb"
)

// oneEach is the local stack's file with one partition per space.
const oneEach = `version: 1
ports: {host: 127.0.0.1, base: 17000}
datacenters:
  - name: dc1
    log_voters: 1
    api_servers: 1
    views: {HashSP: {partitions: 1, replicas: 1}, HashPO: {partitions: 1, replicas: 1}}
  - name: dc2
    log_voters: 1
    api_servers: 1
    views: {HashSP: {partitions: 1, replicas: 1}, HashPO: {partitions: 1, replicas: 1}}
`

func parse(t *testing.T, data string) *topology.Topology {
	t.Helper()
	top, err := topology.Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	return top
}

// spaceViews are the views of dc's space, as "name addr range".
func spaceViews(top *topology.Topology, base int, dc string, space model.Space) []string {
	var out []string
	for _, s := range resolved(top, base).Servers() {
		if s.Role == topology.RoleView && s.DC == dc && s.Space == space {
			out = append(out, fmt.Sprintf("%s %s %v", s.Name, s.Addr, s.Range))
		}
	}
	return out
}

func names(servers []topology.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Name+" "+s.Addr)
	}
	return out
}

// TestPlanRepartition: a split from 1 to 4 and a merge back to 3 uneven
// ranges, run through the file as the command does: names of a new
// generation, free ports clear of every view and of the twins' ports, no
// other view moves, and the port base override is not written.
func TestPlanRepartition(t *testing.T) {
	file := parse(t, oneEach)
	const base = 20000 // the deployment's, not the file's 17000
	before := map[string][]string{}
	for _, dc := range []string{"dc1", "dc2"} {
		for _, sp := range topology.Spaces {
			before[dc+sp.String()] = spaceViews(file, base, dc, sp)
		}
	}

	rp, err := PlanRepartition(file, base, "dc1", model.SpaceSP, topology.EvenRanges(4))
	if err != nil {
		t.Fatal(err)
	}
	if rp.Nothing || rp.Continue {
		t.Fatalf("nothing %v, continue %v", rp.Nothing, rp.Continue)
	}
	want := []string{"view-dc1-sp-g2p0-r0 127.0.0.1:20303", "view-dc1-sp-g2p1-r0 127.0.0.1:20304",
		"view-dc1-sp-g2p2-r0 127.0.0.1:20305", "view-dc1-sp-g2p3-r0 127.0.0.1:20306"}
	if got := names(rp.New); !reflect.DeepEqual(got, want) {
		t.Fatalf("new views %q, want %q", got, want)
	}
	if got := names(rp.Old); !reflect.DeepEqual(got, []string{"view-dc1-sp-p0-r0 127.0.0.1:20301"}) {
		t.Fatalf("old views %q", got)
	}
	if !reflect.DeepEqual(names(rp.TargetViews), want) {
		t.Fatalf("target views %q", names(rp.TargetViews))
	}
	if rp.InProgress.Ports.Base != 17000 || rp.Final.Ports.Base != 17000 {
		t.Fatal("the override port base would be written to the file")
	}
	if !rp.InProgress.Datacenters[0].Views["HashSP"].SplitInProgress || rp.Final.Datacenters[0].Views["HashSP"].SplitInProgress {
		t.Fatal("split_in_progress: want it during, not after")
	}
	if got := spaceViews(rp.InProgress, base, "dc1", model.SpaceSP); len(got) != 5 || got[0] != before["dc1HashSP"][0] {
		t.Fatalf("in progress: %q", got)
	}
	for _, top := range []*topology.Topology{rp.InProgress, rp.Final} {
		for k, v := range before {
			if k == "dc1HashSP" {
				continue
			}
			if got := spaceViews(top, base, k[:3], model.Space(map[string]model.Space{"HashSP": model.SpaceSP, "HashPO": model.SpacePO}[k[3:]])); !reflect.DeepEqual(got, v) {
				t.Fatalf("%s moved: %q, was %q", k, got, v)
			}
		}
	}
	// What is written reads back the same.
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := topology.Write(path, rp.Final); err != nil {
		t.Fatal(err)
	}
	final, err := topology.Load(path)
	if err != nil || !reflect.DeepEqual(final, rp.Final) {
		t.Fatalf("final read back: %v", err)
	}
	if got := spaceViews(final, base, "dc1", model.SpaceSP); !reflect.DeepEqual(got, []string{
		"view-dc1-sp-g2p0-r0 127.0.0.1:20303 [0x0000000000000000, 0x4000000000000000)",
		"view-dc1-sp-g2p1-r0 127.0.0.1:20304 [0x4000000000000000, 0x8000000000000000)",
		"view-dc1-sp-g2p2-r0 127.0.0.1:20305 [0x8000000000000000, 0xc000000000000000)",
		"view-dc1-sp-g2p3-r0 127.0.0.1:20306 [0xc000000000000000, 2^64)"}) {
		t.Fatalf("final: %q", got)
	}

	// Merge into 3 uneven ranges; the first is kept as it runs, the new
	// ones take the freed port 1 and the next free, 7.
	uneven := []model.HashRange{{Start: 0, End: 1 << 62}, {Start: 1 << 62, End: 0x9000000000000000}, {Start: 0x9000000000000000}}
	rp2, err := PlanRepartition(final, base, "dc1", model.SpaceSP, uneven)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(rp2.New); !reflect.DeepEqual(got, []string{"view-dc1-sp-g3p0-r0 127.0.0.1:20301", "view-dc1-sp-g3p1-r0 127.0.0.1:20307"}) {
		t.Fatalf("new views %q", got)
	}
	if got := names(rp2.Old); !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("old views %q", got)
	}
	if got := names(rp2.TargetViews); !reflect.DeepEqual(got, []string{want[0], "view-dc1-sp-g3p0-r0 127.0.0.1:20301", "view-dc1-sp-g3p1-r0 127.0.0.1:20307"}) {
		t.Fatalf("target views %q", got)
	}
	if got := spaceViews(rp2.Final, base, "dc1", model.SpaceSP); len(got) != 3 || !strings.HasPrefix(got[0], "view-dc1-sp-g2p0-r0 127.0.0.1:20303") {
		t.Fatalf("final: %q", got)
	}

	// Done: nothing to do.
	rp3, err := PlanRepartition(rp2.Final, base, "dc1", model.SpaceSP, uneven)
	if err != nil || !rp3.Nothing {
		t.Fatalf("again: %v, %+v", err, rp3)
	}
	if p := (&Procedures{}).RepartitionPlan(path, rp3); len(p.Steps) != 0 {
		t.Fatalf("nothing to do has %d steps", len(p.Steps))
	}
}

// TestPlanRepartitionContinues: a run interrupted after writing the split
// in progress is continued by the same command, and the split in progress
// can be undone by asking for the old ranges; another target is refused
// with the way to finish.
func TestPlanRepartitionContinues(t *testing.T) {
	rp, err := PlanRepartition(parse(t, oneEach), 0, "dc1", model.SpaceSP, topology.EvenRanges(2))
	if err != nil {
		t.Fatal(err)
	}
	inProgress := rp.InProgress
	again, err := PlanRepartition(inProgress, 0, "dc1", model.SpaceSP, topology.EvenRanges(2))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Continue || !reflect.DeepEqual(again.Final, rp.Final) || !reflect.DeepEqual(names(again.New), names(rp.New)) ||
		!reflect.DeepEqual(names(again.Old), names(rp.Old)) {
		t.Fatalf("continue: %+v", again)
	}
	plan := (&Procedures{}).RepartitionPlan("t.yaml", again)
	if strings.Contains(plan.Steps[0].What, "split in progress") || len(plan.Steps) != 2+2+1+1 {
		t.Fatalf("continuing writes the split again or has the wrong steps: %d", len(plan.Steps))
	}
	first := (&Procedures{}).RepartitionPlan("t.yaml", rp)
	if !strings.Contains(first.Steps[0].What, "split in progress") || len(first.Steps) != 1+2+2+1+1 {
		t.Fatalf("first run: %d steps, %q", len(first.Steps), first.Steps[0].What)
	}

	back, err := PlanRepartition(inProgress, 0, "dc1", model.SpaceSP, topology.EvenRanges(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(back.Old); len(got) != 2 || !strings.Contains(got[0], "g2p0") {
		t.Fatalf("undo retires %q", got)
	}
	if got := names(back.New); !reflect.DeepEqual(got, []string{"view-dc1-sp-p0-r0 127.0.0.1:17301"}) {
		t.Fatalf("undo brings up %q", got)
	}

	_, err = PlanRepartition(inProgress, 0, "dc1", model.SpaceSP, topology.EvenRanges(3))
	if !errors.Is(err, ErrRepartition) || !strings.Contains(err.Error(), "--ranges 0x0,0x8000000000000000 (generation g2)") {
		t.Fatalf("another target: %v", err)
	}
}

// TestPlanRepartitionRefuses: bad targets, unknown DCs, no ports, and a
// full port block.
func TestPlanRepartitionRefuses(t *testing.T) {
	file := parse(t, oneEach)
	for _, c := range []struct {
		dc     string
		target []model.HashRange
		want   string
	}{
		{"dc9", topology.EvenRanges(2), "no datacenter dc9"},
		{"dc1", nil, "no target ranges"},
		{"dc1", []model.HashRange{{Start: 1}}, "does not start where"},
		{"dc1", []model.HashRange{{Start: 0, End: 5}}, "end at 0x5"},
		{"dc1", []model.HashRange{{Start: 0, End: 5}, {Start: 6}}, "does not start where"},
		{"dc1", []model.HashRange{{Start: 0}, {Start: 0}}, "does not start where"},
	} {
		_, err := PlanRepartition(file, 0, c.dc, model.SpaceSP, c.target)
		if !errors.Is(err, ErrRepartition) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.dc, c.target, err, c.want)
		}
	}

	noPorts := parse(t, `version: 1
datacenters:
  - name: dc1
    log: [{raft: 10.0.0.1:1, grpc: 10.0.0.1:2}]
    api: [{addr: 10.0.0.1:3}]
    views:
      HashSP: {ranges: [{start: 0, end: max, addrs: [10.0.0.1:4]}]}
      HashPO: {ranges: [{start: 0, end: max, addrs: [10.0.0.1:5]}]}
`)
	if _, err := PlanRepartition(noPorts, 0, "dc1", model.SpaceSP, topology.EvenRanges(2)); !errors.Is(err, ErrRepartition) || !strings.Contains(err.Error(), "no ports") {
		t.Errorf("no ports: %v", err)
	}

	// 40 ranges use places 1..40 of dc1's block (HashPO at 41); 8 more
	// fit below 50, the 9th does not.
	if _, err := PlanRepartition(parse(t, strings.Replace(oneEach, "HashSP: {partitions: 1", "HashSP: {partitions: 40", 1)), 0, "dc1", model.SpaceSP, topology.EvenRanges(9)); !errors.Is(err, ErrRepartition) || !strings.Contains(err.Error(), "no free view port") {
		t.Errorf("full block: %v", err)
	}
	rp, err := PlanRepartition(parse(t, strings.Replace(oneEach, "HashSP: {partitions: 1", "HashSP: {partitions: 40", 1)), 0, "dc1", model.SpaceSP, []model.HashRange{{Start: 0, End: 1 << 63}, {Start: 1 << 63}})
	if err != nil || len(rp.New) != 2 || rp.New[1].Addr != "127.0.0.1:17343" || len(rp.Old) != 40 {
		t.Errorf("42 views: %v %q", err, names(rp.New))
	}

	// A new view's temporary twin (+50) must not land on a view either.
	crowded := parse(t, `version: 1
ports: {base: 17000}
datacenters:
  - name: dc1
    log_voters: 1
    api_servers: 1
    views:
      HashSP: {ranges: [{name: a, start: 0, end: max, addrs: [127.0.0.1:17301]}]}
      HashPO: {ranges: [{name: b, start: 0, end: max, addrs: [127.0.0.1:17353]}]}
`)
	rp, err = PlanRepartition(crowded, 0, "dc1", model.SpaceSP, topology.EvenRanges(2))
	if err != nil {
		t.Fatal(err)
	}
	// 301 is a's; 302 is free; 303's twin would be 353, b's; so 304.
	if got := names(rp.New); !reflect.DeepEqual(got, []string{"view-dc1-sp-g2p0-r0 127.0.0.1:17302", "view-dc1-sp-g2p1-r0 127.0.0.1:17304"}) {
		t.Fatalf("crowded: %q", got)
	}
}

// repartitionDriver records the driver calls of a plan.
type repartitionDriver struct {
	calls   []string
	running map[string]bool
}

func (d *repartitionDriver) rec(f string, args ...any) {
	d.calls = append(d.calls, fmt.Sprintf(f, args...))
}
func (d *repartitionDriver) Start(_ context.Context, n string) error {
	d.rec("start %s", n)
	d.running[n] = true
	return nil
}
func (d *repartitionDriver) Join(_ context.Context, n string) error { d.rec("join %s", n); return nil }
func (d *repartitionDriver) Stop(_ context.Context, n string) error {
	d.rec("stop %s", n)
	d.running[n] = false
	return nil
}
func (d *repartitionDriver) Wipe(_ context.Context, n string) error { d.rec("wipe %s", n); return nil }
func (d *repartitionDriver) Running(_ context.Context, n string) (bool, error) {
	return d.running[n], nil
}
func (d *repartitionDriver) Temporary(s topology.Server) topology.Server { return s }
func (d *repartitionDriver) StartTemporary(context.Context, topology.Server, topology.Server) error {
	return nil
}
func (d *repartitionDriver) PublishView(_ context.Context, dc, addr string, add bool) error {
	d.rec("publish %s %s %v", dc, addr, add)
	return nil
}

// TestRepartitionSteps: the driver calls of a split, and the gate that
// keeps an old view until the new ones cover the space up to date.
func TestRepartitionSteps(t *testing.T) {
	rp, err := PlanRepartition(parse(t, oneEach), 0, "dc1", model.SpaceSP, topology.EvenRanges(2))
	if err != nil {
		t.Fatal(err)
	}
	d := &repartitionDriver{running: map[string]bool{"view-dc1-sp-g2p1-r0": true}}
	path := filepath.Join(t.TempDir(), "t.yaml")
	plan := (&Procedures{Driver: d}).RepartitionPlan(path, rp)
	// Step 1 writes the file; steps 2 and 3 start and publish.
	for _, i := range []int{0, 1, 2} {
		if err := plan.Steps[i].Do(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	written, err := topology.Load(path)
	if err != nil || !reflect.DeepEqual(written, rp.InProgress) {
		t.Fatalf("the file is not the split in progress: %v", err)
	}
	want := []string{"wipe view-dc1-sp-g2p0-r0", "start view-dc1-sp-g2p0-r0", "publish dc1 127.0.0.1:17303 true",
		"publish dc1 127.0.0.1:17304 true"} // g2p1 already runs: kept, not wiped
	if !reflect.DeepEqual(d.calls, want) {
		t.Fatalf("calls %q, want %q", d.calls, want)
	}

	retire := plan.Steps[5]
	if !strings.HasPrefix(retire.What, "retire old view view-dc1-sp-p0-r0") {
		t.Fatalf("step 6: %s", retire.What)
	}
	view := func(addr string, start, end uint64, up bool) *apipb.ViewStatus {
		return &apipb.ViewStatus{Address: addr, Space: "HashSP", RangeStart: start, RangeEnd: end, UpToDate: up, Reachable: true, State: "SERVING"}
	}
	po := &apipb.ViewStatus{Address: "127.0.0.1:17302", Space: "HashPO", UpToDate: true, Reachable: true}
	st := func(views ...*apipb.ViewStatus) *State {
		return &State{DCs: map[string]*apipb.StatusResponse{"dc1": {
			Log:            &apipb.LogStatus{Available: true},
			FullyAvailable: &apipb.Verdict{Ok: true},
			Views:          append(views, po),
			ApiServers:     []*apipb.ApiServerStatus{{Address: "x", Reachable: true}},
		}}}
	}
	old := view("127.0.0.1:17301", 0, 0, true)
	if err := retire.Check(context.Background(), st(old, view("127.0.0.1:17303", 0, 1<<63, true), view("127.0.0.1:17304", 1<<63, 0, false))); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "HashSP [0x8000000000000000, 2^64)") {
		t.Fatalf("a new view not up to date: %v", err)
	}
	if err := retire.Check(context.Background(), st(old, view("127.0.0.1:17303", 0, 1<<63, true))); !errors.Is(err, ErrRefused) {
		t.Fatalf("a new view not listed: %v", err)
	}
	if err := retire.Check(context.Background(), st(old, view("127.0.0.1:17303", 0, 1<<63, true), view("127.0.0.1:17304", 1<<63, 0, true))); err != nil {
		t.Fatalf("the new views cover the space: %v", err)
	}
	last := plan.Steps[len(plan.Steps)-1]
	if err := last.Do(context.Background()); err != nil {
		t.Fatal(err)
	}
	if written, err := topology.Load(path); err != nil || !reflect.DeepEqual(written, rp.Final) {
		t.Fatalf("the file is not the final topology: %v", err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "split_in_progress") || strings.Count(string(data), "name: g2p") != 2 {
		t.Fatalf("final file:\n%s", data)
	}
}
