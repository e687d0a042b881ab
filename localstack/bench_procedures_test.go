package localstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/apipb"
)

// BenchmarkProcedures runs the operator procedures (akutan cluster ...,
// infra/cluster) on the default stack (3 DCs, each 1 log voter, 1 API
// server and HashSP and HashPO in 2 partitions) holding a million facts:
// restart everything, replace a view and a log voter, upgrade every server
// and roll back, split dc1's HashSP from 2 to 4 partitions and merge it into
// 3 uneven ones, under the procedure tests' load (a client per DC writing
// and reading at the latest index). For each procedure it reports its duration, the
// slowest time a new view took to be up to date, and the p99 of the
// load's reads during it next to the p99 before any procedure: the
// figures of docs/benchmarks.md. One iteration; AKUTAN_PROCEDURE_FACTS
// changes the million.
func BenchmarkProcedures(b *testing.B) {
	facts := 1_000_000
	if v := os.Getenv("AKUTAN_PROCEDURE_FACTS"); v != "" {
		fmt.Sscan(v, &facts)
	}
	s := newStack(b)
	// A copy of the topology: repartition rewrites it.
	file := filepath.Join(b.TempDir(), "topology.yaml")
	orig, err := os.ReadFile("topology.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		b.Fatal(err)
	}
	// The upgrade's binaries: the same code under another version string.
	newBin := b.TempDir()
	build := exec.Command("go", "build", "-ldflags", "-X github.com/akutan/akutan/internal/buildinfo.Version=procedure-bench", "-o", newBin,
		"github.com/akutan/akutan/services/akutan-log", "github.com/akutan/akutan/services/akutan-view", "github.com/akutan/akutan/services/akutan-api")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the upgrade's binaries: %v\n%s", err, out)
	}
	s.env = append(s.env, "AKUTAN_TOPOLOGY="+file, "AKUTAN_CHECKPOINT_INTERVAL=2m", "AKUTAN_TRUNCATE_EVERY=10s")
	s.mustRun("up.sh")
	t0 := time.Now()
	loadFacts(b, s, facts)
	b.Logf("loaded %d facts in %.1fs", facts, time.Since(t0).Seconds())
	// Checkpoint them, so the views the procedures start boot from a
	// checkpoint holding the million facts plus a short tail.
	s.mustCLI("", "backup", "now", "--api", s.api(1)+","+s.api(2)+","+s.api(3), "--log", s.logAddrs())

	cluster := func(args ...string) (string, int, time.Duration) {
		return s.clusterCmd(file, nil, args...)
	}
	load := startLoad(b, s, 1, 2, 3)
	load.phase("before")
	time.Sleep(30 * time.Second)
	before, n := load.readQuantiles("before", 0.5, 0.99)
	b.Logf("before: read p50 %.1f ms, p99 %.1f ms (%d reads)", ms(before[0]), ms(before[1]), n)

	for _, p := range []struct {
		name    string
		prepare func()
		args    []string
	}{
		{name: "restart", args: []string{"restart"}},
		{name: "replace-view", prepare: func() { s.killAndWipe(b, "view-dc2-po-p0-r0", "dc2") }, args: []string{"replace", "view-dc2-po-p0-r0"}},
		{name: "replace-log", prepare: func() { s.killAndWipe(b, "log-dc3", "dc3") }, args: []string{"replace", "log-dc3"}},
		{name: "upgrade", args: []string{"upgrade", "--bin", newBin}},
		{name: "rollback", args: []string{"upgrade", "--bin", s.bin}},
		{name: "split-dc1-sp-2-to-4", args: []string{"repartition", "--dc", "dc1", "--space", "sp", "--partitions", "4"}},
		{name: "merge-dc1-sp-4-to-3-uneven", args: []string{"repartition", "--dc", "dc1", "--space", "sp", "--ranges", "0,0x4000000000000000,0x9000000000000000"}},
	} {
		b.Run(p.name, func(b *testing.B) {
			load.phase(p.name)
			if p.prepare != nil {
				p.prepare()
			}
			out, code, took := cluster(p.args...)
			if code != 0 {
				b.Fatalf("cluster %v: exit %d\n%s", p.args, code, out)
			}
			logProcedure(b, p.name, took, out)
			q, n := load.readQuantiles(p.name, 0.5, 0.99)
			b.ReportMetric(took.Seconds(), "s")
			b.ReportMetric(slowestUpToDate(out), "view-up-to-date-s")
			b.ReportMetric(ms(q[0]), "read-p50-ms")
			b.ReportMetric(ms(q[1]), "read-p99-ms")
			b.ReportMetric(ms(before[1]), "before-p99-ms")
			b.ReportMetric(float64(n), "reads")
			b.ReportMetric(0, "ns/op")
		})
	}
	load.verify(b, s, map[string][]int{"replace-view": {2}, "replace-log": {3}})
}

// loadFacts writes n facts through dc1's API server in transactions of
// 10,000 from two clients: 10,000 subjects, one predicate, distinct
// values.
func loadFacts(b *testing.B, s *stack, n int) {
	ctx := context.Background()
	cl := apiClient(b, s.api(1))
	setup := &apipb.WriteRequest{}
	for i := 0; i < 10000; i++ {
		setup.Inserts = append(setup.Inserts, &apipb.Fact{Subject: name(fmt.Sprintf("bulk%d", i)), Predicate: name("bulk"),
			Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: -1}}})
	}
	created, err := cl.Write(ctx, setup)
	if err != nil {
		b.Fatal(err)
	}
	pred := created.Created["bulk"]
	var last uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := 0; c < 2; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := c * 10000; start < n; start += 20000 {
				req := &apipb.WriteRequest{}
				for j := start; j < min(start+10000, n); j++ {
					req.Inserts = append(req.Inserts, &apipb.Fact{
						Subject:   &apipb.Node{Ref: &apipb.Node_Id{Id: created.Created[fmt.Sprintf("bulk%d", j%10000)]}},
						Predicate: &apipb.Node{Ref: &apipb.Node_Id{Id: pred}},
						Object:    &apipb.Object{Value: &apipb.Object_Int64{Int64: int64(j)}},
					})
				}
				resp, err := cl.Write(ctx, req)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				last = max(last, resp.Index)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	waitApplied(b, s, last)
}

// killAndWipe SIGKILLs the server name of dc and deletes its data dir:
// the failure replace recovers from.
func (s *stack) killAndWipe(tb testing.TB, name, dc string) {
	syscall.Kill(s.pid(name), syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	if err := os.RemoveAll(filepath.Join(s.dir, dc, name)); err != nil {
		tb.Fatal(err)
	}
}

// slowestUpToDate is the longest "up to date after Ns" a procedure's
// output reports.
func slowestUpToDate(out string) float64 {
	worst := 0.0
	for _, l := range strings.Split(out, "\n") {
		var name string
		var secs float64
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "%s up to date after %fs", &name, &secs); err == nil && secs > worst {
			worst = secs
		}
	}
	return worst
}
