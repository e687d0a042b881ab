package backup

import (
	"context"
	"fmt"

	"github.com/akutan/akutan/snapshot"
)

// What a prune pass skipped, the values of Skipped.Kind.
const (
	// SkippedUnverified is a catalogued checkpoint that is not whole (a
	// file missing, or of the wrong size or checksum). It stays in the
	// catalog while it is among the newest at a point, but counts for
	// nothing: neither towards the checkpoints kept nor for trimming the
	// archive.
	SkippedUnverified = "unverified"
	// SkippedCorrupt is a catalog entry that names keys outside its own
	// kind's prefix. It and everything it names are left alone, and the
	// pass ends with an error wrapping snapshot.ErrCorrupt.
	SkippedCorrupt = "corrupt"
)

// Skipped is a catalog entry a prune pass left alone, and why.
type Skipped struct {
	Kind   string `json:"kind"` // SkippedUnverified or SkippedCorrupt
	Key    string `json:"key"`  // the manifest, or the catalog the entry is in
	Reason string `json:"reason"`
}

// PruneReport is what one prune pass did.
type PruneReport struct {
	RetiredCheckpoints int    `json:"retired_checkpoints"`
	RetiredSegments    int    `json:"retired_segments"`
	KeepLogFrom        uint64 `json:"keep_log_from"` // 0: the archive keeps everything
	RetiredDeleted     int    `json:"retired_deleted"`
	OrphansDeleted     int    `json:"orphans_deleted"`
	BytesDeleted       int64  `json:"bytes_deleted"`
	OrphansKept        int    `json:"orphans_kept"` // within the grace period
	// Skipped lists what the pass left alone, unverified checkpoints
	// first; never nil.
	Skipped []Skipped `json:"skipped"`
}

// Prune applies the retention policy to the bucket (snapshot.ApplyRetention)
// and then collects garbage (snapshot.CollectGarbage) with the policy's
// grace period. It returns the report as far as the pass got, with an
// error if it stopped early or found corrupt catalog entries; garbage is
// not collected after a failed retention step.
func Prune(ctx context.Context, s snapshot.Store, p snapshot.RetentionPolicy) (*PruneReport, error) {
	out := &PruneReport{Skipped: []Skipped{}}
	skip := func(kind string, ps []snapshot.Problem) {
		for _, pr := range ps {
			out.Skipped = append(out.Skipped, Skipped{Kind: kind, Key: pr.Key, Reason: pr.Reason})
		}
	}
	rep, err := snapshot.ApplyRetention(ctx, s, p)
	if rep != nil {
		out.RetiredCheckpoints, out.RetiredSegments, out.KeepLogFrom = rep.RetiredCheckpoints, rep.RetiredSegments, rep.KeepLogFrom
		out.RetiredDeleted, out.BytesDeleted = rep.Purge.RetiredDeleted, rep.Purge.BytesDeleted
		skip(SkippedUnverified, rep.Unverified)
		skip(SkippedCorrupt, rep.Purge.Corrupt)
	}
	if err != nil {
		return out, fmt.Errorf("retention: %w", err)
	}
	gc, err := snapshot.CollectGarbage(ctx, s, p.Grace)
	if gc != nil {
		out.RetiredDeleted += gc.RetiredDeleted
		out.OrphansDeleted, out.OrphansKept = gc.OrphansDeleted, gc.OrphansKept
		out.BytesDeleted += gc.BytesDeleted
		skip(SkippedCorrupt, gc.Corrupt)
	}
	if err != nil {
		return out, fmt.Errorf("garbage collection: %w", err)
	}
	return out, nil
}
