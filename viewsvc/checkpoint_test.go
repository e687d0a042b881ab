package viewsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
	"github.com/akutan/akutan/snapshot/storetest"
)

// checkpointEntries is a log for the checkpoint tests: the dataset with
// deletes and re-inserts, interleaved with held transactions, decisions and
// pings, so that checkpoints fall between a transaction and its decision.
func checkpointEntries(t testing.TB, facts int) [][]byte {
	ds := makeDataset(21, facts, 30, true, 0)
	g := newGen(23)
	var entries [][]byte
	for i, e := range ds.entries {
		entries = append(entries, e)
		if i%2 == 0 {
			g.index = uint64(len(entries))
			entries = append(entries, g.next())
		}
	}
	return entries
}

// storeKinds are the object stores every checkpoint test runs on: the
// directory store, and a real MinIO server (snapshot/miniotest), one per
// test, each store under its own prefix.
var storeKinds = []struct {
	name  string
	setup func(t *testing.T) (open func(t *testing.T) snapshot.Store, srv *miniotest.Server)
}{
	{"dir", func(*testing.T) (func(t *testing.T) snapshot.Store, *miniotest.Server) {
		return dirStore, nil
	}},
	{"minio", func(t *testing.T) (func(t *testing.T) snapshot.Store, *miniotest.Server) {
		srv := miniotest.Start(t)
		var n atomic.Int64
		return func(t *testing.T) snapshot.Store {
			return srv.Store(t, fmt.Sprintf("view-test-%d", n.Add(1)))
		}, srv
	}},
}

func dirStore(t *testing.T) snapshot.Store {
	s, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func forEachStore(t *testing.T, fn func(t *testing.T, open func(t *testing.T) snapshot.Store)) {
	forEachStoreServer(t, func(t *testing.T, open func(t *testing.T) snapshot.Store, _ *miniotest.Server) {
		fn(t, open)
	})
}

func forEachStoreServer(t *testing.T, fn func(t *testing.T, open func(t *testing.T) snapshot.Store, srv *miniotest.Server)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			open, srv := k.setup(t)
			fn(t, open, srv)
		})
	}
}

// floorLog is a log that fails the test if a view reads below min: a view
// booted from a checkpoint at min-1 must not.
type floorLog struct {
	LogReader
	t   testing.TB
	min uint64
}

func (l floorLog) Stream(ctx context.Context, from uint64, fn func([]LogEntry) error) error {
	if from < l.min {
		l.t.Errorf("view read the log from %d, below %d", from, l.min)
		return fmt.Errorf("below the floor")
	}
	return l.LogReader.Stream(ctx, from, fn)
}

func (l floorLog) LastIndex(ctx context.Context) (uint64, error) {
	return l.LogReader.(LogTail).LastIndex(ctx)
}

func memLog(entries [][]byte) *MemLog {
	l := NewMemLog()
	l.MaxBatch = 16
	l.Append(entries...)
	return l
}

// checkpointAt applies the log to exactly index in a fresh view of space and
// rng and writes a checkpoint there.
func checkpointAt(t *testing.T, store snapshot.Store, log LogReader, space Space, rng HashRange, index uint64) snapshot.CheckpointRef {
	t.Helper()
	cfg := testConfig(t, space, rng)
	cfg.Store, cfg.Cluster, cfg.StopAt = store, "dc1", index
	cfg.CheckpointFileBytes = 1 << 20
	v := openView(t, cfg)
	r := start(t, v, log)
	waitApplied(t, v, index)
	ref, err := v.CheckpointNow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ref.Index != index {
		t.Fatalf("checkpoint at %d, want %d", ref.Index, index)
	}
	r.stop()
	_ = v.Close()
	return ref
}

// directView applies the whole log to a fresh view.
func directView(t *testing.T, entries [][]byte, space Space, rng HashRange) *View {
	v := openView(t, testConfig(t, space, rng))
	start(t, v, memLog(entries))
	waitApplied(t, v, uint64(len(entries)))
	return v
}

// bootView opens a view with the store on an empty directory and runs it.
func bootView(t *testing.T, store snapshot.Store, log LogReader, space Space, rng HashRange, stopAt uint64) *View {
	t.Helper()
	cfg := testConfig(t, space, rng)
	cfg.Store, cfg.StopAt = store, stopAt
	v := openView(t, cfg)
	if !v.needBoot {
		t.Fatal("a view opened on an empty directory with a store does not boot")
	}
	start(t, v, log)
	return v
}

func digestAt(t *testing.T, v *View, index uint64) Digest {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := v.Digest(ctx, index)
	if err != nil {
		t.Fatalf("digest at %d: %v (status %+v)", index, err, v.Status())
	}
	return d
}

// tables returns every key and value of the view but its metadata: equal
// tables mean the same physical state, pending transactions and
// transaction records included.
func tables(t *testing.T, v *View) [][2]string {
	t.Helper()
	it, err := v.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQuietly(it)
	var out [][2]string
	for ok := it.First(); ok; ok = it.Next() {
		if it.Key()[0] == 'm' {
			continue
		}
		out = append(out, [2]string{string(it.Key()), string(it.Value())})
	}
	return out
}

func sameTables(t *testing.T, name string, got, want *View) {
	t.Helper()
	g, w := tables(t, got), tables(t, want)
	if slices.Equal(g, w) {
		return
	}
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			t.Errorf("%s: tables differ at key %d: got %x=%x, want %x=%x", name, i, g[i][0], g[i][1], w[i][0], w[i][1])
			return
		}
	}
	t.Errorf("%s: %d keys, want %d", name, len(g), len(w))
}

// TestCheckpointBoot: a view booted from a checkpoint holds what the view
// that wrote it held, at the checkpoint's index and at every later index,
// in both spaces, and reads the log only after the checkpoint.
func TestCheckpointBoot(t *testing.T) {
	entries := checkpointEntries(t, 6000)
	last := uint64(len(entries))
	k := last * 2 / 3
	forEachStore(t, func(t *testing.T, open func(*testing.T) snapshot.Store) {
		for _, space := range []Space{SpaceSP, SpacePO} {
			t.Run(spaceName(space), func(t *testing.T) {
				store := open(t)
				ref := checkpointAt(t, store, memLog(entries), space, FullRange, k)
				m, err := snapshot.LoadManifest(t.Context(), store, ref.Manifest)
				if err != nil {
					t.Fatal(err)
				}
				kinds := map[string]int{}
				for _, f := range m.Files {
					kinds[f.Kind]++
				}
				if kinds[KindFacts] < 1 || kinds[KindOrdered] < 1 || kinds[KindRecords] < 1 || kinds[KindPending] != 1 {
					t.Errorf("checkpoint files by kind: %v", kinds)
				}
				want := directView(t, entries, space, FullRange)
				v := bootView(t, store, floorLog{LogReader: memLog(entries), t: t, min: k + 1}, space, FullRange, 0)
				waitApplied(t, v, last)
				st := v.Status()
				if st.CheckpointIndex != k || st.BootBytesTotal != m.Bytes() || st.BootBytesDone != m.Bytes() {
					t.Errorf("status after boot: %+v, want checkpoint %d and %d bytes", st, k, m.Bytes())
				}
				for index := uint64(0); index <= last; index += 1 + index/4 {
					if got, w := digestAt(t, v, index), digestAt(t, want, index); !got.Equal(w) {
						t.Errorf("index %d: booted %v, direct %v", index, got, w)
					}
				}
				if d := digestAt(t, v, k); d.Facts < 1000 {
					t.Errorf("only %d facts at the checkpoint", d.Facts)
				}
				sameTables(t, "booted", v, want)
			})
		}
	})
}

// TestCheckpointSplit: checkpoints of two halves, taken at different
// indexes, seed views of quarters, of a range straddling both halves, and
// of the whole space. Each holds exactly what a view that applied the whole
// log holds, and the quarters add up to the whole.
func TestCheckpointSplit(t *testing.T) {
	entries := checkpointEntries(t, 6000)
	last := uint64(len(entries))
	k1, k2 := last/2, last*3/4
	q := uint64(1) << 62
	forEachStore(t, func(t *testing.T, open func(*testing.T) snapshot.Store) {
		for _, space := range []Space{SpaceSP, SpacePO} {
			t.Run(spaceName(space), func(t *testing.T) {
				store := open(t)
				checkpointAt(t, store, memLog(entries), space, HashRange{End: halfRange}, k1)
				checkpointAt(t, store, memLog(entries), space, HashRange{Start: halfRange}, k2)
				quarters := []HashRange{{Start: 0, End: q}, {Start: q, End: 2 * q}, {Start: 2 * q, End: 3 * q}, {Start: 3 * q}}
				ranges := append(slices.Clone(quarters), HashRange{Start: q, End: 3 * q}, FullRange)
				floors := []uint64{k1, k1, k2, k2, k1, k1}
				views := make([]*View, len(ranges))
				for i, rng := range ranges {
					views[i] = bootView(t, store, floorLog{LogReader: memLog(entries), t: t, min: floors[i] + 1}, space, rng, 0)
				}
				full := directView(t, entries, space, FullRange)
				for i, rng := range ranges {
					v := views[i]
					waitApplied(t, v, last)
					if got := v.Status().CheckpointIndex; got != floors[i] {
						t.Errorf("%v booted at %d, want %d", rng, got, floors[i])
					}
					want := directView(t, entries, space, rng)
					for index := uint64(0); index <= last; index += 1 + index/3 {
						if got, w := digestAt(t, v, index), digestAt(t, want, index); !got.Equal(w) {
							t.Errorf("%v at %d: booted %v, direct %v", rng, index, got, w)
						}
					}
					sameTables(t, rng.String(), v, want)
				}
				for _, index := range []uint64{k1, k2, last} {
					var sum Digest
					for i := range quarters {
						sum = sum.Add(digestAt(t, views[i], index))
					}
					if w := digestAt(t, full, index); !sum.Equal(w) {
						t.Errorf("at %d the quarters add up to %v, the whole is %v", index, sum, w)
					}
				}
			})
		}
	})
}

// TestBootStopAt: a view told to stop at N boots from checkpoints at or
// below N, applies exactly to N and stays there, serving; Restore builds
// the same state offline.
func TestBootStopAt(t *testing.T) {
	entries := checkpointEntries(t, 3000)
	last := uint64(len(entries))
	k1, k2 := last/4, last/2
	forEachStore(t, func(t *testing.T, open func(*testing.T) snapshot.Store) {
		store := open(t)
		checkpointAt(t, store, memLog(entries), SpaceSP, FullRange, k1)
		checkpointAt(t, store, memLog(entries), SpaceSP, FullRange, k2)
		want := directView(t, entries, SpaceSP, FullRange)
		for _, c := range []struct{ stopAt, from uint64 }{{k2 - 1, k1}, {k2, k2}, {k2 + 7, k2}, {k1 - 1, 0}} {
			v := bootView(t, store, memLog(entries), SpaceSP, FullRange, c.stopAt)
			waitApplied(t, v, c.stopAt)
			deadline := time.Now().Add(5 * time.Second)
			for v.Status().State != viewpb.State_SERVING && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			st := v.Status()
			if st.LastApplied != c.stopAt || st.State != viewpb.State_SERVING || st.CheckpointIndex != c.from {
				t.Errorf("stop at %d: status %+v, want applied %d, SERVING, booted from %d", c.stopAt, st, c.stopAt, c.from)
			}
			if got, w := digestAt(t, v, c.stopAt), digestAt(t, want, c.stopAt); !got.Equal(w) {
				t.Errorf("stop at %d: %v, direct %v", c.stopAt, got, w)
			}
		}
		// Restore: offline, then open the directory and look.
		cfg := testConfig(t, SpaceSP, FullRange)
		cfg.Store = store
		n := k2 + 11
		if err := Restore(t.Context(), cfg, memLog(entries), n); err != nil {
			t.Fatal(err)
		}
		cfg.Store = nil
		v := openView(t, cfg)
		if v.LastApplied() != n || v.Status().CheckpointIndex != k2 {
			t.Errorf("restored view: %+v, want applied %d from checkpoint %d", v.Status(), n, k2)
		}
		if got, w := digestAt(t, v, n), digestAt(t, want, n); !got.Equal(w) {
			t.Errorf("restored at %d: %v, direct %v", n, got, w)
		}
	})
}

// rewrite replaces an object through the store's own API.
func rewrite(t *testing.T, s snapshot.Store, key string, fn func([]byte) []byte) {
	t.Helper()
	data, _, err := snapshot.ReadAll(t.Context(), s, key)
	if err != nil {
		t.Fatal(err)
	}
	data = fn(data)
	if _, err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// TestBootCorruptCheckpoint: a checkpoint with a flipped byte, a truncated
// or missing file, or a bad manifest is reported and never used; the view
// boots from an older checkpoint, or replays the log when there is none.
func TestBootCorruptCheckpoint(t *testing.T) {
	entries := checkpointEntries(t, 3000)
	last := uint64(len(entries))
	k1, k2 := last/3, last*2/3
	want := directView(t, entries, SpaceSP, FullRange)
	dataFile := func(t *testing.T, s snapshot.Store, manifest string) string {
		m, err := snapshot.LoadManifest(t.Context(), s, manifest)
		if err != nil {
			t.Fatal(err)
		}
		return m.Files[len(m.Files)/2].Key
	}
	cases := []struct {
		name    string
		corrupt func(t *testing.T, s snapshot.Store, manifest string)
	}{
		{"flip", func(t *testing.T, s snapshot.Store, manifest string) {
			rewrite(t, s, dataFile(t, s, manifest), func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b })
		}},
		{"truncate", func(t *testing.T, s snapshot.Store, manifest string) {
			rewrite(t, s, dataFile(t, s, manifest), func(b []byte) []byte { return b[:len(b)-100] })
		}},
		{"delete", func(t *testing.T, s snapshot.Store, manifest string) {
			if err := s.Delete(t.Context(), dataFile(t, s, manifest)); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest", func(t *testing.T, s snapshot.Store, manifest string) {
			rewrite(t, s, manifest, func(b []byte) []byte { return bytes.Replace(b, []byte(`"files"`), []byte(`"filez"`), 1) })
		}},
		{"missing-manifest", func(t *testing.T, s snapshot.Store, manifest string) {
			if err := s.Delete(t.Context(), manifest); err != nil {
				t.Fatal(err)
			}
		}},
	}
	forEachStore(t, func(t *testing.T, open func(*testing.T) snapshot.Store) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				store := open(t)
				ref1 := checkpointAt(t, store, memLog(entries), SpaceSP, FullRange, k1)
				ref2 := checkpointAt(t, store, memLog(entries), SpaceSP, FullRange, k2)
				c.corrupt(t, store, ref2.Manifest)
				v := bootView(t, store, memLog(entries), SpaceSP, FullRange, 0)
				waitApplied(t, v, last)
				if got := v.Status().CheckpointIndex; got != k1 {
					t.Errorf("booted from %d, want %d (the older checkpoint)", got, k1)
				}
				sameTables(t, "booted past a corrupt checkpoint", v, want)
				// With the older one corrupt too, the view replays the log.
				c.corrupt(t, store, ref1.Manifest)
				v = bootView(t, store, floorLog{LogReader: memLog(entries), t: t, min: 1}, SpaceSP, FullRange, 0)
				waitApplied(t, v, last)
				if got := v.Status().CheckpointIndex; got != 0 {
					t.Errorf("booted from %d, want a replay", got)
				}
				sameTables(t, "replayed", v, want)
			})
		}
	})
}

// TestCheckpointStoreDown: while the store is down, the view keeps applying
// and serving, checkpoints fail and say so in Status, and the checkpointer
// succeeds once the store is back. A view booting while the store is down
// waits for it.
func TestCheckpointStoreDown(t *testing.T) {
	entries := checkpointEntries(t, 3000)
	third := len(entries) / 3
	forEachStoreServer(t, func(t *testing.T, open func(*testing.T) snapshot.Store, srv *miniotest.Server) {
		store := &storetest.Flaky{Store: open(t)}
		store.Down.Store(true)
		cfg := testConfig(t, SpaceSP, FullRange)
		_ = openView(t, cfg).Close() // not a boot: the directory exists
		cfg.Store, cfg.CheckpointInterval, cfg.CheckpointEntries = store, 20*time.Millisecond, 10
		v := openView(t, cfg)
		log := memLog(entries[:third])
		start(t, v, log)
		waitApplied(t, v, uint64(third))
		if _, err := v.CheckpointNow(t.Context()); !errors.Is(err, ErrCheckpointFailed) || !errors.Is(err, storetest.ErrDown) {
			t.Errorf("checkpoint with the store down: %v", err)
		}
		log.Append(entries[third : 2*third]...)
		waitApplied(t, v, uint64(2*third))
		if st := v.Status(); st.CheckpointErr == nil || st.CheckpointIndex != 0 {
			t.Errorf("status with the store down: %+v", st)
		}
		if _, err := v.Digest(t.Context(), uint64(2*third)); err != nil {
			t.Errorf("digest with the store down: %v", err)
		}
		store.Down.Store(false)
		waitCheckpoint := func(index uint64) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for v.Status().CheckpointIndex != index && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if st := v.Status(); st.CheckpointIndex != index || st.CheckpointErr != nil {
				t.Fatalf("status after the store came back: %+v, want checkpoint %d", st, index)
			}
		}
		waitCheckpoint(uint64(2 * third))
		if srv != nil {
			// The real thing: MinIO killed, and restarted.
			srv.Stop()
			log.Append(entries[2*third:]...)
			waitApplied(t, v, uint64(len(entries)))
			// The S3 client may retry until the deadline.
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			if _, err := v.CheckpointNow(ctx); err == nil {
				t.Error("checkpoint with MinIO down succeeded")
			}
			cancel()
			srv.Restart()
		} else {
			log.Append(entries[2*third:]...)
		}
		waitCheckpoint(uint64(len(entries)))
		// A booting view waits for the store and then boots.
		store.Down.Store(true)
		b := bootView(t, store, floorLog{LogReader: memLog(entries), t: t, min: uint64(len(entries)) + 1}, SpaceSP, FullRange, 0)
		time.Sleep(100 * time.Millisecond)
		if st := b.Status(); st.State != viewpb.State_BOOTING || st.LastApplied != 0 {
			t.Errorf("booting with the store down: %+v", st)
		}
		store.Down.Store(false)
		waitApplied(t, b, uint64(len(entries)))
		sameTables(t, "booted after the store came back", b, v)
	})
}

// TestBootRefusesData: booting from the bucket happens only into an empty
// data directory. Restore refuses a directory with data; a view reopened on
// its own directory resumes from it and does not boot.
func TestBootRefusesData(t *testing.T) {
	entries := checkpointEntries(t, 500)
	store := dirStore(t)
	checkpointAt(t, store, memLog(entries), SpaceSP, FullRange, uint64(len(entries)))
	cfg := testConfig(t, SpaceSP, FullRange)
	v := openView(t, cfg)
	r := start(t, v, memLog(entries[:10]))
	waitApplied(t, v, 10)
	r.stop()
	_ = v.Close()
	cfg.Store = store
	if err := Restore(t.Context(), cfg, memLog(entries), uint64(len(entries))); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore over data: %v, want ErrNotEmpty", err)
	}
	v = openView(t, cfg)
	if v.needBoot || v.LastApplied() != 10 {
		t.Errorf("reopened view: boot %v, applied %d", v.needBoot, v.LastApplied())
	}
}

// TestBootInterrupted: a directory whose boot did not finish boots again.
func TestBootInterrupted(t *testing.T) {
	entries := checkpointEntries(t, 500)
	last := uint64(len(entries))
	store := dirStore(t)
	checkpointAt(t, store, memLog(entries), SpaceSP, FullRange, last/2)
	cfg := testConfig(t, SpaceSP, FullRange)
	cfg.Store = store
	v := openView(t, cfg)
	// Half a boot: some data ingested, the mark still set.
	if err := v.db.Set([]byte("a-junk"), []byte{1}, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	_ = v.Close()
	cfg.Store = nil
	if _, err := Open(cfg); !errors.Is(err, ErrConfigMismatch) {
		t.Errorf("open of an unfinished boot without a store: %v", err)
	}
	cfg.Store = store
	v = openView(t, cfg)
	start(t, v, memLog(entries))
	waitApplied(t, v, last)
	sameTables(t, "boot after an interrupted one", v, directView(t, entries, SpaceSP, FullRange))
}

// TestCheckpointRPC: the Checkpoint method and the status fields.
func TestCheckpointRPC(t *testing.T) {
	entries := checkpointEntries(t, 300)
	cfg := testConfig(t, SpacePO, HashRange{Start: 5, End: math.MaxUint64})
	v := openView(t, cfg)
	start(t, v, memLog(entries))
	waitApplied(t, v, uint64(len(entries)))
	s := NewServer(v)
	if _, err := s.Checkpoint(t.Context(), &viewpb.CheckpointRequest{}); err == nil {
		t.Error("checkpoint without a store succeeded")
	}
	_ = v.Close()
	cfg.Store = dirStore(t)
	v = openView(t, cfg)
	s = NewServer(v)
	resp, err := s.Checkpoint(t.Context(), &viewpb.CheckpointRequest{})
	if err != nil || resp.Index != uint64(len(entries)) || resp.Manifest == "" || resp.Bytes <= 0 {
		t.Fatalf("checkpoint: %v %v", resp, err)
	}
	st, _ := s.Status(t.Context(), &viewpb.StatusRequest{})
	if st.CheckpointIndex != resp.Index {
		t.Errorf("status checkpoint index %d, want %d", st.CheckpointIndex, resp.Index)
	}
	cat, _, err := snapshot.LoadCheckpointCatalog(t.Context(), cfg.Store)
	if err != nil || len(cat.Checkpoints) != 1 || cat.Checkpoints[0].Manifest != resp.Manifest || cat.Checkpoints[0].Space != "po" {
		t.Errorf("catalog: %+v %v", cat, err)
	}
}
