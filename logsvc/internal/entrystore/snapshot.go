package entrystore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot stream format, version 1:
//
//	magic "AKLOGSN1"
//	uvarint len, JSON Meta
//	for each index First..Last: uvarint len, entry bytes
//	for each guard claim: uvarint len, key (non-empty), uvarint 8, index
//	uvarint 0 (end of claims)
//	magic "AKLOGEND", u32 BE CRC-32C of every byte before it
//
// The trailer catches truncation and corruption before anything is applied.
var (
	snapMagic   = []byte("AKLOGSN1")
	snapTrailer = []byte("AKLOGEND")
	crcTable    = crc32.MakeTable(crc32.Castagnoli)
)

// maxSnapEntry bounds one entry in a snapshot stream, to reject garbage
// lengths before allocating.
const maxSnapEntry = 256 << 20

// Snapshot is a point-in-time view of the store for writing out.
type Snapshot struct {
	snap *pebble.Snapshot
	meta Meta
}

// Snapshot captures the committed state. It is cheap; WriteTo does the work
// and may run while the store keeps committing.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &Snapshot{snap: s.db.NewSnapshot(), meta: s.meta.clone()}
}

// Meta returns the metadata the snapshot holds.
func (sn *Snapshot) Meta() Meta { return sn.meta }

// Close releases the snapshot.
func (sn *Snapshot) Close() error { return sn.snap.Close() }

// WriteTo writes the snapshot stream to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	crc := crc32.New(crcTable)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	mv, err := json.Marshal(sn.meta)
	if err != nil {
		return 0, err
	}
	bw.Write(snapMagic)
	writeChunk(bw, mv)
	if sn.meta.Last >= sn.meta.First {
		it, err := sn.snap.NewIter(&pebble.IterOptions{LowerBound: entryKey(sn.meta.First), UpperBound: entryKey(sn.meta.Last + 1)})
		if err != nil {
			return 0, err
		}
		next := sn.meta.First
		for ok := it.First(); ok; ok = it.Next() {
			if idx := binary.BigEndian.Uint64(it.Key()[1:]); idx != next {
				it.Close()
				return 0, fmt.Errorf("%w: snapshot expected entry %d, found %d", ErrCorrupt, next, idx)
			}
			v, err := it.ValueAndErr()
			if err == nil {
				_, n := binary.Uvarint(v)
				if n <= 0 {
					err = fmt.Errorf("%w: entry %d has no header", ErrCorrupt, next)
				}
				v = v[max(n, 0):]
			}
			if err != nil {
				it.Close()
				return 0, fmt.Errorf("snapshot entry %d: %w", next, err)
			}
			writeChunk(bw, v)
			next++
		}
		err = it.Close()
		if err == nil && next != sn.meta.Last+1 {
			err = fmt.Errorf("%w: snapshot ended at entry %d, want %d", ErrCorrupt, next-1, sn.meta.Last)
		}
		if err != nil {
			return 0, err
		}
	}
	git, err := sn.snap.NewIter(&pebble.IterOptions{LowerBound: []byte{guardPrefix}, UpperBound: []byte{guardPrefix + 1}})
	if err != nil {
		return 0, err
	}
	for ok := git.First(); ok; ok = git.Next() {
		v, err := git.ValueAndErr()
		if err != nil {
			git.Close()
			return 0, fmt.Errorf("snapshot guard: %w", err)
		}
		writeChunk(bw, git.Key()[1:])
		writeChunk(bw, v)
	}
	if err := git.Close(); err != nil {
		return 0, err
	}
	writeChunk(bw, nil)
	bw.Write(snapTrailer)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err = w.Write(sum[:])
	return cw.n + 4, err
}

func writeChunk(w *bufio.Writer, b []byte) {
	var l [binary.MaxVarintLen64]byte
	w.Write(l[:binary.PutUvarint(l[:], uint64(len(b)))])
	w.Write(b)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrBadSnapshot means a snapshot stream is malformed, truncated or fails
// its checksum.
var ErrBadSnapshot = errors.New("bad log snapshot")

// Restore replaces the store's whole state with the snapshot read from r.
// check, when not nil, may refuse the snapshot's metadata before anything
// changes (e.g. a log version this replica does not support).
func (s *Store) Restore(r io.Reader, check func(Meta) error) error {
	crc := crc32.New(crcTable)
	br := &crcReader{r: bufio.NewReaderSize(r, 1<<20), crc: crc}
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, snapMagic) {
		return fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	mv, err := readChunk(br)
	if err != nil {
		return fmt.Errorf("%w: metadata: %v", ErrBadSnapshot, err)
	}
	var meta Meta
	if err := json.Unmarshal(mv, &meta); err != nil {
		return fmt.Errorf("%w: metadata: %v", ErrBadSnapshot, err)
	}
	if meta.First == 0 || meta.First > meta.Last+1 {
		return fmt.Errorf("%w: metadata first %d last %d", ErrBadSnapshot, meta.First, meta.Last)
	}
	if meta.Members == nil {
		meta.Members = map[string]string{}
	}
	if check != nil {
		if err := check(meta); err != nil {
			return err
		}
	}

	// Mark the restore first: from here until the final commit, a crash
	// leaves a store that Open treats as empty, and a failure leaves the
	// store broken until the replica restarts and restores again.
	if err := s.db.Set(restoringKey, nil, pebble.Sync); err != nil {
		return fmt.Errorf("mark restore: %w", err)
	}
	if err := s.restoreEntries(br, crc, meta); err != nil {
		s.setBroken(err)
		return err
	}
	return nil
}

func (s *Store) restoreEntries(br *crcReader, crc hash.Hash32, meta Meta) error {
	if err := s.wipe(); err != nil {
		return fmt.Errorf("clear store for restore: %w", err)
	}
	if err := s.db.Set(restoringKey, nil, pebble.Sync); err != nil {
		return fmt.Errorf("mark restore: %w", err)
	}
	b := s.db.NewBatch()
	for i := meta.First; i <= meta.Last && meta.Last >= meta.First; i++ {
		v, err := readChunk(br)
		if err != nil {
			b.Close()
			return fmt.Errorf("%w: entry %d: %v", ErrBadSnapshot, i, err)
		}
		// Header 0: the metadata written last carries RaftApplied.
		if err := b.Set(entryKey(i), append([]byte{0}, v...), nil); err != nil {
			b.Close()
			return err
		}
		if b.Len() > 8<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				b.Close()
				return fmt.Errorf("restore entries through %d: %w", i, err)
			}
			b.Close()
			b = s.db.NewBatch()
		}
	}
	defer b.Close()
	for {
		key, err := readChunk(br)
		if err != nil {
			return fmt.Errorf("%w: guard claims: %v", ErrBadSnapshot, err)
		}
		if len(key) == 0 {
			break
		}
		v, err := readChunk(br)
		if err != nil || len(v) != 8 {
			return fmt.Errorf("%w: guard claim of %q", ErrBadSnapshot, key)
		}
		b.Set(guardKey(key), v, nil)
		b.Set(guardIndexKey(binary.BigEndian.Uint64(v), key), nil, nil)
	}
	trailer := make([]byte, len(snapTrailer))
	if _, err := io.ReadFull(br, trailer); err != nil || !bytes.Equal(trailer, snapTrailer) {
		return fmt.Errorf("%w: missing trailer", ErrBadSnapshot)
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br.r, sum[:]); err != nil {
		return fmt.Errorf("%w: missing checksum", ErrBadSnapshot)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, computed %08x", ErrBadSnapshot, got, want)
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	b.Set(metaKey, mb, nil)
	b.Delete(restoringKey, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit restore: %w", err)
	}
	s.publish(meta)
	return nil
}

// crcReader checksums exactly the bytes consumed, not what the buffer
// below it has read ahead.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

type byteReader interface {
	io.Reader
	io.ByteReader
}

func readChunk(r byteReader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxSnapEntry {
		return nil, fmt.Errorf("chunk of %d bytes is over the limit", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// ReadSnapshotMeta reads only the metadata at the head of a snapshot stream.
func ReadSnapshotMeta(r io.Reader) (Meta, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, snapMagic) {
		return Meta{}, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	mv, err := readChunk(br)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: metadata: %v", ErrBadSnapshot, err)
	}
	var meta Meta
	if err := json.Unmarshal(mv, &meta); err != nil {
		return Meta{}, fmt.Errorf("%w: metadata: %v", ErrBadSnapshot, err)
	}
	return meta, nil
}
