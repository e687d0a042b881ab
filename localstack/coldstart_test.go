package localstack

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/proto/apipb"
)

// TestColdStart is issue 14's cold start: after the whole database stops,
// starting everything in any order recovers it with nothing lost. Every
// server (log voters, views, API servers; MinIO, the bucket and the
// truncator stay) is stopped with ctl.sh stop, then started with ctl.sh
// start in a random order (the seed is logged), one after another with
// random pauses and without waiting for any: a view or an API server may
// start long before any log voter and must wait and recover by itself.
// Then every DC is fully available within a bound, every acknowledged
// write is read in every DC at the latest index, the views' digests are
// equal, and a new write works.
func TestColdStart(t *testing.T) {
	s := newStack(t)
	s.mustRun("up.sh")
	s.mustCLI("", "insert", "--api", s.api(1), "demo.facts")

	load := startLoad(t, s, 1, 2, 3)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		load.mu.Lock()
		n := len(load.acked)
		load.mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 2 minutes", n)
		}
	}
	load.phase("stopped") // no request runs from here on: the load stops
	acked := load.stop()
	t.Logf("%d writes acknowledged before the stop", len(acked))

	var names []string
	for name := range s.serverPids() {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) != 3*(1+4+1) {
		t.Fatalf("servers: %v", names)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slow []string
	for _, name := range names {
		wg.Go(func() {
			t0 := time.Now()
			out := s.mustRun("ctl.sh", "stop", name)
			if took := time.Since(t0); took > 5*time.Second {
				mu.Lock()
				slow = append(slow, fmt.Sprintf("%s %.1fs (%s)", name, took.Seconds(), strings.TrimSpace(out)))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(slow) > 0 {
		t.Logf("stops of 5 s or more (SIGKILL after 10 s): %s", strings.Join(slow, "; "))
	}
	for _, name := range names {
		if _, err := s.run("ctl.sh", "running", name); err == nil {
			t.Fatalf("%s still runs after ctl.sh stop", name)
		}
	}
	t.Logf("every server stopped in %.1fs", time.Since(start).Seconds())

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed))
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	t.Logf("seed %d: start order %s", seed, strings.Join(names, " "))
	start = time.Now()
	for _, name := range names {
		s.mustRun("ctl.sh", "start", name)
		// Up to a second and a half apart, so that what starts early runs
		// alone for a while: the first voter without a quorum, a view
		// without any log.
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
	}
	started := time.Since(start)

	// Every DC fully available within a bound: the servers' own retries,
	// with nothing restarted by hand.
	const bound = 90 * time.Second
	for dc := 1; dc <= 3; dc++ {
		for {
			out, code := s.cli("", "status", "--api", s.api(dc))
			if code == 0 {
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("dc%d not fully available %s after the first start (the last %.1fs after it):\n%s", dc, bound, started.Seconds(), out)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("every DC fully available %.1fs after the first start (the last started after %.1fs)", time.Since(start).Seconds(), started.Seconds())

	// A new write works in every DC and is read back in every DC.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for dc := 1; dc <= 3; dc++ {
		subj := fmt.Sprintf("after-cold-start-dc%d", dc)
		resp, err := apiClient(t, s.api(dc)).Write(ctx, &apipb.WriteRequest{Inserts: []*apipb.Fact{{Subject: name(subj), Predicate: name("load"), Object: stringObj("new")}}})
		if err != nil {
			t.Fatalf("write through dc%d after the cold start: %v", dc, err)
		}
		for other := 1; other <= 3; other++ {
			res, err := apiclient.LookupSP(ctx, apiClient(t, s.api(other)), &apipb.LookupSPRequest{Lookups: []*apipb.SP{{Subject: name(subj), Predicate: name("load")}}})
			if err != nil || len(res.Facts) != 1 {
				t.Fatalf("read in dc%d of the write at %d through dc%d: %v %v", other, resp.Index, dc, res, err)
			}
		}
	}

	// No acknowledged write lost, in any DC; equal digests. (The load ran
	// only before the stop: no request failed then.)
	load.verify(t, s, map[string][]int{})
}
