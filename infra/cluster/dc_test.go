package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
)

// dcRecDriver is a fakeDriver that records what it is asked to change, in
// one list with dcRecRegistry's writes.
type dcRecDriver struct {
	fakeDriver
	calls *[]string
}

func (d *dcRecDriver) rec(format string, args ...any) error {
	*d.calls = append(*d.calls, fmt.Sprintf(format, args...))
	return nil
}
func (d *dcRecDriver) Start(_ context.Context, n string) error {
	d.up[n] = true
	return d.rec("start %s", n)
}
func (d *dcRecDriver) Join(_ context.Context, n string) error {
	d.up[n] = true
	return d.rec("join %s", n)
}
func (d *dcRecDriver) Stop(_ context.Context, n string) error {
	d.up[n] = false
	return d.rec("stop %s", n)
}
func (d *dcRecDriver) Wipe(_ context.Context, n string) error { return d.rec("wipe %s", n) }
func (d *dcRecDriver) PublishView(_ context.Context, dc, addr string, add bool) error {
	return d.rec("publish %s %s %v", dc, addr, add)
}

// dcRecRegistry is the registry in a local-directory store, recording its
// writes.
type dcRecRegistry struct {
	StoreRegistry
	calls *[]string
}

func (r dcRecRegistry) Set(ctx context.Context, dc string, critical bool) error {
	*r.calls = append(*r.calls, fmt.Sprintf("registry set %s critical=%v", dc, critical))
	return r.StoreRegistry.Set(ctx, dc, critical)
}

func (r dcRecRegistry) Remove(ctx context.Context, dc string) error {
	*r.calls = append(*r.calls, "registry remove "+dc)
	return r.StoreRegistry.Remove(ctx, dc)
}

func newDCRegistry(t *testing.T, calls *[]string, critical ...string) dcRecRegistry {
	store, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := dcRecRegistry{StoreRegistry{store}, calls}
	for _, dc := range critical {
		if err := r.StoreRegistry.Set(context.Background(), dc, true); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// registryOf is the registry as "dc1 dc4:critical=false" (sorted).
func dcRegistryOf(t *testing.T, r Registry) string {
	reg, err := r.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range reg.Clusters {
		s := c.Name
		if !c.Critical {
			s += ":critical=false"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// dcTopology is dc1 (a cluster with a log voter) and dc4 with one view
// per space, one API server and, with voter, a log voter.
func dcTopology(voter bool) []topology.Server {
	servers := []topology.Server{
		{Name: "log-dc1", Role: topology.RoleLog, DC: "dc1", Addr: "h:101", Raft: "h:1"},
		{Name: "sp0", Role: topology.RoleView, DC: "dc1", Addr: "sp0", Space: model.SpaceSP, Range: model.HashRange{End: half}},
		{Name: "sp1", Role: topology.RoleView, DC: "dc1", Addr: "sp1", Space: model.SpaceSP, Range: model.HashRange{Start: half}},
		{Name: "po0", Role: topology.RoleView, DC: "dc1", Addr: "po0", Space: model.SpacePO, Range: model.HashRange{End: half}},
		{Name: "po1", Role: topology.RoleView, DC: "dc1", Addr: "po1", Space: model.SpacePO, Range: model.HashRange{Start: half}},
		{Name: "api-dc1", Role: topology.RoleAPI, DC: "dc1", Addr: "api0"},
	}
	if voter {
		servers = append(servers, topology.Server{Name: "log-dc4", Role: topology.RoleLog, DC: "dc4", Addr: "h:104", Raft: "h:4"})
	}
	return append(servers,
		topology.Server{Name: "view-dc4-sp", Role: topology.RoleView, DC: "dc4", Addr: "h:601", Space: model.SpaceSP},
		topology.Server{Name: "view-dc4-po", Role: topology.RoleView, DC: "dc4", Addr: "h:602", Space: model.SpacePO},
		topology.Server{Name: "api-dc4", Role: topology.RoleAPI, DC: "dc4", Addr: "h:204"},
	)
}

// dc4State is a DC with one view per space, all up to date, and one API
// server.
func dc4State() *apipb.StatusResponse {
	return &apipb.StatusResponse{Dc: "dc4", Log: &apipb.LogStatus{Available: true}, FullyAvailable: &apipb.Verdict{Ok: true},
		Views: []*apipb.ViewStatus{
			{Address: "h:601", Space: "HashSP", UpToDate: true, Reachable: true},
			{Address: "h:602", Space: "HashPO", UpToDate: true, Reachable: true},
		},
		ApiServers: []*apipb.ApiServerStatus{{Address: "h:204", Reachable: true}}}
}

func dcWhats(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.What)
	}
	return out
}

func dcWantSteps(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d steps, want %d:\n  %s", what, len(got), len(want), strings.Join(got, "\n  "))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%s: step %d: %q, want %q...", what, i+1, got[i], want[i])
		}
	}
}

func TestAddDCPlan(t *testing.T) {
	ctx := context.Background()
	var calls []string
	up := map[string]bool{"log-dc1": true, "sp0": true, "sp1": true, "po0": true, "po1": true, "api-dc1": true}
	p := &Procedures{Servers: dcTopology(true), Driver: &dcRecDriver{fakeDriver{up: up}, &calls}}
	reg := newDCRegistry(t, &calls, "dc1")
	// A log member the topology does not name ("old") is cluster apply's
	// to remove, never add-dc's; dc4's API server does not answer yet.
	st := &State{LogAvailable: true, Log: &logpb.InfoResponse{Members: []*logpb.Member{voter("log-dc1", 1, ""), voter("old", 1, "")}},
		DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}, Unanswered: map[string]error{"dc4": errors.New("refused")}}
	plan, err := p.AddDCPlan(ctx, st, reg, "dc4")
	if err != nil {
		t.Fatal(err)
	}
	dcWantSteps(t, "add dc4", dcWhats(plan), []string{
		"register dc4 in the cluster registry, not critical yet",
		"log voter log-dc4 is not a member: stop it, wipe its disk, start it empty, add it as a voter",
		"start API server api-dc4",
		"start view view-dc4-sp (HashSP [0x0000000000000000, 2^64) in dc4), publish it, wait until it is up to date",
		"start view view-dc4-po",
		"wait until dc4 is fully available, then mark it critical in the cluster registry",
	})

	// The dry run shows that plan and changes nothing, the registry
	// included.
	var out bytes.Buffer
	if err := (&Runner{Obs: fakeObs{st}, Out: &out, DryRun: true}).Run(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if len(calls) > 0 || dcRegistryOf(t, reg) != "dc1" {
		t.Fatalf("the dry run changed something: %q, registry %s", calls, dcRegistryOf(t, reg))
	}
	// The first step registers dc4, not critical: the truncation
	// coordinator does not wait for a cluster still booting.
	if err := plan.Steps[0].Do(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dcRegistryOf(t, reg); got != "dc1 dc4:critical=false" {
		t.Fatalf("registry after step 1: %s", got)
	}

	// Interrupted once everything runs and is up to date: only the
	// registration as critical is left.
	for _, s := range p.Servers {
		up[s.Name] = true
	}
	st.Log.Members = append(st.Log.Members, voter("log-dc4", 1, ""))
	st.DCs["dc4"], st.Unanswered = dc4State(), nil
	plan, err = p.AddDCPlan(ctx, st, reg, "dc4")
	if err != nil {
		t.Fatal(err)
	}
	dcWantSteps(t, "add dc4, interrupted", dcWhats(plan), []string{"wait until dc4 is fully available, then mark it critical"})

	// Registered critical and fully available: nothing to do.
	if err := reg.StoreRegistry.Set(ctx, "dc4", true); err != nil {
		t.Fatal(err)
	}
	plan, err = p.AddDCPlan(ctx, st, reg, "dc4")
	if err != nil || len(plan.Steps) > 0 {
		t.Fatalf("add dc4 once done: %v %q", err, dcWhats(plan))
	}
	out.Reset()
	if err := (&Runner{Obs: fakeObs{st}, Out: &out}).Run(ctx, plan); err != nil || !strings.Contains(out.String(), "nothing to do") {
		t.Fatalf("run once done: %v\n%s", err, out.String())
	}
	// Registered critical but not available (a view fell behind): wait,
	// without registering again.
	st.DCs["dc4"].FullyAvailable.Ok = false
	plan, _ = p.AddDCPlan(ctx, st, reg, "dc4")
	dcWantSteps(t, "add dc4, not available", dcWhats(plan), []string{"wait until dc4 is fully available"})
	if strings.Contains(plan.Steps[0].What, "critical") {
		t.Fatalf("registers again: %q", plan.Steps[0].What)
	}

	if _, err := p.AddDCPlan(ctx, st, reg, "dc9"); !errors.Is(err, ErrNoSuchDC) {
		t.Fatalf("a DC not in the topology: %v", err)
	}
}

func TestRemoveDCPlan(t *testing.T) {
	ctx := context.Background()
	var calls []string
	up := map[string]bool{}
	for _, s := range dcTopology(false) {
		up[s.Name] = true
	}
	// A temporary twin an interrupted restart left behind goes too.
	up["view-dc4-po-tmp"] = true
	d := &dcRecDriver{fakeDriver{up: up}, &calls}
	p := &Procedures{Servers: dcTopology(false), Driver: d}
	reg := newDCRegistry(t, &calls, "dc1", "dc4")
	st := &State{LogAvailable: true, Log: &logpb.InfoResponse{Members: []*logpb.Member{voter("log-dc1", 1, "")}},
		DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1), "dc4": dc4State()}}
	plan, err := p.RemoveDCPlan(ctx, st, reg, "dc4")
	if err != nil {
		t.Fatal(err)
	}
	dcWantSteps(t, "remove dc4", dcWhats(plan), []string{
		"mark dc4 non-critical in the cluster registry",
		"stop API server api-dc4",
		"retire view view-dc4-sp (HashSP [0x0000000000000000, 2^64)): unpublish from dc4's views, stop, wipe",
		"retire view view-dc4-po ",
		"retire view view-dc4-po-tmp ",
		"remove dc4 from the cluster registry",
	})

	// Views go only once no API server of dc4 answers.
	if err := plan.Steps[2].Check(ctx, st); !errors.Is(err, ErrRefused) {
		t.Fatalf("retire a view while dc4's API server answers: %v", err)
	}
	// Nothing starts while no other DC is fully available.
	sick := &State{LogAvailable: true, Log: st.Log, DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1, "sp0"), "dc4": dc4State()}}
	err = (&Runner{Obs: fakeObs{sick}, Out: &bytes.Buffer{}}).Run(ctx, plan)
	if !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), "step 1 ") || len(calls) > 0 {
		t.Fatalf("dc1 not fully available: %v, did %q", err, calls)
	}

	// Run it as the API servers would be seen after step 2: dc4's does not
	// answer. Non-critical first, the registry entry last.
	dark := &State{LogAvailable: true, Log: st.Log, DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}, Unanswered: map[string]error{"dc4": errors.New("refused")}}
	if err := (&Runner{Obs: fakeObs{dark}, Out: &bytes.Buffer{}}).Run(ctx, plan); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"registry set dc4 critical=false",
		"stop api-dc4",
		"publish dc4 h:601 false", "stop view-dc4-sp", "wipe view-dc4-sp",
		"publish dc4 h:602 false", "stop view-dc4-po", "wipe view-dc4-po",
		"publish dc4 h:652 false", "stop view-dc4-po-tmp", "wipe view-dc4-po-tmp",
		"registry remove dc4",
	}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Fatalf("remove dc4 did\n  %s\nwant\n  %s", strings.Join(calls, "\n  "), strings.Join(want, "\n  "))
	}
	if got := dcRegistryOf(t, reg); got != "dc1" {
		t.Fatalf("registry after: %s", got)
	}
	// Idempotent: run again, nothing to do.
	plan, err = p.RemoveDCPlan(ctx, dark, reg, "dc4")
	if err != nil || len(plan.Steps) > 0 {
		t.Fatalf("remove dc4 again: %v %q", err, dcWhats(plan))
	}

	// Refused up front: the last DC with views, the registry's only
	// critical cluster, a DC not in the file.
	if _, err := p.RemoveDCPlan(ctx, dark, reg, "dc1"); err == nil {
		// dc4 still lists views in the file, so dc1 is not the last: the
		// registry's only critical cluster is what refuses it.
		t.Fatal("remove the registry's only critical cluster: accepted")
	} else if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "only critical cluster") {
		t.Fatalf("remove the only critical cluster: %v", err)
	}
	alone := &Procedures{Servers: dcTopology(false)[:6], Driver: d}
	if _, err := alone.RemoveDCPlan(ctx, dark, reg, "dc1"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "last datacenter") {
		t.Fatalf("remove the last DC: %v", err)
	}
	if _, err := p.RemoveDCPlan(ctx, dark, reg, "dc9"); !errors.Is(err, ErrNoSuchDC) {
		t.Fatalf("a DC not in the topology: %v", err)
	}
}

func TestRemoveDCPlanLogVoter(t *testing.T) {
	ctx := context.Background()
	var calls []string
	up := map[string]bool{"log-dc1": true, "log-dc4": true}
	p := &Procedures{Servers: dcTopology(true), Driver: &dcRecDriver{fakeDriver{up: up}, &calls}}
	reg := newDCRegistry(t, &calls, "dc1")
	members := []*logpb.Member{voter("log-dc1", 5000, ""), voter("log-dc4", 5000, "")}
	st := &State{LogAvailable: true, Log: &logpb.InfoResponse{LastIndex: 5000, Members: members},
		DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}, Unanswered: map[string]error{"dc4": errors.New("refused")}}
	// dc4 not registered, its views and API server stopped: only its voter
	// is left.
	plan, err := p.RemoveDCPlan(ctx, st, reg, "dc4")
	if err != nil {
		t.Fatal(err)
	}
	dcWantSteps(t, "remove dc4's voter", dcWhats(plan), []string{
		"move the log's leadership away from log-dc4",
		"remove log voter log-dc4 from the Raft configuration, stop it, wipe its disk",
	})
	// Removing it leaves log-dc1 alone, a quorum of one.
	if err := plan.Steps[1].Check(ctx, st); err != nil {
		t.Fatalf("remove log-dc4 of 2 healthy voters: %v", err)
	}
	// Not while the only other voter is down.
	members[0].Error, members[0].AppliedIndex = "unreachable", 0
	if err := plan.Steps[1].Check(ctx, st); !errors.Is(err, ErrRefused) {
		t.Fatalf("remove log-dc4 while log-dc1 is down: %v", err)
	}
	// A voter already removed but still running is only stopped and wiped.
	st.Log.Members = members[:1]
	plan, _ = p.RemoveDCPlan(ctx, st, reg, "dc4")
	dcWantSteps(t, "remove dc4's voter, interrupted", dcWhats(plan), []string{"stop log voter log-dc4 and wipe its disk"})
}
