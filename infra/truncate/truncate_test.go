package truncate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/storetest"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const half = uint64(1) << 63

func cp(cluster, space string, start, end, index uint64, age time.Duration) snapshot.CheckpointRef {
	return snapshot.CheckpointRef{Cluster: cluster, Space: space, Start: start, End: end, Index: index,
		Manifest: fmt.Sprintf("checkpoints/%s/%s/%016x-%016x/%020d/manifest.json", cluster, space, start, end, index),
		Created:  t0.Add(-age)}
}

func logCat(t *testing.T, last uint64) *snapshot.LogCatalog {
	c := &snapshot.LogCatalog{Format: snapshot.CatalogFormat}
	if last > 0 {
		if err := c.Add(snapshot.SegmentRef{First: 1, Last: last, Key: snapshot.SegmentKey(1, last)}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestCompute(t *testing.T) {
	old := 10 * time.Minute
	full := func(cluster string, sp, po uint64) []snapshot.CheckpointRef {
		return []snapshot.CheckpointRef{cp(cluster, "sp", 0, 0, sp, old), cp(cluster, "po", 0, 0, po, old)}
	}
	cfg := Config{Clusters: []string{"dc1", "dc2"}, Delay: 3 * time.Minute}
	log := LogInfo{First: 1, Last: 1000, ArchivedThrough: 900}
	tests := []struct {
		name    string
		cps     []snapshot.CheckpointRef
		log     LogInfo
		archive uint64
		discard uint64
		reason  string
	}{
		{"no checkpoints", nil, log, 900, 0, "sp [0x0000000000000000, 2^64) has no checkpoint"},
		{"one cluster missing", full("dc1", 500, 600), log, 900, 0, "cluster dc2"},
		{"min over clusters and spaces", append(full("dc1", 500, 600), full("dc2", 700, 400)...), log, 900, 401,
			"cluster dc2: po [0x0000000000000000, 2^64) is covered only by a checkpoint at index 400"},
		{"archive bound", append(full("dc1", 950, 960), full("dc2", 970, 980)...), log, 900, 901, "the archive holds entries only through 900"},
		{"catalog behind watermark", append(full("dc1", 950, 960), full("dc2", 970, 980)...), log, 800, 801, "catalog end 800"},
		{"log end bound", append(full("dc1", 950, 960), full("dc2", 970, 980)...), LogInfo{First: 1, Last: 940, ArchivedThrough: 1000}, 1000, 941, "the log ends at 940"},
		{"too new ignored", append(append(full("dc1", 500, 600), full("dc2", 700, 700)...),
			cp("dc1", "sp", 0, 0, 800, time.Minute), cp("dc1", "po", 0, 0, 800, time.Minute)), log, 900, 501, "cluster dc1: sp"},
		{"split partitions, newest per point", append([]snapshot.CheckpointRef{
			// dc1 sp: halves at 300 and 500, an older whole at 200 and a
			// newer left half at 800: the right half limits at 500.
			cp("dc1", "sp", 0, half, 300, old), cp("dc1", "sp", half, 0, 500, old),
			cp("dc1", "sp", 0, 0, 200, old), cp("dc1", "sp", 0, half, 800, old),
			cp("dc1", "po", 0, 0, 900, old),
		}, full("dc2", 900, 900)...), log, 900, 501, "cluster dc1: sp [0x8000000000000000, 2^64) is covered only by a checkpoint at index 500"},
		{"uncovered gap in a partitioning", append([]snapshot.CheckpointRef{
			cp("dc1", "sp", 0, 100, 800, old), cp("dc1", "sp", 200, 0, 800, old), cp("dc1", "po", 0, 0, 800, old),
		}, full("dc2", 900, 900)...), log, 900, 0, "sp [0x0000000000000064, 0x00000000000000c8) has no checkpoint"},
		{"other clusters ignored", append(full("dc1", 800, 800), append(full("dc2", 800, 800), full("dc9", 1, 1)...)...), log, 900, 801, "index 800"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(cfg, t0, &snapshot.CheckpointCatalog{Checkpoints: tc.cps}, logCat(t, tc.archive), tc.log)
			if p.Discard != tc.discard || !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("discard %d (%s), want %d (%s)\n%s", p.Discard, p.Reason, tc.discard, tc.reason, p)
			}
			if p.Act() != (tc.discard > tc.log.First) {
				t.Fatalf("act %v", p.Act())
			}
			t.Logf("\n%s", p)
		})
	}
}

type fakeLog struct {
	info      LogInfo
	discarded uint64
}

func (f *fakeLog) Info(context.Context) (LogInfo, error) { return f.info, nil }
func (f *fakeLog) DiscardPrefix(_ context.Context, before uint64) (uint64, error) {
	if before-1 > f.info.ArchivedThrough {
		return 0, errors.New("not archived")
	}
	f.discarded, f.info.First = before, before
	return before, nil
}

// putCheckpoint uploads a checkpoint of one file and lists it, as a view
// does, with ref's Created as the view's clock has it.
func putCheckpoint(t *testing.T, store snapshot.Store, ref snapshot.CheckpointRef) snapshot.CheckpointRef {
	t.Helper()
	ctx := context.Background()
	dir := snapshot.CheckpointDir(ref.Space, ref.Range(), ref.Index)
	data := []byte(fmt.Sprintf("%s %s %d", ref.Cluster, ref.Space, ref.Index))
	key := dir + "facts-0000.sst"
	if _, err := store.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	m := &snapshot.Manifest{Cluster: ref.Cluster, Space: ref.Space, Start: ref.Start, End: ref.End, Index: ref.Index, Created: ref.Created,
		Files: []snapshot.FileRef{{Key: key, Kind: "facts", HashStart: ref.Start, HashEnd: ref.End, Size: int64(len(data)), CRC32C: snapshot.CRC32C(data)}}}
	ref.Manifest, ref.Bytes = dir+snapshot.ManifestName, m.Bytes()
	if err := snapshot.PutManifest(ctx, store, ref.Manifest, m); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.UpdateCheckpointCatalog(ctx, store, func(cat *snapshot.CheckpointCatalog) error { cat.Add(ref); return nil }); err != nil {
		t.Fatal(err)
	}
	return ref
}

func putArchive(t *testing.T, store snapshot.Store, last uint64) {
	t.Helper()
	if _, err := snapshot.UpdateLogCatalog(context.Background(), store, func(cat *snapshot.LogCatalog) error {
		return cat.Add(snapshot.SegmentRef{First: 1, Last: last, Key: snapshot.SegmentKey(1, last)})
	}); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) *storetest.Clocked {
	t.Helper()
	store, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return storetest.NewClocked(store)
}

func TestCoordinatorOnce(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 300, time.Hour))
	putCheckpoint(t, store, cp("dc1", "po", 0, 0, 400, time.Hour))
	putArchive(t, store, 500)
	store.Advance(2 * time.Minute)
	log := &fakeLog{info: LogInfo{First: 1, Last: 600, ArchivedThrough: 500}}
	c := &Coordinator{Config: Config{Clusters: []string{"dc1"}, Delay: time.Minute}, Store: store, Log: log}
	p, err := c.Once(ctx, true)
	if err != nil || p.Discard != 301 || p.Done || log.discarded != 0 {
		t.Fatalf("dry run: %v %v", p, err)
	}
	p, err = c.Once(ctx, false)
	if err != nil || !p.Done || p.FirstAfter != 301 || log.discarded != 301 {
		t.Fatalf("run: %v %v", p, err)
	}
	p, err = c.Once(ctx, false)
	if err != nil || p.Act() || p.Done {
		t.Fatalf("second run: %v %v", p, err)
	}
	if !strings.Contains(p.String(), "nothing to discard") {
		t.Fatalf("plan: %s", p)
	}
}

// Ages come from the store, not from the clock of the view that wrote a
// checkpoint nor of the coordinator: a checkpoint just uploaded is too new
// however old its Created says it is. Before the fix, a view's (or the
// coordinator's) skewed clock made it count at once.
func TestCoordinatorStoreClock(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 300, 2*time.Hour)) // Created 2 h "ago"
	putCheckpoint(t, store, cp("dc1", "po", 0, 0, 400, 2*time.Hour))
	putArchive(t, store, 500)
	log := &fakeLog{info: LogInfo{First: 1, Last: 600, ArchivedThrough: 500}}
	c := &Coordinator{Config: Config{Clusters: []string{"dc1"}, Delay: 3 * time.Minute}, Store: store, Log: log}
	p, err := c.Once(ctx, false)
	if err != nil || p.Act() || log.discarded != 0 || p.Clusters[0].TooNew != 2 {
		t.Fatalf("fresh checkpoints counted:\n%v %v", p, err)
	}
	store.Advance(4 * time.Minute)
	if p, err = c.Once(ctx, false); err != nil || !p.Done || log.discarded != 301 {
		t.Fatalf("after the delay by the store's clock:\n%v %v", p, err)
	}
}

// A checkpoint counts only when whole: a file missing, of the wrong size,
// or (for the checkpoints the plan relies on) with the wrong checksum
// leaves it out, and the plan falls back to older ones.
func TestCoordinatorCountsOnlyWhole(t *testing.T) {
	ctx := context.Background()
	for _, breakIt := range []string{"missing", "size", "checksum"} {
		t.Run(breakIt, func(t *testing.T) {
			store := newStore(t)
			putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 100, 0))
			newer := putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 300, 0))
			putCheckpoint(t, store, cp("dc1", "po", 0, 0, 400, 0))
			putArchive(t, store, 500)
			store.Advance(time.Hour)
			m, err := snapshot.LoadManifest(ctx, store, newer.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			key := m.Files[0].Key
			data, _, err := snapshot.ReadAll(ctx, store, key)
			if err != nil {
				t.Fatal(err)
			}
			switch breakIt {
			case "missing":
				err = store.Delete(ctx, key)
			case "size":
				_, err = store.Put(ctx, key, bytes.NewReader(data[1:]), int64(len(data)-1))
			case "checksum":
				data[0] ^= 1
				_, err = store.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
			}
			if err != nil {
				t.Fatal(err)
			}
			log := &fakeLog{info: LogInfo{First: 1, Last: 600, ArchivedThrough: 500}}
			c := &Coordinator{Config: Config{Clusters: []string{"dc1"}, Delay: time.Minute}, Store: store, Log: log}
			p, err := c.Once(ctx, false)
			if err != nil || !p.Done || log.discarded != 101 || len(p.Unverified) != 1 || p.Unverified[0].Key != newer.Manifest {
				t.Fatalf("want a discard below 101 only, %s not counted:\n%v %v", newer.Manifest, p, err)
			}
			if !strings.Contains(p.String(), "not whole") {
				t.Fatalf("plan does not say what it left out:\n%s", p)
			}
		})
	}
}

// recheckLog deletes a checkpoint file when the coordinator asks for the
// log's state the second time, as retention (or an operator) might
// between a plan and its discard.
type recheckLog struct {
	fakeLog
	calls  int
	before func()
}

func (r *recheckLog) Info(ctx context.Context) (LogInfo, error) {
	r.calls++
	if r.calls == 2 {
		r.before()
	}
	return r.fakeLog.Info(ctx)
}

// Coverage is checked again right before the discard, which goes only as
// far as both plans allow. Before the fix, the first plan was acted on.
func TestCoordinatorRechecksBeforeDiscard(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 100, 0))
	newer := putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 300, 0))
	putCheckpoint(t, store, cp("dc1", "po", 0, 0, 400, 0))
	putArchive(t, store, 500)
	store.Advance(time.Hour)
	log := &recheckLog{fakeLog: fakeLog{info: LogInfo{First: 1, Last: 600, ArchivedThrough: 500}}}
	log.before = func() {
		m, err := snapshot.LoadManifest(ctx, store, newer.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Delete(ctx, m.Files[0].Key); err != nil {
			t.Fatal(err)
		}
	}
	c := &Coordinator{Config: Config{Clusters: []string{"dc1"}, Delay: time.Minute}, Store: store, Log: log}
	p, err := c.Once(ctx, false)
	if err != nil || log.calls != 2 || log.discarded != 101 {
		t.Fatalf("discarded below %d after %d plans, want 101 after 2:\n%v %v", log.discarded, log.calls, p, err)
	}
}

// With FromRegistry the critical clusters are the registry's, read on every
// plan: an empty registry is refused, a newly registered critical cluster
// without checkpoints holds the discard back, and once marked non-critical
// it no longer does.
func TestCoordinatorFromRegistry(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	putCheckpoint(t, store, cp("dc1", "sp", 0, 0, 300, time.Hour))
	putCheckpoint(t, store, cp("dc1", "po", 0, 0, 400, time.Hour))
	putArchive(t, store, 500)
	store.Advance(2 * time.Minute)
	log := &fakeLog{info: LogInfo{First: 1, Last: 600, ArchivedThrough: 500}}
	c := &Coordinator{Config: Config{Delay: time.Minute}, Store: store, Log: log, FromRegistry: true}
	if _, err := c.Once(ctx, true); err == nil || !strings.Contains(err.Error(), "no critical cluster") {
		t.Fatalf("empty registry: %v", err)
	}
	set := func(name string, critical bool) {
		t.Helper()
		if _, err := snapshot.UpdateClusterRegistry(ctx, store, func(r *snapshot.ClusterRegistry) error { return r.Set(name, critical) }); err != nil {
			t.Fatal(err)
		}
	}
	set("dc1", true)
	set("dc4", true) // being added: no checkpoints yet
	if p, err := c.Once(ctx, true); err != nil || p.Act() {
		t.Fatalf("a critical cluster without checkpoints: %v %v", p, err)
	}
	set("dc4", false)
	if p, err := c.Once(ctx, true); err != nil || p.Discard != 301 {
		t.Fatalf("dc4 non-critical: %v %v", p, err)
	}
}
