package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Compaction of the log archive, in levels as Litestream does. The log's
// archiver cuts small level-0 segments often, so that an acknowledged write
// reaches the bucket within a fraction of a second; to keep the object
// count and the catalog bounded, runs of Fanout consecutive segments of one
// level are merged into one segment of the next level, up to MaxLevel and
// MaxRawBytes. The catalog swaps the run for the merged segment in one
// conditional write. The run's objects are then superseded: garbage
// collection deletes them once the merged segment's object is older than
// the grace period (CollectGarbage), so that a reader holding an older
// catalog still finds them meanwhile, and ReadSegment falls back to the
// current catalog when it does not. They are not listed in the catalog's
// Retired list, which would grow with the cut rate times the grace period:
// the catalog stays as long as the levels make it.
//
// A merged segment is encoded from its entries alone, under the key its
// index range names: two archivers that merge the same range write the same
// bytes under the same key, and two that picked different runs from
// different catalogs lose cleanly on the catalog's conditional write.

// CompactionPolicy says which segments the log's archiver merges.
type CompactionPolicy struct {
	// Fanout merges this many consecutive segments of one level into one
	// of the next; fewer once together they reach MaxRawBytes. Below 2
	// disables compaction.
	Fanout int
	// MaxLevel is the highest level a merged segment reaches; segments of
	// MaxLevel are never merged.
	MaxLevel int
	// MaxRawBytes bounds a merged segment's entry bytes (before
	// compression); a segment that holds this much already is never merged.
	MaxRawBytes int64
}

// DefaultCompactionPolicy merges 16 segments at a time, up to level 3
// (4096 level-0 segments) or maxRawBytes of entries.
func DefaultCompactionPolicy(maxRawBytes int64) CompactionPolicy {
	return CompactionPolicy{Fanout: 16, MaxLevel: 3, MaxRawBytes: maxRawBytes}
}

// Enabled reports whether p merges anything.
func (p CompactionPolicy) Enabled() bool {
	return p.Fanout >= 2 && p.MaxLevel >= 1 && p.MaxRawBytes > 0
}

// PickCompaction returns the oldest run of consecutive segments that p
// merges, and the level of the merged segment; nil when there is none. A
// run is Fanout segments of one level below MaxLevel, or at least two of
// them that together reach MaxRawBytes with the next segment of their
// level; the choice depends on the catalog alone.
func PickCompaction(c *LogCatalog, p CompactionPolicy) ([]SegmentRef, int) {
	if !p.Enabled() {
		return nil, 0
	}
	segs := c.Segments
	for i := 0; i < len(segs); {
		level := segs[i].Level
		if level >= p.MaxLevel {
			i++
			continue
		}
		j, raw := i, int64(0)
		for j < len(segs) && segs[j].Level == level && j-i < p.Fanout && raw+segs[j].RawBytes <= p.MaxRawBytes {
			raw += segs[j].RawBytes
			j++
		}
		full := j-i == p.Fanout || (j < len(segs) && segs[j].Level == level)
		if full && j-i >= 2 {
			return segs[i:j], level + 1
		}
		i = max(j, i+1)
	}
	return nil, 0
}

// MergeSegments reads run (consecutive catalog entries) and encodes its
// entries as one segment of the given level, returning the object and its
// catalog entry, keyed by SegmentKey of the run's range.
func MergeSegments(ctx context.Context, s Store, run []SegmentRef, level int) ([]byte, SegmentRef, error) {
	if len(run) == 0 {
		return nil, SegmentRef{}, errors.New("merge segments: no segments")
	}
	var entries []SegmentEntry
	var raw int64
	for i, ref := range run {
		if i > 0 && ref.First != run[i-1].Last+1 {
			return nil, SegmentRef{}, fmt.Errorf("merge segments: %d..%d does not follow %d..%d", ref.First, ref.Last, run[i-1].First, run[i-1].Last)
		}
		es, err := ReadSegment(ctx, s, ref)
		if err != nil {
			return nil, SegmentRef{}, err
		}
		for _, e := range es {
			raw += int64(len(e.Data))
		}
		entries = append(entries, es...)
	}
	obj, err := EncodeSegment(entries)
	if err != nil {
		return nil, SegmentRef{}, err
	}
	first, last := run[0].First, run[len(run)-1].Last
	return obj, SegmentRef{
		First: first, Last: last, Key: SegmentKey(first, last), Size: int64(len(obj)),
		CRC32C: CRC32C(obj), RawBytes: raw, Level: level,
	}, nil
}

// ReplaceSegments swaps run, which the catalog must still list
// consecutively and unchanged, for merged (which covers exactly the same
// indexes); the run's objects are left to garbage collection. It returns
// ErrNoChange when the catalog no longer lists the run, which another
// compaction or retention changed meanwhile, or lists merged already.
func (c *LogCatalog) ReplaceSegments(run []SegmentRef, merged SegmentRef) error {
	if len(run) == 0 || merged.First != run[0].First || merged.Last != run[len(run)-1].Last {
		return fmt.Errorf("replace segments: %d..%d does not cover the run it replaces", merged.First, merged.Last)
	}
	i := -1
	for k, r := range c.Segments {
		if r == run[0] {
			i = k
			break
		}
	}
	if i < 0 || i+len(run) > len(c.Segments) {
		return ErrNoChange
	}
	for k, r := range run {
		if c.Segments[i+k] != r {
			return ErrNoChange
		}
	}
	segs := make([]SegmentRef, 0, len(c.Segments)-len(run)+1)
	segs = append(segs, c.Segments[:i]...)
	segs = append(segs, merged)
	segs = append(segs, c.Segments[i+len(run):]...)
	c.Segments = segs
	return c.validate()
}

// parseSegmentKey reads the range a segment key names (SegmentKey).
func parseSegmentKey(key string) (first, last uint64, ok bool) {
	var rest string
	n, _ := fmt.Sscanf(strings.TrimPrefix(key, SegmentPrefix), "%020d-%020d%s", &first, &last, &rest)
	return first, last, n == 3 && rest == ".seg" && key == SegmentKey(first, last)
}

// supersededUntil reports, for an object under SegmentPrefix that the
// catalog does not list, when a listed merged segment whose range holds its
// range was uploaded (modified, from the same listing): it replaced the
// object then, and a reader may still use the object for the grace period
// after that. Zero when no listed merged segment holds it.
func supersededUntil(c *LogCatalog, key string, modified map[string]time.Time) time.Time {
	first, last, ok := parseSegmentKey(key)
	if !ok {
		return time.Time{}
	}
	ref, found := c.Find(first)
	if !found || ref.Level == 0 || ref.Last < last {
		return time.Time{}
	}
	return modified[ref.Key]
}

// readReplaced serves ReadSegment when ref's object is gone: a compaction
// replaced it, and garbage collection deleted it after the grace period,
// while the caller held an older catalog. It reads the current catalog and,
// if other segments cover ref's range there, returns ref's entries from
// them. Otherwise ok is false.
func readReplaced(ctx context.Context, s Store, ref SegmentRef) (entries []SegmentEntry, ok bool, err error) {
	cat, _, err := LoadLogCatalog(ctx, s)
	if err != nil {
		return nil, false, err
	}
	for next := ref.First; ; {
		cur, found := cat.Find(next)
		if !found || cur.Key == ref.Key {
			return nil, false, nil
		}
		es, err := readSegment(ctx, s, cur)
		if err != nil {
			return nil, false, err
		}
		for _, e := range es {
			if e.Index >= ref.First && e.Index <= ref.Last {
				entries = append(entries, e)
			}
		}
		if cur.Last >= ref.Last {
			return entries, true, nil
		}
		next = cur.Last + 1
	}
}
