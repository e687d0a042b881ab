package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// RetiredRef is an object (a log segment, or a checkpoint's manifest) that
// retention took out of a catalog at At. Its objects stay for a grace
// period, so a boot or restore that read an older catalog can finish.
type RetiredRef struct {
	Key   string    `json:"key"`
	At    time.Time `json:"at"`
	Bytes int64     `json:"bytes,omitempty"` // the objects' size, if known
}

// RetentionPolicy says which checkpoints and log segments to keep.
type RetentionPolicy struct {
	// KeepCheckpoints is how many checkpoints to keep at every point of
	// every (cluster, space) hash range: a checkpoint goes once, at every
	// point of its range, KeepCheckpoints newer ones of the same cluster
	// and space cover that point. With an unchanged partitioning this is
	// "the newest K of each (cluster, space, range)"; after a split or a
	// merge the old partitioning's checkpoints go once the new one has K.
	KeepCheckpoints int
	// Grace is how long retired objects stay before they are deleted. It
	// must be longer than any boot, restore or upload takes.
	Grace time.Duration
	// Spaces, if set, must each be covered over the whole hash range by
	// every cluster's retained checkpoints before the log archive is
	// trimmed: until then a view of an uncovered range needs the log
	// from the start.
	Spaces []string
}

// DefaultRetentionPolicy keeps 3 checkpoints, deletes a day after
// retirement, and trims the log once both spaces ("sp" and "po") are
// covered.
func DefaultRetentionPolicy() RetentionPolicy {
	return RetentionPolicy{KeepCheckpoints: 3, Grace: 24 * time.Hour, Spaces: []string{"sp", "po"}}
}

// Validate reports every problem with p at once.
func (p *RetentionPolicy) Validate() error {
	var errs []error
	if p.KeepCheckpoints < 1 {
		errs = append(errs, fmt.Errorf("keep checkpoints %d is below 1", p.KeepCheckpoints))
	}
	if p.Grace < 0 {
		errs = append(errs, fmt.Errorf("grace %v is negative", p.Grace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("retention policy: %w", err)
	}
	return nil
}

// RetentionReport says what ApplyRetention did.
type RetentionReport struct {
	RetiredCheckpoints int    // checkpoints taken out of the catalog now
	RetiredSegments    int    // segments taken out of the log catalog now
	KeepLogFrom        uint64 // oldest index the retained checkpoints need; 0: keep all
	Purge              GarbageReport
}

// ApplyRetention applies p, in three steps, none of which lists:
//
//  1. Retire the checkpoints p does not keep: take them out of the
//     checkpoint catalog into its Retired list, stamped now.
//  2. Find the oldest index a retained checkpoint needs, the least Index
//     of them (replay starts at Index+1), and retire the log segments that
//     end below it, so the archive reaches back to the oldest retained
//     checkpoint. With no checkpoints, or with a space of p.Spaces that a
//     cluster's checkpoints do not cover, the log keeps everything; the
//     newest segment always stays, so the catalog still says how far the
//     archive reaches.
//  3. Delete the objects of entries retired more than p.Grace before now,
//     and drop those entries.
func ApplyRetention(ctx context.Context, s Store, p RetentionPolicy, now time.Time) (*RetentionReport, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rep := &RetentionReport{}
	cat, err := UpdateCheckpointCatalog(ctx, s, func(c *CheckpointCatalog) error {
		keep := keepCheckpoints(c.Checkpoints, p.KeepCheckpoints)
		rep.RetiredCheckpoints = 0
		var kept []CheckpointRef
		for i, r := range c.Checkpoints {
			if keep[i] {
				kept = append(kept, r)
				continue
			}
			rep.RetiredCheckpoints++
			c.Retired = append(c.Retired, RetiredRef{Key: r.Manifest, At: now, Bytes: r.Bytes})
		}
		if rep.RetiredCheckpoints == 0 {
			return ErrNoChange
		}
		c.Checkpoints = kept
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	rep.KeepLogFrom = logNeededFrom(cat.Checkpoints, p.Spaces)
	if rep.KeepLogFrom > 0 {
		_, err = UpdateLogCatalog(ctx, s, func(c *LogCatalog) error {
			rep.RetiredSegments = 0
			for len(c.Segments) > 1 && c.Segments[0].Last < rep.KeepLogFrom {
				r := c.Segments[0]
				c.Retired = append(c.Retired, RetiredRef{Key: r.Key, At: now, Bytes: r.Size})
				c.Segments = c.Segments[1:]
				rep.RetiredSegments++
			}
			if rep.RetiredSegments == 0 {
				return ErrNoChange
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
	}
	if err := purgeRetired(ctx, s, p.Grace, now, &rep.Purge); err != nil {
		return rep, fmt.Errorf("retention: %w", err)
	}
	return rep, nil
}

// keepCheckpoints marks the checkpoints to keep: at every point of each
// (cluster, space)'s hash space, the k newest covering it.
func keepCheckpoints(cps []CheckpointRef, k int) []bool {
	keep := make([]bool, len(cps))
	groups := map[[2]string][]int{}
	for i, c := range cps {
		g := [2]string{c.Cluster, c.Space}
		groups[g] = append(groups[g], i)
	}
	for _, idx := range groups {
		// Newest first; ties broken the same way every time.
		sort.Slice(idx, func(a, b int) bool {
			x, y := cps[idx[a]], cps[idx[b]]
			if x.Index != y.Index {
				return x.Index > y.Index
			}
			if !x.Created.Equal(y.Created) {
				return x.Created.After(y.Created)
			}
			return x.Manifest > y.Manifest
		})
		// Every range is a union of pieces between boundaries; each
		// piece keeps its k newest.
		var points []uint64
		for _, i := range idx {
			points = append(points, cps[i].Start)
			if cps[i].End != 0 {
				points = append(points, cps[i].End)
			}
		}
		slices.Sort(points)
		points = slices.Compact(points)
		for _, p := range points {
			n := 0
			for _, i := range idx {
				if n == k {
					break
				}
				if cps[i].Range().Contains(p) {
					keep[i] = true
					n++
				}
			}
		}
	}
	return keep
}

// logNeededFrom is the least index of the retained checkpoints, or 0 (keep
// the whole log) if there are none or a cluster does not cover a space.
func logNeededFrom(cps []CheckpointRef, spaces []string) uint64 {
	if len(cps) == 0 {
		return 0
	}
	byCluster := map[string]*CheckpointCatalog{}
	least := cps[0].Index
	for _, c := range cps {
		least = min(least, c.Index)
		if byCluster[c.Cluster] == nil {
			byCluster[c.Cluster] = &CheckpointCatalog{}
		}
		byCluster[c.Cluster].Checkpoints = append(byCluster[c.Cluster].Checkpoints, c)
	}
	for _, cat := range byCluster {
		for _, sp := range spaces {
			if _, ok := Cover(cat, sp, Range{}, 0, nil); !ok {
				return 0
			}
		}
	}
	return least
}

// GarbageReport says what garbage collection deleted and kept.
type GarbageReport struct {
	RetiredDeleted int   // objects of retired entries deleted
	OrphansDeleted int   // unreferenced objects deleted (torn uploads)
	BytesDeleted   int64 // of both, where known
	OrphansKept    int   // unreferenced objects younger than the grace period
}

// CollectGarbage deletes what no catalog needs: the objects of entries
// retired more than grace before now (as ApplyRetention does), and objects
// under CheckpointPrefix and SegmentPrefix that no catalog references,
// directly or through a listed or retired checkpoint's manifest. It is the
// only code that lists the bucket.
//
// It is safe while others write: anything younger than grace is kept, and
// a checkpoint directory is kept whole while any object in it is younger
// than grace, so an upload in progress (data files first, manifest last)
// is never touched as long as each file takes less than grace to upload.
func CollectGarbage(ctx context.Context, s Store, grace time.Duration, now time.Time) (*GarbageReport, error) {
	rep := &GarbageReport{}
	if err := purgeRetired(ctx, s, grace, now, rep); err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	logCat, _, err := LoadLogCatalog(ctx, s)
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	cpCat, _, err := LoadCheckpointCatalog(ctx, s)
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	cutoff := now.Add(-grace)

	// Segments: referenced if listed or retired (not yet past grace).
	refs := map[string]bool{}
	for _, r := range logCat.Segments {
		refs[r.Key] = true
	}
	for _, r := range logCat.Retired {
		refs[r.Key] = true
	}
	var doomed []ObjectInfo
	err = s.List(ctx, SegmentPrefix, func(o ObjectInfo) error {
		switch {
		case refs[o.Key]:
		case o.Modified.After(cutoff):
			rep.OrphansKept++
		default:
			doomed = append(doomed, o)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}

	// Checkpoints: a directory is referenced if a listed or retired
	// manifest is in it, or names a file in it.
	refDirs := map[string]bool{}
	refKeys := map[string]bool{CheckpointCatalogKey: true}
	addManifest := func(key string) error {
		refDirs[checkpointDir(key)] = true
		refKeys[key] = true
		m, err := LoadManifest(ctx, s, key)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
			return nil // its directory is still referenced
		} else if err != nil {
			return err
		}
		for _, f := range m.Files {
			refKeys[f.Key] = true
			refDirs[checkpointDir(f.Key)] = true
		}
		return nil
	}
	for _, r := range cpCat.Checkpoints {
		if err := addManifest(r.Manifest); err != nil {
			return rep, fmt.Errorf("collect garbage: %w", err)
		}
	}
	for _, r := range cpCat.Retired {
		if err := addManifest(r.Key); err != nil {
			return rep, fmt.Errorf("collect garbage: %w", err)
		}
	}
	type dir struct {
		objs   []ObjectInfo
		newest time.Time
	}
	dirs := map[string]*dir{}
	var order []string
	err = s.List(ctx, CheckpointPrefix, func(o ObjectInfo) error {
		if refKeys[o.Key] {
			return nil
		}
		d := checkpointDir(o.Key)
		if dirs[d] == nil {
			dirs[d] = &dir{}
			order = append(order, d)
		}
		dirs[d].objs = append(dirs[d].objs, o)
		if o.Modified.After(dirs[d].newest) {
			dirs[d].newest = o.Modified
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	for _, name := range order {
		d := dirs[name]
		if refDirs[name] || d.newest.After(cutoff) {
			rep.OrphansKept += len(d.objs)
			continue
		}
		// A manifest goes last, so a directory half deleted still looks
		// like a torn upload, never like a checkpoint missing files.
		sort.SliceStable(d.objs, func(i, j int) bool {
			return path.Base(d.objs[j].Key) == ManifestName && path.Base(d.objs[i].Key) != ManifestName
		})
		doomed = append(doomed, d.objs...)
	}
	for _, o := range doomed {
		if err := s.Delete(ctx, o.Key); err != nil {
			return rep, fmt.Errorf("collect garbage: %w", err)
		}
		rep.OrphansDeleted++
		rep.BytesDeleted += o.Size
	}
	return rep, nil
}

// checkpointDir is the checkpoint directory holding key,
// "checkpoints/<space>/<range>/<index>-<nonce>/", or key itself if it is
// not that deep.
func checkpointDir(key string) string {
	parts := strings.SplitN(key, "/", 5)
	if len(parts) < 5 {
		return key
	}
	return strings.Join(parts[:4], "/") + "/"
}

// purgeRetired deletes the objects of catalog entries retired more than
// grace before now, then drops the entries. Objects go before entries, and
// a manifest after its files, so an interrupted purge is finished by the
// next one.
func purgeRetired(ctx context.Context, s Store, grace time.Duration, now time.Time, rep *GarbageReport) error {
	cutoff := now.Add(-grace)
	due := func(r RetiredRef) bool { return !r.At.After(cutoff) }

	logCat, _, err := LoadLogCatalog(ctx, s)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, r := range logCat.Segments {
		live[r.Key] = true
	}
	purged := map[string]bool{}
	for _, r := range logCat.Retired {
		if !due(r) || purged[r.Key] {
			continue
		}
		if !live[r.Key] { // listed again since: keep the object
			if err := s.Delete(ctx, r.Key); err != nil {
				return err
			}
			rep.RetiredDeleted++
			rep.BytesDeleted += r.Bytes
		}
		purged[r.Key] = true
	}
	if len(purged) > 0 {
		if _, err := UpdateLogCatalog(ctx, s, func(c *LogCatalog) error {
			c.Retired = slices.DeleteFunc(c.Retired, func(r RetiredRef) bool { return purged[r.Key] && due(r) })
			return nil
		}); err != nil {
			return err
		}
	}

	cpCat, _, err := LoadCheckpointCatalog(ctx, s)
	if err != nil {
		return err
	}
	live = map[string]bool{}
	for _, r := range cpCat.Checkpoints {
		live[r.Manifest] = true
	}
	purged = map[string]bool{}
	for _, r := range cpCat.Retired {
		if !due(r) || purged[r.Key] {
			continue
		}
		if !live[r.Key] {
			n, err := deleteCheckpoint(ctx, s, r.Key)
			if err != nil {
				return err
			}
			rep.RetiredDeleted += n
			rep.BytesDeleted += r.Bytes
		}
		purged[r.Key] = true
	}
	if len(purged) > 0 {
		if _, err := UpdateCheckpointCatalog(ctx, s, func(c *CheckpointCatalog) error {
			c.Retired = slices.DeleteFunc(c.Retired, func(r RetiredRef) bool { return purged[r.Key] && due(r) })
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// deleteCheckpoint deletes a checkpoint's data files, then its manifest,
// and returns how many objects it deleted. A manifest that is gone was
// deleted before; one that is corrupt is deleted alone, and garbage
// collection finds its files.
func deleteCheckpoint(ctx context.Context, s Store, manifest string) (int, error) {
	m, err := LoadManifest(ctx, s, manifest)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	n := 0
	if err == nil {
		for _, f := range m.Files {
			if err := s.Delete(ctx, f.Key); err != nil {
				return n, err
			}
			n++
		}
	} else if !errors.Is(err, ErrCorrupt) {
		return 0, err
	}
	if err := s.Delete(ctx, manifest); err != nil {
		return n, err
	}
	return n + 1, nil
}
