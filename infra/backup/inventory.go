package backup

import (
	"context"
	"fmt"
	"sort"

	"github.com/akutan/akutan/snapshot"
)

// Spaces are the two hash spaces every cluster serves.
var Spaces = []string{"sp", "po"}

// Interval is an inclusive range of log indexes.
type Interval struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// Inventory describes what the bucket holds.
type Inventory struct {
	ArchiveFirst    uint64                   `json:"archive_first"` // 0 if nothing archived
	ArchivedThrough uint64                   `json:"archived_through"`
	Segments        int                      `json:"segments"`
	ArchiveBytes    int64                    `json:"archive_bytes"` // compressed
	ArchiveRawBytes int64                    `json:"archive_raw_bytes"`
	Checkpoints     []snapshot.CheckpointRef `json:"checkpoints"`
	// Restorable lists the indexes a whole cluster can be restored at.
	Restorable []Interval `json:"restorable"`
}

// Load reads both catalogs and computes the inventory.
func Load(ctx context.Context, s snapshot.Store) (*Inventory, *snapshot.LogCatalog, *snapshot.CheckpointCatalog, error) {
	lc, _, err := snapshot.LoadLogCatalog(ctx, s)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("log catalog: %w", err)
	}
	cc, _, err := snapshot.LoadCheckpointCatalog(ctx, s)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("checkpoint catalog: %w", err)
	}
	inv := &Inventory{
		ArchiveFirst:    lc.FirstArchived(),
		ArchivedThrough: lc.ArchivedThrough(),
		Segments:        len(lc.Segments),
		Checkpoints:     cc.Checkpoints,
	}
	for _, seg := range lc.Segments {
		inv.ArchiveBytes += seg.Size
		inv.ArchiveRawBytes += seg.RawBytes
	}
	inv.Restorable = restorable(lc, cc)
	return inv, lc, cc, nil
}

// Plan is how one space is restored at an index.
type Plan struct {
	Space       string
	Checkpoints []snapshot.CheckpointRef // none: replay from 1
	ReplayFrom  uint64                   // first index replayed from the archive
}

// PlanAt says how each space is restored at exactly index n, or why it
// cannot be.
func PlanAt(lc *snapshot.LogCatalog, cc *snapshot.CheckpointCatalog, n uint64) ([]Plan, error) {
	if n > lc.ArchivedThrough() {
		return nil, fmt.Errorf("index %d is not archived (the archive ends at %d)", n, lc.ArchivedThrough())
	}
	var plans []Plan
	for _, space := range Spaces {
		p := Plan{Space: space, ReplayFrom: 1}
		if cover, ok := snapshot.Cover(cc, space, snapshot.Range{}, n, nil); ok {
			lowest := cover[0].Index
			for _, c := range cover {
				lowest = min(lowest, c.Index)
			}
			if lc.FirstArchived() != 0 && lc.FirstArchived() <= lowest+1 {
				p.Checkpoints, p.ReplayFrom = cover, lowest+1
			}
		}
		if p.Checkpoints == nil && n > 0 && lc.FirstArchived() != 1 {
			return nil, fmt.Errorf("space %s cannot be restored at %d: its checkpoints at or below %d do not cover the hash space (or the archive lacks what follows them), and the archive does not start at index 1", space, n, n)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// restorable evaluates PlanAt at every index where its answer can change:
// the checkpoints' indexes and the archive's ends.
func restorable(lc *snapshot.LogCatalog, cc *snapshot.CheckpointCatalog) []Interval {
	end := lc.ArchivedThrough()
	points := map[uint64]bool{0: true}
	for _, c := range cc.Checkpoints {
		if c.Index <= end {
			points[c.Index] = true
		}
	}
	var sorted []uint64
	for p := range points {
		sorted = append(sorted, p)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var out []Interval
	for i, p := range sorted {
		last := end
		if i+1 < len(sorted) {
			last = sorted[i+1] - 1
		}
		if p == 0 {
			// Index 0 (the empty cluster) is trivially restorable; start
			// reporting at 1.
			if last == 0 {
				continue
			}
			p = 1
		}
		if _, err := PlanAt(lc, cc, p); err != nil {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Last+1 == p {
			out[n-1].Last = last
		} else {
			out = append(out, Interval{First: p, Last: last})
		}
	}
	return out
}
