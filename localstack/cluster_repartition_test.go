package localstack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/akutan/akutan/infra/topology"
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/apipb"
)

// TestClusterRepartition runs akutan cluster repartition (infra/cluster)
// on a stack of three DCs with one partition per space, under load: dc1's
// HashSP goes from 1 to 4 even ranges (a split), then to 3 uneven ranges
// (a merge that keeps its first range as it runs). Each time the new
// views boot from the bucket (a checkpoint plus the archive), the API
// servers find them in the views file, and the old views are retired only
// once the new ones are up to date. Checked: a dry run changes nothing;
// after each run dc1's status lists exactly the target ranges of HashSP
// and HashPO as it was, the old views' processes are gone and their data
// dirs wiped, the file holds the final topology and no other view moved;
// a rerun has nothing to do. At the end: no acknowledged write is lost, no
// request failed in any DC, and every DC's spaces have equal digests.
func TestClusterRepartition(t *testing.T) {
	s := newStack(t)
	file := filepath.Join(t.TempDir(), "topology.yaml")
	orig, err := os.ReadFile("topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	one := strings.ReplaceAll(string(orig), "partitions: 2,", "partitions: 1,")
	if strings.Count(one, "partitions: 1,") != 6 {
		t.Fatalf("expected 6 spaces of 2 partitions in topology.yaml:\n%s", orig)
	}
	if err := os.WriteFile(file, []byte(one), 0o644); err != nil {
		t.Fatal(err)
	}
	// Checkpoints every 30 s, so new views boot from a checkpoint plus the
	// archive after the truncator has discarded a prefix.
	s.env = append(s.env, "AKUTAN_TOPOLOGY="+file, "AKUTAN_CHECKPOINT_INTERVAL=30s", "AKUTAN_TRUNCATE_EVERY=10s")
	s.mustRun("up.sh")
	s.mustCLI("", "insert", "--api", s.api(1), "demo.facts")
	s.waitCheckpoint(t, "dc1", "sp", logLast(t, apiClient(t, s.api(1))))

	repartition := func(args ...string) (string, int, time.Duration) {
		return s.clusterCmd(file, nil, append([]string{"repartition", "--dc", "dc1", "--space", "sp"}, args...)...)
	}
	load := startLoad(t, s, 1, 2, 3)
	time.Sleep(3 * time.Second)

	others := s.topologyViews(t, file, func(v topology.Server) bool { return v.DC != "dc1" })
	po := s.topologyViews(t, file, func(v topology.Server) bool { return v.DC == "dc1" && v.Space == model.SpacePO })

	t.Run("dry run changes nothing", func(t *testing.T) {
		before, data := s.snapshotState(), readFile(t, file)
		out, code, _ := repartition("--partitions", "4", "--dry-run")
		if code != 0 || !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "g2p3") {
			t.Fatalf("dry run: exit %d\n%s", code, out)
		}
		if after := s.snapshotState(); after != before {
			t.Fatalf("a dry run changed the stack:\nbefore %s\nafter  %s", before, after)
		}
		if readFile(t, file) != data {
			t.Fatal("a dry run rewrote the topology file")
		}
	})

	steps := []struct {
		name      string
		args      []string
		target    []model.HashRange
		interrupt bool // killed once after its first new view, then rerun
	}{
		{"split 1 into 4", []string{"--partitions", "4"}, topology.EvenRanges(4), false},
		// Uneven; its first range is the split's first, which keeps running.
		{"merge 4 into 3 uneven", []string{"--ranges", "0,0x4000000000000000,0x9000000000000000"},
			[]model.HashRange{{Start: 0, End: 0x4000000000000000}, {Start: 0x4000000000000000, End: 0x9000000000000000}, {Start: 0x9000000000000000}}, true},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			old := s.topologyViews(t, file, func(v topology.Server) bool { return v.DC == "dc1" && v.Space == model.SpaceSP })
			pids := map[string]int{}
			for _, v := range old {
				pids[v.Name] = s.pid(v.Name)
			}
			load.phase(fmt.Sprintf("repartition-%d", i+1))
			if st.interrupt {
				// SIGKILL once the split in progress is written and the
				// first new view started (step 2 done): the rerun must
				// see the split in progress and carry it on.
				out := s.cliKilledAfter(t, "[2/", append([]string{"cluster", "repartition", "-f", file, "--ctl", "ctl.sh", "--dc", "dc1", "--space", "sp"}, st.args...)...)
				t.Logf("interrupted run:\n%s", out)
				if top, err := topology.Load(file); err != nil || !top.Datacenters[0].Views["HashSP"].SplitInProgress {
					t.Fatalf("after the interruption the file has no split in progress (%v)", err)
				}
			}
			out, code, took := repartition(st.args...)
			if code != 0 {
				t.Fatalf("repartition %v: exit %d\n%s", st.args, code, out)
			}
			if st.interrupt != strings.Contains(out, "continuing the split in progress") {
				t.Fatalf("interrupted %v, but the run says:\n%s", st.interrupt, out)
			}
			logProcedure(t, "repartition dc1 HashSP "+st.name, took, out)

			// The file: the target ranges, no split in progress, nothing
			// else moved.
			top, err := topology.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, dc := range top.Datacenters {
				for k, sp := range dc.Views {
					if sp.SplitInProgress {
						t.Errorf("the file still has %s's %s split in progress", dc.Name, k)
					}
				}
			}
			now := s.topologyViews(t, file, func(v topology.Server) bool { return v.DC == "dc1" && v.Space == model.SpaceSP })
			var got []model.HashRange
			for _, v := range now {
				got = append(got, v.Range)
			}
			if !reflect.DeepEqual(got, st.target) {
				t.Errorf("the file's dc1 HashSP ranges: %v, want %v", got, st.target)
			}
			if o := s.topologyViews(t, file, func(v topology.Server) bool { return v.DC != "dc1" }); !reflect.DeepEqual(o, others) {
				t.Errorf("the other DCs' views changed in the file:\n%v\nwant\n%v", o, others)
			}
			if p := s.topologyViews(t, file, func(v topology.Server) bool { return v.DC == "dc1" && v.Space == model.SpacePO }); !reflect.DeepEqual(p, po) {
				t.Errorf("dc1's HashPO views changed in the file: %v, want %v", p, po)
			}

			// dc1's status: exactly the target ranges of HashSP, HashPO as
			// it was, all up to date.
			sp, pov, boot := s.statusRanges(t, 1)
			if !reflect.DeepEqual(sp, st.target) {
				t.Errorf("dc1's status lists HashSP %v, want %v", sp, st.target)
			}
			if want := []model.HashRange{{}}; !reflect.DeepEqual(pov, want) {
				t.Errorf("dc1's status lists HashPO %v, want %v", pov, want)
			}

			// The old views that are not kept: gone, data dirs wiped.
			keep := map[string]bool{}
			for _, v := range now {
				keep[v.Name] = true
			}
			// Each new view booted from a checkpoint in the bucket.
			was := map[string]bool{}
			for _, v := range old {
				was[v.Name] = true
			}
			for _, v := range now {
				if !was[v.Name] {
					if b := boot[v.Addr]; b <= 0 {
						t.Errorf("new view %s reports no checkpoint download (boot bytes %d)", v.Name, b)
					} else {
						t.Logf("new view %s booted from %d checkpoint bytes", v.Name, b)
					}
				}
			}
			retired := 0
			for _, v := range old {
				if keep[v.Name] {
					if s.pid(v.Name) != pids[v.Name] {
						t.Errorf("kept view %s was restarted", v.Name)
					}
					continue
				}
				retired++
				if err := syscall.Kill(pids[v.Name], 0); err == nil {
					t.Errorf("old view %s (pid %d) still runs", v.Name, pids[v.Name])
				}
				if _, err := os.Stat(filepath.Join(s.dir, "dc1", v.Name)); !os.IsNotExist(err) {
					t.Errorf("old view %s's data dir is still there (%v)", v.Name, err)
				}
			}
			if retired == 0 {
				t.Error("no view was retired")
			}

			// Rerun: nothing to do, nothing written.
			data := readFile(t, file)
			out, code, _ = repartition(st.args...)
			if code != 0 || !strings.Contains(out, "nothing to do") {
				t.Fatalf("rerun: exit %d\n%s", code, out)
			}
			if readFile(t, file) != data {
				t.Error("a rerun with nothing to do rewrote the file")
			}
		})
	}
	load.verify(t, s, map[string][]int{})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// topologyViews are the views of the topology file that keep, with the
// stack's port base, in listing order (by space, by range).
func (s *stack) topologyViews(t *testing.T, file string, keep func(topology.Server) bool) []topology.Server {
	t.Helper()
	top, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	top.Ports.Base = s.base
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	var out []topology.Server
	for _, v := range top.Servers() {
		if v.Role == topology.RoleView && keep(v) {
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Space != out[j].Space {
			return out[i].Space < out[j].Space
		}
		return out[i].Range.Start < out[j].Range.Start
	})
	for i := range out {
		out[i].Partition = 0 // a range's place in the list may change; its name and address may not
	}
	return out
}

// statusRanges are the ranges of the views dc's API server lists, by
// space, sorted, and the checkpoint bytes each view downloaded to boot, by
// address; each must be up to date.
func (s *stack) statusRanges(t *testing.T, dc int) (sp, po []model.HashRange, boot map[string]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := apiClient(t, s.api(dc)).Status(ctx, &apipb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	boot = map[string]int64{}
	for _, v := range st.Views {
		if v.BootBytesDone == v.BootBytesTotal {
			boot[v.Address] = v.BootBytesTotal
		}
		if !v.UpToDate {
			t.Errorf("dc%d lists view %s (%s) not up to date: %s %s", dc, v.Address, v.Space, v.State, v.Error)
		}
		r := model.HashRange{Start: v.RangeStart, End: v.RangeEnd}
		switch v.Space {
		case "HashSP":
			sp = append(sp, r)
		case "HashPO":
			po = append(po, r)
		default:
			t.Errorf("dc%d lists view %s of space %q", dc, v.Address, v.Space)
		}
	}
	for _, l := range [][]model.HashRange{sp, po} {
		sort.Slice(l, func(i, j int) bool { return l[i].Start < l[j].Start })
	}
	return sp, po, boot
}

// cliKilledAfter runs bin/akutan and SIGKILLs it at the first "done in"
// line after a line starting with after (a step of a plan finished);
// it returns what it printed.
func (s *stack) cliKilledAfter(t *testing.T, after string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "akutan"), args...)
	cmd.Env = append(s.env, "AWS_ACCESS_KEY_ID=akutan-local", "AWS_SECRET_ACCESS_KEY=akutan-local-secret")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var b strings.Builder
	sc := bufio.NewScanner(r)
	seen, killed := false, false
	for sc.Scan() {
		l := sc.Text()
		b.WriteString(l + "\n")
		seen = seen || strings.HasPrefix(l, after)
		if seen && !killed && strings.HasPrefix(strings.TrimSpace(l), "done in") {
			cmd.Process.Kill()
			killed = true
		}
	}
	r.Close()
	cmd.Wait()
	if !killed {
		t.Fatalf("akutan %v ended before it could be interrupted:\n%s", args, b.String())
	}
	return b.String()
}

// waitCheckpoint waits until the bucket holds a checkpoint of cluster's
// space (sp or po) at index at least n.
func (s *stack) waitCheckpoint(t *testing.T, cluster, space string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, code := s.cli("", "backup", "list", "--store", s.storeURL(), "--json")
		var inv struct {
			Checkpoints []struct {
				Cluster string `json:"cluster"`
				Space   string `json:"space"`
				Index   uint64 `json:"index"`
			} `json:"checkpoints"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &inv) == nil {
			for _, c := range inv.Checkpoints {
				if c.Cluster == cluster && c.Space == space && c.Index >= n {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of %s %s at %d or above within 2 minutes:\n%s", cluster, space, n, out)
		}
		time.Sleep(2 * time.Second)
	}
}
