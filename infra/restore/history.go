package restore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/snapshot"
)

// Progress reports a long step: bytes done of total.
type Progress func(step string, done, total int64)

// copyHistory makes dst a new timeline that shares src's history through
// index n: every archived segment up to n (the last one cut at n) and the
// checkpoints the plans use, then the two catalogs, last, so that an
// interrupted copy leaves no catalog behind. dst must hold no catalog: a
// restore never writes over existing history.
func copyHistory(ctx context.Context, src, dst snapshot.Store, lc *snapshot.LogCatalog, plans []backup.Plan, n uint64, progress Progress) error {
	for _, key := range []string{snapshot.LogCatalogKey, snapshot.CheckpointCatalogKey} {
		if _, err := dst.Head(ctx, key); err == nil {
			return fmt.Errorf("the target store already holds %s: restore never writes over existing history; choose a new prefix", key)
		}
	}
	var total, done int64
	var segs []snapshot.SegmentRef
	for _, s := range lc.Segments {
		if s.First <= n {
			segs = append(segs, s)
			total += s.Size
		}
	}
	var ckpts []*snapshot.Manifest
	var refs []snapshot.CheckpointRef
	seen := map[string]bool{}
	for _, p := range plans {
		for _, c := range p.Checkpoints {
			if seen[c.Manifest] {
				continue
			}
			seen[c.Manifest] = true
			m, err := snapshot.LoadManifest(ctx, src, c.Manifest)
			if err != nil {
				return fmt.Errorf("checkpoint %s: %w", c.Manifest, err)
			}
			ckpts, refs = append(ckpts, m), append(refs, c)
			total += m.Bytes()
		}
	}

	newLog := &snapshot.LogCatalog{Format: snapshot.CatalogFormat}
	for _, s := range segs {
		if s.Last <= n {
			if err := copyObject(ctx, src, dst, s.Key, s.Size, s.CRC32C); err != nil {
				return err
			}
		} else {
			// The segment straddles n: keep its entries through n.
			entries, err := snapshot.ReadSegment(ctx, src, s)
			if err != nil {
				return err
			}
			obj, err := snapshot.EncodeSegment(entries[:n-s.First+1])
			if err != nil {
				return err
			}
			var raw int64
			for _, e := range entries[:n-s.First+1] {
				raw += int64(len(e.Data))
			}
			s = snapshot.SegmentRef{First: s.First, Last: n, Key: snapshot.SegmentKey(s.First, n),
				Size: int64(len(obj)), CRC32C: snapshot.CRC32C(obj), RawBytes: raw}
			if _, err := dst.Put(ctx, s.Key, bytes.NewReader(obj), int64(len(obj))); err != nil {
				return err
			}
		}
		if err := newLog.Add(s); err != nil {
			return err
		}
		done += s.Size
		progress("copy history", done, total)
	}
	for i, m := range ckpts {
		for _, f := range m.Files {
			if err := copyObject(ctx, src, dst, f.Key, f.Size, f.CRC32C); err != nil {
				return err
			}
			done += f.Size
			progress("copy history", done, total)
		}
		if err := snapshot.PutManifest(ctx, dst, refs[i].Manifest, m); err != nil {
			return fmt.Errorf("checkpoint %s: %w", refs[i].Manifest, err)
		}
	}
	if _, err := snapshot.UpdateLogCatalog(ctx, dst, func(c *snapshot.LogCatalog) error {
		*c = *newLog
		return nil
	}); err != nil {
		return err
	}
	_, err := snapshot.UpdateCheckpointCatalog(ctx, dst, func(c *snapshot.CheckpointCatalog) error {
		for _, r := range refs {
			c.Add(r)
		}
		return nil
	})
	return err
}

// copyObject copies one object, verifying it on the way.
func copyObject(ctx context.Context, src, dst snapshot.Store, key string, size int64, sum uint32) error {
	data, _, err := snapshot.ReadAll(ctx, src, key)
	if err != nil {
		return fmt.Errorf("copy %s: %w", key, err)
	}
	if int64(len(data)) != size || snapshot.CRC32C(data) != sum {
		return fmt.Errorf("copy %s: %d bytes with CRC-32C %08x, expected %d bytes with %08x: %w",
			key, len(data), snapshot.CRC32C(data), size, sum, snapshot.ErrCorrupt)
	}
	_, err = dst.Put(ctx, key, bytes.NewReader(data), size)
	return err
}
