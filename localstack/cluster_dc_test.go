package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/proto/apipb"
)

// dc4Topology is the datacenter TestClusterDatacenters adds: no log
// voter (see the test), one API server, one view per space.
const dc4Topology = `  - name: dc4
    api_servers: 1
    views:
      HashSP: {partitions: 1, replicas: 1}
      HashPO: {partitions: 1, replicas: 1}
`

// TestClusterDatacenters adds a fourth datacenter to a running database
// whose log prefix is already discarded (akutan cluster add-dc), checks
// that it serves every acknowledged write and is registered critical, and
// retires it again (cluster remove-dc), all under load in dc1..dc3, which
// never fail a request.
//
// dc4 gets no log voter: a fourth voter makes a configuration of 4 whose
// quorum of 3 tolerates one failure, as 3 voters do, while every commit
// waits for one more acknowledgement (cross-region in the cloud). Voters
// are added in pairs, or to a witness DC; dc4's views tail the log from
// the other DCs' voters. (The voter path of the plan is unit-tested in
// infra/cluster, and joining a voter on an empty disk is the replace
// procedure's, which TestClusterProcedures runs.)
func TestClusterDatacenters(t *testing.T) {
	s := newStack(t)
	s.env = append(s.env, "AKUTAN_CHECKPOINT_INTERVAL=30s", "AKUTAN_TRUNCATE_EVERY=10s", "AKUTAN_PARTITIONS=1",
		// The truncator counts checkpoints 20 s old, not 3 minutes: the
		// test waits for a truncation twice.
		"AKUTAN_DELAY=20s")
	s.reserveDC4(t)
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	orig, err := os.ReadFile("topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(topo, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	s.env = append(s.env, "AKUTAN_TOPOLOGY="+topo)
	s.mustRun("up.sh")
	s.mustCLI("", "insert", "--api", s.api(1), "demo.facts")
	cluster := func(args ...string) (string, int, time.Duration) {
		return s.clusterCmd(topo, []string{"--store", s.storeURL()}, args...)
	}
	api4 := fmt.Sprintf("127.0.0.1:%d", s.base+204)
	dc4Servers := []string{"api-dc4", "view-dc4-sp-p0-r0", "view-dc4-po-p0-r0"}

	load := startLoad(t, s, 1, 2, 3)
	start := time.Now()
	first := s.waitLogTruncated(t, 1, 4*time.Minute)
	t.Logf("the log's prefix was discarded %.1fs after the load began: first index %d", time.Since(start).Seconds(), first)

	if _, code, _ := cluster("add-dc", "dc4", "--dry-run"); code != 2 {
		t.Fatalf("add-dc of a DC not in the file: exit %d, want 2", code)
	}
	f, err := os.OpenFile(topo, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(dc4Topology); err != nil {
		t.Fatal(err)
	}
	f.Close()

	t.Run("dry runs change nothing", func(t *testing.T) {
		before := s.snapshotState() + s.clusterRegistry(t).String()
		out, code, _ := cluster("add-dc", "dc4", "--dry-run")
		if code != 0 || !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "register dc4 in the cluster registry, not critical yet") ||
			!strings.Contains(out, "start view view-dc4-sp-p0-r0") || !strings.Contains(out, "then mark it critical") {
			t.Fatalf("add-dc --dry-run: exit %d\n%s", code, out)
		}
		// remove-dc of a DC that was never added: nothing to do.
		out, code, _ = cluster("remove-dc", "dc4", "--dry-run")
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Fatalf("remove-dc --dry-run before add-dc: exit %d\n%s", code, out)
		}
		if after := s.snapshotState() + s.clusterRegistry(t).String(); after != before {
			t.Fatalf("a dry run changed the stack:\nbefore %s\nafter  %s", before, after)
		}
		for _, name := range dc4Servers {
			if _, err := s.run("ctl.sh", "running", name); err == nil {
				t.Fatalf("%s runs after a dry run", name)
			}
		}
	})

	t.Run("add dc4 from the bucket", func(t *testing.T) {
		load.phase("add-dc")
		out, code, took := cluster("add-dc", "dc4")
		if code != 0 {
			t.Fatalf("add-dc dc4: exit %d\n%s", code, out)
		}
		logProcedure(t, "add-dc dc4", took, out)
		if !strings.Contains(out, "view-dc4-sp-p0-r0 up to date after") || !strings.Contains(out, "view-dc4-po-p0-r0 up to date after") {
			t.Fatalf("add-dc did not wait for dc4's views:\n%s", out)
		}
		if out, code := s.cli("", "status", "--api", api4); code != 0 || !strings.Contains(out, "dc4: fully available: yes") {
			t.Fatalf("dc4's status: exit %d\n%s", code, out)
		}
		if reg := s.clusterRegistry(t); !slices.Contains(reg.Critical, "dc4") {
			t.Fatalf("the registry does not list dc4 critical: %s", reg)
		}
		// Every write acknowledged so far is read in dc4 at the latest
		// index; and dc4's views hold what the others' hold.
		load.mu.Lock()
		acked := make(map[string]uint64, len(load.acked))
		for k, v := range load.acked {
			acked[k] = v
		}
		load.mu.Unlock()
		readAllThrough(t, api4, acked)
		t.Logf("dc4 reads all %d writes acknowledged so far", len(acked))
		s.checkDigests(t, []int{1, 2, 3, 4})
		// Its views booted from checkpoints in the bucket (the log no
		// longer held its prefix), not by replaying from index 1.
		for _, v := range s.statusViews(t, api4) {
			t.Logf("dc4 view %s: applied %d, checkpoint %d", v.Address, v.Applied, v.Checkpoint)
			if v.Checkpoint == 0 {
				t.Errorf("dc4's view %s reports no checkpoint: it did not boot from one", v.Address)
			}
		}

		out, code, _ = cluster("add-dc", "dc4")
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Fatalf("add-dc dc4 again: exit %d\n%s", code, out)
		}
	})

	t.Run("remove dc4", func(t *testing.T) {
		before := s.snapshotState() + s.clusterRegistry(t).String()
		out, code, _ := cluster("remove-dc", "dc4", "--dry-run")
		if code != 0 || !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "1. mark dc4 non-critical") {
			t.Fatalf("remove-dc --dry-run: exit %d\n%s", code, out)
		}
		if after := s.snapshotState() + s.clusterRegistry(t).String(); after != before {
			t.Fatalf("a dry run changed the stack:\nbefore %s\nafter  %s", before, after)
		}
		// Not the last DC: refused, dc1..dc3 stay.
		if out, code, _ := cluster("remove-dc", "dc9"); code != 2 {
			t.Fatalf("remove-dc of a DC not in the file: exit %d\n%s", code, out)
		}

		load.phase("remove-dc")
		out, code, took := cluster("remove-dc", "dc4")
		if code != 0 || !strings.Contains(out, "now delete datacenter dc4 from") {
			t.Fatalf("remove-dc dc4: exit %d\n%s", code, out)
		}
		logProcedure(t, "remove-dc dc4", took, out)
		for _, name := range dc4Servers {
			if _, err := s.run("ctl.sh", "running", name); err == nil {
				t.Errorf("%s still runs", name)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "dc4", name)); err == nil && name != "api-dc4" {
				t.Errorf("%s's data dir is still there", name)
			}
		}
		if reg := s.clusterRegistry(t); slices.ContainsFunc(reg.Clusters, func(c clusterRegistryEntry) bool { return c.Name == "dc4" }) {
			t.Fatalf("the registry still lists dc4: %s", reg)
		}
		out, code, _ = cluster("remove-dc", "dc4")
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Fatalf("remove-dc dc4 again: exit %d\n%s", code, out)
		}
		// Truncation goes on without dc4: past the log's last index now,
		// above anything dc4's views checkpointed before they went.
		at, last := s.logFirstIndex(t), logLast(t, apiClient(t, s.api(1)))
		start := time.Now()
		after := s.waitLogTruncated(t, last, 3*time.Minute)
		t.Logf("truncation goes on: first index %d at the removal (last %d), %d %.1fs later", at, last, after, time.Since(start).Seconds())
	})

	load.verify(t, s, map[string][]int{})
}

// reserveDC4 moves the stack to a base whose ports, dc4's included, are
// all free: newStack's freeBase checks dc1..dc3's. dc4 (position 4) has
// its API server at base+204, its views at base+601 and up and their
// temporary twins at +50; every HTTP listener is at its port + 1000.
func (s *stack) reserveDC4(t *testing.T) {
	offsets := []int{1, 2, 3, 4, 101, 102, 103, 104, 201, 202, 203, 204, 251, 252, 253, 254,
		301, 302, 351, 352, 401, 402, 451, 452, 501, 502, 551, 552, 601, 602, 651, 652, 900, 901}
	free := func(base int) bool {
		for _, off := range offsets {
			for _, p := range []int{base + off, base + off + 1000} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					return false
				}
				l.Close()
			}
		}
		return true
	}
	if free(s.base) {
		return
	}
	for try := 0; try < 50; try++ {
		if base := freeBase(t); free(base) {
			s.base = base
			s.env = append(s.env, fmt.Sprintf("AKUTAN_BASE_PORT=%d", base)) // the last value wins
			return
		}
	}
	t.Fatal("no base port with dc4's ports free")
}

type clusterRegistryEntry struct {
	Name     string `json:"name"`
	Critical bool   `json:"critical"`
}

type clusterRegistryJSON struct {
	Clusters []clusterRegistryEntry `json:"clusters"`
	Critical []string               `json:"critical"`
}

func (r clusterRegistryJSON) String() string { return fmt.Sprintf("%+v", r.Clusters) }

// registry is the bucket's cluster registry (akutan backup clusters).
func (s *stack) clusterRegistry(t *testing.T) clusterRegistryJSON {
	out := s.mustCLI("", "backup", "clusters", "--json", "--store", s.storeURL())
	var r clusterRegistryJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("backup clusters: %v\n%s", err, out)
	}
	return r
}

// logFirst is the log's first index (akutan log info).
func (s *stack) logFirstIndex(t *testing.T) uint64 {
	out, code := s.cli("", "log", "info", "--log", s.logAddrs(), "--json")
	var in struct {
		FirstIndex uint64 `json:"first_index"`
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("log info: exit %d: %v\n%s", code, err, out)
	}
	return in.FirstIndex
}

// waitTruncated waits until the log's first index is above after.
func (s *stack) waitLogTruncated(t *testing.T, after uint64, timeout time.Duration) uint64 {
	deadline := time.Now().Add(timeout)
	for {
		if first := s.logFirstIndex(t); first > after {
			return first
		}
		if time.Now().After(deadline) {
			out, _ := s.cli("", "log", "truncate", "--dry-run", "--log", s.logAddrs(), "--store", s.storeURL())
			t.Fatalf("the log's first index stayed at %d or below for %s; the truncator's plan:\n%s", after, timeout, out)
		}
		time.Sleep(time.Second)
	}
}

// readAll reads every subject of acked through the API server at addr at
// the latest index, and fails on any missing.
func readAllThrough(t *testing.T, addr string, acked map[string]uint64) {
	t.Helper()
	var subjects []string
	for subj := range acked {
		subjects = append(subjects, subj)
	}
	sort.Strings(subjects)
	cl := apiClient(t, addr)
	for i := 0; i < len(subjects); i += 200 {
		batch := subjects[i:min(i+200, len(subjects))]
		var nodes []*apipb.Node
		for _, subj := range batch {
			nodes = append(nodes, name(subj))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := apiclient.LookupS(ctx, cl, &apipb.LookupSRequest{Subjects: nodes})
		cancel()
		if err != nil {
			t.Fatalf("read of %d acknowledged writes through %s: %v", len(batch), addr, err)
		}
		found := map[string]bool{}
		for _, f := range res.Facts {
			found[batch[f.Lookup]] = true
		}
		for _, subj := range batch {
			if !found[subj] {
				t.Errorf("%s does not read the acknowledged write of %s (index %d)", addr, subj, acked[subj])
			}
		}
	}
}

type statusView struct {
	Address    string `json:"address"`
	Applied    uint64 `json:"last_applied"`
	Checkpoint uint64 `json:"checkpoint_index"`
}

// statusViews are the views the API server at addr lists for its DC.
func (s *stack) statusViews(t *testing.T, addr string) []statusView {
	out, code := s.cli("", "status", "--api", addr, "--json")
	var st struct {
		DCs []struct {
			Views []statusView `json:"views"`
		} `json:"dcs"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.DCs) == 0 || len(st.DCs[0].Views) == 0 {
		t.Fatalf("status of %s: exit %d, %v\n%s", addr, code, err, out)
	}
	return st.DCs[0].Views
}
