package viewsvc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/sstable"
	"golang.org/x/sync/errgroup"

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

// downloadAll fetches the files, BootParallelism at a time, and checks each
// one's size and CRC-32C. A missing or mismatching file makes its checkpoint
// corrupt.
func (v *View) downloadAll(ctx context.Context, all []*download) error {
	var total int64
	for _, d := range all {
		total += d.ref.Size
	}
	v.mu.Lock()
	v.bootDone, v.bootTotal = 0, total
	v.mu.Unlock()
	// The first failure cancels the other downloads; a corrupt object is
	// reported ahead of the cancellations and network errors it causes.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(v.cfg.BootParallelism, len(all)))
	var mu sync.Mutex
	var corruptErr error
	for _, d := range all {
		g.Go(func() error {
			err := v.download(gctx, d)
			var ce *corruptError
			if errors.As(err, &ce) {
				mu.Lock()
				corruptErr = cmp.Or(corruptErr, err)
				mu.Unlock()
			}
			return err
		})
	}
	err := g.Wait()
	return cmp.Or(corruptErr, err)
}

// progressWriter counts downloaded bytes into the view's boot progress.
type progressWriter struct {
	v *View
	n int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.n >= 1<<20 {
		p.flush()
	}
	return len(b), nil
}

func (p *progressWriter) flush() {
	p.v.mu.Lock()
	p.v.bootDone += p.n
	p.v.mu.Unlock()
	p.n = 0
}

func (v *View) download(ctx context.Context, d *download) error {
	manifest := d.p.ref.Manifest
	rc, _, err := v.cfg.Store.Get(ctx, d.ref.Key, 0, -1)
	if errors.Is(err, snapshot.ErrNotFound) {
		return corrupt(manifest, fmt.Errorf("file %s is missing", d.ref.Key))
	} else if err != nil {
		return fmt.Errorf("get %s: %w", d.ref.Key, err)
	}
	defer rc.Close()
	f, err := os.Create(d.path)
	if err != nil {
		return err
	}
	h := crc32.New(castagnoli)
	pw := &progressWriter{v: v}
	// Read one byte past the expected size to notice a longer object.
	n, err := io.Copy(io.MultiWriter(f, h, pw), io.LimitReader(rc, d.ref.Size+1))
	pw.flush()
	cerr := f.Close()
	switch {
	case err != nil:
		return fmt.Errorf("download %s: %w", d.ref.Key, err)
	case cerr != nil:
		return cerr
	case n != d.ref.Size:
		return corrupt(manifest, fmt.Errorf("file %s has %d bytes, manifest says %d: %w", d.ref.Key, n, d.ref.Size, snapshot.ErrCorrupt))
	case h.Sum32() != d.ref.CRC32C:
		return corrupt(manifest, fmt.Errorf("file %s has CRC-32C %08x, manifest says %08x: %w", d.ref.Key, h.Sum32(), d.ref.CRC32C, snapshot.ErrCorrupt))
	}
	return nil
}

// ingestPieces turns the downloaded files into the view's tables at nmin.
//
//   - A fact or ordered file of a piece at nmin that lies wholly inside the
//     piece's owned ranges is ingested as it is.
//   - Any other fact or ordered file is rewritten, keeping the keys whose
//     hash (in the key for facts, recomputed from the body for ordered
//     keys) the piece owns and whose version is at most nmin.
//   - Transaction records of all pieces are merged into one table, keeping
//     the (position, body) pairs whose body hash the piece owns, from
//     records of indexes at most nmin that were not still pending at nmin
//     (a held transaction writes its record when it is decided, which may
//     be after nmin). A single piece at nmin that owns its whole range is
//     ingested as it is.
//   - The pending table comes from base, a piece at nmin: held transactions
//     are stored whole by every view, whatever its range.
func (v *View) ingestPieces(ctx context.Context, dir string, pieces []*piece, base *piece, nmin uint64) error {
	wo := sstWriterOptions(v.cfg, v.db, false)
	space := v.cfg.Space
	pending := map[uint64]bool{}
	var records [][]*download // per piece
	for _, p := range pieces {
		var paths []string
		var recs []*download
		var filter []*download
		for _, d := range p.files {
			switch d.ref.Kind {
			case KindPending:
				in, err := openSST(ctx, v.cfg, d.path)
				if err != nil {
					return corrupt(p.ref.Manifest, err)
				}
				err = in.each(func(k, _ []byte) error {
					if len(k) != 9 || k[0] != keys.TablePending {
						return fmt.Errorf("bad pending key %x", k)
					}
					pending[binary.BigEndian.Uint64(k[1:])] = true
					return nil
				})
				in.close()
				if err != nil {
					return corrupt(p.ref.Manifest, err)
				}
				paths = append(paths, d.path)
			case KindRecords:
				recs = append(recs, d)
			case KindFacts, KindOrdered:
				r := d.ref
				if r.Kind == KindOrdered {
					r.HashStart, r.HashEnd = p.m.Start, p.m.End
				}
				if p.m.Index == nmin && p.ownsAll(r.HashStart, r.HashEnd) {
					paths = append(paths, d.path)
					continue
				}
				filter = append(filter, d)
			}
		}
		filtered, err := v.filterFiles(ctx, filter, wo, nmin)
		if err != nil {
			return err
		}
		paths = append(paths, filtered...)
		records = append(records, recs)
		if len(paths) > 0 {
			if err := v.db.Ingest(ctx, paths); err != nil {
				return fmt.Errorf("ingest checkpoint %s: %w", p.ref.Manifest, err)
			}
		}
	}
	if len(pieces) == 1 && pieces[0].m.Index == nmin && pieces[0].ownsAll(pieces[0].m.Start, pieces[0].m.End) {
		var paths []string
		for _, d := range records[0] {
			paths = append(paths, d.path)
		}
		if len(paths) > 0 {
			return v.db.Ingest(ctx, paths)
		}
		return nil
	}
	out := filepath.Join(dir, "records-merged.sst")
	n, err := v.mergeRecords(ctx, pieces, records, out, wo, space, nmin, pending)
	if err != nil {
		return err
	}
	if n > 0 {
		return v.db.Ingest(ctx, []string{out})
	}
	return nil
}

// filterFiles runs filterFile on each of files, on up to two cores (the
// work is decompressing, hashing and compressing), and returns the paths of
// the non-empty results.
func (v *View) filterFiles(ctx context.Context, files []*download, wo sstable.WriterOptions, nmin uint64) ([]string, error) {
	kept := make([]int64, len(files))
	g, gctx := errgroup.WithContext(ctx) // the first failure stops the rest
	g.SetLimit(min(2, v.cfg.BootParallelism))
	for i, d := range files {
		g.Go(func() (err error) {
			kept[i], err = v.filterFile(gctx, d, d.path+".filtered", wo, nmin)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var paths []string
	for i, d := range files {
		if kept[i] > 0 {
			paths = append(paths, d.path+".filtered")
		}
	}
	return paths, nil
}

// filterFile rewrites a fact or ordered file keeping the keys the piece owns
// at versions up to nmin; it returns how many it kept.
func (v *View) filterFile(ctx context.Context, d *download, out string, wo sstable.WriterOptions, nmin uint64) (int64, error) {
	in, err := openSST(ctx, v.cfg, d.path)
	if err != nil {
		return 0, corrupt(d.p.ref.Manifest, err)
	}
	defer in.close()
	w, err := newSSTOut(out, wo)
	if err != nil {
		return 0, err
	}
	space := v.cfg.Space
	facts := d.ref.Kind == KindFacts
	table := keys.OrderedTable(space)
	if facts {
		table = keys.FactsTable(space)
	}
	var werr error
	err = in.each(func(k, val []byte) error {
		n := keys.Split(k)
		if len(k) == 0 || k[0] != table || n+keys.VersionLen != len(k) {
			return fmt.Errorf("file %s: bad key %x", d.ref.Key, k)
		}
		if keys.Version(k[n:]) > nmin {
			return nil
		}
		var h uint64
		if facts {
			h = binary.BigEndian.Uint64(k[1:])
		} else {
			h = keys.BodyHash(space, k[1:n])
		}
		if !d.p.owns(h) {
			return nil
		}
		if err := w.set(k, val); err != nil {
			werr = err
			return err
		}
		return nil
	})
	if err != nil {
		w.abort()
		if werr != nil {
			return 0, werr
		}
		return 0, corrupt(d.p.ref.Manifest, err)
	}
	if err := w.close(); err != nil {
		return 0, err
	}
	if w.entries == 0 {
		_ = os.Remove(out)
	}
	return w.entries, nil
}

// recordStream reads one piece's record files in key order.
type recordStream struct {
	p       *piece
	files   []*download
	in      *sstIn
	started bool // in is positioned
	key     []byte
	val     []byte
	done    bool
}

func (s *recordStream) next(ctx context.Context, cfg Config) error {
	for {
		if s.in != nil {
			step := s.in.it.Next
			if !s.started {
				step = s.in.it.First
			}
			s.started = true
			kv := step()
			if kv != nil {
				val, _, err := kv.Value(nil)
				if err != nil {
					return corrupt(s.p.ref.Manifest, err)
				}
				s.key = append(s.key[:0], kv.K.UserKey...)
				s.val = append(s.val[:0], val...)
				return nil
			}
			if err := s.in.it.Error(); err != nil {
				return corrupt(s.p.ref.Manifest, err)
			}
			s.in.close()
			s.in = nil
		}
		if len(s.files) == 0 {
			s.done = true
			return nil
		}
		in, err := openSST(ctx, cfg, s.files[0].path)
		if err != nil {
			return corrupt(s.p.ref.Manifest, err)
		}
		s.files = s.files[1:]
		s.in, s.started = in, false
	}
}

// mergeRecords writes the merged transaction-record table (see
// ingestPieces) and returns how many records it holds.
func (v *View) mergeRecords(ctx context.Context, pieces []*piece, files [][]*download, out string, wo sstable.WriterOptions, space Space, nmin uint64, pending map[uint64]bool) (int64, error) {
	var streams []*recordStream
	defer func() {
		for _, s := range streams {
			if s.in != nil {
				s.in.close()
			}
		}
	}()
	for i, p := range pieces {
		s := &recordStream{p: p, files: files[i]}
		streams = append(streams, s)
		if err := s.next(ctx, v.cfg); err != nil {
			return 0, err
		}
	}
	w, err := newSSTOut(out, wo)
	if err != nil {
		return 0, err
	}
	type pair struct {
		pos  uint64
		body []byte
	}
	var pairs []pair
	var rec, key []byte
	for {
		var minKey []byte
		for _, s := range streams {
			if !s.done && (minKey == nil || bytes.Compare(s.key, minKey) < 0) {
				minKey = s.key
			}
		}
		if minKey == nil {
			break
		}
		key = append(key[:0], minKey...)
		if len(key) != 9 || key[0] != keys.TableTxRecord {
			w.abort()
			return 0, fmt.Errorf("bad transaction record key %x", key)
		}
		tx := binary.BigEndian.Uint64(key[1:])
		keep := tx <= nmin && !pending[tx]
		pairs = pairs[:0]
		for _, s := range streams {
			if s.done || !bytes.Equal(s.key, key) {
				continue
			}
			if keep {
				err := eachRecordPair(s.val, func(pos uint64, body []byte) {
					if s.p.owns(keys.BodyHash(space, body)) {
						pairs = append(pairs, pair{pos, bytes.Clone(body)})
					}
				})
				if err != nil {
					w.abort()
					return 0, corrupt(s.p.ref.Manifest, fmt.Errorf("record %d: %w", tx, err))
				}
			}
			if err := s.next(ctx, v.cfg); err != nil {
				w.abort()
				return 0, err
			}
		}
		if len(pairs) == 0 {
			continue
		}
		// The applier appends a record's facts in insert order, which is
		// position order; keep that order so the result is the same bytes.
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].pos < pairs[j].pos })
		rec = rec[:0]
		for _, p := range pairs {
			rec = keys.AppendTxRecord(rec, p.pos, p.body)
		}
		if err := w.set(key, rec); err != nil {
			w.abort()
			return 0, err
		}
	}
	if err := w.close(); err != nil {
		return 0, err
	}
	if w.entries == 0 {
		_ = os.Remove(out)
	}
	return w.entries, nil
}

// eachRecordPair calls fn for each (position, body) pair of a transaction
// record.
func eachRecordPair(rec []byte, fn func(pos uint64, body []byte)) error {
	for len(rec) > 0 {
		pos, n := binary.Uvarint(rec)
		if n <= 0 {
			return errors.New("bad transaction record")
		}
		rec = rec[n:]
		l, n := binary.Uvarint(rec)
		if n <= 0 || uint64(len(rec)-n) < l {
			return errors.New("bad transaction record")
		}
		fn(pos, rec[n:n+int(l)])
		rec = rec[n+int(l):]
	}
	return nil
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
