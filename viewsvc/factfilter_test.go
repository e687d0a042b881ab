package viewsvc

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// TestFactFilterBloom: no false negatives across growth, and a false
// positive rate near the design's 1% per part.
func TestFactFilterBloom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var f factFilter
	const n = 3 * bloomFirstFacts // three parts: 1M, 2M (full), 4M
	added := make([]uint64, n)
	for i := range added {
		added[i] = r.Uint64()
		f.add(added[i])
	}
	if len(f.parts) != 2 || f.parts[1].n != 2*bloomFirstFacts {
		t.Fatalf("parts %d, want 2 full ones", len(f.parts))
	}
	for _, h := range added {
		if !f.mayContain(h) {
			t.Fatalf("false negative for %x", h)
		}
	}
	fp := 0
	const probes = 1_000_000
	for range probes {
		if f.mayContain(r.Uint64()) {
			fp++
		}
	}
	rate := float64(fp) / probes
	t.Logf("false positives %.3f%%, %d bytes for %d facts", 100*rate, f.bytes(), n)
	if rate > 0.03 {
		t.Fatalf("false positive rate %.3f, want <= 0.03 with two parts", rate)
	}
}

// TestHeadCacheLoadsFilter: after a restart the loaded filter covers every
// fact already in the view (each get of an existing fact finds its head in
// Pebble, with the right id), and answers lookups of absent facts itself.
func TestHeadCacheLoadsFilter(t *testing.T) {
	for _, space := range []Space{SpaceSP, SpacePO} {
		t.Run(space.String(), func(t *testing.T) {
			cfg := testConfig(t, space, FullRange)
			v := openView(t, cfg)
			ds := makeDataset(3, 5000, 50, true, 0)
			log := NewMemLog()
			log.Append(ds.entries...)
			r := start(t, v, log)
			waitApplied(t, v, uint64(len(ds.entries)))
			r.stop()
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			v = openView(t, cfg)

			// Every fact's newest version, read the slow way.
			type head struct {
				body []byte
				live bool
				id   uint64
			}
			var heads []head
			tbl := keys.FactsTable(space)
			it, err := v.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tbl}, UpperBound: []byte{tbl + 1}})
			if err != nil {
				t.Fatal(err)
			}
			for ok := it.First(); ok; ok = it.NextPrefix() {
				live, id, err := keys.ParseValue(it.Value())
				if err != nil {
					t.Fatal(err)
				}
				heads = append(heads, head{slices.Clone(it.Key()[9:keys.Split(it.Key())]), live, id})
			}
			_ = it.Close()
			if len(heads) < 1000 {
				t.Fatalf("only %d facts", len(heads))
			}

			c, err := newHeadCache(context.Background(), v.db, space, 1000, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			for deadline := time.Now().Add(10 * time.Second); !c.loaded; {
				if time.Now().After(deadline) {
					t.Fatal("filter not loaded after 10s")
				}
				time.Sleep(time.Millisecond)
				c.takeFilter()
			}
			var prefix []byte
			for _, h := range heads {
				prefix = keys.AppendFactPrefix(prefix[:0], space, keys.BodyHash(space, h.body), h.body)
				got, err := c.get(factHash(h.body), h.body, prefix)
				if err != nil {
					t.Fatal(err)
				}
				if got.live != h.live || (h.live && got.id != h.id) {
					t.Fatalf("head of %x = %+v, want live=%v id=%d", h.body, got, h.live, h.id)
				}
			}
			if c.filterHits != 0 {
				t.Fatalf("the filter ruled out %d facts that exist", c.filterHits)
			}
			// Absent facts: change the last byte of the id/object part.
			absent := 0
			for _, h := range heads[:1000] {
				body := slices.Clone(h.body)
				body[len(body)-1] ^= 0x5a
				prefix = keys.AppendFactPrefix(prefix[:0], space, keys.BodyHash(space, body), body)
				got, err := c.get(factHash(body), body, prefix)
				if err != nil {
					t.Fatal(err)
				}
				if !got.live {
					absent++
				}
			}
			if c.filterHits < absent*9/10 {
				t.Fatalf("the filter answered %d of %d absent facts, want most", c.filterHits, absent)
			}
		})
	}
}
