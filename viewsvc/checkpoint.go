package viewsvc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"golang.org/x/sync/errgroup"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// Kinds of checkpoint data files (snapshot.FileRef.Kind). See DESIGN.md,
// "Checkpoints".
const (
	// KindFacts: the hash-first fact table ('a' or 'c'), one hash sub-range
	// [HashStart, HashEnd) per file, every version of every fact in it.
	KindFacts = "facts"
	// KindOrdered: the body-ordered table ('b' or 'd'); the file covers the
	// checkpoint's whole range.
	KindOrdered = "ordered"
	// KindRecords: transaction records ('i'); the whole range.
	KindRecords = "records"
	// KindPending: held transactions ('x'); the same in every view at one
	// index, whatever its space or range.
	KindPending = "pending"
)

// spaceName is a space's name in the bucket.
func spaceName(s Space) string {
	if s == SpacePO {
		return "po"
	}
	return "sp"
}

// CheckpointNow writes a checkpoint of the view at its last applied index
// and lists it in the catalog. It runs while the view keeps applying: the
// checkpoint is read from one Pebble snapshot. Only one checkpoint is written
// at a time; a call waits for the one in progress.
func (v *View) CheckpointNow(ctx context.Context) (snapshot.CheckpointRef, error) {
	if v.cfg.Store == nil {
		return snapshot.CheckpointRef{}, ErrNoStore
	}
	if err := v.acquire(); err != nil {
		return snapshot.CheckpointRef{}, err
	}
	defer v.readers.Done()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(v.closeCtx, stop)()
	v.ckMu.Lock()
	defer v.ckMu.Unlock()
	ref, err := v.checkpoint(ctx)
	v.mu.Lock()
	v.checkpointErr = err
	if err == nil && ref.Index > v.checkpointIndex {
		v.checkpointIndex = ref.Index
	}
	v.mu.Unlock()
	v.met.checkpointed(ref, err)
	if err != nil {
		if ctx.Err() != nil {
			return ref, fmt.Errorf("checkpoint: %w", ctx.Err())
		}
		return ref, fmt.Errorf("%w: %w", ErrCheckpointFailed, err)
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], ref.Index)
	if err := v.db.Set(metaCheckpoint, buf[:], pebble.NoSync); err != nil {
		return ref, fmt.Errorf("record checkpoint: %w", err)
	}
	return ref, nil
}

// checkpoint exports the view at one snapshot: data files first, then the
// manifest, then the catalog entry.
func (v *View) checkpoint(ctx context.Context) (snapshot.CheckpointRef, error) {
	start := time.Now()
	snap := v.db.NewSnapshot()
	defer closeQuietly(snap)
	index, logVersion, err := readApplied(snap)
	if err != nil {
		return snapshot.CheckpointRef{}, err
	}
	if index == 0 {
		return snapshot.CheckpointRef{}, errors.New("nothing applied yet")
	}
	space := spaceName(v.cfg.Space)
	rng := snapshot.Range{Start: v.cfg.Range.Start, End: v.cfg.Range.End}
	prefix := snapshot.CheckpointDir(space, rng, index)
	tmp, err := os.MkdirTemp(v.cfg.Dir, "checkpoint-export-")
	if err != nil {
		return snapshot.CheckpointRef{}, err
	}
	defer os.RemoveAll(tmp)

	m := &snapshot.Manifest{
		Cluster: v.cfg.Cluster, Space: space, Start: rng.Start, End: rng.End,
		Index: index, LogVersion: logVersion, Created: time.Now().UTC(),
	}
	wo := sstWriterOptions(v.cfg, v.db, true)
	ft, ot := keys.FactsTable(v.cfg.Space), keys.OrderedTable(v.cfg.Space)
	tables := []struct {
		kind  string
		table byte
	}{{KindFacts, ft}, {KindOrdered, ot}, {KindRecords, keys.TableTxRecord}, {KindPending, keys.TablePending}}
	// The tables export two at a time, each from its own iterator over the
	// snapshot: the two big ones (facts and ordered) then overlap, and
	// compressing one while uploading the other keeps both cores busy.
	type result struct {
		files []snapshot.FileRef
		raw   int64
	}
	results := make([]result, len(tables))
	g, gctx := errgroup.WithContext(ctx) // a failed table stops the other
	g.SetLimit(2)
	for i, t := range tables {
		g.Go(func() (err error) {
			r := &results[i]
			if r.files, r.raw, err = v.exportTable(gctx, snap, tmp, prefix, t.kind, t.table, wo); err != nil {
				return fmt.Errorf("export %s: %w", t.kind, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return snapshot.CheckpointRef{}, err
	}
	var raw int64
	for _, r := range results {
		raw += r.raw
		m.Files = append(m.Files, r.files...)
	}
	manifestKey := prefix + snapshot.ManifestName
	if err := snapshot.PutManifest(ctx, v.cfg.Store, manifestKey, m); err != nil {
		return snapshot.CheckpointRef{}, fmt.Errorf("put manifest: %w", err)
	}
	ref := snapshot.CheckpointRef{
		Cluster: v.cfg.Cluster, Space: space, Start: rng.Start, End: rng.End, Index: index,
		Manifest: manifestKey, Bytes: m.Bytes(), Created: m.Created,
	}
	if _, err := snapshot.UpdateCheckpointCatalog(ctx, v.cfg.Store, func(c *snapshot.CheckpointCatalog) error {
		c.Add(ref)
		return nil
	}); err != nil {
		return snapshot.CheckpointRef{}, fmt.Errorf("list in catalog: %w", err)
	}
	v.log.Info("wrote checkpoint", "index", index, "manifest", manifestKey, "files", len(m.Files),
		"bytes", m.Bytes(), "raw_bytes", raw, "took", time.Since(start))
	return ref, nil
}

// readApplied reads the applied index and log version from a snapshot.
func readApplied(snap *pebble.Snapshot) (uint64, uint32, error) {
	var index uint64
	version := uint32(1)
	for _, k := range [][]byte{metaApplied, metaLogVersion} {
		val, closer, err := snap.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if len(val) == 8 {
			index = binary.BigEndian.Uint64(val)
		} else if len(val) == 4 {
			version = binary.BigEndian.Uint32(val)
		}
		_ = closer.Close()
	}
	return index, version, nil
}

// exportTable writes one table of the snapshot as SST files of about
// CheckpointFileBytes each and uploads them. Fact files are cut only where
// the hash changes, so each covers a hash sub-range with all its facts'
// versions; together they tile the view's range. It returns the files and
// the bytes of keys and values written.
func (v *View) exportTable(ctx context.Context, snap *pebble.Snapshot, tmp, prefix, kind string, table byte, wo sstable.WriterOptions) ([]snapshot.FileRef, int64, error) {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
	if err != nil {
		return nil, 0, err
	}
	defer closeQuietly(it)
	var files []snapshot.FileRef
	var out *sstOut
	var raw int64
	hashStart := v.cfg.Range.Start
	finish := func(hashEnd uint64) error {
		if out == nil {
			return nil
		}
		o := out
		out = nil
		if err := o.close(); err != nil {
			_ = os.Remove(o.path)
			return err
		}
		ref := snapshot.FileRef{
			Key: fmt.Sprintf("%s%s-%04d.sst", prefix, kind, len(files)), Kind: kind,
			HashStart: v.cfg.Range.Start, HashEnd: v.cfg.Range.End,
			Size: o.f.n, CRC32C: o.f.crc, Entries: o.entries,
		}
		if kind == KindFacts {
			ref.HashStart, ref.HashEnd = hashStart, hashEnd
			hashStart = hashEnd
		}
		err := v.upload(ctx, o.path, ref)
		_ = os.Remove(o.path)
		if err != nil {
			return err
		}
		files = append(files, ref)
		return nil
	}
	var lastHash uint64
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		key := it.Key()
		val, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, err
		}
		if out != nil && out.estimatedSize() >= v.cfg.CheckpointFileBytes {
			if kind != KindFacts {
				if err := finish(0); err != nil {
					return nil, 0, err
				}
			} else if h := binary.BigEndian.Uint64(key[1:]); h != lastHash {
				if err := finish(h); err != nil {
					return nil, 0, err
				}
			}
		}
		if kind == KindFacts {
			lastHash = binary.BigEndian.Uint64(key[1:])
		}
		if out == nil {
			path := filepath.Join(tmp, fmt.Sprintf("%s-%04d.sst", kind, len(files)))
			if out, err = newSSTOut(path, wo); err != nil {
				return nil, 0, err
			}
		}
		if err := out.set(key, val); err != nil {
			out.abort()
			return nil, 0, err
		}
		raw += int64(len(key) + len(val))
	}
	if err := it.Error(); err != nil {
		if out != nil {
			out.abort()
		}
		return nil, 0, err
	}
	if err := finish(v.cfg.Range.End); err != nil {
		return nil, 0, err
	}
	return files, raw, nil
}

// upload puts a local file under ref.Key, streaming it from disk.
func (v *View) upload(ctx context.Context, path string, ref snapshot.FileRef) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := v.cfg.Store.Put(ctx, ref.Key, f, ref.Size); err != nil {
		return fmt.Errorf("upload %s: %w", ref.Key, err)
	}
	return nil
}

// checkpointLoop writes a checkpoint whenever the policy in Config asks for
// one, until ctx is done. A failure (the store is down, say) is logged and
// retried later; it never stops applying or serving.
func (v *View) checkpointLoop(ctx context.Context) {
	if v.cfg.Store == nil || v.cfg.CheckpointInterval <= 0 {
		return
	}
	// Start the clock at a random point of an interval, so that views
	// started together spread their checkpoints instead of all writing at
	// once.
	last := time.Now().Add(-rand.N(v.cfg.CheckpointInterval))
	v.mu.Lock()
	lastIndex := v.checkpointIndex
	v.mu.Unlock()
	delay := backoff.New(v.cfg.RetryMin, max(v.cfg.RetryMax, v.cfg.CheckpointInterval))
	wait := v.cfg.CheckpointInterval / 4
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = v.cfg.CheckpointInterval / 4
		applied := v.LastApplied()
		if time.Since(last) < v.cfg.CheckpointInterval || applied <= lastIndex || applied-lastIndex < v.cfg.CheckpointEntries {
			continue
		}
		ref, err := v.CheckpointNow(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = delay.Next()
			v.log.Warn("checkpoint failed; retrying later", "err", err, "retry_in", wait)
			continue
		}
		delay.Reset()
		last, lastIndex = time.Now(), ref.Index
	}
}
