package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Fuzz targets for every decoder of bucket objects. Each takes the object
// as it is and, so that the fuzzer gets past the checksums, with its
// checksums recomputed (seal): a decoder must refuse whatever it cannot
// use with ErrCorrupt, never panic, and whatever it accepts must survive a
// round trip. The seed corpora are under testdata/fuzz/.

// sealSegment recomputes the trailer of a segment-shaped object.
func sealSegment(obj []byte) []byte {
	if len(obj) < 4 {
		return obj
	}
	body := obj[:len(obj)-4]
	return binary.BigEndian.AppendUint32(bytes.Clone(body), CRC32C(body))
}

// buildSegment makes a segment with valid checksums around raw, the
// uncompressed entries, whatever the header claims.
func buildSegment(first, last uint64, raw []byte) []byte {
	out := append([]byte(nil), segmentMagic[:]...)
	out = binary.BigEndian.AppendUint64(out, first)
	out = binary.BigEndian.AppendUint64(out, last)
	out = binary.BigEndian.AppendUint64(out, uint64(len(raw)))
	out = binary.BigEndian.AppendUint32(out, CRC32C(raw))
	out = zstdEncoder.EncodeAll(raw, out)
	return binary.BigEndian.AppendUint32(out, CRC32C(out))
}

func FuzzSegment(f *testing.F) {
	good, _ := EncodeSegment([]SegmentEntry{{Index: 7, Data: []byte("a")}, {Index: 8, Data: []byte("bc")}, {Index: 9}})
	f.Add(good, uint64(0), uint64(0), uint8(0))
	f.Add(good, uint64(0), uint64(0), uint8(1))
	f.Add([]byte{1, 'a', 2, 'b', 'c'}, uint64(1), uint64(2), uint8(2))
	f.Add([]byte{3, 'a', 'b', 'c'}, uint64(1), uint64(1)<<62, uint8(2))
	f.Add([]byte{0, 0, 0}, uint64(1<<64-3), uint64(1<<64-1), uint8(2))
	f.Add(make([]byte, 100000), uint64(5), uint64(5), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, first, last uint64, mode uint8) {
		obj := data
		switch mode % 3 {
		case 1:
			obj = sealSegment(data)
		case 2:
			obj = buildSegment(first, last, data)
		}
		entries, err := DecodeSegment(obj)
		_, _, cerr := checkSegment(bytes.NewReader(obj), int64(len(obj)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode: %v is not ErrCorrupt", err)
			}
			if cerr == nil {
				t.Fatalf("decode refuses a segment (%v) that the streaming check accepts", err)
			}
			return
		}
		if cerr != nil {
			t.Fatalf("the streaming check refuses a segment (%v) that decode accepts", cerr)
		}
		first, last, _ = SegmentRange(obj)
		if uint64(len(entries)-1) != last-first || entries[0].Index != first || entries[len(entries)-1].Index != last {
			t.Fatalf("segment %d..%d decoded as %d entries", first, last, len(entries))
		}
		again, err := EncodeSegment(entries)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeSegment(again)
		if err != nil || !reflect.DeepEqual(back, entries) {
			t.Fatalf("re-encoded segment decodes as %v, %v", back, err)
		}
	})
}

// sealDoc replaces a document's checksum line, or adds one.
func sealDoc(data []byte) []byte {
	if i := bytes.LastIndex(data, []byte("crc32c:")); i >= 0 {
		data = data[:i]
	}
	return fmt.Appendf(bytes.Clone(data), "crc32c:%08x\n", CRC32C(data))
}

func docSeeds(f *testing.F, docs ...any) {
	for _, d := range docs {
		b, err := encodeDoc(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:bytes.LastIndex(b, []byte("crc32c:"))], true)
	}
}

func FuzzCatalog(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	docSeeds(f,
		&LogCatalog{Format: CatalogFormat, Segments: []SegmentRef{{First: 1, Last: 9, Key: SegmentKey(1, 9), Size: 100, CRC32C: 7, RawBytes: 300},
			{First: 10, Last: 10, Key: SegmentKey(10, 10), Size: 50}}, Retired: []RetiredRef{{Key: "log/segments/x", At: at}}},
		&CheckpointCatalog{Format: CatalogFormat, Checkpoints: []CheckpointRef{{Cluster: "dc1", Space: "sp", Start: 1, End: 0, Index: 5,
			Manifest: "checkpoints/sp/m.json", Bytes: 10, Created: at}}},
	)
	f.Add([]byte(`{"format":1,"segments":[{"first":5,"last":1}]}`+"\n"), true)
	f.Add([]byte(`{"format":1,"segments":[{"first":1,"last":18446744073709551615},{"first":0,"last":0}]}`+"\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			data = sealDoc(data)
		}
		lc := &LogCatalog{}
		if err := decodeDoc(LogCatalogKey, data, lc); err == nil {
			err = checkFormat(LogCatalogKey, lc.Format)
			if err == nil {
				err = lc.validate()
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("log catalog: %v is not ErrCorrupt", err)
			}
			if err == nil {
				roundTripDoc(t, lc, &LogCatalog{})
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("log catalog: %v is not ErrCorrupt", err)
		}
		cc := &CheckpointCatalog{}
		if err := decodeDoc(CheckpointCatalogKey, data, cc); err == nil {
			if checkFormat(CheckpointCatalogKey, cc.Format) == nil {
				roundTripDoc(t, cc, &CheckpointCatalog{})
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("checkpoint catalog: %v is not ErrCorrupt", err)
		}
	})
}

func FuzzManifest(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	docSeeds(f,
		&Manifest{Format: ManifestFormat, Cluster: "dc1", Space: "po", Start: 1 << 63, End: 0, Index: 42, LogVersion: 1, Created: at,
			Files: []FileRef{{Key: "checkpoints/po/x/000.sst", Kind: "facts", HashStart: 1 << 63, Size: 1000, CRC32C: 9, Entries: 12}}},
		&Manifest{Format: ManifestFormat, Files: []FileRef{{Key: "a", Size: -1}}},
		&Manifest{Format: ManifestFormat, Files: []FileRef{{Key: "a", Size: 1 << 62}, {Key: "b", Size: 1 << 62}}},
	)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			data = sealDoc(data)
		}
		m, err := decodeManifest("m.json", data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v is not ErrCorrupt", err)
			}
			return
		}
		if m.Bytes() < 0 {
			t.Fatalf("accepted a manifest of %d bytes", m.Bytes())
		}
		b, err := encodeDoc(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeManifest("m.json", b)
		if err != nil || !reflect.DeepEqual(normDoc(t, back), normDoc(t, m)) {
			t.Fatalf("re-encoded manifest reads back as %+v, %v; want %+v", back, err, m)
		}
	})
}

// roundTripDoc checks that an accepted document encodes and decodes to
// itself.
func roundTripDoc[T any](t *testing.T, v *T, into *T) {
	t.Helper()
	b, err := encodeDoc(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeDoc("doc", b, into); err != nil || !reflect.DeepEqual(normDoc(t, into), normDoc(t, v)) {
		t.Fatalf("re-encoded document reads back as %+v, %v; want %+v", into, err, v)
	}
}

// normDoc is v's JSON encoding, which compares times by instant and nil
// and empty lists alike.
func normDoc(t *testing.T, v any) string {
	b, err := encodeDoc(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
