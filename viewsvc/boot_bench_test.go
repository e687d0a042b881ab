package viewsvc

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
)

// BenchmarkBoot: a full-range HashSP view of the dataset writes a
// checkpoint to a real MinIO server; then a fresh view boots from it (full
// range: every file ingested as it is; half range: every file rewritten
// through the range filter) and is compared with the time the full view
// took to apply the log. Figures: checkpoint upload rate and compression,
// boot time, download+ingest rate, and how many times faster than a replay.
func BenchmarkBoot(b *testing.B) {
	ds := benchDataset(b)
	src, _, replay := fullView(b, ds)
	last := uint64(len(ds.entries))
	srv := miniotest.Start(b)
	store := srv.Store(b, "boot-bench")
	src.cfg.Store, src.cfg.Cluster = store, "bench"
	defer func() { src.cfg.Store = nil }()
	if err := src.db.Flush(); err != nil {
		b.Fatal(err)
	}
	var ref snapshot.CheckpointRef
	b.Run("checkpoint", func(b *testing.B) {
		for range b.N {
			t0 := time.Now()
			var err error
			if ref, err = src.CheckpointNow(context.Background()); err != nil {
				b.Fatal(err)
			}
			export := time.Since(t0)
			raw := rawBytes(b, src)
			b.Logf("checkpoint at %d: %d bytes (%.0f MB/s, %.2fx compression of %d key+value bytes) in %v",
				ref.Index, ref.Bytes, float64(ref.Bytes)/1e6/export.Seconds(), float64(raw)/float64(ref.Bytes), raw, export)
			b.ReportMetric(export.Seconds(), "checkpoint-s")
			b.ReportMetric(float64(ref.Bytes)/1e6/export.Seconds(), "upload-MB/s")
			b.ReportMetric(float64(raw)/float64(ref.Bytes), "compression-x")
		}
	})
	want, err := src.Digest(context.Background(), last)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		rng  HashRange
	}{{"full", FullRange}, {"half", HashRange{End: halfRange}}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				bootBench(b, ds, store, c.rng, ref, replay, want)
			}
		})
	}
}

func bootBench(b *testing.B, ds *dataset, store snapshot.Store, rng HashRange, ref snapshot.CheckpointRef, replay time.Duration, full Digest) {
	dir, err := os.MkdirTemp("", "akutan-view-boot-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := benchConfig(b, SpaceSP, rng, dir)
	cfg.Store = store
	log := NewMemLog()
	log.MaxBatch = 64
	log.Append(ds.entries...)
	last := uint64(len(ds.entries))
	t0 := time.Now()
	v, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, log) }()
	if err := v.WaitApplied(context.Background(), last); err != nil {
		b.Fatal(err)
	}
	took := time.Since(t0)
	cancel()
	<-done
	st := v.Status()
	if st.CheckpointIndex != ref.Index {
		b.Fatalf("booted from %d, want %d", st.CheckpointIndex, ref.Index)
	}
	b.Logf("%v: booted in %v from %d bytes (%.0f MB/s); applying the log took %v (%.1fx)",
		rng, took, st.BootBytesTotal, float64(st.BootBytesTotal)/1e6/took.Seconds(), replay, replay.Seconds()/took.Seconds())
	b.ReportMetric(took.Seconds(), "boot-s")
	b.ReportMetric(float64(st.BootBytesTotal)/1e6/took.Seconds(), "boot-MB/s")
	b.ReportMetric(replay.Seconds(), "replay-s")
	b.ReportMetric(replay.Seconds()/took.Seconds(), "speedup-x")
	got, err := v.Digest(context.Background(), last)
	if err != nil {
		b.Fatal(err)
	}
	if rng == FullRange && !got.Equal(full) {
		b.Errorf("booted view digest %v, source %v", got, full)
	}
	if rng != FullRange && (got.Facts == 0 || got.Facts >= full.Facts) {
		b.Errorf("half view holds %d of %d facts", got.Facts, full.Facts)
	}
}

// rawBytes is the size of the view's keys and values, the checkpoint's
// uncompressed content.
func rawBytes(b *testing.B, v *View) int64 {
	it, err := v.db.NewIter(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer closeQuietly(it)
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		if it.Key()[0] != 'm' {
			n += int64(len(it.Key()) + len(it.Value()))
		}
	}
	return n
}
