package viewsvc

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sstOut is an SST file being written for a checkpoint or a boot: a Pebble
// sstable writer over a local file that counts and checksums (CRC-32C) every
// byte it writes.
type sstOut struct {
	path    string
	w       *sstable.Writer
	f       *countingFile
	entries int64
	first   []byte // first key
}

// countingFile is an objstorage.Writable over a local file.
type countingFile struct {
	f   *os.File
	buf *bufio.Writer
	n   int64
	crc uint32
}

var _ objstorage.Writable = (*countingFile)(nil)

func (c *countingFile) Write(p []byte) error {
	c.crc = crc32.Update(c.crc, castagnoli, p)
	c.n += int64(len(p))
	_, err := c.buf.Write(p)
	return err
}

func (c *countingFile) Finish() error {
	if err := c.buf.Flush(); err != nil {
		_ = c.f.Close()
		return err
	}
	return c.f.Close()
}

func (c *countingFile) Abort() { _ = c.f.Close() }

// sstWriterOptions are the options of SST files to ingest: the view's
// comparer, bloom filters and block size, and the table format of db, which
// every view built from this code can ingest. Checkpoint files (export) use
// zstd; files written while booting use the view's own compression.
func sstWriterOptions(cfg Config, db *pebble.DB, export bool) sstable.WriterOptions {
	opts := pebbleOptions(cfg)
	if opts.Cache != nil {
		opts.Cache.Unref()
		opts.Cache = nil
	}
	wo := opts.MakeWriterOptions(len(opts.Levels)-1, db.TableFormat())
	if export {
		wo.Compression = sstable.ZstdCompression
	}
	return wo
}

func newSSTOut(path string, wo sstable.WriterOptions) (*sstOut, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cf := &countingFile{f: f, buf: bufio.NewWriterSize(f, 1<<20)}
	return &sstOut{path: path, w: sstable.NewWriter(cf, wo), f: cf}, nil
}

func (o *sstOut) set(key, value []byte) error {
	if o.entries == 0 {
		o.first = append(o.first[:0], key...)
	}
	o.entries++
	return o.w.Set(key, value)
}

// estimatedSize is the file's size so far, before the index and footer.
func (o *sstOut) estimatedSize() int64 { return int64(o.w.Raw().EstimatedSize()) }

// close finishes the file; size and crc are then final.
func (o *sstOut) close() error { return o.w.Close() }

// abort drops the file.
func (o *sstOut) abort() {
	_ = o.w.Close()
	_ = os.Remove(o.path)
}

// sstIn reads a local SST file in key order.
type sstIn struct {
	r  *sstable.Reader
	it sstable.Iterator
}

func openSST(ctx context.Context, cfg Config, path string) (*sstIn, error) {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return nil, err
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	opts := pebbleOptions(cfg)
	if opts.Cache != nil {
		opts.Cache.Unref()
		opts.Cache = nil
	}
	r, err := sstable.NewReader(ctx, readable, opts.MakeReaderOptions())
	if err != nil {
		_ = readable.Close()
		return nil, fmt.Errorf("open sstable %s: %w", path, err)
	}
	it, err := r.NewIter(sstable.NoTransforms, nil, nil, sstable.AssertNoBlobHandles)
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("open sstable %s: %w", path, err)
	}
	return &sstIn{r: r, it: it}, nil
}

// each calls fn for every key and value, in order. Both are valid only
// during the call.
func (s *sstIn) each(fn func(key, value []byte) error) error {
	for kv := s.it.First(); kv != nil; kv = s.it.Next() {
		if kv.Kind() != pebble.InternalKeyKindSet {
			return fmt.Errorf("unexpected key kind %v in checkpoint file", kv.Kind())
		}
		val, _, err := kv.Value(nil)
		if err != nil {
			return err
		}
		if err := fn(kv.K.UserKey, val); err != nil {
			return err
		}
	}
	return s.it.Error()
}

func (s *sstIn) close() {
	_ = s.it.Close()
	_ = s.r.Close()
}
