package logsvc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
)

// txEntry is a realistic transaction: one new node with an external ID and
// about ten facts about it, in the shape of localstack/demo.facts (a type,
// a name with a language tag, numbers, links to existing nodes).
func txEntry(rng *rand.Rand, i int) []byte {
	node := func(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
	newNode := &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: 0}}
	pred := func() *entrypb.NodeRef { return node(1000 + rng.Uint64N(40)) }
	tx := &entrypb.Transaction{NewNodes: 1}
	add := func(p *entrypb.NodeRef, o *entrypb.Object) {
		tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: newNode, Predicate: p, Object: o})
	}
	str := func(s, lang string) *entrypb.Object {
		return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: s, Lang: lang}}}
	}
	add(node(7), str("<person-"+strconv.Itoa(i)+">", ""))
	add(node(1001), &entrypb.Object{Value: &entrypb.Object_Node{Node: node(5000 + rng.Uint64N(20))}})
	add(node(1002), str(fmt.Sprintf("Person %d %s", i, []string{"Liddell", "Carroll", "Hatter", "Dodgson"}[rng.IntN(4)]), "en"))
	add(node(1003), &entrypb.Object{Value: &entrypb.Object_Int64{Int64: rng.Int64N(100)}})
	add(node(1004), &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{UnixSeconds: 1.6e9 + rng.Int64N(1e8)}}})
	for k := 0; k < 5; k++ {
		add(pred(), &entrypb.Object{Value: &entrypb.Object_Node{Node: node(rng.Uint64())}})
	}
	b, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: tx}})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkArchive measures the archiver alone (encode, compress, upload,
// catalog update) on transaction entries of about 330 bytes, in 8 MiB
// segments handed over as the archive loop does (reads of up to 10,000
// entries): raw MB/s of entries archived, MB/s uploaded, and the
// compression ratio, for a local directory and for MinIO.
func BenchmarkArchive(b *testing.B) {
	rawTotal := 128 << 20
	if s := os.Getenv("AKUTAN_ARCHIVE_BENCH_MB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			rawTotal = n << 20
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []Entry
	size := 0
	for i := 0; size < rawTotal; i++ {
		e := txEntry(rng, i)
		entries = append(entries, Entry{Index: uint64(i + 1), Data: e})
		size += len(e)
	}
	stores := map[string]func(b *testing.B) snapshot.Store{
		"dir": func(b *testing.B) snapshot.Store { return newDirStore(b) },
	}
	if minioAvailable(b) {
		stores["minio"] = func(b *testing.B) snapshot.Store { return miniotest.Start(b).Store(b, "bench") }
	}
	for _, name := range []string{"dir", "minio"} {
		open, ok := stores[name]
		if !ok {
			continue
		}
		b.Run("store="+name, func(b *testing.B) {
			var raw, stored int64
			var elapsed time.Duration
			for it := 0; it < b.N; it++ {
				store := open(b)
				ctx := context.Background()
				a := NewSegmentArchiver(store, DefaultSegmentConfig())
				start := time.Now()
				for i := 0; i < len(entries); i += 10000 {
					if _, err := a.Archive(ctx, entries[i:min(i+10000, len(entries))]); err != nil {
						b.Fatal(err)
					}
				}
				if through, err := a.Flush(ctx); err != nil || through != uint64(len(entries)) {
					b.Fatalf("flush: %d %v", through, err)
				}
				elapsed += time.Since(start)
				cat, _, err := snapshot.LoadLogCatalog(ctx, store)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range cat.Segments {
					raw += s.RawBytes
					stored += s.Size
				}
			}
			b.ReportMetric(float64(raw)/elapsed.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(float64(stored)/elapsed.Seconds()/1e6, "stored-MB/s")
			b.ReportMetric(float64(raw)/float64(stored), "ratio")
			b.ReportMetric(float64(len(entries)*b.N)/elapsed.Seconds(), "entries/s")
			b.ReportMetric(float64(raw)/float64(len(entries)*b.N), "B/entry")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// lagReport is what measureArchiveLag saw.
type lagReport struct {
	appends              int
	p50, p99, max        time.Duration // acknowledged write → archive watermark
	metricP50, metricP99 time.Duration // akutan_log_archive_lag_seconds
	cuts, merges         int           // segments cut (level 0), merges written
	listed, objects      int           // segments the catalog lists at the end; objects under the prefix
	elapsed              time.Duration
}

// measureArchiveLag runs a 3-replica log archiving into store with the
// default archive settings, appends one entry at a time at rate per second
// from one client for d, and samples every 10 ms on the leader how long the
// oldest acknowledged entry above the replicated archive watermark has
// waited since its acknowledgement (0 when every acknowledged entry is
// archived): the bucket-only RPO, measured conservatively (the catalog
// holds an entry before the watermark says so). It samples the
// akutan_log_archive_lag_seconds gauge alongside.
func measureArchiveLag(t testing.TB, store snapshot.Store, d time.Duration, rate int) lagReport {
	c := newCluster(t, 3, func(i int, cfg *Config) { cfg.ArchiveStore = store })
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	type ack struct {
		index uint64
		at    time.Time
	}
	var mu sync.Mutex
	var acks []ack // in index order: one client, one entry at a time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			idx, err := app.AppendBatch(ctx, [][]byte{pingEntry(fmt.Sprintf("lag-%d", i))})
			cancel()
			if err != nil {
				continue
			}
			mu.Lock()
			acks = append(acks, ack{idx, time.Now()})
			mu.Unlock()
		}
	}()
	var lags, metric []time.Duration
	start := time.Now()
	for time.Since(start) < d {
		time.Sleep(10 * time.Millisecond)
		var leader *Server
		for _, s := range c.servers {
			if s != nil && s.IsLeader() {
				leader = s
			}
		}
		if leader == nil {
			continue
		}
		meta := leader.store.Meta()
		now := time.Now()
		mu.Lock()
		n := len(acks)
		i := sort.Search(n, func(i int) bool { return acks[i].index > meta.ArchivedThrough })
		lag := time.Duration(0)
		if i < n {
			lag = now.Sub(acks[i].at)
		}
		mu.Unlock()
		if n == 0 {
			continue
		}
		lags = append(lags, lag)
		metric = append(metric, leader.fsm.commits.age(meta.ArchivedThrough, meta.Last, now))
	}
	close(stop)
	<-done
	r := lagReport{appends: len(acks), elapsed: time.Since(start)}
	r.p50, r.p99, r.max = percentile(lags, 0.50), percentile(lags, 0.99), percentile(lags, 1)
	r.metricP50, r.metricP99 = percentile(metric, 0.50), percentile(metric, 0.99)
	for _, s := range c.servers {
		if sa, ok := s.cfg.Archiver.(*SegmentArchiver); ok {
			sa.mu.Lock()
			r.cuts += sa.cuts
			r.merges += sa.compacted
			sa.mu.Unlock()
		}
	}
	cat, _, err := snapshot.LoadLogCatalog(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	r.listed = len(cat.Segments)
	if err := store.List(context.Background(), snapshot.SegmentPrefix, func(snapshot.ObjectInfo) error {
		r.objects++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (r lagReport) String() string {
	min := r.elapsed.Minutes()
	return fmt.Sprintf("%d appends in %v: lag p50 %v p99 %v max %v (gauge p50 %v p99 %v); %d level-0 cuts (%.0f/min, the objects a minute without compaction), %d merges, %d segments listed at the end (%.1f/min), %d objects before GC",
		r.appends, r.elapsed.Round(time.Second), r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond),
		r.metricP50.Round(time.Millisecond), r.metricP99.Round(time.Millisecond),
		r.cuts, float64(r.cuts)/min, r.merges, r.listed, float64(r.listed)/min, r.objects)
}

// BenchmarkArchiveLag measures the bucket-only RPO under steady writes: a
// 3-replica log with the default archive settings, 100 single-entry
// appends a second from one client for AKUTAN_ARCHIVE_LAG_SECONDS (60
// unless set); the archive lag p50/p99 (acknowledgement → replicated
// archive watermark, sampled every 10 ms), the gauge's p50/p99, and the
// segment objects a minute before compaction (level-0 cuts) and listed
// after it, for a local directory and for MinIO.
func BenchmarkArchiveLag(b *testing.B) {
	d := 60 * time.Second
	if s := os.Getenv("AKUTAN_ARCHIVE_LAG_SECONDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			d = time.Duration(n) * time.Second
		}
	}
	stores := map[string]func(b *testing.B) snapshot.Store{
		"dir": func(b *testing.B) snapshot.Store { return newDirStore(b) },
	}
	if minioAvailable(b) {
		stores["minio"] = func(b *testing.B) snapshot.Store { return miniotest.Start(b).Store(b, "lag") }
	}
	for _, name := range []string{"dir", "minio"} {
		open, ok := stores[name]
		if !ok {
			continue
		}
		b.Run("store="+name, func(b *testing.B) {
			var r lagReport
			for it := 0; it < b.N; it++ {
				r = measureArchiveLag(b, open(b), d, 100)
			}
			b.Log(r)
			b.ReportMetric(r.p50.Seconds(), "lag-p50-s")
			b.ReportMetric(r.p99.Seconds(), "lag-p99-s")
			b.ReportMetric(r.metricP99.Seconds(), "gauge-p99-s")
			b.ReportMetric(float64(r.cuts)/r.elapsed.Minutes(), "l0-objects/min")
			b.ReportMetric(float64(r.listed)/r.elapsed.Minutes(), "listed/min")
			b.ReportMetric(0, "ns/op")
		})
	}
}
