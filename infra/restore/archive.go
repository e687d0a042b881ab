package restore

import (
	"context"
	"fmt"

	"github.com/akutan/akutan/snapshot"
)

// ArchiveReader streams entries from the archive alone, for a cluster that
// no longer exists. Every segment is verified before any of its entries is
// delivered.
type ArchiveReader struct {
	Store   snapshot.Store
	Catalog *snapshot.LogCatalog
	// Through is the last index delivered; Stream returns nil after it.
	Through uint64
}

// Stream calls fn with consecutive entries from `from` through r.Through.
func (r *ArchiveReader) Stream(ctx context.Context, from uint64, fn func(first uint64, entries [][]byte) error) error {
	for next := from; next <= r.Through; {
		ref, ok := r.Catalog.Find(next)
		if !ok {
			return fmt.Errorf("index %d is not in the archive (it holds %d..%d)", next, r.Catalog.FirstArchived(), r.Catalog.ArchivedThrough())
		}
		entries, err := ReadSegment(ctx, r.Store, ref)
		if err != nil {
			return err
		}
		var batch [][]byte
		for _, e := range entries {
			if e.Index >= next && e.Index <= r.Through {
				batch = append(batch, e.Data)
			}
		}
		if err := fn(next, batch); err != nil {
			return err
		}
		next += uint64(len(batch))
	}
	return nil
}

// ReadSegment downloads a segment and checks it against its catalog entry
// and its own checksums.
func ReadSegment(ctx context.Context, s snapshot.Store, ref snapshot.SegmentRef) ([]snapshot.SegmentEntry, error) {
	obj, _, err := snapshot.ReadAll(ctx, s, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("segment %d..%d: %w", ref.First, ref.Last, err)
	}
	if int64(len(obj)) != ref.Size || snapshot.CRC32C(obj) != ref.CRC32C {
		return nil, fmt.Errorf("segment %s: %d bytes with CRC-32C %08x, the catalog says %d bytes with %08x: %w",
			ref.Key, len(obj), snapshot.CRC32C(obj), ref.Size, ref.CRC32C, snapshot.ErrCorrupt)
	}
	entries, err := snapshot.DecodeSegment(obj)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", ref.Key, err)
	}
	if entries[0].Index != ref.First || entries[len(entries)-1].Index != ref.Last {
		return nil, fmt.Errorf("segment %s holds %d..%d, the catalog says %d..%d: %w", ref.Key,
			entries[0].Index, entries[len(entries)-1].Index, ref.First, ref.Last, snapshot.ErrCorrupt)
	}
	return entries, nil
}
