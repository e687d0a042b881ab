package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
	"github.com/akutan/akutan/snapshot/s3store"
)

// storeImpl opens a fresh, empty store of one implementation per test.
type storeImpl struct {
	name string
	open func(t *testing.T) snapshot.Store
}

// implementations are the stores every conformance test runs against: the
// directory store, the same under a prefix, and S3 on a real MinIO server
// (one per top-level test; each subtest gets its own key prefix).
func implementations(t *testing.T) []storeImpl {
	srv := miniotest.Start(t)
	s3 := func(t *testing.T) snapshot.Store { return srv.Store(t, testPrefix(t)) }
	return []storeImpl{
		{"dir", func(t *testing.T) snapshot.Store {
			s, err := snapshot.NewDirStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"prefixed-dir", func(t *testing.T) snapshot.Store {
			s, err := snapshot.NewDirStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return snapshot.Prefixed(s, "cluster-a")
		}},
		{"s3", s3},
	}
}

var unsafeKey = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// testPrefix is a key prefix unique to the test.
func testPrefix(t testing.TB) string {
	return fmt.Sprintf("%s-%08x", unsafeKey.ReplaceAllString(t.Name(), "_"), rand.Uint32())
}

// conformance is the suite every Store must pass.
var conformance = []struct {
	name string
	test func(t *testing.T, s snapshot.Store)
}{
	{"PutGet", testPutGet},
	{"RangedGet", testRangedGet},
	{"Head", testHead},
	{"Delete", testDelete},
	{"NotFound", testNotFound},
	{"PutSizeMismatch", testPutSizeMismatch},
	{"PutIfAbsent", testPutIfAbsent},
	{"PutIfMatch", testPutIfMatch},
	{"PutIfRace", testPutIfRace},
	{"CheckpointCatalogRace", testCheckpointCatalogRace},
	{"LogCatalogRace", testLogCatalogRace},
	{"List", testList},
	{"PrefixedIsolation", testPrefixedIsolation},
	{"LargeObject", testLargeObject},
	{"ContextCanceled", testContextCanceled},
	{"CatalogCorrupt", testCatalogCorrupt},
	{"Retention", testRetention},
	{"RetentionRepartition", testRetentionRepartition},
	{"CollectGarbage", testCollectGarbage},
	{"Verify", testVerify},
	{"GCOwnPrefix", testGCOwnPrefix},
	{"CatalogMissing", testCatalogMissing},
	{"GraceAndStoreClock", testGraceAndStoreClock},
	{"UnverifiedCheckpoint", testUnverifiedCheckpoint},
}

func TestConformance(t *testing.T) {
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) {
					if testing.Short() && c.name == "LargeObject" {
						t.Skip("large object in -short mode")
					}
					c.test(t, impl.open(t))
				})
			}
		})
	}
}

func put(t testing.TB, s snapshot.Store, key string, data []byte) snapshot.ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func get(t testing.TB, s snapshot.Store, key string, off, n int64) ([]byte, snapshot.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("get %s [%d,+%d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

func testPutGet(t *testing.T, s snapshot.Store) {
	start := time.Now().Add(-time.Minute)
	info := put(t, s, "a/b/c.bin", []byte("hello"))
	if info.Key != "a/b/c.bin" || info.Size != 5 || info.ETag == "" || info.Modified.Before(start) {
		t.Errorf("put returned %+v", info)
	}
	b, ginfo := get(t, s, "a/b/c.bin", 0, -1)
	if string(b) != "hello" || ginfo.Size != 5 || ginfo.ETag != info.ETag || ginfo.Key != "a/b/c.bin" {
		t.Errorf("get = %q %+v, put said %+v", b, ginfo, info)
	}
	info2 := put(t, s, "a/b/c.bin", []byte("goodbye"))
	if info2.ETag == info.ETag {
		t.Errorf("overwrite kept ETag %s", info.ETag)
	}
	if b, _ := get(t, s, "a/b/c.bin", 0, -1); string(b) != "goodbye" {
		t.Errorf("after overwrite get = %q", b)
	}
	put(t, s, "empty", nil)
	if b, info := get(t, s, "empty", 0, -1); len(b) != 0 || info.Size != 0 {
		t.Errorf("empty object: %q %+v", b, info)
	}
}

func testRangedGet(t *testing.T, s snapshot.Store) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	put(t, s, "r", data)
	for _, c := range []struct{ off, n, wantOff, wantN int64 }{
		{0, -1, 0, 1000},
		{0, 10, 0, 10},
		{10, 20, 10, 20},
		{500, -1, 500, 500},
		{999, -1, 999, 1},
		{990, 100, 990, 10}, // clamped at the end
		{1000, -1, 1000, 0}, // reading at the end is empty
		{0, 0, 0, 0},
		{1000, 0, 1000, 0},
	} {
		b, info := get(t, s, "r", c.off, c.n)
		if !bytes.Equal(b, data[c.wantOff:c.wantOff+c.wantN]) {
			t.Errorf("get(%d, %d) = %d bytes, want data[%d:+%d]", c.off, c.n, len(b), c.wantOff, c.wantN)
		}
		if info.Size != 1000 {
			t.Errorf("get(%d, %d) says size %d, want the whole object's 1000", c.off, c.n, info.Size)
		}
	}
	for _, c := range []struct{ off, n int64 }{{1001, -1}, {2000, 10}, {1001, 0}, {-1, 5}} {
		rc, _, err := s.Get(context.Background(), "r", c.off, c.n)
		if err == nil {
			rc.Close()
			t.Errorf("get(%d, %d) past the end succeeded", c.off, c.n)
		} else if errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("get(%d, %d) past the end = %v, not ErrNotFound", c.off, c.n, err)
		}
	}
}

func testHead(t *testing.T, s snapshot.Store) {
	info := put(t, s, "h", []byte("12345678"))
	h, err := s.Head(context.Background(), "h")
	if err != nil {
		t.Fatal(err)
	}
	if h.Key != "h" || h.Size != 8 || h.ETag != info.ETag || h.Modified.IsZero() {
		t.Errorf("head = %+v, put said %+v", h, info)
	}
}

func testDelete(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	put(t, s, "d/x", []byte("x"))
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx, "d/x"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("head after delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Errorf("delete again: %v", err)
	}
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Errorf("delete missing: %v", err)
	}
	n := 0
	_ = s.List(ctx, "d/", func(snapshot.ObjectInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("list after delete found %d objects", n)
	}
}

func testNotFound(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "missing", 0, -1); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if _, _, err := s.Get(ctx, "missing", 5, 10); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("ranged get missing: %v", err)
	}
	if _, err := s.Head(ctx, "no/such/key"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("head missing: %v", err)
	}
	if _, _, err := snapshot.ReadAll(ctx, s, "missing"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("read all missing: %v", err)
	}
	put(t, s, "dir/file", []byte("x"))
	if _, err := s.Head(ctx, "dir"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("head of a key prefix: %v", err)
	}
}

func testPutSizeMismatch(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	if _, err := s.Put(ctx, "short", strings.NewReader("abc"), 5); err == nil {
		t.Error("put of a short body succeeded")
	}
	if _, err := s.Put(ctx, "long", strings.NewReader("abcdef"), 5); err == nil {
		t.Error("put of a long body succeeded")
	}
	for _, k := range []string{"short", "long"} {
		if _, err := s.Head(ctx, k); !errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("failed put left %s: %v", k, err)
		}
	}
}

func testPutIfAbsent(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	info, err := s.PutIf(ctx, "c", []byte("one"), snapshot.Condition{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 3 || info.ETag == "" {
		t.Errorf("put if absent returned %+v", info)
	}
	if _, err := s.PutIf(ctx, "c", []byte("two"), snapshot.Condition{IfAbsent: true}); !errors.Is(err, snapshot.ErrPrecondition) {
		t.Errorf("second put if absent: %v, want ErrPrecondition", err)
	}
	if b, _ := get(t, s, "c", 0, -1); string(b) != "one" {
		t.Errorf("object is %q after a failed put", b)
	}
}

func testPutIfMatch(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	v1, err := s.PutIf(ctx, "m", []byte("v1"), snapshot.Condition{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.PutIf(ctx, "m", []byte("v2"), snapshot.Condition{IfMatch: v1.ETag})
	if err != nil {
		t.Fatalf("put if match current: %v", err)
	}
	if v2.ETag == v1.ETag {
		t.Error("ETag did not change")
	}
	if _, err := s.PutIf(ctx, "m", []byte("v3"), snapshot.Condition{IfMatch: v1.ETag}); !errors.Is(err, snapshot.ErrPrecondition) {
		t.Errorf("put if match stale: %v, want ErrPrecondition", err)
	}
	if _, err := s.PutIf(ctx, "absent", []byte("x"), snapshot.Condition{IfMatch: v1.ETag}); !errors.Is(err, snapshot.ErrPrecondition) {
		t.Errorf("put if match on a missing object: %v, want ErrPrecondition", err)
	}
	// A plain put changes the ETag, so a writer holding the old one loses.
	put(t, s, "m", []byte("v2"))
	if _, err := s.PutIf(ctx, "m", []byte("v4"), snapshot.Condition{IfMatch: v2.ETag}); !errors.Is(err, snapshot.ErrPrecondition) && !sameBytesETag(s) {
		t.Errorf("put if match after an overwrite: %v, want ErrPrecondition", err)
	}
	if b, _ := get(t, s, "m", 0, -1); string(b) != "v2" && string(b) != "v4" {
		t.Errorf("object is %q", b)
	}
}

// sameBytesETag: S3 ETags of single-part objects are their MD5, so
// rewriting the same bytes keeps the ETag.
func sameBytesETag(s snapshot.Store) bool {
	_, ok := s.(*s3store.Store)
	return ok
}

func testPutIfRace(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.PutIf(ctx, "race", fmt.Appendf(nil, "writer %d", i), snapshot.Condition{IfAbsent: true})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, snapshot.ErrPrecondition) {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d writers won the race to create, want 1", won)
	}
}

func testCheckpointCatalogRace(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	const writers, each = 6, 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ref := snapshot.CheckpointRef{Cluster: "dc1", Space: "sp", Index: uint64(100*w + i + 1),
					Manifest: fmt.Sprintf("checkpoints/w%d/%d/manifest.json", w, i)}
				if _, err := snapshot.UpdateCheckpointCatalog(ctx, s, func(c *snapshot.CheckpointCatalog) error {
					c.Add(ref)
					return nil
				}); err != nil {
					t.Errorf("writer %d: %v", w, err)
				}
			}
		}()
	}
	wg.Wait()
	cat, _, err := snapshot.LoadCheckpointCatalog(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Checkpoints) != writers*each {
		t.Errorf("catalog lists %d checkpoints, want %d: updates were lost", len(cat.Checkpoints), writers*each)
	}
}

func testLogCatalogRace(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	const writers, each = 6, 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error {
					first := c.ArchivedThrough() + 1
					return c.Add(snapshot.SegmentRef{First: first, Last: first + 9, Key: snapshot.SegmentKey(first, first+9)})
				}); err != nil {
					t.Errorf("writer %d: %v", w, err)
				}
			}
		}()
	}
	wg.Wait()
	cat, _, err := snapshot.LoadLogCatalog(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cat.ArchivedThrough(), uint64(writers*each*10); got != want || len(cat.Segments) != writers*each {
		t.Errorf("catalog has %d segments through %d, want %d through %d: updates were lost", len(cat.Segments), got, writers*each, want)
	}
}

func listKeys(t testing.TB, s snapshot.Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(context.Background(), prefix, func(o snapshot.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s snapshot.Store) {
	keys := []string{"x/1", "x/10", "x/2/a", "x/2/b", "x0", "y", "log/segments/00000000000000000001-00000000000000000002.seg"}
	for _, i := range rand.Perm(len(keys)) {
		put(t, s, keys[i], []byte(keys[i]))
	}
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"x/", []string{"x/1", "x/10", "x/2/a", "x/2/b"}},
		{"x", []string{"x/1", "x/10", "x/2/a", "x/2/b", "x0"}},
		{"x/2/", []string{"x/2/a", "x/2/b"}},
		{"", []string{"log/segments/00000000000000000001-00000000000000000002.seg", "x/1", "x/10", "x/2/a", "x/2/b", "x0", "y"}},
		{"z", nil},
	} {
		if got := listKeys(t, s, c.prefix); !equal(got, c.want) {
			t.Errorf("list %q = %q, want %q", c.prefix, got, c.want)
		}
	}
	var sizes []int64
	_ = s.List(context.Background(), "x/2/", func(o snapshot.ObjectInfo) error {
		if o.ETag == "" || o.Modified.IsZero() {
			t.Errorf("list gave %+v", o)
		}
		sizes = append(sizes, o.Size)
		return nil
	})
	if !equal(sizes, []int64{5, 5}) {
		t.Errorf("sizes %v", sizes)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.List(context.Background(), "", func(snapshot.ObjectInfo) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("list went on after its callback failed: %v after %d", err, n)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testPrefixedIsolation(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	a, b := snapshot.Prefixed(s, "a"), snapshot.Prefixed(s, "b/")
	put(t, a, "k", []byte("in a"))
	put(t, b, "k", []byte("in b"))
	put(t, s, "k", []byte("outside"))
	if got, _ := get(t, a, "k", 0, -1); string(got) != "in a" {
		t.Errorf("a/k = %q", got)
	}
	if got, info := get(t, b, "k", 0, -1); string(got) != "in b" || info.Key != "k" {
		t.Errorf("b/k = %q %+v", got, info)
	}
	if got := listKeys(t, a, ""); !equal(got, []string{"k"}) {
		t.Errorf("list in a = %q", got)
	}
	if got := listKeys(t, s, ""); !equal(got, []string{"a/k", "b/k", "k"}) {
		t.Errorf("list of all = %q", got)
	}
	if err := a.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, "k"); err != nil {
		t.Errorf("delete in a removed b/k: %v", err)
	}
	if _, err := snapshot.UpdateLogCatalog(ctx, a, func(c *snapshot.LogCatalog) error {
		return c.Add(snapshot.SegmentRef{First: 1, Last: 5, Key: snapshot.SegmentKey(1, 5)})
	}); err != nil {
		t.Fatal(err)
	}
	if cat, _, err := snapshot.LoadLogCatalog(ctx, b); err != nil || len(cat.Segments) != 0 {
		t.Errorf("b sees a's catalog: %+v %v", cat, err)
	}
}

// patternReader yields n bytes of a deterministic pattern without holding
// them.
type patternReader struct{ off, n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = patternByte(p.off + int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

func patternByte(i int64) byte { return byte(i*31 + i>>13) }

func testLargeObject(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	const size = 80 << 20 // several parts on S3
	want := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	_, _ = io.Copy(want, &patternReader{n: size})
	info, err := s.Put(ctx, "big", &patternReader{n: size}, size)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Errorf("put says %d bytes", info.Size)
	}
	rc, ginfo, err := s.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != size || ginfo.Size != size || got.Sum32() != want.Sum32() {
		t.Errorf("read back %d bytes (%v), size %d, crc %08x, want %08x", n, err, ginfo.Size, got.Sum32(), want.Sum32())
	}
	// A range across a part boundary.
	off := int64(16<<20) - 100
	b, rinfo := get(t, s, "big", off, 200)
	for i := range b {
		if b[i] != patternByte(off+int64(i)) {
			t.Fatalf("byte %d of range is wrong", i)
		}
	}
	if len(b) != 200 || rinfo.Size != size {
		t.Errorf("range: %d bytes, size %d", len(b), rinfo.Size)
	}
}

// cancelingReader cancels its context after the first read.
type cancelingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

func testContextCanceled(t *testing.T, s snapshot.Store) {
	put(t, s, "k", []byte("data"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, "new", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("put: %v, want context.Canceled", err)
	}
	if _, err := s.PutIf(ctx, "new", []byte("x"), snapshot.Condition{IfAbsent: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("put if: %v, want context.Canceled", err)
	}
	if err := s.List(ctx, "", func(snapshot.ObjectInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("list: %v, want context.Canceled", err)
	}
	if _, err := snapshot.UpdateLogCatalog(ctx, s, func(*snapshot.LogCatalog) error { return nil }); err == nil {
		t.Error("catalog update with a canceled context succeeded")
	}
	if _, err := s.Head(context.Background(), "new"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("canceled put left an object: %v", err)
	}
	// Canceled in the middle of a large body: no object appears.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	const size = 40 << 20
	if _, err := s.Put(ctx, "big", &cancelingReader{r: &patternReader{n: size}, cancel: cancel}, size); !errors.Is(err, context.Canceled) {
		t.Errorf("put canceled mid-body: %v, want context.Canceled", err)
	}
	if _, err := s.Head(context.Background(), "big"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("canceled put left an object: %v", err)
	}
}

func testCatalogCorrupt(t *testing.T, s snapshot.Store) {
	ctx := context.Background()
	if _, err := snapshot.UpdateCheckpointCatalog(ctx, s, func(c *snapshot.CheckpointCatalog) error {
		c.Add(snapshot.CheckpointRef{Space: "sp", Index: 7, Manifest: "checkpoints/x/manifest.json"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	good, _, err := snapshot.ReadAll(ctx, s, snapshot.CheckpointCatalogKey)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(good, []byte(`"index": 7`), []byte(`"index": 8`), 1)
	put(t, s, snapshot.CheckpointCatalogKey, bad)
	if _, _, err := snapshot.LoadCheckpointCatalog(ctx, s); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("catalog with a changed byte: %v, want ErrCorrupt", err)
	}
	if _, err := snapshot.UpdateCheckpointCatalog(ctx, s, func(*snapshot.CheckpointCatalog) error { return nil }); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("update of a corrupt catalog: %v, want ErrCorrupt", err)
	}
}
