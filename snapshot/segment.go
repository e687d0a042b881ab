package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
)

// SegmentFormat is the version of the log segment format.
const SegmentFormat = 1

// segmentMagic starts every segment object; its last byte is the format.
var segmentMagic = [8]byte{'A', 'K', 'U', 'T', 'S', 'E', 'G', SegmentFormat}

const segmentHeaderLen = 8 + 8 + 8 + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C is the checksum used for every object and payload.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// SegmentEntry is one log entry in a segment.
type SegmentEntry struct {
	Index uint64
	Data  []byte
}

var (
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zstdDecoder, _ = zstd.NewReader(nil, append(segmentDecoderOptions(), zstd.WithDecoderConcurrency(0))...)
)

// EncodeSegment encodes consecutive entries as a segment object. See the
// package documentation for the layout.
func EncodeSegment(entries []SegmentEntry) ([]byte, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("encode segment: no entries")
	}
	first := entries[0].Index
	var raw []byte
	for i, e := range entries {
		if e.Index != first+uint64(i) {
			return nil, fmt.Errorf("encode segment: index %d follows %d", e.Index, first+uint64(i)-1)
		}
		raw = binary.AppendUvarint(raw, uint64(len(e.Data)))
		raw = append(raw, e.Data...)
	}
	out := make([]byte, segmentHeaderLen, segmentHeaderLen+len(raw)/2)
	copy(out, segmentMagic[:])
	binary.BigEndian.PutUint64(out[8:], first)
	binary.BigEndian.PutUint64(out[16:], entries[len(entries)-1].Index)
	binary.BigEndian.PutUint64(out[24:], uint64(len(raw)))
	binary.BigEndian.PutUint32(out[32:], CRC32C(raw))
	out = zstdEncoder.EncodeAll(raw, out)
	return binary.BigEndian.AppendUint32(out, CRC32C(out)), nil
}

// SegmentRange reads a segment's first and last index from its header,
// after checking the whole object's checksum.
func SegmentRange(obj []byte) (first, last uint64, err error) {
	if len(obj) < segmentHeaderLen+4 {
		return 0, 0, fmt.Errorf("segment of %d bytes is too short: %w", len(obj), ErrCorrupt)
	}
	body := obj[:len(obj)-4]
	if got, want := CRC32C(body), binary.BigEndian.Uint32(obj[len(obj)-4:]); got != want {
		return 0, 0, fmt.Errorf("segment checksum %08x, trailer says %08x: %w", got, want, ErrCorrupt)
	}
	if [8]byte(obj[:8]) != segmentMagic {
		if string(obj[:7]) == string(segmentMagic[:7]) {
			return 0, 0, fmt.Errorf("segment format %d is not supported (supports %d): %w", obj[7], SegmentFormat, ErrCorrupt)
		}
		return 0, 0, fmt.Errorf("not a log segment: %w", ErrCorrupt)
	}
	first, last = binary.BigEndian.Uint64(obj[8:]), binary.BigEndian.Uint64(obj[16:])
	if first == 0 || last < first {
		return 0, 0, fmt.Errorf("segment claims indexes %d..%d: %w", first, last, ErrCorrupt)
	}
	return first, last, nil
}

// DecodeSegment verifies and decodes a segment object. Every length its
// header states is checked before anything is allocated for it: the entry
// bytes against MaxSegmentRawBytes and against what the payload can expand
// to, and the entry count against the entry bytes (each entry takes at
// least its one-byte length). Decompression stops at the stated length.
func DecodeSegment(obj []byte) ([]SegmentEntry, error) {
	first, last, err := SegmentRange(obj)
	if err != nil {
		return nil, err
	}
	payload := obj[segmentHeaderLen : len(obj)-4]
	rawLen := binary.BigEndian.Uint64(obj[24:])
	if rawLen > MaxSegmentRawBytes {
		return nil, fmt.Errorf("segment %d..%d claims %d bytes of entries, more than the %d a reader accepts: %w",
			first, last, rawLen, MaxSegmentRawBytes, ErrCorrupt)
	}
	if rawLen > uint64(len(payload))*maxZstdRatio {
		return nil, fmt.Errorf("segment %d..%d claims %d bytes of entries, more than its %d compressed bytes can hold: %w",
			first, last, rawLen, len(payload), ErrCorrupt)
	}
	if count := last - first; count >= rawLen {
		return nil, fmt.Errorf("segment %d..%d claims more entries than its %d bytes of entries can hold: %w",
			first, last, rawLen, ErrCorrupt)
	}
	raw, err := zstdDecoder.DecodeAll(payload, make([]byte, 0, rawLen))
	if err != nil {
		return nil, fmt.Errorf("segment %d..%d: decompress: %v: %w", first, last, err, ErrCorrupt)
	}
	if uint64(len(raw)) != rawLen || CRC32C(raw) != binary.BigEndian.Uint32(obj[32:]) {
		return nil, fmt.Errorf("segment %d..%d: entries do not match their checksum: %w", first, last, ErrCorrupt)
	}
	entries := make([]SegmentEntry, 0, last-first+1)
	for index := first; ; index++ {
		n, k := binary.Uvarint(raw)
		if k <= 0 || n > uint64(len(raw)-k) {
			return nil, fmt.Errorf("segment %d..%d: entry %d is truncated: %w", first, last, index, ErrCorrupt)
		}
		entries = append(entries, SegmentEntry{Index: index, Data: raw[k : k+int(n) : k+int(n)]})
		raw = raw[k+int(n):]
		if index == last {
			break // last may be 2^64-1
		}
	}
	if len(raw) != 0 {
		return nil, fmt.Errorf("segment %d..%d: %d bytes after the last entry: %w", first, last, len(raw), ErrCorrupt)
	}
	return entries, nil
}

// SegmentKey names the segment object holding first..last.
func SegmentKey(first, last uint64) string {
	return fmt.Sprintf("%s%020d-%020d.seg", SegmentPrefix, first, last)
}

// ReadSegment downloads the segment a catalog entry names and checks it
// against the entry (size, CRC-32C, index range) and its own checksums.
//
// A segment whose object is gone may have been compacted into a larger one
// and deleted after the grace period while the caller held an older
// catalog: ReadSegment then reads the current catalog and returns ref's
// entries from the segments that cover them there. A listed segment that
// is missing otherwise is ErrCorrupt: the catalog promised it.
func ReadSegment(ctx context.Context, s Store, ref SegmentRef) ([]SegmentEntry, error) {
	entries, err := readSegment(ctx, s, ref)
	if !errors.Is(err, errSegmentMissing) {
		return entries, err
	}
	replaced, ok, rerr := readReplaced(ctx, s, ref)
	if rerr != nil {
		return nil, fmt.Errorf("%w (reading the segments that replaced it: %v)", err, rerr)
	}
	if !ok {
		return nil, err
	}
	return replaced, nil
}

// errSegmentMissing marks readSegment's ErrCorrupt for a missing object.
var errSegmentMissing = errors.New("missing")

func readSegment(ctx context.Context, s Store, ref SegmentRef) ([]SegmentEntry, error) {
	if ref.Size < segmentHeaderLen+4 || ref.Size > MaxSegmentBytes {
		return nil, fmt.Errorf("archive segment %s: the catalog says %d bytes, outside %d..%d: %w",
			ref.Key, ref.Size, segmentHeaderLen+4, int64(MaxSegmentBytes), ErrCorrupt)
	}
	obj, _, err := readBounded(ctx, s, ref.Key, ref.Size)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("archive segment %s, listed in the catalog, is %w: %w", ref.Key, errSegmentMissing, ErrCorrupt)
	} else if err != nil {
		return nil, fmt.Errorf("archive segment %s: %w", ref.Key, err)
	}
	if int64(len(obj)) != ref.Size || CRC32C(obj) != ref.CRC32C {
		return nil, fmt.Errorf("archive segment %s: %d bytes with checksum %08x, the catalog says %d bytes with %08x: %w",
			ref.Key, len(obj), CRC32C(obj), ref.Size, ref.CRC32C, ErrCorrupt)
	}
	entries, err := DecodeSegment(obj)
	if err != nil {
		return nil, fmt.Errorf("archive segment %s: %w", ref.Key, err)
	}
	if entries[0].Index != ref.First || entries[len(entries)-1].Index != ref.Last {
		return nil, fmt.Errorf("archive segment %s holds %d..%d, the catalog says %d..%d: %w",
			ref.Key, entries[0].Index, entries[len(entries)-1].Index, ref.First, ref.Last, ErrCorrupt)
	}
	return entries, nil
}
