package logsvc

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// cutEach archives entries one at a time, cutting a segment per entry
// (as a steady trickle of writes does with a short SegmentAge), and
// compacts after each cut, as the archive loop does.
func cutEach(t testing.TB, a *SegmentArchiver, entries []Entry) {
	t.Helper()
	ctx := context.Background()
	for _, e := range entries {
		if _, err := a.Archive(ctx, []Entry{e}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func loadCatalog(t testing.TB, store snapshot.Store) *snapshot.LogCatalog {
	t.Helper()
	cat, _, err := snapshot.LoadLogCatalog(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// checkArchive checks that the catalog covers 1..n without gap or
// duplicate and that every entry is the one handed over.
func checkArchive(t testing.TB, store snapshot.Store, want []Entry) {
	t.Helper()
	got := archivedEntries(t, store) // consecutive from 1
	if len(got) != len(want) {
		t.Fatalf("archive holds %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("archive entry %d differs", want[i].Index)
		}
	}
}

var testCompaction = snapshot.CompactionPolicy{Fanout: 4, MaxLevel: 2}

// Many small cuts: compaction merges runs of four level-0 segments into a
// level-1 one and four of those into a level-2 one; the catalog stays
// bounded, covers every index once, and holds the same entries; every
// replaced object is retired, none deleted.
func TestCompactionBoundsCatalog(t *testing.T) {
	store := newDirStore(t)
	a := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 1 << 20, SegmentAge: time.Hour, Compaction: testCompaction})
	entries := entriesOf(1, 300, 20)
	cutEach(t, a, entries[:3])
	before := loadCatalog(t, store)
	if len(before.Segments) != 3 || before.Segments[2].Level != 0 {
		t.Fatalf("3 cuts: catalog %+v, want 3 level-0 segments", before.Segments)
	}
	cutEach(t, a, entries[3:4])
	after := loadCatalog(t, store)
	if len(after.Segments) != 1 || after.Segments[0].Level != 1 || after.Segments[0].First != 1 || after.Segments[0].Last != 4 ||
		after.Segments[0].Key != snapshot.SegmentKey(1, 4) || len(after.Retired) != 0 {
		t.Fatalf("4 cuts: catalog %+v retired %+v, want one level-1 segment 1..4 and nothing in Retired", after.Segments, after.Retired)
	}
	checkArchive(t, store, entries[:4])

	cutEach(t, a, entries[4:])
	cat := loadCatalog(t, store)
	levels := map[int]int{}
	for _, s := range cat.Segments {
		levels[s.Level]++
	}
	// 300 = 18 level-2 segments of 16, then 3 of level 1 and 0 of level 0.
	if len(cat.Segments) != 21 || levels[2] != 18 || levels[1] != 3 {
		t.Fatalf("300 cuts: %d segments by level %v, want 18 of level 2 and 3 of level 1", len(cat.Segments), levels)
	}
	checkArchive(t, store, entries)
	// Every object ever uploaded stays until garbage collection: 300
	// cuts, 75 level-1 and 18 level-2 merges.
	objects := 0
	if err := store.List(context.Background(), snapshot.SegmentPrefix, func(o snapshot.ObjectInfo) error {
		objects++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if objects != 300+75+18 || len(cat.Retired) != 0 {
		t.Fatalf("%d segment objects, want 393; %d retired entries, want 0", objects, len(cat.Retired))
	}
	t.Logf("300 cuts: %d segments listed (by level %v), %d objects before garbage collection", len(cat.Segments), levels, objects)
}

// A merged segment never exceeds MaxRawBytes: runs that reach it with the
// next segment merge early; a segment as large as that is never merged.
func TestCompactionSizeRule(t *testing.T) {
	store := newDirStore(t)
	a := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 1 << 20, SegmentAge: time.Hour,
		Compaction: snapshot.CompactionPolicy{Fanout: 16, MaxLevel: 2, MaxRawBytes: 100}})
	entries := entriesOf(1, 40, 30) // 30 bytes each: three fit in 100
	cutEach(t, a, entries)
	cat := loadCatalog(t, store)
	for _, s := range cat.Segments[:len(cat.Segments)-1] {
		if s.RawBytes > 100 || s.Level != 1 || s.Last-s.First != 2 {
			t.Fatalf("segment %+v: want level 1, 3 entries, at most 100 bytes", s)
		}
	}
	checkArchive(t, store, entries)
}

// A reader that read the catalog before a compaction, whose segments were
// retired and then deleted by garbage collection, still reads every index
// through ReadSegment: it falls back to the current catalog.
func TestReadSegmentAfterCompactionAndGC(t *testing.T) {
	ctx := context.Background()
	store := newDirStore(t)
	a := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 1 << 20, SegmentAge: time.Hour, Compaction: testCompaction})
	entries := entriesOf(1, 40, 20)
	cutEach(t, a, entries[:3])
	old := loadCatalog(t, store)
	cutEach(t, a, entries[3:])
	cat := loadCatalog(t, store)
	listed := map[string]bool{}
	for _, r := range cat.Segments {
		listed[r.Key] = true
	}
	var superseded []string
	if err := store.List(ctx, snapshot.SegmentPrefix, func(o snapshot.ObjectInfo) error {
		if !listed[o.Key] {
			superseded = append(superseded, o.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, key := range superseded { // what garbage collection does after the grace period
		if err := store.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range old.Segments {
		if _, err := store.Head(ctx, ref.Key); err == nil {
			t.Fatalf("%s is still there", ref.Key)
		}
		got, err := snapshot.ReadSegment(ctx, store, ref)
		if err != nil {
			t.Fatalf("read %s after compaction: %v", ref.Key, err)
		}
		if len(got) != int(ref.Last-ref.First+1) || got[0].Index != ref.First || !bytes.Equal(got[0].Data, entries[ref.First-1].Data) {
			t.Fatalf("read %s: %d entries from %d", ref.Key, len(got), got[0].Index)
		}
	}
	// A listed segment that is missing is still corruption.
	if err := store.Delete(ctx, cat.Segments[0].Key); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.ReadSegment(ctx, store, cat.Segments[0]); err == nil {
		t.Fatal("a missing listed segment read without error")
	}
}

// Two archivers (an old and a new leader) archive and compact the same
// history at once: whatever interleaving, the catalog ends consecutive,
// every entry the one handed over, and neither reports a conflict.
func TestCompactionConcurrentArchivers(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			entries := entriesOf(1, 120, 20)
			cfg := SegmentConfig{SegmentBytes: 1 << 20, SegmentAge: time.Hour, Compaction: testCompaction}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			archivers := make([]*SegmentArchiver, 2)
			for w := range archivers {
				archivers[w] = NewSegmentArchiver(store, cfg)
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					a := archivers[w]
					step := 1 + w // different cut boundaries
					for i := 0; i < len(entries); i += step {
						batch := entries[i:min(i+step, len(entries))]
						if _, err := a.Archive(ctx, batch); err != nil {
							// a lost race: start again from the catalog
							// (as the archive loop does from the watermark)
							if _, err := a.Archive(ctx, entries[:i+len(batch)]); err != nil {
								errs[w] = err
								return
							}
						}
						if _, err := a.Flush(ctx); err != nil {
							i -= step
							continue
						}
						if _, err := a.Compact(ctx); err != nil {
							errs[w] = err
							return
						}
					}
				}(w)
			}
			wg.Wait()
			for w, err := range errs {
				if err != nil {
					t.Fatalf("archiver %d: %v", w, err)
				}
			}
			for { // finish compacting
				did, err := archivers[0].Compact(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !did {
					break
				}
			}
			checkArchive(t, store, entries)
			cat := loadCatalog(t, store)
			t.Logf("%d segments; merges: %d and %d", len(cat.Segments), archivers[0].compacted, archivers[1].compacted)
			if len(cat.Segments) > 12 {
				t.Fatalf("%d segments after 120 entries: compaction did not keep up", len(cat.Segments))
			}
		})
	}
}
