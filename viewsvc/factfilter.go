package viewsvc

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// factFilter is an in-memory Bloom filter over the body of every fact the
// view has ever written, live or deleted. The applier asks it before looking
// a fact's head up in Pebble: most inserts name facts that never existed,
// and "definitely not there" from the filter costs a few cache misses where
// a prefix seek through every level of the LSM (each level's bloom filter,
// many L0 sublevels while flushes pile up) cost microseconds.
//
// It grows without being rebuilt: it is a list of blocked Bloom filters,
// each twice the capacity of the one before, and a body may be in any of
// them. At 12 bits per fact it takes about 1.5 bytes per fact in memory and
// answers "maybe" for about 1% of absent facts.
type factFilter struct {
	parts []bloomPart
}

// bloomPart is one blocked Bloom filter: every key sets bloomProbes bits of
// one 512-bit block (one cache line).
type bloomPart struct {
	blocks   []uint64 // 8 words per block
	n, limit int
}

const (
	bloomBitsPerFact = 12
	bloomProbes      = 7
	bloomFirstFacts  = 1 << 20
)

func newBloomPart(facts int) bloomPart {
	nblocks := max(1, facts*bloomBitsPerFact/512)
	return bloomPart{blocks: make([]uint64, 8*nblocks), limit: facts}
}

// factHash is the filter's hash of a fact body.
func factHash(body []byte) uint64 { return xxhash.Sum64(body) }

// locate returns the first word of h's block and the two halves that pick
// its bits.
func (p *bloomPart) locate(h uint64) (int, uint32, uint32) {
	nblocks := uint64(len(p.blocks) / 8)
	hi, _ := bits.Mul64(h, nblocks)
	// The bit positions come from the hash's other half, rotated so that the
	// block choice (from the high bits) does not bias them.
	h2 := bits.RotateLeft64(h, 32)
	return int(hi) * 8, uint32(h2), uint32(h2>>32) | 1
}

func (p *bloomPart) add(h uint64) {
	base, a, b := p.locate(h)
	for i := uint32(0); i < bloomProbes; i++ {
		bit := (a + i*b) & 511
		p.blocks[base+int(bit>>6)] |= 1 << (bit & 63)
	}
	p.n++
}

func (p *bloomPart) mayContain(h uint64) bool {
	base, a, b := p.locate(h)
	for i := uint32(0); i < bloomProbes; i++ {
		bit := (a + i*b) & 511
		if p.blocks[base+int(bit>>6)]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// add records a fact body's hash. Adding a body twice costs capacity but is
// otherwise harmless.
func (f *factFilter) add(h uint64) {
	if len(f.parts) == 0 || f.parts[len(f.parts)-1].n >= f.parts[len(f.parts)-1].limit {
		next := bloomFirstFacts
		if len(f.parts) > 0 {
			next = 2 * f.parts[len(f.parts)-1].limit
		}
		f.parts = append(f.parts, newBloomPart(next))
	}
	f.parts[len(f.parts)-1].add(h)
}

// mayContain is false only if no body with hash h was added.
func (f *factFilter) mayContain(h uint64) bool {
	for i := range f.parts {
		if f.parts[i].mayContain(h) {
			return true
		}
	}
	return false
}

// merge adds every part of o to f; o must not be used afterwards.
func (f *factFilter) merge(o *factFilter) {
	// The bigger parts go first: they are the fullest, and mayContain stops
	// at the first "maybe".
	f.parts = append(o.parts, f.parts...)
}

// bytes is the filter's size in memory.
func (f *factFilter) bytes() int {
	n := 0
	for _, p := range f.parts {
		n += 8 * len(p.blocks)
	}
	return n
}

// loadFactFilter builds a filter over every fact in the snapshot's
// hash-first table, visiting each fact once (its newest version) and none of
// the other tables.
func loadFactFilter(ctx context.Context, snap *pebble.Snapshot, space keys.Space) (*factFilter, int, error) {
	t := keys.FactsTable(space)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{t}, UpperBound: []byte{t + 1}})
	if err != nil {
		return nil, 0, err
	}
	defer closeQuietly(it)
	f := &factFilter{}
	n := 0
	for valid := it.First(); valid; valid = it.NextPrefix() {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, n, ctx.Err()
		}
		key := it.Key()
		prefix := keys.Split(key)
		if prefix <= 1+8 || prefix > len(key) {
			return nil, n, fmt.Errorf("fact filter: malformed fact key %x", key)
		}
		f.add(factHash(key[1+8 : prefix]))
		n++
	}
	return f, n, it.Error()
}
