package snapshot_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/akutan/akutan/snapshot"
)

func testEntries(first uint64, n int) []snapshot.SegmentEntry {
	var es []snapshot.SegmentEntry
	for i := range n {
		es = append(es, snapshot.SegmentEntry{Index: first + uint64(i), Data: bytes.Repeat(fmt.Appendf(nil, "entry %d;", i), i%5)})
	}
	return es
}

func TestSegmentRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 100} {
		es := testEntries(42, n)
		obj, err := snapshot.EncodeSegment(es)
		if err != nil {
			t.Fatal(err)
		}
		got, err := snapshot.DecodeSegment(obj)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("decoded %d entries, want %d", len(got), n)
		}
		for i := range es {
			if got[i].Index != es[i].Index || !bytes.Equal(got[i].Data, es[i].Data) {
				t.Errorf("entry %d: %d %q, want %d %q", i, got[i].Index, got[i].Data, es[i].Index, es[i].Data)
			}
		}
		first, last, err := snapshot.SegmentRange(obj)
		if err != nil || first != 42 || last != 42+uint64(n)-1 {
			t.Errorf("range %d..%d %v", first, last, err)
		}
	}
	if _, err := snapshot.EncodeSegment(nil); err == nil {
		t.Error("encoded an empty segment")
	}
	if _, err := snapshot.EncodeSegment([]snapshot.SegmentEntry{{Index: 1}, {Index: 3}}); err == nil {
		t.Error("encoded a segment with a gap")
	}
	if got := snapshot.SegmentKey(1, 20); got != "log/segments/00000000000000000001-00000000000000000020.seg" {
		t.Errorf("segment key %s", got)
	}
}

// resealed recomputes a segment's trailer, so a change inside it is caught
// by the check that looks at what changed rather than by the trailer.
func resealed(obj []byte) []byte {
	body := obj[:len(obj)-4]
	return binary.BigEndian.AppendUint32(append([]byte(nil), body...), snapshot.CRC32C(body))
}

func TestSegmentCorruption(t *testing.T) {
	obj, err := snapshot.EncodeSegment(testEntries(7, 20))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, bad []byte, want string) {
		t.Helper()
		_, err := snapshot.DecodeSegment(bad)
		if !errors.Is(err, snapshot.ErrCorrupt) {
			t.Errorf("%s: decode: %v, want ErrCorrupt", name, err)
		} else if want != "" && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: decode: %v, want it to say %q", name, err, want)
		}
		if err := verifySegmentBytes(bad); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Errorf("%s: streaming check: %v, want ErrCorrupt", name, err)
		}
	}
	for i := range obj {
		for _, bit := range []byte{1, 0x80} {
			bad := bytes.Clone(obj)
			bad[i] ^= bit
			check(fmt.Sprintf("byte %d ^ %#x", i, bit), bad, "")
		}
	}
	for n := range len(obj) {
		check(fmt.Sprintf("truncated to %d", n), obj[:n], "")
	}
	check("appended byte", append(bytes.Clone(obj), 0), "")

	magic := bytes.Clone(obj)
	copy(magic, "NOTASEG")
	check("wrong magic", resealed(magic), "not a log segment")
	format := bytes.Clone(obj)
	format[7] = 2
	check("wrong format", resealed(format), "format 2")
	bogus := bytes.Clone(obj)
	binary.BigEndian.PutUint64(bogus[16:], 3) // last < first
	check("bad range", resealed(bogus), "claims")
	rawLen := bytes.Clone(obj)
	binary.BigEndian.PutUint64(rawLen[24:], binary.BigEndian.Uint64(rawLen[24:])+1)
	check("raw length", resealed(rawLen), "")
	rawSum := bytes.Clone(obj)
	rawSum[33] ^= 1
	check("raw checksum", resealed(rawSum), "checksum")
	fewer := bytes.Clone(obj)
	binary.BigEndian.PutUint64(fewer[16:], 25) // claims one entry less
	check("entry count", resealed(fewer), "after the last entry")
	more := bytes.Clone(obj)
	binary.BigEndian.PutUint64(more[16:], 27) // claims one entry more
	check("entry count", resealed(more), "truncated")

	if err := verifySegmentBytes(obj); err != nil {
		t.Errorf("streaming check of a good segment: %v", err)
	}
}

// verifySegmentBytes checks a segment through Verify's streaming path.
func verifySegmentBytes(obj []byte) error { return snapshot.CheckSegmentBytes(obj) }

func TestDocumentChecksum(t *testing.T) {
	ctx := context.Background()
	s, _ := snapshot.NewDirStore(t.TempDir())
	if _, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error {
		return c.Add(snapshot.SegmentRef{First: 1, Last: 9, Key: snapshot.SegmentKey(1, 9)})
	}); err != nil {
		t.Fatal(err)
	}
	good, _, _ := snapshot.ReadAll(ctx, s, snapshot.LogCatalogKey)
	if !bytes.HasSuffix(good[:len(good)-9], []byte("}\ncrc32c:")) {
		t.Fatalf("catalog does not end in a checksum line:\n%s", good)
	}
	i := bytes.LastIndex(good, []byte("crc32c:"))
	for name, bad := range map[string][]byte{
		"digit changed":     append(bytes.Clone(good[:len(good)-2]), good[len(good)-2]^1, '\n'),
		"no newline":        good[:len(good)-1],
		"no checksum line":  good[:i],
		"short checksum":    append(bytes.Clone(good[:len(good)-2]), '\n'),
		"extra after":       append(bytes.Clone(good), "x\n"...),
		"json changed":      bytes.Replace(good, []byte(`"last": 9`), []byte(`"last": 8`), 1),
		"not hex":           append(bytes.Clone(good[:i]), "crc32c:xxxxxxxx\n"...),
		"empty":             nil,
		"format unknown":    docWithFormat(t, good, 99),
		"format json wrong": docWithFormat(t, good, 0),
	} {
		if _, err := s.Put(ctx, snapshot.LogCatalogKey, bytes.NewReader(bad), int64(len(bad))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := snapshot.LoadLogCatalog(ctx, s); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// A manifest with a bad checksum is refused too.
	m := &snapshot.Manifest{Space: "sp", Index: 3}
	if err := snapshot.PutManifest(ctx, s, "checkpoints/m.json", m); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.PutManifest(ctx, s, "checkpoints/m.json", m); !errors.Is(err, snapshot.ErrPrecondition) {
		t.Errorf("manifest written twice: %v", err)
	}
	data, _, _ := snapshot.ReadAll(ctx, s, "checkpoints/m.json")
	data = bytes.Replace(data, []byte(`"index": 3`), []byte(`"index": 4`), 1)
	put(t, s, "checkpoints/m.json", data)
	if _, err := snapshot.LoadManifest(ctx, s, "checkpoints/m.json"); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("manifest: %v, want ErrCorrupt", err)
	}
}

// docWithFormat rewrites a document's format, with a valid checksum.
func docWithFormat(t *testing.T, doc []byte, format int) []byte {
	i := bytes.LastIndex(doc, []byte("crc32c:"))
	body := bytes.Replace(doc[:i], []byte(`"format": 1`), fmt.Appendf(nil, `"format": %d`, format), 1)
	return fmt.Appendf(body, "crc32c:%08x\n", snapshot.CRC32C(body))
}

func TestLogCatalog(t *testing.T) {
	var c snapshot.LogCatalog
	if c.ArchivedThrough() != 0 || c.FirstArchived() != 0 {
		t.Error("empty catalog reports segments")
	}
	if _, ok := c.Find(1); ok {
		t.Error("found an index in an empty catalog")
	}
	for _, r := range [][2]uint64{{5, 9}, {10, 10}, {11, 30}} {
		if err := c.Add(snapshot.SegmentRef{First: r[0], Last: r[1], Key: snapshot.SegmentKey(r[0], r[1])}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(snapshot.SegmentRef{First: 32, Last: 40}); err == nil {
		t.Error("added a segment after a gap")
	}
	if err := c.Add(snapshot.SegmentRef{First: 30, Last: 40}); err == nil {
		t.Error("added an overlapping segment")
	}
	if err := c.Add(snapshot.SegmentRef{First: 31, Last: 30}); err == nil {
		t.Error("added an empty segment")
	}
	if c.FirstArchived() != 5 || c.ArchivedThrough() != 30 {
		t.Errorf("catalog %d..%d", c.FirstArchived(), c.ArchivedThrough())
	}
	for index, want := range map[uint64]uint64{5: 5, 9: 5, 10: 10, 11: 11, 29: 11, 30: 11} {
		if r, ok := c.Find(index); !ok || r.First != want {
			t.Errorf("find %d = %+v %v, want the segment from %d", index, r, ok, want)
		}
	}
	for _, index := range []uint64{0, 4, 31, 1 << 40} {
		if r, ok := c.Find(index); ok {
			t.Errorf("find %d = %+v", index, r)
		}
	}
}

func TestCheckpointCatalogAddRemove(t *testing.T) {
	var c snapshot.CheckpointCatalog
	c.Add(snapshot.CheckpointRef{Space: "sp", Start: 10, Index: 5, Manifest: "b"})
	c.Add(snapshot.CheckpointRef{Space: "po", Index: 9, Manifest: "c"})
	c.Add(snapshot.CheckpointRef{Space: "sp", Start: 10, Index: 3, Manifest: "a"})
	c.Add(snapshot.CheckpointRef{Space: "sp", Start: 10, Index: 3, Manifest: "a"})
	var got []string
	for _, r := range c.Checkpoints {
		got = append(got, r.Manifest)
	}
	if !equal(got, []string{"c", "a", "b"}) {
		t.Errorf("order %v", got)
	}
	c.Remove("a")
	if len(c.Checkpoints) != 2 {
		t.Errorf("after remove: %+v", c.Checkpoints)
	}
}

func TestCover(t *testing.T) {
	const q = 1 << 62
	cat := &snapshot.CheckpointCatalog{}
	add := func(name, space string, start, end, index uint64) {
		cat.Add(snapshot.CheckpointRef{Space: space, Start: start, End: end, Index: index, Manifest: name})
	}
	add("full@10", "sp", 0, 0, 10)
	add("q0@20", "sp", 0, q, 20)
	add("q1@30", "sp", q, 2*q, 30)
	add("half@25", "sp", 0, 2*q, 25) // overlaps q0 and q1
	add("q3@40", "sp", 3*q, 0, 40)
	add("po-q0@50", "po", 0, q, 50)

	names := func(refs []snapshot.CheckpointRef) string {
		var s []string
		for _, r := range refs {
			s = append(s, r.Manifest)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		name     string
		space    string
		want     snapshot.Range
		maxIndex uint64
		skip     map[string]bool
		result   string
		ok       bool
	}{
		{"newest at every point", "sp", snapshot.Range{}, 0, nil, "half@25 q1@30 full@10 q3@40", true},
		{"sub-range", "sp", snapshot.Range{Start: q / 2, End: q + 5}, 0, nil, "half@25 q1@30", true},
		{"max index", "sp", snapshot.Range{}, 20, nil, "q0@20 full@10", true},
		{"max index below all", "sp", snapshot.Range{}, 5, nil, "", false},
		{"skip", "sp", snapshot.Range{Start: 0, End: q}, 0, map[string]bool{"half@25": true}, "q0@20", true},
		{"skip falls back", "sp", snapshot.Range{Start: 3 * q}, 0, map[string]bool{"q3@40": true}, "full@10", true},
		{"gap", "po", snapshot.Range{}, 0, nil, "", false},
		{"covered part", "po", snapshot.Range{Start: 5, End: 6}, 0, nil, "po-q0@50", true},
		{"gap at the end", "po", snapshot.Range{Start: 0, End: q + 1}, 0, nil, "", false},
		{"unknown space", "xx", snapshot.Range{}, 0, nil, "", false},
		{"last point", "sp", snapshot.Range{Start: 1<<64 - 1}, 0, nil, "q3@40", true},
	} {
		got, ok := snapshot.Cover(cat, c.space, c.want, c.maxIndex, c.skip)
		if ok != c.ok || (ok && names(got) != c.result) {
			t.Errorf("%s: cover = %q %v, want %q %v", c.name, names(got), ok, c.result, c.ok)
		}
	}
	// A gap in the middle.
	gap := &snapshot.CheckpointCatalog{}
	gap.Add(snapshot.CheckpointRef{Space: "sp", Start: 0, End: q, Index: 1, Manifest: "a"})
	gap.Add(snapshot.CheckpointRef{Space: "sp", Start: 2 * q, End: 0, Index: 1, Manifest: "b"})
	if got, ok := snapshot.Cover(gap, "sp", snapshot.Range{}, 0, nil); ok {
		t.Errorf("covered a gap: %q", names(got))
	}
}

func TestRange(t *testing.T) {
	full := snapshot.Range{}
	if !full.Contains(0) || !full.Contains(1<<64-1) {
		t.Error("full range")
	}
	r := snapshot.Range{Start: 10, End: 20}
	if r.Contains(9) || !r.Contains(10) || !r.Contains(19) || r.Contains(20) {
		t.Error("contains")
	}
	if r.Overlaps(snapshot.Range{Start: 20, End: 30}) || !r.Overlaps(snapshot.Range{Start: 19, End: 30}) || !r.Overlaps(full) {
		t.Error("overlaps")
	}
}
