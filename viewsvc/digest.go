package viewsvc

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// Digest summarises the facts visible at an index. For each fact it hashes
// id ‖ subject ‖ predicate ‖ index (8 bytes big-endian each) ‖ object
// encoding with xxhash64 seeded 0 and 1, and adds the hashes up mod 2^64.
// It depends only on the set of visible facts, so views with equal state
// have equal digests, and the digests of disjoint ranges add up to the
// digest of their union.
type Digest struct {
	Index uint64
	Facts uint64
	Sum1  uint64
	Sum2  uint64
}

// Add returns the digest of the union of two disjoint ranges at one index.
func (d Digest) Add(o Digest) Digest {
	return Digest{Index: d.Index, Facts: d.Facts + o.Facts, Sum1: d.Sum1 + o.Sum1, Sum2: d.Sum2 + o.Sum2}
}

// Equal reports whether two digests describe the same state.
func (d Digest) Equal(o Digest) bool {
	return d.Facts == o.Facts && d.Sum1 == o.Sum1 && d.Sum2 == o.Sum2
}

func (d Digest) String() string {
	return fmt.Sprintf("digest@%d{facts %d, %016x %016x}", d.Index, d.Facts, d.Sum1, d.Sum2)
}

// Digest computes the digest at index, waiting for it like a lookup. It
// scans the whole view.
func (v *View) Digest(ctx context.Context, index uint64) (Digest, error) {
	d := Digest{Index: index}
	if err := v.waitReadable(ctx, index); err != nil {
		return d, err
	}
	if err := v.acquire(); err != nil {
		return d, err
	}
	defer v.readers.Done()
	it, err := v.db.NewIter(nil)
	if err != nil {
		return d, err
	}
	defer closeQuietly(it)
	table := keys.FactsTable(v.cfg.Space)
	sc := scan{lo: []byte{table}, hi: []byte{table + 1}}
	var buf, enc []byte
	h1, h2 := xxhash.NewWithSeed(0), xxhash.NewWithSeed(1)
	err = v.scanRaw(ctx, it, &sc, index, &buf, func(id, s, p uint64, obj []byte, ver uint64) {
		enc = binary.BigEndian.AppendUint64(enc[:0], id)
		enc = binary.BigEndian.AppendUint64(enc, s)
		enc = binary.BigEndian.AppendUint64(enc, p)
		enc = binary.BigEndian.AppendUint64(enc, ver)
		enc = append(enc, obj...)
		h1.ResetWithSeed(0)
		_, _ = h1.Write(enc)
		h2.ResetWithSeed(1)
		_, _ = h2.Write(enc)
		d.Facts++
		d.Sum1 += h1.Sum64()
		d.Sum2 += h2.Sum64()
	})
	return d, err
}
