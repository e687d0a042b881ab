package logsvc

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
)

// benchDuration is how long each configuration runs; AKUTAN_BENCH_SECONDS
// overrides it.
func benchDuration() time.Duration {
	if s := os.Getenv("AKUTAN_BENCH_SECONDS"); s != "" {
		if d, err := time.ParseDuration(s + "s"); err == nil {
			return d
		}
	}
	return 3 * time.Second
}

// benchEntry is an envelope of about 100 bytes.
func benchEntry(i int) []byte {
	return pingEntry(fmt.Sprintf("%-90d", i))
}

// BenchmarkAppend measures a three-replica log on loopback with fsync on:
// entries/s, MB/s and commit latency per call, for each Raft store, batch
// size and number of concurrent clients. Each client sends AppendBatch
// calls of the given size; "coalesced" clients share one Appender that
// batches their single-entry calls.
func BenchmarkAppend(b *testing.B) {
	stores := []string{StorePebble, StoreWAL, StoreBolt}
	if s := os.Getenv("AKUTAN_BENCH_STORES"); s != "" {
		stores = strings.Split(s, ",")
	}
	type shape struct {
		batch, clients int
		coalesce       bool
	}
	shapes := []shape{{1, 1, false}, {1, 16, false}, {100, 1, false}, {100, 16, false}, {10000, 1, false}, {10000, 16, false}, {1, 16, true}}
	// Stores are the inner loop, so that the runs compared sit side by
	// side in time on a noisy machine.
	for _, sh := range shapes {
		for _, store := range stores {
			name := fmt.Sprintf("batch=%d/clients=%d/store=%s", sh.batch, sh.clients, store)
			if sh.coalesce {
				name = fmt.Sprintf("coalesced/clients=%d/store=%s", sh.clients, store)
			}
			b.Run(name, func(b *testing.B) {
				c := newCluster(b, 3, func(i int, cfg *Config) {
					cfg.RaftStore = store
					cfg.HeartbeatTimeout = time.Second
					cfg.ElectionTimeout = time.Second
					cfg.LeaderLeaseTimeout = 500 * time.Millisecond
				})
				runAppendBench(b, c, sh.batch, sh.clients, sh.coalesce)
			})
		}
	}
}

func runAppendBench(b *testing.B, c *cluster, batch, clients int, coalesce bool) {
	leader := c.waitLeader()
	addrs := []string{leader.GRPCAddr()}
	entries := make([][]byte, batch)
	bytesPer := 0
	for i := range entries {
		entries[i] = benchEntry(i)
		bytesPer += len(entries[i])
	}
	shared := logclient.NewAppender(addrs, logclient.DefaultAppenderConfig())
	defer shared.Close()
	// Warm up connections and Raft.
	if _, err := shared.AppendBatch(context.Background(), entries); err != nil {
		b.Fatal(err)
	}
	dur := benchDuration()
	var mu sync.Mutex
	var lat []time.Duration
	var calls int
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := shared
			if !coalesce {
				app = logclient.NewAppender(addrs, logclient.DefaultAppenderConfig())
				defer app.Close()
			}
			var mine []time.Duration
			for time.Since(start) < dur {
				t0 := time.Now()
				var err error
				if coalesce {
					_, err = app.Append(context.Background(), entries[0])
				} else {
					_, err = app.AppendBatch(context.Background(), entries)
				}
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			calls += len(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	n := float64(calls * batch)
	if coalesce {
		n = float64(calls)
		bytesPer = len(entries[0])
	}
	b.ReportMetric(n/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(calls)*float64(bytesPer)/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
