package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/storetest"
)

var full = snapshot.Range{}

// writeCheckpoint uploads a checkpoint of two files and lists it, as a view
// does.
func writeCheckpoint(t testing.TB, s snapshot.Store, cluster, space string, r snapshot.Range, index uint64) snapshot.CheckpointRef {
	t.Helper()
	ctx := context.Background()
	dir := snapshot.CheckpointDir(space, r, index)
	m := &snapshot.Manifest{Cluster: cluster, Space: space, Start: r.Start, End: r.End, Index: index, Created: time.Now()}
	for i, kind := range []string{"facts", "meta"} {
		data := fmt.Appendf(nil, "%s %s %v at %d, file %d", cluster, space, r, index, i)
		info := put(t, s, dir+kind+".sst", data)
		m.Files = append(m.Files, snapshot.FileRef{Key: dir + kind + ".sst", Kind: kind, HashStart: r.Start, HashEnd: r.End,
			Size: info.Size, CRC32C: snapshot.CRC32C(data), Entries: 1})
	}
	if err := snapshot.PutManifest(ctx, s, dir+snapshot.ManifestName, m); err != nil {
		t.Fatal(err)
	}
	ref := snapshot.CheckpointRef{Cluster: cluster, Space: space, Start: r.Start, End: r.End, Index: index,
		Manifest: dir + snapshot.ManifestName, Bytes: m.Bytes(), Created: m.Created}
	if _, err := snapshot.UpdateCheckpointCatalog(ctx, s, func(c *snapshot.CheckpointCatalog) error {
		c.Add(ref)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ref
}

// writeSegments archives segments of 10 entries each from 1 through last.
func writeSegments(t testing.TB, s snapshot.Store, last uint64) []snapshot.SegmentRef {
	t.Helper()
	ctx := context.Background()
	var refs []snapshot.SegmentRef
	for first := uint64(1); first < last; first += 10 {
		var es []snapshot.SegmentEntry
		for i := first; i < first+10; i++ {
			es = append(es, snapshot.SegmentEntry{Index: i, Data: fmt.Appendf(nil, "entry %d", i)})
		}
		obj, err := snapshot.EncodeSegment(es)
		if err != nil {
			t.Fatal(err)
		}
		key := snapshot.SegmentKey(first, first+9)
		put(t, s, key, obj)
		ref := snapshot.SegmentRef{First: first, Last: first + 9, Key: key, Size: int64(len(obj)), CRC32C: snapshot.CRC32C(obj)}
		if _, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error { return c.Add(ref) }); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	return refs
}

func exists(t testing.TB, s snapshot.Store, key string) bool {
	t.Helper()
	_, err := s.Head(context.Background(), key)
	if err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func checkpointKeys(t testing.TB, s snapshot.Store, ref snapshot.CheckpointRef) []string {
	m, err := snapshot.LoadManifest(context.Background(), s, ref.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{ref.Manifest}
	for _, f := range m.Files {
		keys = append(keys, f.Key)
	}
	return keys
}

func policy(keep int, spaces ...string) snapshot.RetentionPolicy {
	return snapshot.RetentionPolicy{KeepCheckpoints: keep, Grace: time.Hour, Spaces: spaces}
}

func testRetention(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	segs := writeSegments(t, s, 100)
	var sp, po []snapshot.CheckpointRef
	for _, i := range []uint64{30, 50, 70, 90} {
		sp = append(sp, writeCheckpoint(t, s, "dc1", "sp", full, i))
	}
	for _, i := range []uint64{40, 60} {
		po = append(po, writeCheckpoint(t, s, "dc1", "po", full, i))
	}
	clock := storetest.NewClocked(s)
	rep, err := snapshot.ApplyRetention(ctx, clock, policy(2, "sp", "po"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.RetiredCheckpoints != 2 || rep.RetiredSegments != 3 || rep.KeepLogFrom != 40 {
		t.Errorf("report %+v, want 2 checkpoints and 3 segments retired, log kept from 40", rep)
	}
	cat, _, _ := snapshot.LoadCheckpointCatalog(ctx, s)
	var idx []uint64
	for _, c := range cat.Checkpoints {
		idx = append(idx, c.Index)
	}
	if !equal(idx, []uint64{40, 60, 70, 90}) || len(cat.Retired) != 2 {
		t.Errorf("retained %v, retired %+v", idx, cat.Retired)
	}
	logCat, _, _ := snapshot.LoadLogCatalog(ctx, s)
	if logCat.FirstArchived() != 31 || logCat.ArchivedThrough() != 100 || len(logCat.Retired) != 3 {
		t.Errorf("log catalog %d..%d, retired %+v", logCat.FirstArchived(), logCat.ArchivedThrough(), logCat.Retired)
	}
	// Nothing is deleted within the grace period.
	retired := append(checkpointKeys(t, s, sp[0]), checkpointKeys(t, s, sp[1])...)
	for _, r := range segs[:3] {
		retired = append(retired, r.Key)
	}
	for _, k := range retired {
		if !exists(t, s, k) {
			t.Errorf("%s deleted within the grace period", k)
		}
	}
	clock.Advance(59 * time.Minute)
	rep, err = snapshot.ApplyRetention(ctx, clock, policy(2, "sp", "po"))
	if err != nil || rep.RetiredCheckpoints+rep.RetiredSegments+rep.Purge.RetiredDeleted != 0 {
		t.Errorf("second run: %+v %v", rep, err)
	}
	// After it, retired objects go; the rest stays.
	clock.Advance(2 * time.Minute)
	rep, err = snapshot.ApplyRetention(ctx, clock, policy(2, "sp", "po"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Purge.RetiredDeleted != len(retired) {
		t.Errorf("purge deleted %d objects, want %d", rep.Purge.RetiredDeleted, len(retired))
	}
	for _, k := range retired {
		if exists(t, s, k) {
			t.Errorf("%s still there after the grace period", k)
		}
	}
	for _, ref := range append(sp[2:], po...) {
		for _, k := range checkpointKeys(t, s, ref) {
			if !exists(t, s, k) {
				t.Errorf("retained %s is gone", k)
			}
		}
	}
	for _, r := range segs[3:] {
		if !exists(t, s, r.Key) {
			t.Errorf("retained %s is gone", r.Key)
		}
	}
	cat, _, _ = snapshot.LoadCheckpointCatalog(ctx, s)
	logCat, _, _ = snapshot.LoadLogCatalog(ctx, s)
	if len(cat.Retired) != 0 || len(logCat.Retired) != 0 {
		t.Errorf("retired lists not emptied: %+v %+v", cat.Retired, logCat.Retired)
	}
	if v, err := snapshot.Verify(ctx, s, snapshot.VerifyOptions{}); err != nil || !v.OK() {
		t.Errorf("verify after retention: %+v %v", v, err)
	}
}

func TestRetentionKeepsLog(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		checkpoint func(s snapshot.Store)
		spaces     []string
		wantFirst  uint64
	}{
		{"no checkpoints", func(snapshot.Store) {}, nil, 1},
		{"space not covered", func(s snapshot.Store) { writeCheckpoint(t, s, "dc1", "sp", full, 50) }, []string{"sp", "po"}, 1},
		{"range not covered", func(s snapshot.Store) {
			writeCheckpoint(t, s, "dc1", "sp", snapshot.Range{Start: 0, End: 1 << 63}, 50)
		}, []string{"sp"}, 1},
		{"a cluster not covered", func(s snapshot.Store) {
			writeCheckpoint(t, s, "dc1", "sp", full, 50)
			writeCheckpoint(t, s, "dc2", "sp", snapshot.Range{Start: 1 << 63}, 50)
		}, []string{"sp"}, 1},
		{"covered", func(s snapshot.Store) { writeCheckpoint(t, s, "dc1", "sp", full, 50) }, []string{"sp"}, 41},
		{"no spaces required", func(s snapshot.Store) { writeCheckpoint(t, s, "dc1", "sp", full, 50) }, nil, 41},
		{"the newest segment stays", func(s snapshot.Store) { writeCheckpoint(t, s, "dc1", "sp", full, 500) }, []string{"sp"}, 91},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := snapshot.NewDirStore(t.TempDir())
			writeSegments(t, s, 100)
			c.checkpoint(s)
			if _, err := snapshot.ApplyRetention(ctx, s, policy(1, c.spaces...)); err != nil {
				t.Fatal(err)
			}
			cat, _, _ := snapshot.LoadLogCatalog(ctx, s)
			if cat.FirstArchived() != c.wantFirst || cat.ArchivedThrough() != 100 {
				t.Errorf("log archive is %d..%d, want %d..100", cat.FirstArchived(), cat.ArchivedThrough(), c.wantFirst)
			}
		})
	}
	s, _ := snapshot.NewDirStore(t.TempDir())
	if _, err := snapshot.ApplyRetention(ctx, s, snapshot.RetentionPolicy{Grace: -1}); err == nil ||
		!strings.Contains(err.Error(), "keep") || !strings.Contains(err.Error(), "grace") {
		t.Errorf("bad policy: %v, want both problems reported", err)
	}
}

func testRetentionRepartition(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	quarter := func(i uint64) snapshot.Range { return snapshot.Range{Start: i << 62, End: (i + 1) << 62} }
	eighth := func(i uint64) snapshot.Range { return snapshot.Range{Start: i << 61, End: (i + 1) << 61} }
	for _, index := range []uint64{10, 20} {
		for i := range uint64(4) {
			writeCheckpoint(t, s, "dc1", "sp", quarter(i), index+i)
		}
	}
	// The new partitioning has two checkpoints in the first quarter's
	// halves, one in the second quarter's, none in the others.
	for _, index := range []uint64{30, 40} {
		writeCheckpoint(t, s, "dc1", "sp", eighth(0), index)
		writeCheckpoint(t, s, "dc1", "sp", eighth(1), index)
	}
	writeCheckpoint(t, s, "dc1", "sp", eighth(2), 30)
	// Another cluster's checkpoints are counted apart.
	writeCheckpoint(t, s, "dc2", "sp", full, 5)

	if _, err := snapshot.ApplyRetention(ctx, s, policy(2)); err != nil {
		t.Fatal(err)
	}
	cat, _, _ := snapshot.LoadCheckpointCatalog(ctx, s)
	var got []string
	for _, c := range cat.Checkpoints {
		got = append(got, fmt.Sprintf("%s %x-%x@%d", c.Cluster, c.Start>>56, c.End>>56, c.Index))
	}
	sort.Strings(got)
	want := []string{
		"dc1 0-20@30", "dc1 0-20@40", "dc1 20-40@30", "dc1 20-40@40", // first quarter: the new ones
		// Second quarter: its first half has one new checkpoint and keeps
		// the newest old one; its second half has none, so keeps both.
		"dc1 40-60@30", "dc1 40-80@21", "dc1 40-80@11",
		"dc1 80-c0@12", "dc1 80-c0@22", "dc1 c0-0@13", "dc1 c0-0@23", // untouched
		"dc2 0-0@5",
	}
	sort.Strings(want)
	if !equal(got, want) {
		t.Errorf("retained\n%q\nwant\n%q", got, want)
	}
}

func testCollectGarbage(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	segs := writeSegments(t, s, 30)
	live := writeCheckpoint(t, s, "dc1", "sp", full, 20)
	// A torn upload (files, no manifest), one that crashed between the
	// manifest and the catalog, and a segment never listed.
	tornDir := snapshot.CheckpointDir("sp", full, 25)
	put(t, s, tornDir+"facts.sst", []byte("torn"))
	unlisted := writeCheckpoint(t, s, "dc1", "po", full, 26)
	if _, err := snapshot.UpdateCheckpointCatalog(ctx, s, func(c *snapshot.CheckpointCatalog) error {
		c.Remove(unlisted.Manifest)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	strayKey := snapshot.SegmentKey(31, 40)
	put(t, s, strayKey, []byte("stray"))
	put(t, s, "elsewhere/x", []byte("not ours"))
	garbage := append([]string{tornDir + "facts.sst", strayKey}, checkpointKeys(t, s, unlisted)...)

	// Young garbage is kept: it may be an upload in progress.
	clock := storetest.NewClocked(s)
	rep, err := snapshot.CollectGarbage(ctx, clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansDeleted != 0 || rep.OrphansKept != len(garbage) {
		t.Errorf("young: %+v, want %d kept", rep, len(garbage))
	}
	// Old garbage goes.
	clock.Advance(2 * time.Hour)
	rep, err = snapshot.CollectGarbage(ctx, clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansDeleted != len(garbage) || rep.BytesDeleted == 0 || rep.OrphansKept != 0 {
		t.Errorf("old: %+v, want %d deleted", rep, len(garbage))
	}
	for _, k := range garbage {
		if exists(t, s, k) {
			t.Errorf("garbage %s is still there", k)
		}
	}
	keep := append([]string{snapshot.LogCatalogKey, snapshot.CheckpointCatalogKey, "elsewhere/x"}, checkpointKeys(t, s, live)...)
	for _, r := range segs {
		keep = append(keep, r.Key)
	}
	for _, k := range keep {
		if !exists(t, s, k) {
			t.Errorf("%s was collected", k)
		}
	}
	// Retired entries: kept while young, even though no catalog lists
	// them, and purged once old.
	newer := writeCheckpoint(t, s, "dc1", "sp", full, 30)
	if _, err := snapshot.ApplyRetention(ctx, clock, policy(1)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if rep, err := snapshot.CollectGarbage(ctx, clock, time.Hour); err != nil || rep.RetiredDeleted+rep.OrphansDeleted != 0 {
		t.Errorf("collected retired objects within the grace period: %+v %v", rep, err)
	}
	clock.Advance(90 * time.Minute)
	rep, err = snapshot.CollectGarbage(ctx, clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RetiredDeleted != 3+2 || rep.OrphansDeleted != 0 { // the old checkpoint and two segments
		t.Errorf("purge: %+v", rep)
	}
	for _, k := range checkpointKeys(t, s, newer) {
		if !exists(t, s, k) {
			t.Errorf("%s was collected", k)
		}
	}
	if v, err := snapshot.Verify(ctx, s, snapshot.VerifyOptions{}); err != nil || !v.OK() {
		t.Errorf("verify after collection: %+v %v", v, err)
	}
}

func testVerify(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	segs := writeSegments(t, s, 50)
	a := writeCheckpoint(t, s, "dc1", "sp", full, 20)
	b := writeCheckpoint(t, s, "dc1", "po", full, 30)
	c := writeCheckpoint(t, s, "dc1", "sp", full, 40)
	var last [2]int64
	calls := 0
	v, err := snapshot.Verify(ctx, s, snapshot.VerifyOptions{Progress: func(done, total int64) {
		if done < last[0] {
			t.Errorf("progress went back: %d after %d", done, last[0])
		}
		last = [2]int64{done, total}
		calls++
	}})
	if err != nil || !v.OK() {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if v.Segments != 5 || v.Checkpoints != 3 || v.Files != 6 || last[0] != last[1] || last[0] != v.Bytes || calls != 11 {
		t.Errorf("report %+v, progress %v after %d calls", v, last, calls)
	}

	// Break things in every way; each is reported.
	obj, _, _ := snapshot.ReadAll(ctx, s, segs[1].Key)
	obj[len(obj)/2] ^= 1
	put(t, s, segs[1].Key, obj)                        // flipped byte
	if err := s.Delete(ctx, segs[3].Key); err != nil { // missing
		t.Fatal(err)
	}
	wrong, _, _ := snapshot.ReadAll(ctx, s, segs[2].Key) // a valid segment under the wrong name
	put(t, s, segs[4].Key, wrong)
	ma, _ := snapshot.LoadManifest(ctx, s, a.Manifest)
	put(t, s, ma.Files[0].Key, []byte("short")) // wrong size
	mb, _ := snapshot.LoadManifest(ctx, s, b.Manifest)
	data, _, _ := snapshot.ReadAll(ctx, s, mb.Files[1].Key)
	data[0] ^= 0x80
	put(t, s, mb.Files[1].Key, data) // same size, wrong checksum
	man, _, _ := snapshot.ReadAll(ctx, s, c.Manifest)
	put(t, s, c.Manifest, bytes.Replace(man, []byte(`"index": 40`), []byte(`"index": 41`), 1)) // corrupt manifest

	v, err = snapshot.Verify(ctx, s, snapshot.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{segs[1].Key: true, segs[3].Key: true, segs[4].Key: true,
		ma.Files[0].Key: true, mb.Files[1].Key: true, c.Manifest: true}
	for _, p := range v.Problems {
		if !want[p.Key] {
			t.Errorf("unexpected problem %s", p)
		}
		delete(want, p.Key)
	}
	for k := range want {
		t.Errorf("no problem reported for %s", k)
	}
	if len(v.Problems) != 6 {
		t.Errorf("problems:\n%v", v.Problems)
	}
}

// testGCOwnPrefix: a manifest (or a retired log entry) that names keys
// outside its own kind's prefix is corrupt; nothing it names is deleted.
// Before the fix, retention deleted log/catalog.json and a segment that a
// retired checkpoint's manifest listed.
func testGCOwnPrefix(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	if _, err := snapshot.InitBucket(ctx, s, "test"); err != nil {
		t.Fatal(err)
	}
	segs := writeSegments(t, s, 20)
	old := writeCheckpoint(t, s, "dc1", "sp", full, 5)
	// Rewrite the old checkpoint's manifest (same directory, still under
	// checkpoints/) to list the log catalog and a segment as its files.
	m, err := snapshot.LoadManifest(ctx, s, old.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	own := m.Files[0].Key
	m.Files = append(m.Files,
		snapshot.FileRef{Key: snapshot.LogCatalogKey, Kind: "meta"},
		snapshot.FileRef{Key: segs[len(segs)-1].Key, Kind: "meta"})
	if err := s.Delete(ctx, old.Manifest); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.PutManifest(ctx, s, old.Manifest, m); err != nil {
		t.Fatal(err)
	}
	writeCheckpoint(t, s, "dc1", "sp", full, 15)
	// And a retired log entry naming the catalog.
	if _, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error {
		c.Retired = append(c.Retired, snapshot.RetiredRef{Key: snapshot.LogCatalogKey, At: time.Unix(0, 0)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clock := storetest.NewClocked(s)
	rep, err := snapshot.ApplyRetention(ctx, clock, policy(1))
	if !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("retention with corrupt entries: %v, want ErrCorrupt", err)
	}
	if rep == nil || rep.RetiredCheckpoints != 1 {
		t.Fatalf("report %+v, want the old checkpoint retired", rep)
	}
	clock.Advance(2 * time.Hour)
	gc, err := snapshot.CollectGarbage(ctx, clock, time.Hour)
	if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), old.Manifest) || !strings.Contains(err.Error(), snapshot.LogCatalogKey) {
		t.Errorf("collect garbage: %v, want ErrCorrupt naming %s and %s", err, old.Manifest, snapshot.LogCatalogKey)
	}
	if gc == nil || len(gc.Corrupt) != 2 {
		t.Errorf("report %+v, want 2 corrupt entries", gc)
	}
	for _, k := range []string{snapshot.LogCatalogKey, segs[len(segs)-1].Key, old.Manifest, own, snapshot.MarkerKey} {
		if !exists(t, s, k) {
			t.Errorf("%s was deleted", k)
		}
	}
	if _, _, err := snapshot.LoadLogCatalog(ctx, s); err != nil {
		t.Errorf("log catalog: %v", err)
	}
}

// testCatalogMissing: once a store is initialised, an absent catalog is
// lost, not empty: loading it fails and nothing writes a new one.
func testCatalogMissing(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	// Never created: empty.
	if c, etag, err := snapshot.LoadLogCatalog(ctx, s); err != nil || etag != "" || len(c.Segments) != 0 {
		t.Fatalf("fresh store: %+v %q %v", c, etag, err)
	}
	m, err := snapshot.InitBucket(ctx, s, "test")
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != snapshot.MarkerFormat || m.Created.IsZero() || m.By != "test" {
		t.Errorf("marker %+v", m)
	}
	if _, err := snapshot.InitBucket(ctx, s, "again"); err != nil {
		t.Errorf("init twice: %v", err)
	}
	writeSegments(t, s, 20)
	writeCheckpoint(t, s, "dc1", "sp", full, 5)
	for _, key := range []string{snapshot.LogCatalogKey, snapshot.CheckpointCatalogKey} {
		data, _, err := snapshot.ReadAll(ctx, s, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		_, _, err1 := snapshot.LoadLogCatalog(ctx, s)
		_, _, err2 := snapshot.LoadCheckpointCatalog(ctx, s)
		if got := map[string]error{snapshot.LogCatalogKey: err1, snapshot.CheckpointCatalogKey: err2}[key]; !errors.Is(got, snapshot.ErrCatalogMissing) {
			t.Errorf("%s deleted: load: %v, want ErrCatalogMissing", key, got)
		}
		_, err1 = snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error { return nil })
		_, err2 = snapshot.UpdateCheckpointCatalog(ctx, s, func(c *snapshot.CheckpointCatalog) error { return nil })
		if got := map[string]error{snapshot.LogCatalogKey: err1, snapshot.CheckpointCatalogKey: err2}[key]; !errors.Is(got, snapshot.ErrCatalogMissing) {
			t.Errorf("%s deleted: update: %v, want ErrCatalogMissing", key, got)
		}
		if exists(t, s, key) {
			t.Errorf("%s was written again", key)
		}
		if _, err := snapshot.InitBucket(ctx, s, "again"); !errors.Is(err, snapshot.ErrCatalogMissing) {
			t.Errorf("%s deleted: init: %v, want ErrCatalogMissing", key, err)
		}
		clock := storetest.NewClocked(s)
		clock.Advance(48 * time.Hour)
		if _, err := snapshot.CollectGarbage(ctx, clock, time.Hour); !errors.Is(err, snapshot.ErrCatalogMissing) {
			t.Errorf("%s deleted: collect garbage: %v, want ErrCatalogMissing", key, err)
		}
		put(t, s, key, data)
	}
	for _, key := range listKeys(t, s, "log/") {
		if !exists(t, s, key) {
			t.Errorf("%s gone", key)
		}
	}
}

// TestCatalogLostWithoutMarker: a store written before markers existed
// that lost its log catalog is not initialised afresh, and garbage
// collection does not take its segments for orphans.
func TestCatalogLostWithoutMarker(t *testing.T) {
	ctx := context.Background()
	s, _ := snapshot.NewDirStore(t.TempDir())
	segs := writeSegments(t, s, 20)
	if err := s.Delete(ctx, snapshot.LogCatalogKey); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.InitBucket(ctx, s, "test"); !errors.Is(err, snapshot.ErrCatalogMissing) {
		t.Errorf("init: %v, want ErrCatalogMissing", err)
	}
	clock := storetest.NewClocked(s)
	clock.Advance(48 * time.Hour)
	if _, err := snapshot.CollectGarbage(ctx, clock, time.Hour); !errors.Is(err, snapshot.ErrCatalogMissing) {
		t.Errorf("collect garbage: %v, want ErrCatalogMissing", err)
	}
	for _, r := range segs {
		if !exists(t, s, r.Key) {
			t.Errorf("%s deleted", r.Key)
		}
	}
}

// testGraceAndStoreClock: a grace below MinGrace is refused, and ages come
// from the store: an upload in progress is kept whatever the local clock
// says, and goes only once the store's clock has moved past the grace.
func testGraceAndStoreClock(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	for _, g := range []time.Duration{0, time.Minute, snapshot.MinGrace - time.Second} {
		if _, err := snapshot.CollectGarbage(ctx, s, g); !errors.Is(err, snapshot.ErrGraceTooShort) {
			t.Errorf("collect garbage with grace %v: %v, want ErrGraceTooShort", g, err)
		}
		p := policy(1)
		p.Grace = g
		if _, err := snapshot.ApplyRetention(ctx, s, p); !errors.Is(err, snapshot.ErrGraceTooShort) {
			t.Errorf("retention with grace %v: %v, want ErrGraceTooShort", g, err)
		}
	}
	if _, err := snapshot.InitBucket(ctx, s, "test"); err != nil {
		t.Fatal(err)
	}
	dir := snapshot.CheckpointDir("sp", full, 7)
	put(t, s, dir+"facts-0000.sst", []byte("uploading"))
	rep, err := snapshot.CollectGarbage(ctx, s, snapshot.MinGrace)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansKept != 1 || !exists(t, s, dir+"facts-0000.sst") {
		t.Errorf("an upload in progress was collected: %+v", rep)
	}
	if d := time.Since(rep.Now); d < -time.Hour || d > time.Hour {
		t.Errorf("store time %v is far from now", rep.Now)
	}
	clock := storetest.NewClocked(s)
	clock.Advance(snapshot.MinGrace + time.Minute)
	if rep, err := snapshot.CollectGarbage(ctx, clock, snapshot.MinGrace); err != nil || rep.OrphansDeleted != 1 {
		t.Errorf("after the grace period: %+v %v", rep, err)
	}
}

// testUnverifiedCheckpoint: a checkpoint missing a file, or with a file of
// the wrong size, counts for nothing: older ones are not retired on its
// account, and it does not let the log archive be trimmed.
func testUnverifiedCheckpoint(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	writeSegments(t, s, 100)
	writeCheckpoint(t, s, "dc1", "sp", full, 10)
	writeCheckpoint(t, s, "dc1", "sp", full, 20)
	bad := writeCheckpoint(t, s, "dc1", "sp", full, 30)
	short := writeCheckpoint(t, s, "dc1", "sp", full, 40)
	keys := checkpointKeys(t, s, bad)
	if err := s.Delete(ctx, keys[1]); err != nil {
		t.Fatal(err)
	}
	put(t, s, checkpointKeys(t, s, short)[2], []byte("x"))
	rep, err := snapshot.ApplyRetention(ctx, s, policy(2, "sp"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.RetiredCheckpoints != 0 || len(rep.Unverified) != 2 || rep.KeepLogFrom != 10 {
		t.Errorf("report %+v: want nothing retired, 2 unverified, log kept from 10", rep)
	}
	if _, _, err := snapshot.CheckCheckpoint(ctx, s, bad, false); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("check a checkpoint missing a file: %v", err)
	}
	if _, _, err := snapshot.CheckCheckpoint(ctx, s, short, false); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("check a checkpoint with a short file: %v", err)
	}

	// The only checkpoint of a space, not whole: the log stays whole.
	s2 := storetest.NewClocked(s) // same store, other space
	only := writeCheckpoint(t, s2, "dc1", "po", full, 90)
	put(t, s, checkpointKeys(t, s, only)[1], []byte("x"))
	rep, err = snapshot.ApplyRetention(ctx, s, policy(2, "sp", "po"))
	if err != nil || rep.KeepLogFrom != 0 {
		t.Errorf("report %+v %v: want the log kept whole", rep, err)
	}
}

// Only a test can go below MinGrace.
func TestMinGraceOverride(t *testing.T) {
	ctx := context.Background()
	s, _ := snapshot.NewDirStore(t.TempDir())
	if _, err := snapshot.CollectGarbage(ctx, s, time.Second); !errors.Is(err, snapshot.ErrGraceTooShort) {
		t.Fatalf("grace 1s: %v", err)
	}
	snapshot.SetMinGrace(t, 0)
	if _, err := snapshot.CollectGarbage(ctx, s, time.Second); err != nil {
		t.Fatalf("grace 1s with the test override: %v", err)
	}
}
