package viewsvc

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWriteSetSort checks the radix sort against a comparison sort on keys
// built to hit every case: random keys, keys sharing long prefixes (equal
// 16-byte heads), keys shorter than 16 bytes, keys that are prefixes of
// others, and the same key written several times (the last write must come
// last among equals).
func TestWriteSetSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 200 {
		var w writeSet
		n := 1 + r.IntN(2000)
		var keys [][]byte
		for range n {
			var k []byte
			switch r.IntN(5) {
			case 0: // random length, random bytes
				k = make([]byte, r.IntN(40))
				for i := range k {
					k[i] = byte(r.Uint32())
				}
			case 1: // shared 20-byte prefix, random tail
				k = append(bytes.Repeat([]byte{'b'}, 20), byte(r.IntN(4)), byte(r.IntN(4)))
			case 2: // a short prefix of the shared one
				k = bytes.Repeat([]byte{'b'}, r.IntN(22))
			case 3: // a key written before
				if len(keys) > 0 {
					k = slices.Clone(keys[r.IntN(len(keys))])
				}
			default: // one table byte, then random
				k = []byte{'a', byte(r.Uint32()), byte(r.Uint32()), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(r.Uint32())}
			}
			keys = append(keys, k)
			w.set(k, []byte{byte(len(keys))})
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		slices.SortStableFunc(want, func(x, y int) int { return bytes.Compare(keys[x], keys[y]) })
		w.sort()
		for i, e := range w.order {
			if int(e.op) != want[i] {
				t.Fatalf("round %d: position %d holds op %d (key %x), want op %d (key %x)",
					round, i, e.op, keys[e.op], want[i], keys[want[i]])
			}
		}
	}
}
