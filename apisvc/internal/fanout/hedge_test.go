package fanout

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestHedging checks that a replica answering 500 ms late costs about one
// hedge delay, not 500 ms, that its calls are cancelled, and that it is then
// avoided until it is fast again.
func TestHedging(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(5)
	fast := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	slow := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	slow.setDelay(500 * time.Millisecond)
	f := open(t, testConfig(fast, slow, po))
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(7, 8))
	ref := reference(t, viewpb.Space_HASH_SP, ds)

	var lat []time.Duration
	for range 200 {
		lookups := spLookups(r, ds, 1+r.IntN(5))
		start := time.Now()
		got, err := f.LookupSP(ctx, datasetMaxIdx, lookups)
		lat = append(lat, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.answerSP(datasetMaxIdx, lookups)
		sameFacts(t, "LookupSP", got, want)
	}
	p50, p99, worst := percentile(lat, 0.5), percentile(lat, 0.99), slices.Max(lat)
	t.Logf("p50 %v p99 %v max %v; slow replica got %d RPCs, fast %d", p50, p99, worst, slow.rpcs.Load(), fast.rpcs.Load())
	if p99 > 200*time.Millisecond || worst > 400*time.Millisecond {
		t.Errorf("p99 %v, max %v: hedging did not hide the slow replica", p99, worst)
	}
	n := slow.rpcs.Load()
	if n == 0 {
		t.Fatal("the slow replica was never tried")
	}
	waitFor(t, "the slow replica's calls to be cancelled", func() bool { return slow.cancelled.Load() == n })
	if slow.completed.Load() != 0 {
		t.Errorf("the slow replica completed %d calls", slow.completed.Load())
	}
	// After a few hedges it is avoided, and probed about once a second.
	if n > 20 {
		t.Errorf("the slow replica got %d of 200 calls", n)
	}
	if !viewOf(f, slow.addr).Slow || viewOf(f, fast.addr).Slow {
		t.Errorf("views: %+v", f.Views())
	}

	// Once fast again it gets its share back.
	slow.setDelay(0)
	waitFor(t, "the replica to recover", func() bool {
		lookups := spLookups(r, ds, 1)
		if _, err := f.LookupSP(ctx, datasetMaxIdx, lookups); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		return !viewOf(f, slow.addr).Slow
	})
	before := slow.rpcs.Load()
	for range 40 {
		if _, err := f.LookupSP(ctx, datasetMaxIdx, spLookups(r, ds, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := slow.rpcs.Load() - before; got < 8 {
		t.Errorf("recovered replica got %d of 40 calls", got)
	}
}

// TestHedgingWholeSpace checks hedging of whole-space lookups: with one of
// four replicas slow, LookupS stays fast and complete.
func TestHedgingWholeSpace(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(6)
	sp, po := partitioned(t, ds, 2, 2)
	slow := sp[1][0]
	slow.setDelay(time.Second)
	f := open(t, testConfig(flat(sp, po)...))
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(9, 10))
	ref := reference(t, viewpb.Space_HASH_SP, ds)
	var lat []time.Duration
	for range 50 {
		subjects := []uint64{uint64(1 + r.IntN(numSubjects)), uint64(1 + r.IntN(numSubjects))}
		start := time.Now()
		got, err := f.LookupS(ctx, datasetMaxIdx, subjects)
		lat = append(lat, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.answerS(datasetMaxIdx, subjects)
		sameFacts(t, "LookupS", got, want)
	}
	t.Logf("p50 %v max %v; slow replica got %d RPCs", percentile(lat, 0.5), slices.Max(lat), slow.rpcs.Load())
	if m := slices.Max(lat); m > 500*time.Millisecond {
		t.Errorf("max %v", m)
	}
	if slow.rpcs.Load() == 0 {
		t.Error("the slow replica was never tried")
	}
}

func TestLatencies(t *testing.T) {
	l := newLatencies(20*time.Millisecond, 0.95)
	if d := l.hedgeDelay(); d != 20*time.Millisecond {
		t.Errorf("empty: %v", d)
	}
	for i := range 2000 {
		l.record(time.Duration(i%100+1) * time.Millisecond) // 1..100 ms, evenly
	}
	if d := l.hedgeDelay(); d < 94*time.Millisecond || d > 96*time.Millisecond {
		t.Errorf("p95 of 1..100ms: %v", d)
	}
	for range latencyWindow {
		l.record(time.Millisecond)
	}
	if d := l.hedgeDelay(); d != 20*time.Millisecond {
		t.Errorf("floor: %v", d)
	}
	// A quarter of the answers from a replica at 50ms: the percentile is
	// 50ms, the median 2ms, and the delay stays at the floor.
	for i := range latencyWindow {
		if i%4 == 0 {
			l.record(50 * time.Millisecond)
		} else {
			l.record(2 * time.Millisecond)
		}
	}
	if d := l.hedgeDelay(); d != 20*time.Millisecond {
		t.Errorf("a slow quarter: %v", d)
	}
	// A slow half is the median: 3 × 50ms caps p95 of 120ms.
	for i := range latencyWindow {
		if i%2 == 0 {
			l.record(120 * time.Millisecond)
		} else {
			l.record(50 * time.Millisecond)
		}
	}
	if d := l.hedgeDelay(); d != 120*time.Millisecond {
		t.Errorf("p95 under the cap: %v", d)
	}
}

func TestSlowness(t *testing.T) {
	var s slowness
	now := time.Now()
	for range 2 {
		s.outcome(true)
	}
	if avoid, probe := s.avoid(now); s.slow() || avoid || probe {
		t.Fatal("slow after two outruns")
	}
	s.outcome(true)
	s.outcome(true)
	if !s.slow() {
		t.Fatal("not slow after four outruns")
	}
	if avoid, probe := s.avoid(now); avoid || !probe {
		t.Error("no probe allowed")
	}
	for _, at := range []time.Time{now, now.Add(slowProbeInterval / 2)} {
		if avoid, probe := s.avoid(at); !avoid || probe {
			t.Error("second probe allowed")
		}
	}
	if _, probe := s.avoid(now.Add(slowProbeInterval)); !probe {
		t.Error("no probe after the interval")
	}
	s.outcome(false)
	if s.slow() {
		t.Error("still slow after a good probe")
	}
}

// TestPollutedHedgeDelay checks that a replica that is moderately slow
// (30 to 40 ms against 1 ms) is found slow and avoided even when its answers
// already make up a quarter of the recent latencies, as they do after it
// grew slow gradually: the percentile alone would then sit above its
// latency, hedges would never beat it, and a quarter of the calls would
// take 30 ms or more.
func TestPollutedHedgeDelay(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(50)
	fast := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	slow := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	slow.setDelay(30 * time.Millisecond)
	slow.setJitter(10 * time.Millisecond)
	f := open(t, testConfig(fast, slow, po))
	for i := range latencyWindow {
		if i%4 == 0 {
			f.lat.record(30*time.Millisecond + time.Duration(i%10)*time.Millisecond)
		} else {
			f.lat.record(time.Millisecond)
		}
	}
	ctx := ctxT(t)
	r := newRand(51)
	var lat []time.Duration
	for range 100 {
		start := time.Now()
		if _, err := f.LookupSP(ctx, 1, spLookups(r, ds, 2)); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	t.Logf("p50 %v p95 %v, hedge delay %v, slow replica got %d RPCs", percentile(lat, 0.5), percentile(lat, 0.95), f.lat.hedgeDelay(), slow.rpcs.Load())
	if !viewOf(f, slow.addr).Slow {
		t.Error("the slow replica is not avoided")
	}
	if p := percentile(lat, 0.9); p > 25*time.Millisecond {
		t.Errorf("p90 %v", p)
	}
}
