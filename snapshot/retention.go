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

// MinGrace is the least grace period retention and garbage collection
// accept. Retired and unreferenced objects must outlive any boot, restore
// or upload that may still read or write them; a shorter grace, or 0,
// lets garbage collection delete a checkpoint's files while they upload.
const MinGrace = 15 * time.Minute

// minGrace is MinGrace; only tests lower it (SetMinGrace in
// retention_export_test.go), never a flag or a setting.
var minGrace = MinGrace

// RetentionPolicy says which checkpoints and log segments to keep.
type RetentionPolicy struct {
	// KeepCheckpoints is how many checkpoints to keep at every point of
	// every (cluster, space) hash range: a checkpoint goes once, at every
	// point of its range, KeepCheckpoints newer ones of the same cluster
	// and space cover that point. With an unchanged partitioning this is
	// "the newest K of each (cluster, space, range)"; after a split or a
	// merge the old partitioning's checkpoints go once the new one has K.
	// Only checkpoints checked whole (CheckCheckpoint) count.
	KeepCheckpoints int
	// Grace is how long retired objects stay before they are deleted, by
	// the store's clock. It must be longer than any boot, restore or
	// upload takes, and at least MinGrace.
	Grace time.Duration
	// Spaces, if set, must each be covered over the whole hash range by
	// every cluster's retained checkpoints before the log archive is
	// trimmed: until then a view of an uncovered range needs the log
	// from the start.
	Spaces []string
	// VerifyChecksums makes the check of each checkpoint stream its files
	// and check their CRC-32C, not only their presence and sizes.
	VerifyChecksums bool
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
	if err := validateGrace(p.Grace); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("retention policy: %w", err)
	}
	return nil
}

// ErrGraceTooShort: a grace period below MinGrace.
var ErrGraceTooShort = errors.New("grace period too short")

func validateGrace(grace time.Duration) error {
	if grace < minGrace {
		return fmt.Errorf("grace %v is below the minimum %v, which any boot, restore or upload may take: %w", grace, minGrace, ErrGraceTooShort)
	}
	return nil
}

// RetentionReport says what ApplyRetention did.
type RetentionReport struct {
	Now                time.Time // the store's time the run judged by
	RetiredCheckpoints int       // checkpoints taken out of the catalog now
	RetiredSegments    int       // segments taken out of the log catalog now
	KeepLogFrom        uint64    // oldest index the retained checkpoints need; 0: keep all
	// Unverified lists the catalogued checkpoints that are not whole
	// (CheckCheckpoint failed): they count for nothing, neither towards
	// KeepCheckpoints nor for trimming the log.
	Unverified []Problem
	Purge      GarbageReport
}

// ApplyRetention applies p, in four steps, none of which lists. Every age
// is judged by the store's clock (StoreNow) and the times it stamps, never
// by the local clock.
//
//  1. Check every catalogued checkpoint (CheckCheckpoint): only one whose
//     manifest and files are all there, with the right sizes (and, with
//     p.VerifyChecksums, checksums), counts.
//  2. Retire the checkpoints p does not keep: take them out of the
//     checkpoint catalog into its Retired list, stamped with the store's
//     time. A checkpoint that is not whole is kept while it is among the
//     newest at a point, but counts for nothing.
//  3. Find the oldest index a retained checkpoint needs, the least Index
//     of them (replay starts at Index+1), and retire the log segments that
//     end below it, so the archive reaches back to the oldest retained
//     checkpoint. With no whole checkpoints, or with a space of p.Spaces
//     that a cluster's whole checkpoints do not cover, the log keeps
//     everything; the newest segment always stays, so the catalog still
//     says how far the archive reaches.
//  4. Delete the objects of entries retired more than p.Grace ago, and
//     drop those entries.
func ApplyRetention(ctx context.Context, s Store, p RetentionPolicy) (*RetentionReport, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	now, err := StoreNow(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	rep := &RetentionReport{Now: now}
	cur, _, err := LoadCheckpointCatalog(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	whole := map[string]bool{}
	for _, r := range cur.Checkpoints {
		_, _, err := CheckCheckpoint(ctx, s, r, p.VerifyChecksums)
		switch {
		case err == nil:
			whole[r.Manifest] = true
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt):
			rep.Unverified = append(rep.Unverified, Problem{Key: r.Manifest, Reason: err.Error()})
		default:
			return nil, fmt.Errorf("retention: %w", err)
		}
	}
	cat, err := UpdateCheckpointCatalog(ctx, s, func(c *CheckpointCatalog) error {
		keep := keepCheckpoints(c.Checkpoints, p.KeepCheckpoints, whole)
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
	rep.KeepLogFrom = logNeededFrom(cat.Checkpoints, whole, p.Spaces)
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
	if err := rep.Purge.err(); err != nil {
		return rep, fmt.Errorf("retention: %w", err)
	}
	return rep, nil
}

// keepCheckpoints marks the checkpoints to keep: at every point of each
// (cluster, space)'s hash space, the k newest whole ones covering it, and
// any newer ones that are not whole (they count for nothing, but are not
// retired on account of older ones).
func keepCheckpoints(cps []CheckpointRef, k int, whole map[string]bool) []bool {
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
					if whole[cps[i].Manifest] {
						n++
					}
				}
			}
		}
	}
	return keep
}

// logNeededFrom is the least index of the retained checkpoints, or 0 (keep
// the whole log) if there are no whole ones or a cluster's whole ones do
// not cover a space.
func logNeededFrom(cps []CheckpointRef, whole map[string]bool, spaces []string) uint64 {
	if len(cps) == 0 {
		return 0
	}
	byCluster := map[string]*CheckpointCatalog{}
	least := cps[0].Index
	nWhole := 0
	for _, c := range cps {
		least = min(least, c.Index)
		if byCluster[c.Cluster] == nil {
			byCluster[c.Cluster] = &CheckpointCatalog{}
		}
		if !whole[c.Manifest] {
			continue // its cluster must be covered without it
		}
		nWhole++
		byCluster[c.Cluster].Checkpoints = append(byCluster[c.Cluster].Checkpoints, c)
	}
	if nWhole == 0 {
		return 0
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
	Now            time.Time // the store's time the run judged by
	RetiredDeleted int       // objects of retired entries deleted
	OrphansDeleted int       // unreferenced objects deleted (torn uploads)
	BytesDeleted   int64     // of both, where known
	OrphansKept    int       // unreferenced objects younger than the grace period
	// Corrupt lists entries whose objects were left alone because they
	// name keys outside their own kind's prefix: a retired segment key not
	// under SegmentPrefix, a manifest not in a checkpoint directory, or
	// one that lists a file outside its directory. They stay, and the run
	// ends with an error wrapping ErrCorrupt that names them.
	Corrupt []Problem
}

func (r *GarbageReport) corrupt(key, format string, args ...any) {
	r.Corrupt = append(r.Corrupt, Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
}

// err is the error a run ends with when it found corrupt entries.
func (r *GarbageReport) err() error {
	if len(r.Corrupt) == 0 {
		return nil
	}
	var b strings.Builder
	for i, p := range r.Corrupt {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return fmt.Errorf("left %d corrupt entries and everything they name: %s: %w", len(r.Corrupt), b.String(), ErrCorrupt)
}

// CollectGarbage deletes what no catalog needs: the objects of entries
// retired more than grace ago (as ApplyRetention does), and objects under
// SegmentPrefix and in checkpoint directories under CheckpointPrefix that
// no catalog references, directly or through a listed or retired
// checkpoint's manifest. It is the only code that lists the bucket.
//
// Every age is judged by the store's clock (StoreNow) against the objects'
// own modification times, never by the local clock; grace must be at least
// MinGrace. Each kind is collected only under its own prefix: a segment
// only under SegmentPrefix, a checkpoint's objects only inside its own
// directory, so no manifest can make it delete a catalog, the marker or a
// segment. A catalog that is absent while objects of its kind exist stops
// the collection of that kind.
//
// It is safe while others write: anything younger than grace is kept, and
// a checkpoint directory is kept whole while any object in it is younger
// than grace, so an upload in progress (data files first, manifest last)
// is never touched as long as each file takes less than grace to upload.
func CollectGarbage(ctx context.Context, s Store, grace time.Duration) (*GarbageReport, error) {
	if err := validateGrace(grace); err != nil {
		return nil, fmt.Errorf("collect garbage: %w", err)
	}
	now, err := StoreNow(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("collect garbage: %w", err)
	}
	rep := &GarbageReport{Now: now}
	if err := purgeRetired(ctx, s, grace, now, rep); err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	logCat, logTag, err := LoadLogCatalog(ctx, s)
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	cpCat, cpTag, err := LoadCheckpointCatalog(ctx, s)
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
	var segs, listed []ObjectInfo
	modified := map[string]time.Time{}
	err = s.List(ctx, SegmentPrefix, func(o ObjectInfo) error {
		listed = append(listed, o)
		modified[o.Key] = o.Modified
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	for _, o := range listed {
		// A segment that compaction replaced (compact.go) stays for the
		// grace period after the merged segment that replaced it was
		// uploaded, as a retired one does after it was retired.
		at := supersededUntil(logCat, o.Key, modified)
		switch {
		case refs[o.Key]:
		case o.Modified.IsZero() || o.Modified.After(cutoff):
			rep.OrphansKept++
		case !at.IsZero() && at.After(cutoff):
			rep.OrphansKept++
		default:
			segs = append(segs, o)
		}
	}
	if logTag == "" && len(segs) > 0 {
		// No log catalog, yet segments: the catalog was lost from a store
		// without a marker. Every segment would look unreferenced.
		return rep, fmt.Errorf("collect garbage: %s is absent but %s holds segments (%s): %w",
			LogCatalogKey, SegmentPrefix, segs[0].Key, ErrCatalogMissing)
	}
	doomed = append(doomed, segs...)

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
		young  bool
	}
	dirs := map[string]*dir{}
	var order []string
	err = s.List(ctx, CheckpointPrefix, func(o ObjectInfo) error {
		if refKeys[o.Key] {
			return nil
		}
		d := checkpointDir(o.Key)
		if d == o.Key {
			return nil // not in a checkpoint directory: not a checkpoint's
		}
		if dirs[d] == nil {
			dirs[d] = &dir{}
			order = append(order, d)
		}
		dirs[d].objs = append(dirs[d].objs, o)
		if o.Modified.IsZero() {
			dirs[d].young = true
		}
		if o.Modified.After(dirs[d].newest) {
			dirs[d].newest = o.Modified
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	var cps []ObjectInfo
	for _, name := range order {
		d := dirs[name]
		if refDirs[name] || d.young || d.newest.After(cutoff) {
			rep.OrphansKept += len(d.objs)
			continue
		}
		// A manifest goes last, so a directory half deleted still looks
		// like a torn upload, never like a checkpoint missing files.
		sort.SliceStable(d.objs, func(i, j int) bool {
			return path.Base(d.objs[j].Key) == ManifestName && path.Base(d.objs[i].Key) != ManifestName
		})
		cps = append(cps, d.objs...)
	}
	if cpTag == "" && len(cps) > 0 {
		return rep, fmt.Errorf("collect garbage: %s is absent but %s holds checkpoint objects (%s): %w",
			CheckpointCatalogKey, CheckpointPrefix, cps[0].Key, ErrCatalogMissing)
	}
	doomed = append(doomed, cps...)
	for _, o := range doomed {
		if err := s.Delete(ctx, o.Key); err != nil {
			return rep, fmt.Errorf("collect garbage: %w", err)
		}
		rep.OrphansDeleted++
		rep.BytesDeleted += o.Size
	}
	if err := rep.err(); err != nil {
		return rep, fmt.Errorf("collect garbage: %w", err)
	}
	return rep, nil
}

// checkpointDir is the checkpoint directory holding key,
// "checkpoints/<space>/<range>/<index>-<nonce>/", or key itself if it is
// not that deep.
func checkpointDir(key string) string {
	parts := strings.SplitN(key, "/", 5)
	if len(parts) < 5 || parts[0]+"/" != CheckpointPrefix {
		return key
	}
	return strings.Join(parts[:4], "/") + "/"
}

// isSegmentKey reports whether key is a log segment's, under SegmentPrefix.
func isSegmentKey(key string) bool {
	rest, ok := strings.CutPrefix(key, SegmentPrefix)
	return ok && rest != "" && !strings.Contains(rest, "/") && path.Clean(key) == key
}

// purgeRetired deletes the objects of catalog entries retired more than
// grace before now (both by the store's clock), then drops the entries.
// Objects go before entries, and a manifest after its files, so an
// interrupted purge is finished by the next one. An entry naming keys
// outside its kind's prefix is corrupt: it is reported in rep.Corrupt, and
// neither it nor anything it names is deleted.
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
		if !isSegmentKey(r.Key) {
			rep.corrupt(LogCatalogKey, "retired entry %q is not a segment key under %s", r.Key, SegmentPrefix)
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
			if errors.Is(err, ErrCorrupt) {
				rep.corrupt(r.Key, "%v", err)
				continue
			} else if err != nil {
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
// deleted before; one that does not decode is deleted alone, and garbage
// collection finds its files. A manifest key outside a checkpoint
// directory, or a manifest naming a file outside its own directory, is
// ErrCorrupt, and nothing is deleted.
func deleteCheckpoint(ctx context.Context, s Store, manifest string) (int, error) {
	if err := checkManifestKeys(manifest, nil); err != nil {
		return 0, err
	}
	m, err := LoadManifest(ctx, s, manifest)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	n := 0
	if err == nil {
		if err := checkManifestKeys(manifest, m); err != nil {
			return 0, err
		}
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
