package viewsvc

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

// The benchmarks run on a synthetic dataset (see makeDataset) of
// AKUTAN_VIEW_BENCH_FACTS facts, 10 million by default, in transactions of
// 1000. Run them once: go test -run '^$' -bench . -benchtime 1x ./viewsvc/

func benchFacts(b *testing.B) int {
	if s := os.Getenv("AKUTAN_VIEW_BENCH_FACTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("AKUTAN_VIEW_BENCH_FACTS=%q: want a number >= 1000", s)
		}
		return n
	}
	return 10_000_000
}

var (
	benchOnce sync.Once
	benchData *dataset
)

func benchDataset(b *testing.B) *dataset {
	benchOnce.Do(func() {
		start := time.Now()
		n := benchFacts(b)
		benchData = makeDataset(99, n, 1000, false, max(1, n/200_000))
		b.Logf("dataset: %d facts in %d entries, made in %v", benchData.facts, len(benchData.entries), time.Since(start))
	})
	return benchData
}

func benchConfig(b *testing.B, space Space, rng HashRange, dir string) Config {
	cfg := testConfig(b, space, rng)
	cfg.Dir = dir
	cfg.CacheSize = DefaultConfig().CacheSize
	cfg.MemTableSize = DefaultConfig().MemTableSize
	cfg.HeadCacheFacts = DefaultConfig().HeadCacheFacts
	return cfg
}

// applyAll opens a view in dir, applies the dataset and returns the time it
// took from the first entry to the last commit.
func applyAll(b *testing.B, ds *dataset, cfg Config) (*View, time.Duration) {
	log := NewMemLog()
	log.MaxBatch = 64
	log.Append(ds.entries...)
	v, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, log) }()
	if err := v.WaitApplied(context.Background(), uint64(len(ds.entries))); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	cancel()
	<-done
	return v, took
}

func dirBytes(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}

// settle flushes the view and waits for Pebble's compactions to finish, so
// that lookups are measured on a view at rest.
func settle(b *testing.B, v *View) {
	start := time.Now()
	if err := v.db.Flush(); err != nil {
		b.Fatal(err)
	}
	idle := 0
	for idle < 10 && time.Since(start) < 2*time.Minute {
		if v.db.Metrics().Compact.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("settled in %v", time.Since(start))
}

// appliedView is the view BenchmarkApply built, kept for BenchmarkLookup so
// that a full run applies the big dataset to a single view only once.
var appliedView struct {
	v    *View
	dir  string
	took time.Duration // applying the whole log
}

func TestMain(m *testing.M) {
	code := m.Run()
	if appliedView.v != nil {
		_ = appliedView.v.Close()
		_ = os.RemoveAll(appliedView.dir)
	}
	os.Exit(code)
}

// BenchmarkApply: one full-range HashSP view applies the whole dataset.
func BenchmarkApply(b *testing.B) {
	ds := benchDataset(b)
	for range b.N {
		dir, err := os.MkdirTemp("", "akutan-view-bench-")
		if err != nil {
			b.Fatal(err)
		}
		v, took := applyAll(b, ds, benchConfig(b, SpaceSP, FullRange, dir))
		b.ReportMetric(float64(ds.facts)/took.Seconds(), "facts/s")
		if err := v.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if os.Getenv("AKUTAN_VIEW_BENCH_METRICS") != "" {
			b.Logf("pebble metrics:\n%s", v.db.Metrics())
		}
		b.ReportMetric(float64(dirBytes(b, dir))/float64(ds.facts), "disk-bytes/fact")
		if appliedView.v != nil {
			_ = appliedView.v.Close()
			_ = os.RemoveAll(appliedView.dir)
		}
		appliedView.v, appliedView.dir, appliedView.took = v, dir, took
	}
}

// BenchmarkApply4Views: four views (HashSP and HashPO, two halves each)
// apply the whole log at the same time; each stores about half the facts.
func BenchmarkApply4Views(b *testing.B) {
	ds := benchDataset(b)
	for range b.N {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var slowest time.Duration
		for _, c := range []struct {
			space Space
			rng   HashRange
		}{
			{SpaceSP, HashRange{End: halfRange}}, {SpaceSP, HashRange{Start: halfRange}},
			{SpacePO, HashRange{End: halfRange}}, {SpacePO, HashRange{Start: halfRange}},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, took := applyAll(b, ds, benchConfig(b, c.space, c.rng, b.TempDir()))
				_ = v.Close()
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(ds.facts)/slowest.Seconds(), "log-facts/s/view")
		b.ReportMetric(4*float64(ds.facts)/slowest.Seconds(), "log-facts/s-total")
	}
}

// BenchmarkLookup: point lookups (LookupSPO of existing facts) over gRPC on
// loopback, with 1 and with 250 lookups per request, from 8 concurrent
// clients, against a full-range HashSP view holding the dataset.
func BenchmarkLookup(b *testing.B) {
	ds := benchDataset(b)
	v, dir, _ := fullView(b, ds)
	settle(b, v)
	b.Logf("after compactions: %.1f bytes on disk per fact", float64(dirBytes(b, dir))/float64(ds.facts))
	client := serve(b, v)
	index := uint64(len(ds.entries))
	// Warm the block cache first, so that the figures are the steady state
	// of a serving view rather than of reading its files for the first time;
	// the warm-up's own rate is logged as the cold figure.
	m0 := v.db.Metrics().BlockCache
	warm := 5 * len(ds.probes) / 250 * 250
	_, took := runLookups(b, client, ds.probes, index, 250, warm, 8)
	m1 := v.db.Metrics().BlockCache
	b.Logf("warm-up: %.0f lookups/s from a cold cache; cache %d MiB, %d hits, %d misses",
		float64(warm)/took.Seconds(), m1.Size>>20, m1.Hits-m0.Hits, m1.Misses-m0.Misses)
	for _, per := range []int{1, 250} {
		b.Run("batch="+strconv.Itoa(per), func(b *testing.B) {
			total := 600_000
			if per == 1 {
				total = 40_000
			}
			m0 := v.db.Metrics()
			lat, took := runLookups(b, client, ds.probes, index, per, total, 8)
			m1 := v.db.Metrics()
			b.Logf("block cache: %d hits, %d misses; %d compactions ran meanwhile",
				m1.BlockCache.Hits-m0.BlockCache.Hits, m1.BlockCache.Misses-m0.BlockCache.Misses, m1.Compact.Count-m0.Compact.Count)
			slices.Sort(lat)
			b.ReportMetric(float64(total)/took.Seconds(), "lookups/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs/rpc")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs/rpc")
		})
	}
}

// fullView returns a full-range HashSP view that applied the whole dataset,
// the one BenchmarkApply built if it ran, and the time applying took.
func fullView(b *testing.B, ds *dataset) (*View, string, time.Duration) {
	if appliedView.v == nil {
		dir, err := os.MkdirTemp("", "akutan-view-bench-")
		if err != nil {
			b.Fatal(err)
		}
		v, took := applyAll(b, ds, benchConfig(b, SpaceSP, FullRange, dir))
		appliedView.v, appliedView.dir, appliedView.took = v, dir, took
	}
	return appliedView.v, appliedView.dir, appliedView.took
}

// runLookups sends total point lookups in requests of per, from workers
// goroutines, and returns every request's latency and the wall time.
func runLookups(b *testing.B, client viewpb.ViewClient, probes []*Lookup, index uint64, per, total, workers int) ([]time.Duration, time.Duration) {
	reqs := total / per
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	next := make(chan int, reqs)
	for i := range reqs {
		next <- i
	}
	close(next)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []time.Duration
			for range next {
				req := &viewpb.LookupSPORequest{Index: index, Lookups: make([]*viewpb.SPOLookup, per)}
				for i := range per {
					p := probes[r.IntN(len(probes))]
					req.Lookups[i] = &viewpb.SPOLookup{Subject: p.Subject, Predicate: p.Predicate, Object: p.Object}
				}
				t0 := time.Now()
				resps, err := recvAll(client.LookupSPO(context.Background(), req))
				mine = append(mine, time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
				found := 0
				for _, resp := range resps {
					found += len(resp.Facts)
				}
				if found != per {
					b.Errorf("found %d of %d facts", found, per)
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, time.Since(start)
}
