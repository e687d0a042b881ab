package fanout

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akutan/akutan/proto/viewpb"
)

// Lookups are timed per RPC, and a slow replica makes hedges that are
// counted; the collectors register on one registry.
func TestMetrics(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(5)
	fast := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	slow := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	slow.setDelay(300 * time.Millisecond)
	f := open(t, testConfig(fast, slow, po))
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.Collectors()...)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(1, 2))
	for range 30 {
		if _, err := f.LookupSP(ctx, datasetMaxIdx, spLookups(r, ds, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.LookupS(ctx, datasetMaxIdx, []uint64{ds[0].GetSubject()}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(f.met.hedges.WithLabelValues("LookupSP")); got < 1 {
		t.Errorf("hedges = %v with a slow replica", got)
	}
	count := func(rpc string) uint64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "akutan_api_view_lookup_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["rpc"] == rpc && labels["result"] == "ok" {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
		return 0
	}
	if n := count("LookupSP"); n < 30 {
		t.Errorf("%d LookupSP RPCs timed, want at least 30", n)
	}
	if n := count("LookupS"); n < 1 {
		t.Errorf("%d LookupS RPCs timed", n)
	}
	for _, name := range []string{"akutan_api_hedge_delay_seconds", "akutan_api_views", "akutan_api_views_healthy"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
}
