package cluster

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
)

const half = 1 << 63

// dcState is a DC with one view per range of each space (2 partitions),
// all up to date unless named in stale, and apis reachable API servers.
func dcState(apis int, stale ...string) *apipb.StatusResponse {
	st := &apipb.StatusResponse{Dc: "dc1", Log: &apipb.LogStatus{Available: true}, FullyAvailable: &apipb.Verdict{Ok: true}}
	for _, v := range []struct {
		addr, space string
		start, end  uint64
	}{{"sp0", "HashSP", 0, half}, {"sp1", "HashSP", half, 0}, {"po0", "HashPO", 0, half}, {"po1", "HashPO", half, 0}} {
		up := true
		for _, s := range stale {
			up = up && s != v.addr
		}
		st.Views = append(st.Views, &apipb.ViewStatus{Address: v.addr, Space: v.space, RangeStart: v.start, RangeEnd: v.end, UpToDate: up, Reachable: up})
	}
	for i := 0; i < apis; i++ {
		st.ApiServers = append(st.ApiServers, &apipb.ApiServerStatus{Address: "api" + string(rune('0'+i)), Reachable: true})
	}
	st.FullyAvailable.Ok = len(stale) == 0 && apis > 0
	return st
}

func TestCheckStopView(t *testing.T) {
	st := &State{DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}}
	err := st.CheckStopView("dc1", "sp0")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "HashSP [0x0, 0x8000000000000000): 0 up-to-date views") {
		t.Fatalf("the last view of a range: %v", err)
	}
	// A twin of sp0 (the temporary view) makes it safe.
	st.DCs["dc1"].Views = append(st.DCs["dc1"].Views, &apipb.ViewStatus{Address: "sp0-tmp", Space: "HashSP", RangeStart: 0, RangeEnd: half, UpToDate: true})
	if err := st.CheckStopView("dc1", "sp0"); err != nil {
		t.Fatalf("with a twin: %v", err)
	}
	// A DC that is not fully available has nothing to lose.
	st.DCs["dc1"] = dcState(1, "po1")
	if err := st.CheckStopView("dc1", "sp0"); err != nil {
		t.Fatalf("DC not fully available: %v", err)
	}
	// A DC whose API servers did not answer is not judged: refused.
	if err := st.CheckStopView("dc2", "x"); !errors.Is(err, ErrRefused) {
		t.Fatalf("unknown DC: %v", err)
	}
}

func TestCheckStopAPI(t *testing.T) {
	st := &State{DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}}
	if err := st.CheckStopAPI("dc1", "api0"); !errors.Is(err, ErrRefused) {
		t.Fatalf("the only API server: %v", err)
	}
	st.DCs["dc1"] = dcState(2)
	if err := st.CheckStopAPI("dc1", "api0"); err != nil {
		t.Fatalf("one of two: %v", err)
	}
}

func logState(available bool, members ...*logpb.Member) *State {
	return &State{LogAvailable: available, Log: &logpb.InfoResponse{LastIndex: 5000, Members: members}}
}

func voter(id string, applied uint64, errText string) *logpb.Member {
	return &logpb.Member{Id: id, Voter: true, AppliedIndex: applied, Error: errText}
}

func TestCheckStopLog(t *testing.T) {
	all := []*logpb.Member{voter("a", 5000, ""), voter("b", 4990, ""), voter("c", 5000, "")}
	if err := logState(true, all...).CheckStopLog("a", false); err != nil {
		t.Fatalf("3 healthy voters: %v", err)
	}
	if err := logState(false, all...).CheckStopLog("a", false); !errors.Is(err, ErrRefused) {
		t.Fatalf("log unavailable: %v", err)
	}
	down := []*logpb.Member{voter("a", 5000, ""), voter("b", 0, "unreachable"), voter("c", 5000, "")}
	err := logState(true, down...).CheckStopLog("a", false)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "would leave 1 healthy voter(s) (c) of 3, below the quorum of 2") {
		t.Fatalf("one voter down: %v", err)
	}
	// Restarting or removing the one that is down costs nothing.
	if err := logState(true, down...).CheckStopLog("b", false); err != nil {
		t.Fatalf("restart the down voter: %v", err)
	}
	if err := logState(true, down...).CheckStopLog("b", true); err != nil {
		t.Fatalf("remove the down voter: %v", err)
	}
	// A voter far behind does not count.
	behind := []*logpb.Member{voter("a", 5000, ""), voter("b", 100, ""), voter("c", 5000, "")}
	if err := logState(true, behind...).CheckStopLog("c", false); !errors.Is(err, ErrRefused) {
		t.Fatalf("one voter far behind: %v", err)
	}
}

// fakeObs returns one state; fakeDriver records calls.
type fakeObs struct{ st *State }

func (f fakeObs) Observe(context.Context) (*State, error) { return f.st, nil }

func TestRunnerDryRunAndRefusal(t *testing.T) {
	st := &State{LogAvailable: true, Log: &logpb.InfoResponse{}, DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}}
	var did []string
	plan := &Plan{Title: "test", Steps: []Step{
		{What: "one", Do: func(context.Context) error { did = append(did, "one"); return nil }},
		{What: "two", Check: func(_ context.Context, st *State) error { return st.CheckStopView("dc1", "po1") },
			Do: func(context.Context) error { did = append(did, "two"); return nil }},
	}}
	var out bytes.Buffer
	if err := (&Runner{Obs: fakeObs{st}, Out: &out, DryRun: true}).Run(context.Background(), plan); err != nil || len(did) > 0 {
		t.Fatalf("dry run: %v, did %v", err, did)
	}
	if !strings.Contains(out.String(), "   2. two\n") || !strings.Contains(out.String(), "dry run: nothing was changed") {
		t.Fatalf("dry run printed:\n%s", out.String())
	}
	err := (&Runner{Obs: fakeObs{st}, Out: &out}).Run(context.Background(), plan)
	if !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), "step 2 (two): refused") || strings.Join(did, ",") != "one" {
		t.Fatalf("refusal: %v, did %v", err, did)
	}
}

func TestPlans(t *testing.T) {
	servers := []topology.Server{
		{Name: "log-dc1", Role: topology.RoleLog, DC: "dc1", Addr: "h:101", Raft: "h:1"},
		{Name: "view-a", Role: topology.RoleView, DC: "dc1", Addr: "h:301", Space: model.SpaceSP, Range: model.HashRange{}},
		{Name: "view-b", Role: topology.RoleView, DC: "dc1", Addr: "h:302", Space: model.SpacePO, Range: model.HashRange{}},
		{Name: "view-c", Role: topology.RoleView, DC: "dc1", Addr: "h:303", Space: model.SpacePO, Range: model.HashRange{}},
		{Name: "api-dc1", Role: topology.RoleAPI, DC: "dc1", Addr: "h:201"},
	}
	p := &Procedures{Servers: servers, Driver: &LocalDriver{}}
	var got []string
	for _, s := range p.RestartPlan("", "").Steps {
		got = append(got, s.What)
	}
	want := []string{
		"move the log's leadership away from log-dc1 if it leads",
		"stop log voter log-dc1 (the other voters keep the quorum)",
		"start log-dc1 and wait until it rejoins and catches up",
		// view-a is its range's only view: a temporary twin first.
		"start temporary view view-a-tmp at h:351",
		"wait until view-a-tmp is up to date",
		"retire view-a (h:301) from dc1's views",
		"restart view-a",
		"publish view-a again and wait until it is up to date",
		"retire temporary view view-a-tmp: unpublish, stop, wipe",
		// view-b and view-c are twins: in place.
		"retire view-b (h:302) from dc1's views",
		"restart view-b",
		"publish view-b again and wait until it is up to date",
		"retire view-c (h:303) from dc1's views",
		"restart view-c",
		"publish view-c again and wait until it is up to date",
		"start temporary API server api-dc1-tmp at h:251 in dc1 and wait until it answers",
		"restart API server api-dc1 and wait until it answers",
		"stop temporary API server api-dc1-tmp",
	}
	if len(got) != len(want) {
		t.Fatalf("restart plan:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("step %d: %q, want %q...", i+1, got[i], want[i])
		}
	}
	plan, err := p.ReplacePlan("log-dc1")
	if err != nil || len(plan.Steps) != 4 || !strings.Contains(plan.Steps[3].What, "add it as a voter") {
		t.Fatalf("replace log-dc1: %v %+v", err, plan)
	}
	if _, err := p.ReplacePlan("nope"); err == nil {
		t.Fatal("replace of an unknown server")
	}
	plan, _ = p.ReplacePlan("view-b")
	if len(plan.Steps) != 3 || !strings.Contains(plan.Steps[1].What, "wipe its data dir") {
		t.Fatalf("replace view-b: %+v", plan.Steps)
	}
}

// fakeDriver runs what is in up; it records nothing else.
type fakeDriver struct {
	LocalDriver
	up map[string]bool
}

func (d *fakeDriver) Running(_ context.Context, name string) (bool, error) { return d.up[name], nil }

func TestApplyPlan(t *testing.T) {
	servers := []topology.Server{
		{Name: "log-dc1", Role: topology.RoleLog, DC: "dc1", Addr: "h:101", Raft: "h:1"},
		{Name: "log-dc2", Role: topology.RoleLog, DC: "dc2", Addr: "h:102", Raft: "h:2"},
		{Name: "sp0", Role: topology.RoleView, DC: "dc1", Addr: "sp0", Space: model.SpaceSP, Range: model.HashRange{End: half}},
		{Name: "sp1", Role: topology.RoleView, DC: "dc1", Addr: "sp1", Space: model.SpaceSP, Range: model.HashRange{Start: half}},
		{Name: "po0", Role: topology.RoleView, DC: "dc1", Addr: "po0", Space: model.SpacePO, Range: model.HashRange{End: half}},
		{Name: "po1", Role: topology.RoleView, DC: "dc1", Addr: "po1", Space: model.SpacePO, Range: model.HashRange{Start: half}},
		{Name: "api-dc1", Role: topology.RoleAPI, DC: "dc1", Addr: "api0"},
	}
	up := map[string]bool{"log-dc1": true, "log-dc2": true, "sp0": true, "sp1": true, "po0": true, "po1": true, "api-dc1": true}
	p := &Procedures{Servers: servers, Driver: &fakeDriver{up: up}}
	dc := dcState(1)
	dc.Views = append(dc.Views, &apipb.ViewStatus{Address: "sp0-tmp", Space: "HashSP", RangeEnd: half, UpToDate: true})
	st := &State{LogAvailable: true, Log: &logpb.InfoResponse{Members: []*logpb.Member{voter("log-dc1", 1, ""), voter("log-dc2", 1, ""), voter("old", 1, "")}},
		DCs: map[string]*apipb.StatusResponse{"dc1": dc}}
	steps := func() []string {
		plan, err := p.ApplyPlan(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range plan.Steps {
			out = append(out, s.What)
		}
		return out
	}
	// Everything runs; a leftover twin (the LocalDriver's sp0-tmp is at
	// port + 50, so this one is unknown) and a member not in the topology.
	got := steps()
	if len(got) != 2 || !strings.Contains(got[0], "retire view sp0-tmp from dc1's views") || !strings.Contains(got[1], "remove log member old") {
		t.Fatalf("extras: %q", got)
	}
	// A view and the API server down, log-dc2 no longer a member: start
	// the API server before the view, join log-dc2 first, extras last.
	up["sp1"], up["api-dc1"] = false, false
	st.Log.Members = st.Log.Members[:1]
	dc.Views = dc.Views[:4]
	got = steps()
	want := []string{"log voter log-dc2 is not a member", "start API server api-dc1", "start view sp1"}
	if len(got) != len(want) {
		t.Fatalf("apply: %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("step %d: %q, want %q...", i+1, got[i], want[i])
		}
	}
}
