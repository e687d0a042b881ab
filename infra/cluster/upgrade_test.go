package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/logpb"
)

// fakeBinary writes an executable name into dir that prints out for
// --version.
func fakeBinary(t *testing.T, dir, name, out string) {
	t.Helper()
	script := "#!/bin/sh\n[ \"$1\" = --version ] || exit 2\nprintf '%s' '" + out + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestReadBinaries(t *testing.T) {
	dir := t.TempDir()
	fakeBinary(t, dir, "akutan-log", "akutan-log v2 (commit a, built d, go1)\nsupports log entry versions up to 3\n")
	fakeBinary(t, dir, "akutan-view", "akutan-view v2 (commit a, built d, go1)\nsupports log entry versions up to 2\n")
	_, err := ReadBinaries(context.Background(), dir)
	if !errors.Is(err, ErrBinaries) || !strings.Contains(err.Error(), filepath.Join(dir, "akutan-api")+" is not an executable file") {
		t.Fatalf("without akutan-api: %v", err)
	}
	fakeBinary(t, dir, "akutan-api", "akutan-api v2 (commit a, built d, go1)\nsupports log entry versions up to 2\n")
	b, err := ReadBinaries(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// The directory reads what its least capable binary reads.
	if b.LogVersion != 2 || b.Build[topology.RoleView] != "v2 (commit a, built d, go1)" || b.Dir != dir {
		t.Fatalf("binaries %+v", b)
	}
	// A build older than the version line cannot say what it reads.
	fakeBinary(t, dir, "akutan-view", "akutan-view v1 (commit a, built d, go1)\n")
	if _, err := ReadBinaries(context.Background(), dir); !errors.Is(err, ErrBinaries) || !strings.Contains(err.Error(), "does not say which log versions") {
		t.Fatalf("a binary without the version line: %v", err)
	}
}

const (
	oldBuild = "v1 (commit a, built d, go1)"
	newBuild = "v2 (commit b, built d, go1)"
)

func upgradeBins(logVersion uint32) *Binaries {
	return &Binaries{Dir: "/new", LogVersion: logVersion, Build: map[topology.Role]string{
		topology.RoleLog: newBuild, topology.RoleView: newBuild, topology.RoleAPI: newBuild}}
}

func upgradeServers() []topology.Server {
	return []topology.Server{
		{Name: "log-dc1", Role: topology.RoleLog, DC: "dc1", Addr: "h:101", Raft: "h:1"},
		{Name: "log-dc2", Role: topology.RoleLog, DC: "dc2", Addr: "h:102", Raft: "h:2"},
		{Name: "view-a", Role: topology.RoleView, DC: "dc1", Addr: "h:301", Space: model.SpaceSP, Range: model.HashRange{}},
		{Name: "view-b", Role: topology.RoleView, DC: "dc1", Addr: "h:302", Space: model.SpacePO, Range: model.HashRange{}},
		{Name: "view-c", Role: topology.RoleView, DC: "dc1", Addr: "h:303", Space: model.SpacePO, Range: model.HashRange{}},
		{Name: "api-dc1", Role: topology.RoleAPI, DC: "dc1", Addr: "h:201"},
	}
}

func upgradeState(logVersion uint32) *State {
	return &State{LogAvailable: true, Log: &logpb.InfoResponse{LastIndex: 10, LogVersion: logVersion},
		DCs: map[string]*apipb.StatusResponse{"dc1": dcState(1)}}
}

func upgradeSteps(plan *Plan) []string {
	var out []string
	for _, s := range plan.Steps {
		out = append(out, s.What)
	}
	return out
}

func TestUpgradePlan(t *testing.T) {
	p := &Procedures{Servers: upgradeServers(), Driver: &fakeDriver{}}
	builds := map[string]string{"log-dc1": oldBuild, "log-dc2": oldBuild, "view-a": oldBuild, "view-b": oldBuild, "view-c": oldBuild, "api-dc1": oldBuild}
	plan, err := p.UpgradePlan(upgradeBins(2), upgradeState(1), builds, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"move the log's leadership away from log-dc1 if it leads",
		"stop log voter log-dc1",
		"start log-dc1 on the --bin binaries, wait until it rejoins, catches up and reports their build",
		"move the log's leadership away from log-dc2 if it leads",
		"stop log voter log-dc2",
		"start log-dc2 on the --bin binaries",
		// view-a is its range's only view: a twin on the --bin binaries.
		"start temporary view view-a-tmp at h:351 on the --bin binaries",
		"wait until view-a-tmp is up to date",
		"retire view-a (h:301) from dc1's views",
		"stop view-a, delete its state, start it on the --bin binaries (boots from the bucket)",
		"publish view-a again, wait until it is up to date and reports their build",
		"retire temporary view view-a-tmp: unpublish, stop, wipe",
		// view-b and view-c are twins: one at a time, no temporary view.
		"retire view-b (h:302) from dc1's views",
		"stop view-b, delete its state",
		"publish view-b again",
		"retire view-c (h:303) from dc1's views",
		"stop view-c, delete its state",
		"publish view-c again",
		"start temporary API server api-dc1-tmp at h:251 in dc1 on the --bin binaries",
		"restart API server api-dc1 on the --bin binaries, wait until it answers with their build",
		"stop temporary API server api-dc1-tmp",
	}
	got := upgradeSteps(plan)
	if len(got) != len(want) {
		t.Fatalf("upgrade plan:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("step %d: %q, want %q...", i+1, got[i], want[i])
		}
	}
	if !strings.HasSuffix(plan.Title, "to the binaries in /new") {
		t.Errorf("title %q", plan.Title)
	}

	// A rerun after an interruption: log-dc1, view-a and api-dc1 are on the
	// new build already, but view-a's and api-dc1's temporary servers still
	// run; the plan upgrades the rest and retires those.
	builds["log-dc1"], builds["view-a"], builds["api-dc1"] = newBuild, newBuild, newBuild
	builds["view-a-tmp"], builds["api-dc1-tmp"] = newBuild, ""
	plan, err = p.UpgradePlan(upgradeBins(2), upgradeState(1), builds, "dc1", "")
	if err != nil {
		t.Fatal(err)
	}
	got = upgradeSteps(plan)
	// --dc dc1 leaves log-dc2 out (log-dc1 is on the new build).
	want = []string{
		"retire temporary view view-a-tmp",
		"retire view-b", "stop view-b", "publish view-b",
		"retire view-c", "stop view-c", "publish view-c",
		"stop temporary API server api-dc1-tmp",
	}
	if len(got) != len(want) {
		t.Fatalf("rerun in dc1:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("rerun step %d: %q, want %q...", i+1, got[i], want[i])
		}
	}
	if !strings.Contains(plan.Title, "(3 already on it: api-dc1, log-dc1, view-a)") {
		t.Errorf("rerun title %q", plan.Title)
	}

	// Only the log voters.
	plan, _ = p.UpgradePlan(upgradeBins(2), upgradeState(1), builds, "", topology.RoleLog)
	if got := upgradeSteps(plan); len(got) != 3 || !strings.Contains(got[2], "start log-dc2") {
		t.Fatalf("log voters only:\n%s", strings.Join(got, "\n"))
	}
}

func TestUpgradeRefusedAboveTheBinariesLogVersion(t *testing.T) {
	p := &Procedures{Servers: upgradeServers(), Driver: &fakeDriver{}}
	// A rollback to binaries that read version 1 after the log moved to 2.
	_, err := p.UpgradePlan(upgradeBins(1), upgradeState(2), nil, "", "")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "the log is at entry version 2 and the binaries in /new support versions up to 1 only") {
		t.Fatalf("log at 2, binaries read 1: %v", err)
	}
	// A log that did not answer has no known version: refused too.
	if _, err := p.UpgradePlan(upgradeBins(2), &State{}, nil, "", ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "entry version is unknown") {
		t.Fatalf("no log: %v", err)
	}
	// Allowed now, yet every step checks again: the log's version may move
	// while the procedure runs, and the step refuses before it acts.
	plan, err := p.UpgradePlan(upgradeBins(1), upgradeState(1), nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var did []string
	for i := range plan.Steps {
		plan.Steps[i].Do = func(context.Context) error { did = append(did, "step"); return nil }
	}
	moved := upgradeState(2)
	for i, s := range plan.Steps {
		if err := s.Check(context.Background(), moved); !errors.Is(err, ErrRefused) {
			t.Fatalf("step %d (%s) with the log at version 2: %v", i+1, s.What, err)
		}
	}
	err = (&Runner{Obs: fakeObs{moved}, Out: &strings.Builder{}}).Run(context.Background(), plan)
	if !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), "step 1 (") || len(did) > 0 {
		t.Fatalf("run with the log at version 2: %v, did %v", err, did)
	}
	// The step's own gate still holds after the version check.
	if err := plan.Steps[1].Check(context.Background(), &State{LogAvailable: false, Log: &logpb.InfoResponse{LogVersion: 1}}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "the log is not available") {
		t.Fatalf("stop log-dc1 with the log unavailable: %v", err)
	}
}

// plainDriver is a Driver that cannot switch binaries.
type plainDriver struct{ Driver }

func TestUpgradeNeedsABinaryDriver(t *testing.T) {
	p := &Procedures{Servers: upgradeServers(), Driver: plainDriver{&fakeDriver{}}}
	if _, err := p.UpgradePlan(upgradeBins(2), upgradeState(1), nil, "", ""); err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("a driver without UseBinaries: %v", err)
	}
}
