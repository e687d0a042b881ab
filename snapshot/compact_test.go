package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// Compaction at the catalog's level: four level-0 segments merge into one
// level-1 segment holding the same entries; garbage collection keeps the
// replaced objects for the grace period after the merge, even when they
// are older than that themselves, then deletes them; a reader holding the
// old catalog still reads every index.
func TestCompactionCatalogAndGC(t *testing.T) {
	ctx := context.Background()
	snapshot.SetMinGrace(t, 0)
	root := t.TempDir()
	s, err := snapshot.NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	var all []snapshot.SegmentEntry
	for i := uint64(1); i <= 8; i += 2 {
		seg := []snapshot.SegmentEntry{{Index: i, Data: fmt.Appendf(nil, "entry %d", i)}, {Index: i + 1, Data: fmt.Appendf(nil, "entry %d", i+1)}}
		all = append(all, seg...)
		obj, err := snapshot.EncodeSegment(seg)
		if err != nil {
			t.Fatal(err)
		}
		ref := snapshot.SegmentRef{First: i, Last: i + 1, Key: snapshot.SegmentKey(i, i+1), Size: int64(len(obj)), CRC32C: snapshot.CRC32C(obj), RawBytes: 14}
		if _, err := s.PutIf(ctx, ref.Key, obj, snapshot.Condition{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error { return c.Add(ref) }); err != nil {
			t.Fatal(err)
		}
	}
	old, _, err := snapshot.LoadLogCatalog(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	p := snapshot.CompactionPolicy{Fanout: 4, MaxLevel: 2, MaxRawBytes: 1 << 20}
	if run, _ := snapshot.PickCompaction(&snapshot.LogCatalog{Segments: old.Segments[:3]}, p); run != nil {
		t.Fatalf("3 segments, fanout 4: picked %v", run)
	}
	run, level := snapshot.PickCompaction(old, p)
	if len(run) != 4 || level != 1 {
		t.Fatalf("picked %v level %d", run, level)
	}
	obj, merged, err := snapshot.MergeSegments(ctx, s, run, level)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Key != snapshot.SegmentKey(1, 8) || merged.RawBytes != 56 || merged.Level != 1 {
		t.Fatalf("merged %+v", merged)
	}
	again, _, _ := snapshot.MergeSegments(ctx, s, run, level)
	if !bytes.Equal(obj, again) {
		t.Fatal("merging the same run twice gave different bytes")
	}
	if _, err := s.PutIf(ctx, merged.Key, obj, snapshot.Condition{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	cat, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error { return c.ReplaceSegments(run, merged) })
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Segments) != 1 || cat.Segments[0] != merged {
		t.Fatalf("catalog after the merge: %+v", cat.Segments)
	}
	// A second try (a lost reply, or another archiver) changes nothing.
	if err := cat.ReplaceSegments(run, merged); err != snapshot.ErrNoChange {
		t.Fatalf("replace again: %v", err)
	}
	got, err := snapshot.ReadSegment(ctx, s, merged)
	if err != nil || len(got) != 8 {
		t.Fatalf("read merged: %d entries, %v", len(got), err)
	}
	for i := range all {
		if got[i].Index != all[i].Index || !bytes.Equal(got[i].Data, all[i].Data) {
			t.Fatalf("merged entry %d differs", i)
		}
	}

	age := func(key string, d time.Duration) {
		t.Helper()
		at := time.Now().Add(-d)
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(key)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range run {
		age(r.Key, time.Hour) // old themselves, but replaced just now
	}
	rep, err := snapshot.CollectGarbage(ctx, s, time.Minute)
	if err != nil || rep.OrphansDeleted != 0 {
		t.Fatalf("GC within the grace period after the merge: %+v %v", rep, err)
	}
	age(merged.Key, time.Hour)
	rep, err = snapshot.CollectGarbage(ctx, s, time.Minute)
	if err != nil || rep.OrphansDeleted != 4 {
		t.Fatalf("GC after the grace period: %+v %v; want the 4 replaced segments deleted", rep, err)
	}
	if _, err := s.Head(ctx, merged.Key); err != nil {
		t.Fatalf("the merged segment: %v", err)
	}
	// A reader holding the old catalog still reads its segments.
	for _, ref := range old.Segments {
		es, err := snapshot.ReadSegment(ctx, s, ref)
		if err != nil || len(es) != 2 || es[0].Index != ref.First || !bytes.Equal(es[1].Data, all[ref.Last-1].Data) {
			t.Fatalf("read %s from the old catalog: %v %v", ref.Key, es, err)
		}
	}
}
