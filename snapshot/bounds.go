package snapshot

import (
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Bounds on what a reader accepts from the bucket. Every length an object
// states is checked against these before anything is allocated for it, so a
// hostile or damaged object is an ErrCorrupt error naming it, never a panic
// or an allocation it chose.
const (
	// MaxDocumentBytes bounds a catalog or manifest object. A log catalog
	// entry takes about 200 bytes, so this is some 600,000 segments.
	MaxDocumentBytes = 128 << 20

	// MaxSegmentRawBytes bounds a segment's uncompressed entries, and so
	// what decompressing one segment may produce. The archiver cuts a
	// segment at SegmentBytes (at most 1 GiB) plus at most one entry, so
	// SegmentBytes + the largest entry must stay below it.
	MaxSegmentRawBytes = 1<<30 + 1<<29

	// MaxSegmentBytes bounds a segment object: its entries do not compress
	// to more than they are, plus the header, the trailer and zstd's
	// per-block overhead.
	MaxSegmentBytes = MaxSegmentRawBytes + MaxSegmentRawBytes>>10 + 1<<20

	// maxZstdWindow bounds the window a segment's zstd frame may ask for
	// (the decoder allocates it). This package's encoder uses 8 MiB at
	// most.
	maxZstdWindow = 32 << 20

	// maxZstdRatio is the most a zstd payload can expand: a block of at
	// least 4 bytes (an RLE block: a 3-byte header and one byte) produces
	// at most 128 KiB. A segment whose header claims more entry bytes than
	// its payload can hold is corrupt before anything is decompressed.
	maxZstdRatio = (128 << 10) / 4
)

// segmentDecoderOptions are the limits of every zstd decoder of segments:
// a bounded window and output, and DecodeAll bounded by its buffer's
// capacity, which DecodeSegment sizes to the header's (bounded) length.
func segmentDecoderOptions() []zstd.DOption {
	return []zstd.DOption{
		zstd.WithDecoderMaxMemory(MaxSegmentRawBytes),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecodeAllCapLimit(true),
	}
}

// readBounded reads a whole object of at most limit bytes. A bigger object is
// ErrCorrupt, refused from its stated size before reading and, should the
// store's size be wrong, after reading limit+1 bytes.
func readBounded(ctx context.Context, s Store, key string, limit int64) ([]byte, ObjectInfo, error) {
	rc, info, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, info, fmt.Errorf("%s: %d bytes, more than the %d a reader accepts: %w", key, info.Size, limit, ErrCorrupt)
	}
	b := make([]byte, 0, max(info.Size, 0)+1)
	b, err = readInto(b, io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, info, err
	}
	if int64(len(b)) > limit {
		return nil, info, fmt.Errorf("%s: more than the %d bytes a reader accepts: %w", key, limit, ErrCorrupt)
	}
	return b, info, nil
}

// readInto appends everything r yields to b, growing it as io.ReadAll does.
func readInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		} else if err != nil {
			return b, err
		}
	}
}
