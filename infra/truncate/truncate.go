// Package truncate coordinates log truncation, as DESIGN.md defines it:
//
//  1. For each critical cluster (a set of views; CheckpointRef.Cluster), the
//     highest discardable index D_c is one past the lowest index M such that
//     every point of both spaces (sp and po, the full 64-bit hash range) is
//     covered by a committed checkpoint of that cluster at index >= M. A
//     view that boots from a checkpoint at M replays from M+1, so entries
//     up to M are not needed: the log may start at M+1. Coverage is computed
//     point by point, by splitting each space at every checkpoint boundary.
//     A cluster with an uncovered point allows nothing (D_c = 0).
//  2. Only whole checkpoints (the manifest and every file present, with
//     the right sizes, and checksums for those the plan relies on; see
//     Coordinator) uploaded at least Delay ago by the store's clock count,
//     so the global step runs "a few minutes behind" what the views have
//     just written, and never on the pruner's or a view's clock.
//  3. The global index is the minimum of D_c over the critical clusters,
//     capped so that the archive already holds everything below it (both
//     the log's replicated watermark and the archive catalog's end) and the
//     log holds it (at most last+1).
//  4. If it is above the log's first index, the plan is made again, and
//     DiscardPrefix(min of both) is sent to the log; the log itself
//     refuses anything not archived.
//
// Plan explains each step: per cluster, the limiting range and the
// checkpoint at its index (or the uncovered range), and the archive and
// log bounds. The package judges from inputs (catalog, log info) so plans
// are unit-testable; Coordinator gathers them and acts.
package truncate

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// Spaces are the hash spaces every cluster must cover, as checkpoints name
// them.
var Spaces = []string{"sp", "po"}

// LogInfo is what the plan needs from the log.
type LogInfo struct {
	First, Last     uint64
	ArchivedThrough uint64 // the log's replicated watermark
}

// Config configures the coordinator.
type Config struct {
	// Clusters are the critical clusters; each must cover every point.
	Clusters []string
	// Delay: only checkpoints created at least this long ago count.
	Delay time.Duration
}

// DefaultConfig returns the local stack's clusters and a 3-minute delay.
func DefaultConfig() Config {
	return Config{Clusters: []string{"dc1", "dc2", "dc3"}, Delay: 3 * time.Minute}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Clusters) == 0 {
		errs = append(errs, errors.New("no critical clusters"))
	}
	seen := map[string]bool{}
	for _, cl := range c.Clusters {
		if cl == "" || seen[cl] {
			errs = append(errs, fmt.Errorf("cluster name %q is empty or repeated", cl))
		}
		seen[cl] = true
	}
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %v is negative", c.Delay))
	}
	return errors.Join(errs...)
}

// Limit is the piece of a space that limits a cluster: the lowest newest
// checkpoint index over it, or no checkpoint at all.
type Limit struct {
	Space string
	Range snapshot.Range
	// Checkpoint is the newest eligible checkpoint covering Range; its
	// Index is the cluster's M. Zero when Range is uncovered.
	Checkpoint snapshot.CheckpointRef
	Covered    bool
}

// ClusterPlan is one cluster's part of the plan.
type ClusterPlan struct {
	Cluster string
	// Discardable is D_c: the log may start at this index for this cluster
	// (everything below is covered by its checkpoints). 0: nothing.
	Discardable uint64
	Limit       Limit
	// Eligible and TooNew count this cluster's checkpoints that were old
	// enough, and those skipped for being younger than Delay.
	Eligible, TooNew int
}

// Plan is what the coordinator decided, and why.
type Plan struct {
	At       time.Time
	Delay    time.Duration
	Clusters []ClusterPlan
	Log      LogInfo
	// Archived is the archive catalog's range.
	ArchiveFirst, ArchiveLast uint64
	// Discard is the index the log would start at; it acts only when
	// Discard > Log.First.
	Discard uint64
	// Reason says which bound set Discard.
	Reason string
	// Unverified lists the critical clusters' checkpoints left out for
	// not being whole (a file missing, a size or checksum wrong).
	Unverified []snapshot.Problem
	// Done is set once the log has discarded; FirstAfter is its new
	// first index.
	Done       bool
	FirstAfter uint64
}

// Act reports whether the plan discards anything.
func (p *Plan) Act() bool { return p.Discard > p.Log.First }

// Compute makes the plan from the checkpoint catalog, the archive's log
// catalog and the log's state. now and each checkpoint's Created must be
// the store's times; the catalog must hold only whole checkpoints
// (Coordinator.Plan sees to both).
func Compute(cfg Config, now time.Time, cps *snapshot.CheckpointCatalog, logCat *snapshot.LogCatalog, log LogInfo) *Plan {
	p := &Plan{At: now, Delay: cfg.Delay, Log: log, ArchiveFirst: logCat.FirstArchived(), ArchiveLast: logCat.ArchivedThrough()}
	cutoff := now.Add(-cfg.Delay)
	p.Discard, p.Reason = ^uint64(0), ""
	for _, cl := range cfg.Clusters {
		cp := planCluster(cl, cps, cutoff)
		p.Clusters = append(p.Clusters, cp)
		if cp.Discardable < p.Discard {
			p.Discard = cp.Discardable
			if cp.Limit.Covered {
				p.Reason = fmt.Sprintf("cluster %s: %s %s is covered only by a checkpoint at index %d", cl, cp.Limit.Space, cp.Limit.Range, cp.Limit.Checkpoint.Index)
			} else {
				p.Reason = fmt.Sprintf("cluster %s: %s %s has no checkpoint created before %s", cl, cp.Limit.Space, cp.Limit.Range, cutoff.UTC().Format(time.RFC3339))
			}
		}
	}
	if len(cfg.Clusters) == 0 {
		p.Discard, p.Reason = 0, "no critical clusters"
	}
	archived := min(log.ArchivedThrough, p.ArchiveLast)
	if archived+1 < p.Discard {
		p.Discard = archived + 1
		p.Reason = fmt.Sprintf("the archive holds entries only through %d (log watermark %d, catalog end %d)", archived, log.ArchivedThrough, p.ArchiveLast)
	}
	if log.Last+1 < p.Discard {
		p.Discard = log.Last + 1
		p.Reason = fmt.Sprintf("the log ends at %d", log.Last)
	}
	return p
}

// planCluster finds one cluster's M over both spaces.
func planCluster(cluster string, cps *snapshot.CheckpointCatalog, cutoff time.Time) ClusterPlan {
	cp := ClusterPlan{Cluster: cluster}
	var mine []snapshot.CheckpointRef
	for _, c := range cps.Checkpoints {
		if c.Cluster != cluster {
			continue
		}
		if c.Created.After(cutoff) {
			cp.TooNew++
			continue
		}
		cp.Eligible++
		mine = append(mine, c)
	}
	first := true
	for _, space := range Spaces {
		lim := spaceLimit(space, mine)
		if first || less(lim, cp.Limit) {
			cp.Limit, first = lim, false
		}
	}
	if cp.Limit.Covered {
		cp.Discardable = cp.Limit.Checkpoint.Index + 1
	}
	return cp
}

// less orders limits: uncovered first, then by checkpoint index.
func less(a, b Limit) bool {
	if a.Covered != b.Covered {
		return !a.Covered
	}
	return a.Checkpoint.Index < b.Checkpoint.Index
}

// spaceLimit splits the space at every boundary and returns the piece whose
// newest covering checkpoint is oldest (or the first uncovered piece),
// merged with its neighbours that share that checkpoint.
func spaceLimit(space string, cps []snapshot.CheckpointRef) Limit {
	pieces := spacePieces(space, cps)
	best := 0
	for i, l := range pieces {
		if less(l, pieces[best]) {
			best = i
		}
	}
	// Widen the limiting piece over neighbours limited the same way, so
	// the plan names a whole range rather than a sliver.
	lim := pieces[best]
	same := func(l Limit) bool {
		return l.Covered == lim.Covered && l.Checkpoint.Manifest == lim.Checkpoint.Manifest
	}
	for i := best - 1; i >= 0 && same(pieces[i]); i-- {
		lim.Range.Start = pieces[i].Range.Start
	}
	for i := best + 1; i < len(pieces) && same(pieces[i]); i++ {
		lim.Range.End = pieces[i].Range.End
	}
	return lim
}

// spacePieces splits the space at every boundary and gives each piece its
// newest covering checkpoint, if any.
func spacePieces(space string, cps []snapshot.CheckpointRef) []Limit {
	var in []snapshot.CheckpointRef
	points := []uint64{0}
	for _, c := range cps {
		if c.Space != space {
			continue
		}
		in = append(in, c)
		points = append(points, c.Start)
		if c.End != 0 {
			points = append(points, c.End)
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	var pieces []Limit
	for i, p := range points {
		if i > 0 && p == points[i-1] {
			continue
		}
		end := uint64(0)
		for _, q := range points[i+1:] {
			if q != p {
				end = q
				break
			}
		}
		lim := Limit{Space: space, Range: snapshot.Range{Start: p, End: end}}
		for _, c := range in {
			if c.Range().Contains(p) && (!lim.Covered || c.Index > lim.Checkpoint.Index) {
				lim.Checkpoint, lim.Covered = c, true
			}
		}
		pieces = append(pieces, lim)
	}
	return pieces
}

// String prints the plan for an operator.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log: first index %d, last index %d, archived through %d\n", p.Log.First, p.Log.Last, p.Log.ArchivedThrough)
	if p.ArchiveLast == 0 {
		fmt.Fprintf(&b, "archive: empty\n")
	} else {
		fmt.Fprintf(&b, "archive: entries %d..%d\n", p.ArchiveFirst, p.ArchiveLast)
	}
	fmt.Fprintf(&b, "checkpoints counted: whole, uploaded before %s by the store's clock (delay %v)\n", p.At.Add(-p.Delay).UTC().Format(time.RFC3339), p.Delay)
	for _, c := range p.Clusters {
		fmt.Fprintf(&b, "  cluster %s: ", c.Cluster)
		if c.Limit.Covered {
			fmt.Fprintf(&b, "can discard below %d; limited by %s %s at checkpoint index %d (%s, created %s)",
				c.Discardable, c.Limit.Space, c.Limit.Range, c.Limit.Checkpoint.Index, c.Limit.Checkpoint.Manifest, c.Limit.Checkpoint.Created.UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintf(&b, "can discard nothing; %s %s has no checkpoint old enough", c.Limit.Space, c.Limit.Range)
		}
		fmt.Fprintf(&b, " [%d checkpoints counted, %d too new]\n", c.Eligible, c.TooNew)
	}
	for _, u := range p.Unverified {
		fmt.Fprintf(&b, "  not counted, not whole: %s\n", u)
	}
	switch {
	case p.Done:
		fmt.Fprintf(&b, "discarded: the log now starts at %d (%s)\n", p.FirstAfter, p.Reason)
	case p.Act():
		fmt.Fprintf(&b, "plan: discard entries below %d (%d entries); bound: %s\n", p.Discard, p.Discard-p.Log.First, p.Reason)
	default:
		fmt.Fprintf(&b, "plan: nothing to discard: the log starts at %d and may start at %d at most; bound: %s\n", p.Log.First, max(p.Discard, 1), p.Reason)
	}
	return b.String()
}
