package snapshot

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Progress, if set, is called after each object with the bytes checked
	// so far and in all.
	Progress func(done, total int64)
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Key    string
	Reason string
}

func (p Problem) String() string { return p.Key + ": " + p.Reason }

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Segments    int   // segments read
	Checkpoints int   // manifests read
	Files       int   // checkpoint data files read
	Bytes       int64 // bytes read
	Problems    []Problem
}

// OK reports whether Verify found no problem.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

func (r *VerifyReport) problem(key, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
}

// Verify reads everything the catalogs list, without listing the bucket:
// every log segment (size, CRC-32C, its header against the catalog, and
// its internal checksums and entries) and every checkpoint (its manifest
// against the catalog, and each data file's size and CRC-32C). Objects are
// streamed, never held whole in memory. It reports every problem, not
// only the first; the error is for what stops it (the context, or a store
// that fails to answer at all).
func Verify(ctx context.Context, s Store, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{}
	logCat, _, err := LoadLogCatalog(ctx, s)
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, ErrCorrupt) {
			return rep, fmt.Errorf("verify: %w", err)
		}
		rep.problem(LogCatalogKey, "%v", err)
		logCat = &LogCatalog{}
	}
	cpCat, _, err := LoadCheckpointCatalog(ctx, s)
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, ErrCorrupt) {
			return rep, fmt.Errorf("verify: %w", err)
		}
		rep.problem(CheckpointCatalogKey, "%v", err)
		cpCat = &CheckpointCatalog{}
	}

	var total, done int64
	for _, r := range logCat.Segments {
		total += r.Size
	}
	type checkpoint struct {
		ref CheckpointRef
		m   *Manifest
	}
	var cps []checkpoint
	for _, r := range cpCat.Checkpoints {
		m, err := LoadManifest(ctx, s, r.Manifest)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep.Checkpoints++
		if err != nil {
			rep.problem(r.Manifest, "%v", err)
			continue
		}
		switch {
		case m.Cluster != r.Cluster, m.Space != r.Space, m.Start != r.Start, m.End != r.End, m.Index != r.Index:
			rep.problem(r.Manifest, "manifest is of %s %s %v at %d, catalog says %s %s %v at %d",
				m.Cluster, m.Space, m.Range(), m.Index, r.Cluster, r.Space, r.Range(), r.Index)
		case m.Bytes() != r.Bytes:
			rep.problem(r.Manifest, "manifest lists %d bytes, catalog says %d", m.Bytes(), r.Bytes)
		}
		cps = append(cps, checkpoint{r, m})
		total += m.Bytes()
	}
	progress := func(n int64) {
		done += n
		rep.Bytes += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}

	for _, r := range logCat.Segments {
		n, err := verifyObject(ctx, s, r.Key, r.Size, r.CRC32C, func(rd io.Reader, size int64) error {
			first, last, err := checkSegment(rd, size)
			if err == nil && (first != r.First || last != r.Last) {
				err = fmt.Errorf("segment holds %d..%d, catalog says %d..%d: %w", first, last, r.First, r.Last, ErrCorrupt)
			}
			return err
		})
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep.Segments++
		if err != nil {
			rep.problem(r.Key, "%v", err)
		}
		progress(n)
	}
	for _, c := range cps {
		for _, f := range c.m.Files {
			n, err := verifyObject(ctx, s, f.Key, f.Size, f.CRC32C, nil)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Files++
			if err != nil {
				rep.problem(f.Key, "%v", err)
			}
			progress(n)
		}
	}
	return rep, nil
}

// verifyObject streams key, checking its size and CRC-32C, and through
// check (if set) its contents. It returns the bytes read.
func verifyObject(ctx context.Context, s Store, key string, size int64, sum uint32, check func(io.Reader, int64) error) (int64, error) {
	rc, info, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if info.Size != size {
		return 0, fmt.Errorf("object has %d bytes, expected %d: %w", info.Size, size, ErrCorrupt)
	}
	crc := crc32.New(castagnoli)
	cr := &countingReader{r: io.TeeReader(rc, crc)}
	var checkErr error
	if check != nil {
		checkErr = check(cr, size)
	}
	// Read what check left, so the checksum covers every byte.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return cr.n, err
	}
	if cr.n != size {
		return cr.n, fmt.Errorf("read %d bytes, expected %d: %w", cr.n, size, ErrCorrupt)
	}
	if got := crc.Sum32(); got != sum {
		return cr.n, fmt.Errorf("checksum %08x, expected %08x: %w", got, sum, ErrCorrupt)
	}
	return cr.n, checkErr
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkSegment verifies a segment as DecodeSegment does, but streaming:
// its trailer checksum, header, compressed payload and entries. It returns
// the segment's index range.
func checkSegment(r io.Reader, size int64) (first, last uint64, err error) {
	if size < segmentHeaderLen+4 {
		return 0, 0, fmt.Errorf("segment of %d bytes is too short: %w", size, ErrCorrupt)
	}
	whole := crc32.New(castagnoli)
	body := io.TeeReader(io.LimitReader(r, size-4), whole)
	defer func() {
		// The trailer's verdict comes first: a flipped byte anywhere is a
		// checksum mismatch, whatever else it broke.
		_, cerr := io.Copy(io.Discard, body)
		var trailer [4]byte
		if cerr == nil {
			_, cerr = io.ReadFull(r, trailer[:])
		}
		if cerr != nil {
			err = fmt.Errorf("segment: %v: %w", cerr, ErrCorrupt)
		} else if got, want := whole.Sum32(), binary.BigEndian.Uint32(trailer[:]); got != want {
			err = fmt.Errorf("segment checksum %08x, trailer says %08x: %w", got, want, ErrCorrupt)
		}
	}()
	var hdr [segmentHeaderLen]byte
	if _, err := io.ReadFull(body, hdr[:]); err != nil {
		return 0, 0, fmt.Errorf("segment header: %v: %w", err, ErrCorrupt)
	}
	if [8]byte(hdr[:8]) != segmentMagic {
		if string(hdr[:7]) == string(segmentMagic[:7]) {
			return 0, 0, fmt.Errorf("segment format %d is not supported (supports %d): %w", hdr[7], SegmentFormat, ErrCorrupt)
		}
		return 0, 0, fmt.Errorf("not a log segment: %w", ErrCorrupt)
	}
	first, last = binary.BigEndian.Uint64(hdr[8:]), binary.BigEndian.Uint64(hdr[16:])
	rawLen, rawSum := binary.BigEndian.Uint64(hdr[24:]), binary.BigEndian.Uint32(hdr[32:])
	if first == 0 || last < first {
		return 0, 0, fmt.Errorf("segment claims indexes %d..%d: %w", first, last, ErrCorrupt)
	}
	if rawLen > MaxSegmentRawBytes || rawLen > uint64(size-segmentHeaderLen-4)*maxZstdRatio {
		return 0, 0, fmt.Errorf("segment %d..%d claims %d bytes of entries, more than a reader accepts or its payload can hold: %w",
			first, last, rawLen, ErrCorrupt)
	}
	dec, err := zstd.NewReader(body, append(segmentDecoderOptions(), zstd.WithDecoderConcurrency(1))...)
	if err != nil {
		return 0, 0, err
	}
	defer dec.Close()
	raw := crc32.New(castagnoli)
	// Decompress no more than the header says, plus one byte to notice more.
	cr := &countingReader{r: io.TeeReader(io.LimitReader(dec, int64(rawLen)+1), raw)}
	br := bufio.NewReader(cr)
	for index := first; index <= last; index++ {
		n, err := binary.ReadUvarint(br)
		if err == nil {
			var k int64
			k, err = io.CopyN(io.Discard, br, int64(n))
			if err == nil && k != int64(n) {
				err = io.ErrUnexpectedEOF
			}
		}
		if err != nil {
			return first, last, fmt.Errorf("segment %d..%d: entry %d: %v: %w", first, last, index, err, ErrCorrupt)
		}
		if index == last {
			break // last may be 2^64-1
		}
	}
	if extra, err := io.Copy(io.Discard, br); err != nil || extra != 0 {
		return first, last, fmt.Errorf("segment %d..%d: %d bytes after the last entry (%v): %w", first, last, extra, err, ErrCorrupt)
	}
	if uint64(cr.n) != rawLen || raw.Sum32() != rawSum {
		return first, last, fmt.Errorf("segment %d..%d: entries do not match their checksum: %w", first, last, ErrCorrupt)
	}
	return first, last, nil
}

// CheckCheckpoint checks that a catalogued checkpoint is whole before
// anything counts it (truncation, retention): its manifest reads back
// (its own CRC-32C), matches ref, names only keys inside its own
// checkpoint directory, and each data file is present with the size the
// manifest records (a HEAD each). With deep set, each file's CRC-32C is
// checked too, by streaming it. It returns the manifest and the manifest
// object's info (whose Modified is the store's time of the upload).
//
// A checkpoint that is not whole gives an error wrapping ErrNotFound or
// ErrCorrupt; any other error is the store failing to answer.
func CheckCheckpoint(ctx context.Context, s Store, ref CheckpointRef, deep bool) (*Manifest, ObjectInfo, error) {
	info, err := s.Head(ctx, ref.Manifest)
	if err != nil {
		return nil, info, fmt.Errorf("checkpoint %s: %w", ref.Manifest, err)
	}
	m, err := LoadManifest(ctx, s, ref.Manifest)
	if err != nil {
		return nil, info, fmt.Errorf("checkpoint %s: %w", ref.Manifest, err)
	}
	switch {
	case m.Cluster != ref.Cluster, m.Space != ref.Space, m.Start != ref.Start, m.End != ref.End, m.Index != ref.Index:
		return nil, info, fmt.Errorf("checkpoint %s: manifest is of %s %s %v at %d, catalog says %s %s %v at %d: %w",
			ref.Manifest, m.Cluster, m.Space, m.Range(), m.Index, ref.Cluster, ref.Space, ref.Range(), ref.Index, ErrCorrupt)
	case m.Bytes() != ref.Bytes:
		return nil, info, fmt.Errorf("checkpoint %s: manifest lists %d bytes, catalog says %d: %w", ref.Manifest, m.Bytes(), ref.Bytes, ErrCorrupt)
	}
	if err := checkManifestKeys(ref.Manifest, m); err != nil {
		return nil, info, err
	}
	for _, f := range m.Files {
		if deep {
			if _, err := verifyObject(ctx, s, f.Key, f.Size, f.CRC32C, nil); err != nil {
				return nil, info, fmt.Errorf("checkpoint %s: file %s: %w", ref.Manifest, f.Key, err)
			}
			continue
		}
		fi, err := s.Head(ctx, f.Key)
		if err != nil {
			return nil, info, fmt.Errorf("checkpoint %s: file %s: %w", ref.Manifest, f.Key, err)
		}
		if fi.Size != f.Size {
			return nil, info, fmt.Errorf("checkpoint %s: file %s has %d bytes, manifest says %d: %w", ref.Manifest, f.Key, fi.Size, f.Size, ErrCorrupt)
		}
	}
	return m, info, nil
}

// checkManifestKeys refuses a manifest whose key is not a checkpoint's, or
// that names a file outside its own checkpoint directory (another
// checkpoint's file, a catalog, a log segment): such a manifest is
// corrupt, and nothing it lists may be deleted on its account.
func checkManifestKeys(manifest string, m *Manifest) error {
	dir, ok := manifestDir(manifest)
	if !ok {
		return fmt.Errorf("checkpoint manifest key %q is not of the form %s<space>/<range>/<index>-<nonce>/%s: %w",
			manifest, CheckpointPrefix, ManifestName, ErrCorrupt)
	}
	if m == nil {
		return nil
	}
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Key, dir) || f.Key == manifest || path.Clean(f.Key) != f.Key || strings.Contains(f.Key[len(dir):], "/") {
			return fmt.Errorf("checkpoint %s: manifest lists %q, outside its directory %s: %w", manifest, f.Key, dir, ErrCorrupt)
		}
	}
	return nil
}

// manifestDir is the checkpoint directory of a manifest key,
// "checkpoints/<space>/<range>/<index>-<nonce>/", and whether the key is a
// manifest's at all.
func manifestDir(key string) (string, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 5 || parts[0]+"/" != CheckpointPrefix || parts[4] != ManifestName || path.Clean(key) != key {
		return "", false
	}
	for _, p := range parts[1:4] {
		if p == "" || p == "." || p == ".." {
			return "", false
		}
	}
	return strings.Join(parts[:4], "/") + "/", true
}
