package viewsvc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// Restore builds a view's data directory at exactly index toIndex from the
// bucket (cfg.Store) and the log, then closes it: the offline half of
// restoring a cluster to a point. It boots from the newest checkpoints
// covering cfg.Range at or below toIndex, replays the log to toIndex, and
// refuses a data directory that is not empty. The log must reach toIndex
// (through the archive if it was discarded).
func Restore(ctx context.Context, cfg Config, log LogReader, toIndex uint64) error {
	if cfg.Store == nil {
		return ErrNoStore
	}
	if toIndex == 0 {
		return errors.New("restore: index 0 is the empty state; nothing to restore")
	}
	if empty, err := dirEmpty(cfg.Dir); err != nil {
		return err
	} else if !empty {
		return fmt.Errorf("restore into %s: %w", cfg.Dir, ErrNotEmpty)
	}
	cfg.StopAt = toIndex
	cfg.CheckpointInterval = 0
	v, err := Open(cfg)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- v.Run(runCtx, log) }()
	werr := v.WaitApplied(ctx, toIndex)
	cancel()
	rerr := <-done
	cerr := v.Close()
	if werr != nil {
		if rerr != nil {
			return fmt.Errorf("restore to %d: %w (%v)", toIndex, werr, rerr)
		}
		return fmt.Errorf("restore to %d: %w", toIndex, werr)
	}
	return cerr
}

// corruptError marks a checkpoint that must not be used: a bad manifest, a
// missing file, a checksum or size that does not match, an unreadable SST.
type corruptError struct {
	manifest string
	err      error
}

func (e *corruptError) Error() string { return fmt.Sprintf("checkpoint %s: %v", e.manifest, e.err) }

func (e *corruptError) Unwrap() error { return e.err }

func corrupt(manifest string, err error) error {
	return &corruptError{manifest: manifest, err: err}
}

// boot fills the new data directory from the bucket: it chooses checkpoints,
// downloads and verifies them, and ingests them, so that the view holds its
// range at some index N; Run then replays from N+1. A corrupt checkpoint is
// reported and skipped, and the choice made again (older checkpoints, or
// replay from 1). Store failures are retried with back-off until ctx ends.
func (v *View) boot(ctx context.Context) error {
	// A boot that was interrupted (the process died) may have ingested
	// part of its data: start from nothing.
	if err := v.wipe(); err != nil {
		return fmt.Errorf("boot: wipe: %w", err)
	}
	skip := map[string]bool{}
	delay := backoff.New(v.cfg.RetryMin, v.cfg.RetryMax)
	for {
		err := v.bootOnce(ctx, skip)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if werr := v.wipe(); werr != nil {
			return fmt.Errorf("boot: %w (and wiping the partial boot: %v)", err, werr)
		}
		var ce *corruptError
		if errors.As(err, &ce) {
			v.log.Error("checkpoint is corrupt; not using it", "manifest", ce.manifest, "err", ce.err)
			skip[ce.manifest] = true
			continue
		}
		v.log.Warn("boot from the bucket failed; retrying", "err", err)
		if err := delay.Wait(ctx); err != nil {
			return err
		}
	}
}

// wipe removes every table but the metadata, undoing a partial boot.
func (v *View) wipe() error {
	b := v.db.NewBatch()
	defer closeQuietly(b)
	_ = b.DeleteRange([]byte{0}, []byte{keys.TableMeta}, nil)
	_ = b.DeleteRange([]byte{keys.TableMeta + 1}, []byte{0xFF}, nil)
	return v.commitDurable(b)
}

// piece is one chosen checkpoint and the parts of the new range it serves.
type piece struct {
	ref   snapshot.CheckpointRef
	m     *snapshot.Manifest
	owned []snapshot.Range // disjoint, sorted
	files []*download
}

// download is one data file to fetch.
type download struct {
	p    *piece
	ref  snapshot.FileRef
	path string
}

func (p *piece) owns(h uint64) bool {
	for _, r := range p.owned {
		if r.Contains(h) {
			return true
		}
	}
	return false
}

// ownsAll reports whether [start, end) lies inside one owned range.
func (p *piece) ownsAll(start, end uint64) bool {
	for _, r := range p.owned {
		if r.Start <= start && (r.End == 0 || (end != 0 && end <= r.End)) {
			return true
		}
	}
	return false
}

func (v *View) bootOnce(ctx context.Context, skip map[string]bool) error {
	start := time.Now()
	space := spaceName(v.cfg.Space)
	want := snapshot.Range{Start: v.cfg.Range.Start, End: v.cfg.Range.End}
	cat, _, err := snapshot.LoadCheckpointCatalog(ctx, v.cfg.Store)
	if errors.Is(err, snapshot.ErrCorrupt) {
		v.log.Error("checkpoint catalog is corrupt; replaying the log from the start", "err", err)
		cat = &snapshot.CheckpointCatalog{}
	} else if err != nil {
		return fmt.Errorf("load checkpoint catalog: %w", err)
	}
	chosen, ok := snapshot.Cover(cat, space, want, v.cfg.StopAt, skip)
	if !ok {
		v.log.Info("no checkpoints cover the range; replaying the log from index 1")
		return v.finishBoot(0, 1)
	}
	pieces, err := v.loadPieces(ctx, chosen, want)
	if err != nil {
		return err
	}
	if len(pieces) == 0 {
		return fmt.Errorf("cover chose %d checkpoints but none serves the range", len(chosen))
	}
	// Boot at the smallest index: every piece can go back to it (drop the
	// versions after it), none can go forward without the log.
	nmin := pieces[0].m.Index
	for _, p := range pieces {
		nmin = min(nmin, p.m.Index)
	}
	var base *piece // a piece at nmin: the log version and pending table
	for _, p := range pieces {
		if p.m.Index == nmin {
			base = p
			break
		}
	}
	dir := filepath.Join(v.cfg.Dir, "checkpoint-boot")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var all []*download
	for _, p := range pieces {
		for _, f := range p.m.Files {
			use := false
			switch f.Kind {
			case KindFacts:
				use = p.owned != nil && overlapsAny(snapshot.Range{Start: f.HashStart, End: f.HashEnd}, p.owned)
			case KindOrdered, KindRecords:
				use = true
			case KindPending:
				use = p == base
			default:
				return corrupt(p.ref.Manifest, fmt.Errorf("file %s has unknown kind %q", f.Key, f.Kind))
			}
			if use {
				d := &download{p: p, ref: f, path: filepath.Join(dir, fmt.Sprintf("%03d-%04d.sst", len(all), len(p.files)))}
				p.files = append(p.files, d)
				all = append(all, d)
			}
		}
	}
	if err := v.downloadAll(ctx, all); err != nil {
		return err
	}
	downloaded := time.Now()
	if err := v.ingestPieces(ctx, dir, pieces, base, nmin); err != nil {
		return err
	}
	var total int64
	for _, d := range all {
		total += d.ref.Size
	}
	v.log.Info("booted from checkpoints", "index", nmin, "checkpoints", len(pieces), "bytes", total,
		"download", downloaded.Sub(start), "ingest", time.Since(downloaded))
	return v.finishBoot(nmin, base.m.LogVersion)
}

func overlapsAny(r snapshot.Range, rs []snapshot.Range) bool {
	for _, o := range rs {
		if r.Overlaps(o) {
			return true
		}
	}
	return false
}

// loadPieces reads the chosen checkpoints' manifests and decides which part
// of want each serves: at every point, the newest chosen checkpoint that
// covers it (the rule snapshot.Cover chose them by).
func (v *View) loadPieces(ctx context.Context, chosen []snapshot.CheckpointRef, want snapshot.Range) ([]*piece, error) {
	var pieces []*piece
	for _, ref := range chosen {
		m, err := snapshot.LoadManifest(ctx, v.cfg.Store, ref.Manifest)
		if errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrNotFound) {
			return nil, corrupt(ref.Manifest, err)
		} else if err != nil {
			return nil, fmt.Errorf("load manifest %s: %w", ref.Manifest, err)
		}
		if m.Space != ref.Space || m.Start != ref.Start || m.End != ref.End || m.Index != ref.Index {
			return nil, corrupt(ref.Manifest, fmt.Errorf("manifest says %s %v at %d, catalog says %s %v at %d",
				m.Space, m.Range(), m.Index, ref.Space, ref.Range(), ref.Index))
		}
		if m.LogVersion < 1 || m.LogVersion > v.cfg.MaxSupportedVersion {
			return nil, corrupt(ref.Manifest, fmt.Errorf("log version %d is not supported (supports up to %d)", m.LogVersion, v.cfg.MaxSupportedVersion))
		}
		pieces = append(pieces, &piece{ref: ref, m: m})
	}
	points := []uint64{want.Start}
	for _, p := range pieces {
		for _, x := range []uint64{p.ref.Start, p.ref.End} {
			if x != 0 && x != want.Start && want.Contains(x) {
				points = append(points, x)
			}
		}
	}
	slices.Sort(points)
	points = slices.Compact(points)
	for i, x := range points {
		end := want.End
		if i+1 < len(points) {
			end = points[i+1]
		}
		var best *piece
		for _, p := range pieces {
			if p.ref.Range().Contains(x) && (best == nil || p.m.Index > best.m.Index) {
				best = p
			}
		}
		if best == nil {
			return nil, fmt.Errorf("no chosen checkpoint covers %#x", x)
		}
		if n := len(best.owned); n > 0 && best.owned[n-1].End == x {
			best.owned[n-1].End = end
		} else {
			best.owned = append(best.owned, snapshot.Range{Start: x, End: end})
		}
	}
	out := pieces[:0]
	for _, p := range pieces {
		if p.owned != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// finishBoot records the index the view booted at, in one synced batch
// that also clears the boot mark, and publishes it.
func (v *View) finishBoot(index uint64, logVersion uint32) error {
	b := v.db.NewBatch()
	defer closeQuietly(b)
	var ib [8]byte
	binary.BigEndian.PutUint64(ib[:], index)
	var vb [4]byte
	binary.BigEndian.PutUint32(vb[:], logVersion)
	_ = b.Set(metaApplied, ib[:], nil)
	_ = b.Set(metaLogVersion, vb[:], nil)
	if index > 0 {
		_ = b.Set(metaCheckpoint, ib[:], nil)
	}
	_ = b.Delete(metaBooting, nil)
	if err := v.commitDurable(b); err != nil {
		return fmt.Errorf("record boot: %w", err)
	}
	v.mu.Lock()
	v.applied, v.logVersion, v.needBoot = index, logVersion, false
	if index > 0 {
		v.checkpointIndex = index
	}
	v.broadcastLocked()
	v.mu.Unlock()
	return nil
}
