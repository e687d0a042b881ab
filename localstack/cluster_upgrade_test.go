package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/internal/buildinfo"
	"github.com/akutan/akutan/proto/apipb"
)

// TestClusterUpgrade runs issue 14's upgrade and rollback (akutan cluster
// upgrade, infra/cluster's UpgradePlan) on a stack of three DCs with one
// view per range, under load. The "new" build is the same code linked with
// another version string and support for log entry version 2
// (buildinfo.MaxLogVersion), the "old" one the stack's default binaries.
// The stack starts on the new build (ctl.sh bin, the driver's own record),
// so that two passes test both directions: --dry-run changes nothing; roll
// dc1's servers (its log voter, views and API server) back to the old build
// while the log is at version 1, and each reports it with no temporary
// server left; upgrade them to the new build again (a rerun over every DC
// has nothing to do); move the log to version 2; then the rollback is
// refused (exit 3, naming the version) and changes nothing. One DC keeps
// the test short (each pass over all three takes about 3 minutes here);
// BenchmarkProcedures measures the full passes. Then: no acknowledged write is
// lost, no request failed anywhere (no procedure takes a DC down), and the
// views' digests are equal in every DC.
func TestClusterUpgrade(t *testing.T) {
	s := newStack(t)
	// As TestClusterProcedures: checkpoints every 30 s so the replaced
	// views boot from a checkpoint plus the archive, one partition per
	// space.
	s.env = append(s.env, "AKUTAN_CHECKPOINT_INTERVAL=30s", "AKUTAN_TRUNCATE_EVERY=10s", "AKUTAN_PARTITIONS=1")
	newBin := t.TempDir()
	bi := "github.com/akutan/akutan/internal/buildinfo"
	build := exec.Command("go", "build", "-ldflags", fmt.Sprintf("-X %s.Version=upgrade-test -X %s.MaxLogVersion=2", bi, bi), "-o", newBin,
		"github.com/akutan/akutan/services/akutan-log", "github.com/akutan/akutan/services/akutan-view", "github.com/akutan/akutan/services/akutan-api")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the new binaries: %v\n%s", err, out)
	}
	oldBuild, oldVersion := binaryBuild(t, s.bin)
	newBuild, newVersion := binaryBuild(t, newBin)
	if oldBuild == newBuild || oldVersion != 1 || newVersion != 2 {
		t.Fatalf("old build %q (log version %d), new %q (%d)", oldBuild, oldVersion, newBuild, newVersion)
	}

	for dc := 1; dc <= 3; dc++ {
		for _, name := range []string{"log-dc%d", "view-dc%d-sp-p0-r0", "view-dc%d-po-p0-r0", "api-dc%d"} {
			s.mustRun("ctl.sh", "bin", fmt.Sprintf(name, dc), newBin)
		}
	}
	s.mustRun("up.sh")
	s.checkBuilds(t, func(int) string { return newBuild })
	s.mustCLI("", "insert", "--api", s.api(1), "demo.facts")
	cluster := func(args ...string) (string, int, time.Duration) {
		return s.clusterCmd("topology.yaml", nil, args...)
	}
	load := startLoad(t, s, 1, 2, 3)
	time.Sleep(3 * time.Second)

	t.Run("dry run and unusable binaries change nothing", func(t *testing.T) {
		before := s.snapshotState()
		out, code, _ := cluster("upgrade", "--bin", s.bin, "--dry-run")
		if code != 0 || !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "start temporary view view-dc1-sp-p0-r0-tmp") {
			t.Fatalf("upgrade --dry-run: exit %d\n%s", code, out)
		}
		// A directory without the servers' binaries is a usage error.
		partial := t.TempDir()
		if err := os.Link(filepath.Join(newBin, "akutan-view"), filepath.Join(partial, "akutan-view")); err != nil {
			t.Fatal(err)
		}
		out, code, _ = cluster("upgrade", "--bin", partial)
		if code != 2 || !strings.Contains(out, "akutan-log is not an executable file") || !strings.Contains(out, "akutan-api is not an executable file") {
			t.Fatalf("upgrade --bin with akutan-view only: exit %d\n%s", code, out)
		}
		if after := s.snapshotState(); after != before {
			t.Fatalf("changed the stack:\nbefore %s\nafter  %s", before, after)
		}
	})

	// upgrade moves dc1's servers onto bin and checks that each reports
	// want, the other DCs' the new build, and that nothing temporary is
	// left.
	upgrade := func(t *testing.T, phase, bin, want string) {
		load.phase(phase)
		out, code, took := cluster("upgrade", "--bin", bin, "--dc", "dc1")
		if code != 0 {
			t.Fatalf("upgrade --bin %s --dc dc1: exit %d\n%s", bin, code, out)
		}
		logProcedure(t, phase, took, out)
		s.checkBuilds(t, func(dc int) string {
			if dc == 1 {
				return want
			}
			return newBuild
		})
	}

	t.Run("roll back dc1 while the log is at version 1", func(t *testing.T) {
		upgrade(t, "rollback", s.bin, oldBuild)
		// Back on the default binaries, the stack records none for dc1.
		if recorded, _ := filepath.Glob(filepath.Join(s.dir, "binaries", "*dc1*")); len(recorded) > 0 {
			t.Errorf("binaries still recorded after the rollback to the default: %v", recorded)
		}
	})
	t.Run("upgrade dc1", func(t *testing.T) {
		upgrade(t, "upgrade", newBin, newBuild)
		// Every server is on the new build: a rerun has nothing to do.
		out, code, _ := cluster("upgrade", "--bin", newBin)
		if code != 0 || !strings.Contains(out, "nothing to do") || !strings.Contains(out, "(12 already on it") {
			t.Fatalf("upgrade again: exit %d\n%s", code, out)
		}
	})

	t.Run("no rollback after the log moved to version 2", func(t *testing.T) {
		load.phase("set-version")
		out, code := s.cli("", "log", "set-version", "2", "--api", s.apiAddrs(), "--log", s.logAddrs(), "--yes")
		if code != 0 || !strings.Contains(out, "the log is at version 2") {
			t.Fatalf("set-version 2 with every server upgraded: exit %d\n%s", code, out)
		}
		load.phase("refused-rollback")
		before := s.snapshotState()
		for _, dry := range []bool{true, false} {
			args := []string{"upgrade", "--bin", s.bin}
			if dry {
				args = append(args, "--dry-run")
			}
			out, code, _ := cluster(args...)
			want := fmt.Sprintf("refused: the log is at entry version 2 and the binaries in %s support versions up to 1 only", s.bin)
			if code != 3 || !strings.Contains(out, want) {
				t.Fatalf("rollback (dry run %v) after the version change: exit %d, want 3 and %q\n%s", dry, code, want, out)
			}
		}
		if after := s.snapshotState(); after != before {
			t.Fatalf("a refused rollback changed the stack:\nbefore %s\nafter  %s", before, after)
		}
		s.checkBuilds(t, func(int) string { return newBuild })
	})

	load.verify(t, s, map[string][]int{})
}

// binaryBuild is the build and the log version the akutan-view in dir
// reports (its --version).
func binaryBuild(t *testing.T, dir string) (string, uint32) {
	t.Helper()
	out, err := exec.Command(filepath.Join(dir, "akutan-view"), "--version").Output()
	if err != nil {
		t.Fatalf("%s/akutan-view --version: %v", dir, err)
	}
	build, v, err := buildinfo.ParseBanner(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return build, v
}

// checkBuilds wants every log voter (the log's members), every view (as
// each DC's API server lists it) and every API server (its Status) of DC
// number dc to report build(dc), each DC to list exactly its topology's two
// views, and no temporary server to run.
func (s *stack) checkBuilds(t *testing.T, build func(dc int) string) {
	t.Helper()
	out := s.mustCLI("", "log", "info", "--log", s.logAddrs(), "--linearizable", "--json")
	var info struct {
		Members []struct {
			ID    string `json:"id"`
			Build string `json:"build"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Members) != 3 {
		t.Fatalf("log info: %v\n%s", err, out)
	}
	for _, m := range info.Members {
		var dc int
		fmt.Sscanf(m.ID, "log-dc%d", &dc)
		if m.Build != build(dc) {
			t.Errorf("log voter %s reports build %q, want %q", m.ID, m.Build, build(dc))
		}
	}
	for dc := 1; dc <= 3; dc++ {
		build := build(dc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := apiClient(t, s.api(dc)).Status(ctx, &apipb.StatusRequest{})
		cancel()
		if err != nil {
			t.Fatalf("status of dc%d: %v", dc, err)
		}
		if st.Version != build {
			t.Errorf("API server of dc%d reports build %q, want %q", dc, st.Version, build)
		}
		var views []string
		for _, v := range st.Views {
			views = append(views, v.Address)
			if v.Build != build {
				t.Errorf("view %s of dc%d reports build %q, want %q", v.Address, dc, v.Build, build)
			}
		}
		sort.Strings(views)
		if want := []string{s.view(dc, 1), s.view(dc, 2)}; strings.Join(views, ",") != strings.Join(want, ",") {
			t.Errorf("dc%d lists views %v, want %v", dc, views, want)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(s.dir, "pids", "*-tmp.pid")); len(leftovers) > 0 {
		t.Errorf("temporary servers left running: %v", leftovers)
	}
}
