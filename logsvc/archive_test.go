package logsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
	"github.com/akutan/akutan/snapshot/storetest"
)

// testStores returns the stores the archive tests run against: a local
// directory always, and MinIO when it is available.
func testStores(t *testing.T) map[string]snapshot.Store {
	t.Helper()
	dir, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]snapshot.Store{"dir": dir}
	if minioAvailable(t) {
		stores["minio"] = miniotest.Start(t).Store(t, "log")
	}
	return stores
}

// minioAvailable: MinIO runs in every test run once its binary is built
// (make tools-minio); -short does not wait minutes to build it.
func minioAvailable(t testing.TB) bool {
	if !testing.Short() || os.Getenv("AKUTAN_MINIO") != "" {
		return true
	}
	root, err := miniotest.RepoRoot()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(root, ".tools", "bin", "minio"))
	return err == nil
}

func newDirStore(t testing.TB) snapshot.Store {
	t.Helper()
	s, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// archivedEntries reads the whole archive through its catalog, checking
// that segments are consecutive from 1.
func archivedEntries(t testing.TB, store snapshot.Store) []snapshot.SegmentEntry {
	t.Helper()
	ctx := context.Background()
	cat, _, err := snapshot.LoadLogCatalog(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	var out []snapshot.SegmentEntry
	for _, ref := range cat.Segments {
		obj, _, err := snapshot.ReadAll(ctx, store, ref.Key)
		if err != nil {
			t.Fatal(err)
		}
		es, err := snapshot.DecodeSegment(obj)
		if err != nil {
			t.Fatalf("segment %s: %v", ref.Key, err)
		}
		if es[0].Index != ref.First || es[len(es)-1].Index != ref.Last || snapshot.CRC32C(obj) != ref.CRC32C {
			t.Fatalf("segment %s does not match its catalog entry %+v", ref.Key, ref)
		}
		out = append(out, es...)
	}
	for i, e := range out {
		if e.Index != uint64(i+1) {
			t.Fatalf("archive entry %d has index %d", i, e.Index)
		}
	}
	return out
}

func entriesOf(from, to uint64, size int) []Entry {
	var out []Entry
	for i := from; i <= to; i++ {
		out = append(out, Entry{Index: i, Data: []byte(fmt.Sprintf("%0*d", size, i))})
	}
	return out
}

// The archiver's rules, driven directly: segments are cut by size and by
// age, entries seen before are skipped, and a second archiver (a new
// leader) continues from the catalog.
func TestSegmentArchiver(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Unix(1000, 0)
			a := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 1000, SegmentAge: 10 * time.Second})
			a.now = func() time.Time { return now }
			// 25 entries of 100 bytes: two full segments, 5 buffered.
			through, err := a.Archive(ctx, entriesOf(1, 25, 100))
			if err != nil || through != 20 {
				t.Fatalf("archive 1..25: through %d, %v", through, err)
			}
			// Handing over entries seen before (a restart from the
			// watermark) changes nothing.
			if through, err = a.Archive(ctx, entriesOf(15, 27, 100)); err != nil || through != 20 {
				t.Fatalf("archive 15..27: through %d, %v", through, err)
			}
			// A gap is refused.
			if _, err = a.Archive(ctx, entriesOf(40, 41, 100)); !errors.Is(err, errArchiveGap) {
				t.Fatalf("archive with a gap: %v", err)
			}
			// By age: nothing new, but the buffer is old.
			now = now.Add(11 * time.Second)
			if through, err = a.Archive(ctx, entriesOf(21, 27, 100)); err != nil || through != 27 {
				t.Fatalf("archive by age: through %d, %v", through, err)
			}
			// A new leader's archiver starts from the watermark (say 20),
			// finds 21..27 in the catalog, and continues after them.
			b := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 1000, SegmentAge: time.Hour})
			if through, err = b.Archive(ctx, entriesOf(21, 30, 100)); err != nil || through != 27 {
				t.Fatalf("new archiver: through %d, %v", through, err)
			}
			if through, err = b.Flush(ctx); err != nil || through != 30 {
				t.Fatalf("flush: through %d, %v", through, err)
			}
			// The old leader, still buffering 28.. in its head, learns that
			// the catalog moved on and follows it.
			if _, err = a.Archive(ctx, entriesOf(28, 35, 100)); err != nil {
				t.Fatalf("old archiver: %v", err)
			}
			if through, err = a.Flush(ctx); err != nil || through != 35 {
				t.Fatalf("old archiver flush: through %d, %v", through, err)
			}
			// A log with another history at the same indexes (a restored
			// cluster pointed at the old prefix) is refused, not skipped.
			other := entriesOf(30, 40, 100)
			other[2].Data = []byte("a different entry 32")
			c := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 1000, SegmentAge: time.Hour})
			if _, err := c.Archive(ctx, other); !errors.Is(err, ErrArchiveMismatch) {
				t.Fatalf("archive another history: %v, want ErrArchiveMismatch", err)
			}
			got := archivedEntries(t, store)
			if len(got) != 35 {
				t.Fatalf("archive holds %d entries, want 35", len(got))
			}
			for i, e := range entriesOf(1, 35, 100) {
				if string(got[i].Data) != string(e.Data) {
					t.Fatalf("entry %d differs", e.Index)
				}
			}
		})
	}
}

// waitArchived waits until the replicas' watermark reaches index.
func waitArchived(t testing.TB, addr string, index uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		in := info(t, addr, false)
		if in.ArchivedThrough >= index {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("archived through %d, not %d, after 60s", in.ArchivedThrough, index)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadAppends appends batches from several clients until stop is closed
// and records the acknowledged ones by nonce.
type loadAppends struct {
	mu    sync.Mutex
	acked map[string]uint64 // nonce → index
	wg    sync.WaitGroup
	stop  chan struct{}
	n     atomic.Int64
}

func startLoad(t testing.TB, addrs []string, clients, batch int) *loadAppends {
	l := &loadAppends{acked: map[string]uint64{}, stop: make(chan struct{})}
	for w := 0; w < clients; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			app := logclient.NewAppender(addrs, logclient.DefaultAppenderConfig())
			defer app.Close()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				entries := make([][]byte, batch)
				nonces := make([]string, batch)
				for j := range entries {
					nonces[j] = fmt.Sprintf("w%d-%d-%d", w, i, j)
					entries[j] = pingEntry(nonces[j] + strings.Repeat("x", 200))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				first, err := app.AppendBatch(ctx, entries)
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				for j, n := range nonces {
					l.acked[n+strings.Repeat("x", 200)] = first + uint64(j)
				}
				l.mu.Unlock()
				l.n.Add(int64(batch))
			}
		}(w)
	}
	return l
}

func (l *loadAppends) finish() {
	close(l.stop)
	l.wg.Wait()
}

// Under load, with the leader stopped midway, the archive ends up equal to
// the log: consecutive from 1, no gap, no duplicate, every acknowledged
// entry at its index.
func TestArchiveUnderLoadWithLeaderChange(t *testing.T) {
	store := newDirStore(t)
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.ArchiveStore = store
		cfg.ArchiveInterval = 20 * time.Millisecond
		cfg.Segments = SegmentConfig{SegmentBytes: 64 << 10, SegmentAge: 100 * time.Millisecond}
	})
	load := startLoad(t, c.addrs(), 4, 20)
	time.Sleep(1500 * time.Millisecond)
	leader := c.waitLeader()
	for i, s := range c.servers {
		if s == leader {
			c.stop(i)
			time.Sleep(1500 * time.Millisecond)
			c.start(i)
			break
		}
	}
	c.waitLeader()
	time.Sleep(1000 * time.Millisecond)
	load.finish()
	addr := c.waitLeader().GRPCAddr()
	last := info(t, addr, true).LastIndex
	waitArchived(t, addr, last)
	got := archivedEntries(t, store)
	if uint64(len(got)) < last {
		t.Fatalf("archive holds %d entries, the log %d", len(got), last)
	}
	logEntries := readAll(t, addr, 1, last)
	for i, e := range logEntries {
		if string(got[i].Data) != string(e.Data) {
			t.Fatalf("archive entry %d differs from the log", e.Index)
		}
	}
	for n, idx := range load.acked {
		if nonceOf(t, got[idx-1].Data) != n {
			t.Fatalf("acknowledged entry %q at %d is not archived there", n, idx)
		}
	}
	cat, _, _ := snapshot.LoadLogCatalog(context.Background(), store)
	t.Logf("%d entries appended, %d acknowledged, %d archived in %d segments", last, load.n.Load(), len(got), len(cat.Segments))
}

// With the bucket unreachable the log keeps taking appends and refuses to
// discard; when it is back the archive catches up and loses nothing.
func TestArchiveStoreOutage(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) { testArchiveStoreOutage(t, &storetest.Flaky{Store: store}) })
	}
}

func testArchiveStoreOutage(t *testing.T, store *storetest.Flaky) {
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.ArchiveStore = store
		cfg.ArchiveInterval = 20 * time.Millisecond
		cfg.Segments = SegmentConfig{SegmentBytes: 16 << 10, SegmentAge: 50 * time.Millisecond}
	})
	addr := c.addrs()[0]
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	appendN := func(from, n int) {
		for i := from; i < from+n; i += 100 {
			batch := make([][]byte, 100)
			for j := range batch {
				batch[j] = pingEntry(strconv.Itoa(i + j))
			}
			if _, err := app.AppendBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(0, 1000)
	waitArchived(t, addr, 1000)
	store.Down.Store(true)
	appendN(1000, 2000)
	time.Sleep(300 * time.Millisecond)
	in := info(t, addr, true)
	if in.LastIndex != 3000 || in.ArchivedThrough != 1000 {
		t.Fatalf("while the store is down: last %d archived %d", in.LastIndex, in.ArchivedThrough)
	}
	actx, acancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := mustClient(t, addr).ArchiveNow(actx, &logpb.ArchiveNowRequest{})
	acancel()
	if err == nil {
		t.Fatal("ArchiveNow succeeded with the store down")
	}
	if _, err := mustClient(t, addr).DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: 2000}); !errors.Is(logerr.FromStatus(err), logerr.ErrNotArchived) {
		t.Fatalf("discard past the archive: %v", err)
	}
	store.Down.Store(false)
	waitArchived(t, addr, 3000)
	got := archivedEntries(t, store)
	if len(got) != 3000 {
		t.Fatalf("archive holds %d entries", len(got))
	}
	for i, e := range got {
		if nonceOf(t, e.Data) != strconv.Itoa(i) {
			t.Fatalf("archive entry %d is %q", e.Index, nonceOf(t, e.Data))
		}
	}
}

// ArchiveNow, sent to a follower, archives everything committed; after a
// discard a reader with the archive reads from 1 seamlessly, equal to what
// was appended; a corrupt segment is a clear error, never wrong entries.
func TestArchiveNowDiscardAndReadThrough(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) { testArchiveNowDiscardAndReadThrough(t, store) })
	}
}

func testArchiveNowDiscardAndReadThrough(t *testing.T, store snapshot.Store) {
	var err error
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.ArchiveStore = store
		cfg.ArchiveInterval = 20 * time.Millisecond
		cfg.Segments = SegmentConfig{SegmentBytes: 8 << 10, SegmentAge: time.Hour}
	})
	leader := c.waitLeader()
	var follower string
	for _, s := range c.servers {
		if s != leader {
			follower = s.GRPCAddr()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	// Append at least 2000 entries. On this loaded machine the leader may
	// lose its leadership while committing a batch, whose outcome is then
	// unknown (it may be in the log or not); the checks below compare with
	// what the log holds, read back before the discard, not with what was
	// sent.
	var n uint64
	var resp *logpb.ArchiveNowResponse
	for i := 0; n < 2000; i += 100 {
		batch := make([][]byte, 100)
		for j := range batch {
			batch[j] = pingEntry(strconv.Itoa(i + j))
		}
		if _, err := app.AppendBatch(ctx, batch); err != nil && !errors.Is(err, logerr.ErrUnknownOutcome) {
			t.Fatal(err)
		}
		n = info(t, follower, true).LastIndex
	}
	want := readAll(t, follower, 1, n)
	resp, err = mustClient(t, follower).ArchiveNow(ctx, &logpb.ArchiveNowRequest{})
	if err != nil || resp.ArchivedThrough != n {
		t.Fatalf("archive now: %v %v, want archived through %d", resp, err, n)
	}
	if got := info(t, follower, true).ArchivedThrough; got != n {
		t.Fatalf("info reports archived through %d, want %d", got, n)
	}
	if _, err := mustClient(t, follower).DiscardPrefix(ctx, &logpb.DiscardPrefixRequest{Before: 1500}); err != nil {
		t.Fatal(err)
	}
	c.waitApplied(n)
	for _, s := range c.servers {
		for deadline := time.Now().Add(5 * time.Second); ; {
			if first, _ := s.store.Bounds(); first == 1500 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not discard", s.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A plain reader is refused; one with the archive reads everything.
	r := logclient.NewReader(c.addrs())
	err = r.Stream(ctx, 1, func([]logclient.Entry) error { return nil })
	r.Close()
	if !errors.Is(err, logerr.ErrTruncated) {
		t.Fatalf("read below first without archive: %v", err)
	}
	readThrough := func(from uint64) ([]logclient.Entry, error) {
		r := logclient.NewReader(c.addrs()).UseArchive(store)
		defer r.Close()
		var got []logclient.Entry
		done := errors.New("done")
		err := r.Stream(ctx, from, func(es []logclient.Entry) error {
			got = append(got, es...)
			if got[len(got)-1].Index >= n {
				return done
			}
			return nil
		})
		if err != done {
			return got, err
		}
		return got, nil
	}
	for _, from := range []uint64{1, 777, 1499, 1500, 1800} {
		got, err := readThrough(from)
		if err != nil {
			t.Fatalf("read from %d: %v", from, err)
		}
		if uint64(len(got)) != n-from+1 {
			t.Fatalf("read from %d: %d entries", from, len(got))
		}
		for i, e := range got {
			if w := want[e.Index-1]; e.Index != from+uint64(i) || w.Index != e.Index || !bytes.Equal(e.Data, w.Data) {
				t.Fatalf("read from %d: entry %d is %d %q, the log held %d %q", from, i, e.Index, nonceOf(t, e.Data), w.Index, nonceOf(t, w.Data))
			}
		}
	}
	// Corrupt one byte of the second segment's payload.
	cat, _, err := snapshot.LoadLogCatalog(ctx, store)
	if err != nil || len(cat.Segments) < 3 {
		t.Fatalf("catalog: %d segments, %v", len(cat.Segments), err)
	}
	ref := cat.Segments[1]
	obj, _, err := snapshot.ReadAll(ctx, store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	obj[len(obj)/2] ^= 0xff
	if _, err := store.Put(ctx, ref.Key, bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}
	got, err := readThrough(1)
	if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), ref.Key) {
		t.Fatalf("read over a corrupt segment: %v", err)
	}
	if uint64(len(got)) != ref.First-1 {
		t.Fatalf("read over a corrupt segment delivered %d entries, want the %d before it", len(got), ref.First-1)
	}
	t.Logf("corrupt segment: %v", err)
}

// The archiver never overwrites a segment: a key that holds another
// history's object stops it with ErrArchiveConflict, naming the key, and
// the object stays; the same bytes already there (a retry) are no
// conflict. Before the fix, an unconditional put replaced the segment.
func TestArchiveConflict(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store = snapshot.Prefixed(store, "conflict-"+strconv.Itoa(int(time.Now().UnixNano()%1e9)))
			cfg := SegmentConfig{SegmentBytes: 1 << 20, SegmentAge: time.Hour}
			if _, err := snapshot.InitBucket(ctx, store, "test"); err != nil {
				t.Fatal(err)
			}
			// Another history's segment 1..10, uploaded but not catalogued.
			other, err := snapshot.EncodeSegment(segEntries(entriesOf(1, 10, 50)))
			if err != nil {
				t.Fatal(err)
			}
			key := snapshot.SegmentKey(1, 10)
			if _, err := store.Put(ctx, key, bytes.NewReader(other), int64(len(other))); err != nil {
				t.Fatal(err)
			}
			a := NewSegmentArchiver(store, cfg)
			if _, err := a.Archive(ctx, entriesOf(1, 10, 60)); err != nil {
				t.Fatal(err)
			}
			through, err := a.Flush(ctx)
			if !errors.Is(err, ErrArchiveConflict) || !strings.Contains(err.Error(), key) || through != 0 {
				t.Fatalf("flush over another history's segment: through %d, %v; want ErrArchiveConflict naming %s", through, err, key)
			}
			if have, _, _ := snapshot.ReadAll(ctx, store, key); !bytes.Equal(have, other) {
				t.Fatal("the other history's segment was overwritten")
			}
			if cat, _, err := snapshot.LoadLogCatalog(ctx, store); err != nil || len(cat.Segments) != 0 {
				t.Fatalf("catalog %+v %v, want it empty", cat, err)
			}

			// The same bytes already there: a retry after a lost answer.
			mine, err := snapshot.EncodeSegment(segEntries(entriesOf(11, 20, 50)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Put(ctx, snapshot.SegmentKey(11, 20), bytes.NewReader(mine), int64(len(mine))); err != nil {
				t.Fatal(err)
			}
			if err := store.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			b := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 500, SegmentAge: time.Hour})
			if through, err := b.Archive(ctx, entriesOf(1, 20, 50)); err != nil || through != 20 {
				t.Fatalf("archive over an identical segment: through %d, %v", through, err)
			}
			if got := archivedEntries(t, store); len(got) != 20 {
				t.Fatalf("archive holds %d entries", len(got))
			}
		})
	}
}

// An archiver whose segment another history's catalogued segments cover
// does not count its entries as archived: it checks them and stops with
// ErrArchiveMismatch. Before the fix it reported them durable.
func TestArchiveLoserNotDurable(t *testing.T) {
	ctx := context.Background()
	store := newDirStore(t)
	cfg := SegmentConfig{SegmentBytes: 1 << 20, SegmentAge: time.Hour}
	a := NewSegmentArchiver(store, cfg)
	if _, err := a.Archive(ctx, entriesOf(1, 5, 60)); err != nil { // loads the empty catalog
		t.Fatal(err)
	}
	x := NewSegmentArchiver(store, cfg)
	if _, err := x.Archive(ctx, entriesOf(1, 10, 50)); err != nil {
		t.Fatal(err)
	}
	if through, err := x.Flush(ctx); err != nil || through != 10 {
		t.Fatalf("other history: through %d, %v", through, err)
	}
	through, err := a.Flush(ctx)
	if !errors.Is(err, ErrArchiveMismatch) || through != 0 {
		t.Fatalf("losing archiver: through %d, %v; want ErrArchiveMismatch", through, err)
	}
}

// A log catalog lost from an initialised store stops archiving with
// snapshot.ErrCatalogMissing; no new catalog is started over the old
// segments. Before the fix, the archiver read it as empty and began a new
// one.
func TestArchiveCatalogLost(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store = snapshot.Prefixed(store, "lost-"+strconv.Itoa(int(time.Now().UnixNano()%1e9)))
			cfg := SegmentConfig{SegmentBytes: 500, SegmentAge: time.Hour}
			a := NewSegmentArchiver(store, cfg)
			if through, err := a.Archive(ctx, entriesOf(1, 20, 50)); err != nil || through != 20 {
				t.Fatalf("archive: through %d, %v", through, err)
			}
			// The first archiver on an empty store initialised it.
			if _, err := snapshot.ReadMarker(ctx, store); err != nil {
				t.Fatalf("marker: %v", err)
			}
			if err := store.Delete(ctx, snapshot.LogCatalogKey); err != nil {
				t.Fatal(err)
			}
			b := NewSegmentArchiver(store, cfg) // a new leader
			through, err := b.Archive(ctx, entriesOf(21, 40, 50))
			if !errors.Is(err, snapshot.ErrCatalogMissing) || !strings.Contains(err.Error(), "archiving stopped") || through != 0 {
				t.Fatalf("archive after the catalog was lost: through %d, %v", through, err)
			}
			if _, err := b.Flush(ctx); !errors.Is(err, snapshot.ErrCatalogMissing) {
				t.Fatalf("flush after the catalog was lost: %v", err)
			}
			if _, err := store.Head(ctx, snapshot.LogCatalogKey); !errors.Is(err, snapshot.ErrNotFound) {
				t.Fatalf("a new catalog was written: %v", err)
			}
		})
	}
}

func segEntries(es []Entry) []snapshot.SegmentEntry {
	out := make([]snapshot.SegmentEntry, len(es))
	for i, e := range es {
		out[i] = snapshot.SegmentEntry{Index: e.Index, Data: e.Data}
	}
	return out
}

// A store written before markers existed (a catalog, no marker) is marked
// by the archiver, so that losing its catalog later is detected.
func TestArchiverMarksOldStore(t *testing.T) {
	ctx := context.Background()
	store := newDirStore(t)
	if _, err := snapshot.UpdateLogCatalog(ctx, store, func(c *snapshot.LogCatalog) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.ReadMarker(ctx, store); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("marker before: %v", err)
	}
	a := NewSegmentArchiver(store, SegmentConfig{SegmentBytes: 500, SegmentAge: time.Hour})
	if through, err := a.Archive(ctx, entriesOf(1, 20, 50)); err != nil || through != 20 {
		t.Fatalf("archive: through %d, %v", through, err)
	}
	if _, err := snapshot.ReadMarker(ctx, store); err != nil {
		t.Fatalf("marker after: %v", err)
	}
}
