package snapshot_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/akutan/akutan/snapshot"
)

// hostileSegment builds a segment object with the given header and payload
// and every checksum valid, as an attacker (or a buggy writer) would.
func hostileSegment(first, last, rawLen uint64, rawCRC uint32, payload []byte) []byte {
	out := []byte("AKUTSEG\x01")
	out = binary.BigEndian.AppendUint64(out, first)
	out = binary.BigEndian.AppendUint64(out, last)
	out = binary.BigEndian.AppendUint64(out, rawLen)
	out = binary.BigEndian.AppendUint32(out, rawCRC)
	out = append(out, payload...)
	return binary.BigEndian.AppendUint32(out, snapshot.CRC32C(out))
}

func zstdFrame(t testing.TB, raw []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// allocated reports the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func expectCorrupt(t *testing.T, name string, obj []byte, want string) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: decode panicked: %v", name, r)
			}
		}()
		_, err = snapshot.DecodeSegment(obj)
	}()
	if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: decode: %v, want ErrCorrupt saying %q", name, err, want)
	}
	if err := snapshot.CheckSegmentBytes(obj); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("%s: streaming check: %v, want ErrCorrupt", name, err)
	}
}

// A header that claims a huge index range, with valid checksums, used to
// panic in makeslice.
func TestSegmentHugeIndexRange(t *testing.T) {
	raw := []byte{3, 'a', 'b', 'c'}
	for _, last := range []uint64{1 << 40, 1 << 62, 1<<64 - 1} {
		obj := hostileSegment(1, last, uint64(len(raw)), snapshot.CRC32C(raw), zstdFrame(t, raw))
		expectCorrupt(t, "huge range", obj, "more entries than")
	}
}

// A small object that claims gigabytes of entries is refused before
// anything is allocated for them.
func TestSegmentClaimsTooMuch(t *testing.T) {
	raw := []byte{3, 'a', 'b', 'c'}
	payload := zstdFrame(t, raw)
	var obj []byte
	n := allocated(func() {
		for _, rawLen := range []uint64{1 << 31, 1 << 40, snapshot.MaxSegmentRawBytes + 1} {
			obj = hostileSegment(1, 1, rawLen, 0, payload)
			expectCorrupt(t, "too much", obj, "more than")
		}
		obj = hostileSegment(1, 1, 1<<30, 0, payload) // under the cap, but not from 20 bytes
		expectCorrupt(t, "more than zstd", obj, "compressed bytes can hold")
	})
	if n > 64<<20 {
		t.Errorf("refusing small hostile segments allocated %d MiB", n>>20)
	}
}

// A payload that expands past the header's length stops there: a small
// object never decompresses to more than it claims.
func TestSegmentDecompressionBomb(t *testing.T) {
	raw := make([]byte, 128<<20) // 128 MiB of zeros compress to a few KiB
	payload := zstdFrame(t, raw)
	raw = nil
	if len(payload) > 1<<20 {
		t.Fatalf("bomb of %d bytes", len(payload))
	}
	small := []byte{3, 'a', 'b', 'c'}
	obj := hostileSegment(1, 1, uint64(len(small)), snapshot.CRC32C(small), payload)
	n := allocated(func() { expectCorrupt(t, "bomb", obj, "decompress") })
	if n > 32<<20 {
		t.Errorf("decoding a %d-byte bomb allocated %d MiB", len(obj), n>>20)
	}
}

// A segment or document object bigger than the catalog or the bound says
// is refused without reading it all.
func TestReadBounds(t *testing.T) {
	ctx := context.Background()
	s, _ := snapshot.NewDirStore(t.TempDir())
	obj, err := snapshot.EncodeSegment(testEntries(1, 10))
	if err != nil {
		t.Fatal(err)
	}
	key := snapshot.SegmentKey(1, 10)
	if _, err := s.Put(ctx, key, bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}
	ref := snapshot.SegmentRef{First: 1, Last: 10, Key: key, Size: int64(len(obj)), CRC32C: snapshot.CRC32C(obj)}
	if _, err := snapshot.ReadSegment(ctx, s, ref); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{-1, 0, int64(len(obj)) - 1, snapshot.MaxSegmentBytes + 1} {
		bad := ref
		bad.Size = size
		if _, err := snapshot.ReadSegment(ctx, s, bad); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), key) {
			t.Errorf("catalog size %d: %v, want ErrCorrupt naming %s", size, err, key)
		}
	}
}

// bigStore answers every Get with size zero bytes and counts what is read.
type bigStore struct {
	snapshot.Store
	size int64
	read int64
}

func (s *bigStore) Get(_ context.Context, key string, _, _ int64) (io.ReadCloser, snapshot.ObjectInfo, error) {
	return io.NopCloser(&countReader{s: s, left: s.size}), snapshot.ObjectInfo{Key: key, Size: s.size, ETag: "x"}, nil
}

type countReader struct {
	s    *bigStore
	left int64
}

func (r *countReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	clear(p[:n])
	r.left -= int64(n)
	r.s.read += int64(n)
	return n, nil
}

// An object bigger than a reader accepts is refused before it is read:
// catalogs and manifests above MaxDocumentBytes, a segment above the size
// its catalog entry states.
func TestHugeObjectsAreNotRead(t *testing.T) {
	ctx := context.Background()
	s := &bigStore{size: 1 << 40}
	if _, _, err := snapshot.LoadLogCatalog(ctx, s); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), snapshot.LogCatalogKey) {
		t.Errorf("1 TiB log catalog: %v, want ErrCorrupt naming it", err)
	}
	if _, _, err := snapshot.LoadCheckpointCatalog(ctx, s); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("1 TiB checkpoint catalog: %v, want ErrCorrupt", err)
	}
	if _, err := snapshot.LoadManifest(ctx, s, "checkpoints/sp/x/manifest.json"); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("1 TiB manifest: %v, want ErrCorrupt naming it", err)
	}
	s.size = 64 << 20
	ref := snapshot.SegmentRef{First: 1, Last: 1, Key: snapshot.SegmentKey(1, 1), Size: 100}
	if _, err := snapshot.ReadSegment(ctx, s, ref); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), ref.Key) {
		t.Errorf("64 MiB segment listed as 100 bytes: %v, want ErrCorrupt naming it", err)
	}
	if s.read > 1<<20 {
		t.Errorf("read %d MiB of objects a reader refuses", s.read>>20)
	}
}

// A manifest with a negative size or count, an empty key, or sizes that
// overflow is corrupt.
func TestManifestBounds(t *testing.T) {
	ctx := context.Background()
	for i, m := range []*snapshot.Manifest{
		{Space: "sp", Files: []snapshot.FileRef{{Key: "a", Size: -1}}},
		{Space: "sp", Files: []snapshot.FileRef{{Key: "a", Entries: -5}}},
		{Space: "sp", Files: []snapshot.FileRef{{Key: ""}}},
		{Space: "sp", Files: []snapshot.FileRef{{Key: "a", Size: 1 << 62}, {Key: "b", Size: 1 << 62}}},
		{Space: "sp", Start: 10, End: 5},
	} {
		s, _ := snapshot.NewDirStore(t.TempDir())
		if err := snapshot.PutManifest(ctx, s, "m.json", m); err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.LoadManifest(ctx, s, "m.json"); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), "m.json") {
			t.Errorf("manifest %d: %v, want ErrCorrupt naming it", i, err)
		}
	}
}
