package snapshot

import (
	"fmt"
	"sort"
)

// Range is a half-open hash range [Start, End); End 0 means 2^64.
type Range struct {
	Start, End uint64
}

func (r Range) end() uint64 { return r.End - 1 } // last point; wraps 0 to 2^64-1

// Contains reports whether h is in r.
func (r Range) Contains(h uint64) bool { return h >= r.Start && (r.End == 0 || h < r.End) }

// Overlaps reports whether r and o share a point.
func (r Range) Overlaps(o Range) bool {
	return r.Start <= o.end() && o.Start <= r.end()
}

func (r Range) String() string {
	if r.End == 0 {
		return fmt.Sprintf("[%#016x, 2^64)", r.Start)
	}
	return fmt.Sprintf("[%#016x, %#016x)", r.Start, r.End)
}

// Cover chooses checkpoints that together cover want in space, preferring
// at every point the newest checkpoint with an index at most maxIndex
// (0: no limit). skip excludes checkpoints (by manifest key), so a caller
// that found one corrupt can fall back to older ones. It returns the
// chosen checkpoints, each once, and false if some point has none.
func Cover(cat *CheckpointCatalog, space string, want Range, maxIndex uint64, skip map[string]bool) ([]CheckpointRef, bool) {
	var cands []CheckpointRef
	for _, c := range cat.Checkpoints {
		if c.Space == space && c.Range().Overlaps(want) && (maxIndex == 0 || c.Index <= maxIndex) && !skip[c.Manifest] {
			cands = append(cands, c)
		}
	}
	// Split want at every candidate boundary; each piece takes the newest
	// candidate covering it.
	points := []uint64{want.Start}
	for _, c := range cands {
		for _, p := range []uint64{c.Start, c.End} {
			if p != 0 && want.Contains(p) && p != want.Start {
				points = append(points, p)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	chosen := map[string]bool{}
	var out []CheckpointRef
	for i, p := range points {
		if i > 0 && p == points[i-1] {
			continue
		}
		best := -1
		for j, c := range cands {
			if c.Range().Contains(p) && (best < 0 || c.Index > cands[best].Index) {
				best = j
			}
		}
		if best < 0 {
			return nil, false
		}
		if !chosen[cands[best].Manifest] {
			chosen[cands[best].Manifest] = true
			out = append(out, cands[best])
		}
	}
	return out, true
}
