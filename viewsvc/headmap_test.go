package viewsvc

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestHeadMap checks headMap against a Go map through growth, resets and
// hash collisions (every body hashed into one of 64 values, so most
// lookups must compare bodies).
func TestHeadMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := newHeadMap(16)
	want := map[string]headState{}
	hash := func(body string) uint64 { return uint64(len(body)) % 64 } // 0 included
	for round := range 3 {
		for range 20_000 {
			body := fmt.Sprintf("fact-%d", r.IntN(30_000))
			if r.IntN(3) == 0 {
				st := headState{live: r.IntN(2) == 0, id: r.Uint64()}
				m.put(hash(body), []byte(body), st)
				want[body] = st
				continue
			}
			got, ok := m.get(hash(body), []byte(body))
			w, wok := want[body]
			if ok != wok || got != w {
				t.Fatalf("round %d: get(%q) = %+v, %v; want %+v, %v", round, body, got, ok, w, wok)
			}
		}
		if m.len() != len(want) {
			t.Fatalf("len %d, want %d", m.len(), len(want))
		}
		m.reset()
		clear(want)
	}
}
