package localstack

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/akutan/akutan/apisvc/apiclient"
	"github.com/akutan/akutan/proto/apipb"
)

// BenchmarkEndToEnd runs the local stack as real processes and measures
// writes through the API, from the client's call until every view has
// applied them, for batches of 1, 100 and 10,000 facts; and lookup latency
// with all views healthy and with one replica answering up to 500 ms late.
func BenchmarkEndToEnd(b *testing.B) {
	s := newStack(b)
	s.mustRun("up.sh")
	ctx := context.Background()
	cl := apiClient(b, s.api(1))
	// Subjects and the predicate exist before the measured writes, so that
	// those write facts only.
	setup := &apipb.WriteRequest{}
	for i := 0; i < 1000; i++ {
		setup.Inserts = append(setup.Inserts, &apipb.Fact{Subject: &apipb.Node{Ref: &apipb.Node_Name{Name: fmt.Sprintf("s%d", i)}},
			Predicate: &apipb.Node{Ref: &apipb.Node_Name{Name: "value"}}, Object: &apipb.Object{Value: &apipb.Object_Int64{Int64: -1}}})
	}
	created, err := cl.Write(ctx, setup)
	if err != nil {
		b.Fatal(err)
	}
	subjects := make([]uint64, 1000)
	for i := range subjects {
		subjects[i] = created.Created[fmt.Sprintf("s%d", i)]
	}
	value := created.Created["value"]
	for _, batch := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("write/batch=%d", batch), func(b *testing.B) {
			dur := 5 * time.Second
			start := time.Now()
			var facts int
			var last uint64
			var lat []time.Duration
			var mu sync.Mutex
			var wg sync.WaitGroup
			clients := 4
			if batch == 10000 {
				clients = 2
			}
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					for i := 0; time.Since(start) < dur; i++ {
						req := &apipb.WriteRequest{}
						for j := 0; j < batch; j++ {
							req.Inserts = append(req.Inserts, &apipb.Fact{
								Subject:   &apipb.Node{Ref: &apipb.Node_Id{Id: subjects[(c*7919+i*batch+j)%len(subjects)]}},
								Predicate: &apipb.Node{Ref: &apipb.Node_Id{Id: value}},
								Object:    &apipb.Object{Value: &apipb.Object_Int64{Int64: int64(i*batch + j)}},
							})
						}
						t0 := time.Now()
						resp, err := cl.Write(ctx, req)
						if err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						lat = append(lat, time.Since(t0))
						facts += batch
						last = max(last, resp.Index)
						mu.Unlock()
					}
				}(c)
			}
			wg.Wait()
			waitApplied(b, s, last)
			el := time.Since(start)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(facts)/el.Seconds(), "facts/s")
			b.ReportMetric(ms(lat[len(lat)/2]), "write-p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "write-p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
	lookups := func(b *testing.B) []time.Duration {
		var lat []time.Duration
		for i := 0; i < 500; i++ {
			t0 := time.Now()
			_, err := apiclient.LookupSP(ctx, cl, &apipb.LookupSPRequest{Index: &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_Recent{Recent: true}},
				Lookups: []*apipb.SP{{Subject: &apipb.Node{Ref: &apipb.Node_Id{Id: subjects[i%len(subjects)]}}, Predicate: &apipb.Node{Ref: &apipb.Node_Id{Id: value}}}}})
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat
	}
	b.Run("lookup/healthy", func(b *testing.B) {
		lat := lookups(b)
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("lookup/one-slow-replica", func(b *testing.B) {
		stop := slowDown(s.pid("view-dc3-sp-p1-r0"))
		lat := lookups(b)
		stop()
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(0, "ns/op")
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// slowDown pauses a process in 500 ms stretches until stop is called.
func slowDown(pid int) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			syscall.Kill(pid, syscall.SIGSTOP)
			select {
			case <-quit:
				syscall.Kill(pid, syscall.SIGCONT)
				return
			case <-time.After(500 * time.Millisecond):
			}
			syscall.Kill(pid, syscall.SIGCONT)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() { close(quit); <-done }
}

// waitApplied waits until every view has applied index, asking the views.
func waitApplied(b *testing.B, s *stack, index uint64) {
	for dc := 1; dc <= 3; dc++ {
		for n := 1; n <= 4; n++ {
			digest(b, s.view(dc, n), index)
		}
	}
}
