package fanout

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akutan/akutan/proto/viewpb"
)

// Another datacenter's views are read only where this datacenter's cannot
// serve (or take a hedge), and every such call is counted.
func TestFallbackOnlyWhereLocalCannotServe(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(31)
	local := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	remote := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	cfg := testConfig(local, po)
	cfg.Fallback = []string{remote.addr}
	cfg.HedgeFloor = time.Minute // no hedges: a fast local view is never passed over
	f := open(t, cfg)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(3, 4))
	ref := reference(t, viewpb.Space_HASH_SP, ds)
	read := func(n int) {
		t.Helper()
		for range n {
			lookups := spLookups(r, ds, 1+r.IntN(5))
			got, err := f.LookupSP(ctx, datasetMaxIdx, lookups)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.answerSP(datasetMaxIdx, lookups)
			sameFacts(t, "LookupSP", got, want)
		}
	}
	fallbacks := func() float64 { return testutil.ToFloat64(f.met.fallbacks.WithLabelValues("LookupSP")) }

	read(30)
	if remote.rpcs.Load() != 0 || fallbacks() != 0 {
		t.Fatalf("with the local view up: %d calls to the fallback, %v counted", remote.rpcs.Load(), fallbacks())
	}
	if v := viewOf(f, remote.addr); !v.Fallback || viewOf(f, local.addr).Fallback {
		t.Errorf("fallback marks: remote %+v, local %+v", v, viewOf(f, local.addr))
	}

	local.stop()
	read(20)
	if remote.rpcs.Load() == 0 || fallbacks() == 0 {
		t.Fatalf("with the local view down: %d calls to the fallback, %v counted", remote.rpcs.Load(), fallbacks())
	}

	local.restart()
	waitFor(t, "the local view healthy again", func() bool { return viewOf(f, local.addr).Healthy })
	before := remote.rpcs.Load()
	read(20)
	if remote.rpcs.Load() != before {
		t.Fatalf("local view back: %d more calls to the fallback", remote.rpcs.Load()-before)
	}
}

// A slow view with no local peer is hedged to another datacenter's.
func TestFallbackTakesHedges(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(32)
	local := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	remote := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	cfg := testConfig(local, po)
	cfg.Fallback = []string{remote.addr}
	cfg.HedgeFloor = 5 * time.Millisecond
	f := open(t, cfg)
	ctx := ctxT(t)
	local.setDelay(time.Second)
	r := rand.New(rand.NewPCG(5, 6))
	for range 5 {
		t0 := time.Now()
		if _, err := f.LookupSP(ctx, datasetMaxIdx, spLookups(r, ds, 2)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Fatalf("lookup took %v with a fast fallback to hedge to", d)
		}
	}
	if n := testutil.ToFloat64(f.met.fallbacks.WithLabelValues("LookupSP")); n == 0 {
		t.Fatal("hedges to the fallback were not counted")
	}
}
