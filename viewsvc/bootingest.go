package viewsvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble/v2/sstable"
	"golang.org/x/sync/errgroup"

	"github.com/akutan/akutan/viewsvc/internal/keys"
)

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
