package fanout

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

// BenchmarkLookupSP measures LookupSP through a Fanout over real gRPC on
// loopback to fake views (2 partitions × 2 replicas), one call at a time,
// with 1 and 250 lookups per call: with every view healthy, and with one
// replica answering 50 ms late. It reports the p50 and p99 latency of a call
// and lookups per second.
//
//	go test -run '^$' -bench LookupSP ./apisvc/internal/fanout/
func BenchmarkLookupSP(b *testing.B) {
	ds := makeFacts(30)
	for _, slow := range []bool{false, true} {
		sp, po := partitioned(b, ds, 2, 2)
		name := "healthy"
		if slow {
			sp[0][0].setDelay(50 * time.Millisecond)
			name = "slow=50ms"
		}
		cfg := testConfig(flat(sp, po)...)
		f := open(b, cfg)
		for _, n := range []int{1, 250} {
			b.Run(fmt.Sprintf("%s/lookups=%d", name, n), func(b *testing.B) {
				r := newRand(uint64(n))
				batches := make([][]*viewpb.SPLookup, 64)
				for i := range batches {
					batches[i] = spLookups(r, ds, n)
				}
				ctx := ctxT(b)
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					t0 := time.Now()
					if _, err := f.LookupSP(ctx, datasetMaxIdx, batches[i%len(batches)]); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				elapsed := time.Since(start)
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
				b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "lookups/s")
			})
		}
	}
}
