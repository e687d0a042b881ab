package restore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
	"github.com/akutan/akutan/viewsvc"
)

// genLog makes a log of about n facts in transactions of 1000: inserts
// about new and earlier nodes, and deletes of earlier facts.
func genLog(n int) [][]byte {
	r := rand.New(rand.NewPCG(7, 8))
	ref := func(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
	var entries [][]byte
	var written []*entrypb.Triple
	for facts := 0; facts < n; facts += 1000 {
		index := uint64(len(entries) + 1)
		tx := &entrypb.Transaction{NewNodes: 50}
		before := len(written) // facts of earlier transactions
		for range 1000 {
			k := uint64(1 + r.IntN(50))
			s, subject := index<<20|k, &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: uint32(k)}}
			if index > 1 && r.IntN(2) == 0 {
				s = uint64(1+r.IntN(int(index-1)))<<20 | k
				subject = ref(s)
			}
			p := uint64(1000 + r.IntN(100))
			o := &entrypb.Object{Value: &entrypb.Object_Int64{Int64: int64(r.IntN(1000))}}
			tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: subject, Predicate: ref(p), Object: o})
			if r.IntN(20) == 0 {
				written = append(written, &entrypb.Triple{Subject: s, Predicate: p, Object: o})
			}
		}
		for range 10 {
			if before > 0 {
				tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_Triple{Triple: written[r.IntN(before)]}})
			}
		}
		b, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: tx}})
		if err != nil {
			panic(err)
		}
		entries = append(entries, b)
	}
	return entries
}

// archive writes entries to the store's log archive, 64 entries a segment.
func archive(t testing.TB, ctx context.Context, s snapshot.Store, entries [][]byte) {
	for first := 0; first < len(entries); first += 64 {
		var seg []snapshot.SegmentEntry
		var raw int64
		for i := first; i < min(first+64, len(entries)); i++ {
			seg = append(seg, snapshot.SegmentEntry{Index: uint64(i + 1), Data: entries[i]})
			raw += int64(len(entries[i]))
		}
		obj, err := snapshot.EncodeSegment(seg)
		if err != nil {
			t.Fatal(err)
		}
		ref := snapshot.SegmentRef{First: seg[0].Index, Last: seg[len(seg)-1].Index, Size: int64(len(obj)), CRC32C: snapshot.CRC32C(obj), RawBytes: raw}
		ref.Key = snapshot.SegmentKey(ref.First, ref.Last)
		if _, err := s.Put(ctx, ref.Key, bytes.NewReader(obj), ref.Size); err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error { return c.Add(ref) }); err != nil {
			t.Fatal(err)
		}
	}
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// layout is the views of one cluster: parts partitions of each space.
func layout(dir string, parts int) []ViewSpec {
	var specs []ViewSpec
	step := ^uint64(0)/uint64(parts) + 1
	for _, space := range []viewsvc.Space{viewsvc.SpaceSP, viewsvc.SpacePO} {
		for p := range parts {
			r := viewsvc.HashRange{Start: uint64(p) * step, End: uint64(p+1) * step}
			if p == parts-1 {
				r.End = 0
			}
			name := space.String() + "-" + strconv.Itoa(p)
			specs = append(specs, ViewSpec{Name: name, Space: space, Range: r, Dir: filepath.Join(dir, name)})
		}
	}
	return specs
}

// source is a running cluster's views: they apply the whole log, and
// checkpoint at index k on the way.
type source struct {
	views []*viewsvc.View
}

func startSource(t testing.TB, ctx context.Context, s snapshot.Store, entries [][]byte, parts int, k uint64) *source {
	mem := viewsvc.NewMemLog()
	mem.Append(entries[:k]...)
	src := &source{}
	for _, spec := range layout(t.TempDir(), parts) {
		cfg := viewsvc.DefaultConfig()
		cfg.Space, cfg.Range, cfg.Dir, cfg.Store, cfg.Cluster, cfg.Logger = spec.Space, spec.Range, spec.Dir, s, "src", quietLogger
		v, err := viewsvc.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		rctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		go func() { _ = v.Run(rctx, mem) }()
		src.views = append(src.views, v)
	}
	for _, v := range src.views {
		if err := v.WaitApplied(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := v.CheckpointNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mem.Append(entries[k:]...)
	for _, v := range src.views {
		if err := v.WaitApplied(ctx, uint64(len(entries))); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// digests sums the source's or the restored views' digests per space.
func digests(t testing.TB, ctx context.Context, views []*viewsvc.View, index uint64) map[viewsvc.Space]viewsvc.Digest {
	out := map[viewsvc.Space]viewsvc.Digest{}
	for _, v := range views {
		d, err := v.Digest(ctx, index)
		if err != nil {
			t.Fatal(err)
		}
		out[v.Space()] = out[v.Space()].Add(d)
	}
	return out
}

func openRestored(t testing.TB, specs []ViewSpec) []*viewsvc.View {
	var views []*viewsvc.View
	for _, spec := range specs {
		cfg := viewsvc.DefaultConfig()
		cfg.Space, cfg.Range, cfg.Dir, cfg.Logger = spec.Space, spec.Range, spec.Dir, quietLogger
		v, err := viewsvc.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, v)
	}
	return views
}

// TestRestoreCluster restores a cluster of 3 partitions per space from the
// checkpoints of a cluster of 2 partitions plus the archive, at an index
// below the checkpoints (replaying the archive from 1), at the checkpoints,
// just after them, and at the newest archived index, and checks the
// digests against the source cluster's at the same index. The restored log
// replica ends at exactly that index.
func TestRestoreCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	store, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	entries := genLog(60_000)
	last := uint64(len(entries))
	k := last / 2
	archive(t, ctx, store, entries)
	src := startSource(t, ctx, store, entries, 2, k)

	for i, n := range []uint64{k - 5, k, k + 7, last} {
		dir := t.TempDir()
		specs := layout(filepath.Join(dir, "views"), 3)
		target := snapshot.Prefixed(store, "timeline-"+strconv.Itoa(i))
		got, err := Run(ctx, Options{Source: store, Target: target, Index: n, LogDir: filepath.Join(dir, "log"),
			Log: logsvc.RestoreConfig{ID: "log1", RaftAddr: "127.0.0.1:1"}, Views: specs})
		if err != nil {
			t.Fatalf("restore at %d: %v", n, err)
		}
		if got != n {
			t.Fatalf("restored at %d, asked %d", got, n)
		}
		restored := openRestored(t, specs)
		want, have := digests(t, ctx, src.views, n), digests(t, ctx, restored, n)
		for _, v := range restored {
			if v.LastApplied() != n {
				t.Errorf("view %s %s at %d, want %d", v.Space(), v.Range(), v.LastApplied(), n)
			}
			v.Close()
		}
		for space, w := range want {
			if !have[space].Equal(w) || w.Facts == 0 {
				t.Errorf("at %d, %s: restored %v, source %v", n, space, have[space], w)
			}
		}
		// The new timeline holds the history through n, and no further.
		lc, _, err := snapshot.LoadLogCatalog(ctx, target)
		if err != nil || lc.ArchivedThrough() != n || lc.FirstArchived() != 1 {
			t.Errorf("new timeline's archive: %d..%d, %v", lc.FirstArchived(), lc.ArchivedThrough(), err)
		}
		// Restoring again into the same places is refused.
		if _, err := Run(ctx, Options{Source: store, Target: target, Index: n, LogDir: filepath.Join(dir, "log"), Views: specs}); err == nil {
			t.Errorf("a second restore over the first succeeded")
		}
	}
	if _, err := Run(ctx, Options{Source: store, Target: snapshot.Prefixed(store, "x"), Index: last + 1, LogDir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "not archived") {
		t.Errorf("restore past the archive: %v", err)
	}
}

// BenchmarkRestoreCluster measures a whole-cluster restore from MinIO: a
// cluster of 2 partitions per space, checkpointed at 2/3 of the log, is
// restored at the last index into 2 partitions per space, with a digest
// check against the source. AKUTAN_RESTORE_BENCH_FACTS sets the size
// (default 2 million facts).
func BenchmarkRestoreCluster(b *testing.B) {
	facts := 2_000_000
	if s := os.Getenv("AKUTAN_RESTORE_BENCH_FACTS"); s != "" {
		facts, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	minio := miniotest.Start(b)
	store := minio.Store(b, "restore-bench")
	entries := genLog(facts)
	last := uint64(len(entries))
	archive(b, ctx, store, entries)
	src := startSource(b, ctx, store, entries, 2, last*2/3)
	want := digests(b, ctx, src.views, last)
	inv, _, _, err := loadInventory(ctx, store)
	if err != nil {
		b.Fatal(err)
	}
	var ckptBytes int64
	for _, c := range inv.Checkpoints {
		ckptBytes += c.Bytes
	}
	b.ResetTimer()
	for i := range b.N {
		dir := b.TempDir()
		specs := layout(filepath.Join(dir, "views"), 2)
		t0 := time.Now()
		if _, err := Run(ctx, Options{Source: store, Target: minio.Store(b, "timeline-"+strconv.Itoa(i)), LogDir: filepath.Join(dir, "log"),
			Log: logsvc.RestoreConfig{ID: "log1", RaftAddr: "127.0.0.1:1"}, Views: specs}); err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		b.StopTimer()
		restored := openRestored(b, specs)
		have := digests(b, ctx, restored, last)
		for _, v := range restored {
			v.Close()
		}
		for space, w := range want {
			if !have[space].Equal(w) {
				b.Fatalf("%s: restored %v, source %v", space, have[space], w)
			}
		}
		b.ReportMetric(el.Seconds(), "restore-s")
		b.ReportMetric(float64(ckptBytes+inv.ArchiveBytes)/1e6/el.Seconds(), "MB/s")
		b.ReportMetric(float64(want[viewsvc.SpaceSP].Facts), "facts")
		b.StartTimer()
	}
}

var loadInventory = backup.Load
