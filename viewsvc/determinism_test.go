package viewsvc

import (
	"cmp"
	"slices"
	"testing"
)

// TestDeterminism feeds one log to views of both spaces and several ranges,
// with different batching and restarts, and checks that equal state gives
// equal digests and that two halves hold exactly what the whole holds.
func TestDeterminism(t *testing.T) {
	ds := makeDataset(7, 12_000, 40, true, 0)
	g := newGen(11) // interleave pending transactions, decisions and pings
	var entries [][]byte
	for i, e := range ds.entries {
		entries = append(entries, e)
		if i%3 == 0 {
			g.index = uint64(len(entries))
			entries = append(entries, g.next())
		}
	}
	last := uint64(len(entries))
	newLog := func(maxBatch int) *MemLog {
		l := NewMemLog()
		l.MaxBatch = maxBatch
		l.Append(entries...)
		return l
	}
	type viewCase struct {
		name     string
		space    Space
		rng      HashRange
		batchOps int
		logBatch int
		restarts int
	}
	cases := []viewCase{
		{"sp", SpaceSP, FullRange, 100_000, 500, 0},
		{"sp-twin", SpaceSP, FullRange, 3, 1, 2},
		{"sp-low", SpaceSP, HashRange{End: halfRange}, 1000, 64, 0},
		{"sp-high", SpaceSP, HashRange{Start: halfRange}, 50, 7, 1},
		{"po", SpacePO, FullRange, 100_000, 500, 0},
		{"po-low", SpacePO, HashRange{End: halfRange}, 1000, 64, 1},
		{"po-high", SpacePO, HashRange{Start: halfRange}, 50, 7, 0},
	}
	views := map[string]*View{}
	for _, c := range cases {
		cfg := testConfig(t, c.space, c.rng)
		cfg.MaxBatchOps = c.batchOps
		log := newLog(c.logBatch)
		v := openView(t, cfg)
		for k := 1; k <= c.restarts; k++ {
			r := start(t, v, log)
			waitApplied(t, v, last*uint64(k)/uint64(c.restarts+1))
			r.stop()
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			v = openView(t, cfg)
		}
		start(t, v, log)
		views[c.name] = v
	}
	for _, v := range views {
		waitApplied(t, v, last)
	}
	digest := func(name string, index uint64) Digest {
		d, err := views[name].Digest(t.Context(), index)
		if err != nil {
			t.Fatalf("%s: digest at %d: %v", name, index, err)
		}
		return d
	}
	checked := 0
	for index := uint64(0); index <= last; index += 1 + index/3 {
		if index+1+index/3 > last {
			index = last
		}
		sp := digest("sp", index)
		for _, c := range []struct {
			name string
			got  Digest
		}{
			{"sp-twin", digest("sp-twin", index)},
			{"sp-low+sp-high", digest("sp-low", index).Add(digest("sp-high", index))},
			{"po", digest("po", index)},
			{"po-low+po-high", digest("po-low", index).Add(digest("po-high", index))},
		} {
			if !c.got.Equal(sp) {
				t.Errorf("index %d: %s digest %v, sp digest %v", index, c.name, c.got, sp)
			}
		}
		checked++
	}
	if final := digest("sp", last); final.Facts < 5000 {
		t.Errorf("only %d facts at the end; the dataset is too thin", final.Facts)
	}
	// Exactly the same facts, not just equal digests.
	for _, space := range []string{"sp", "po"} {
		whole := allFacts(t, views[space], last)
		low, high := allFacts(t, views[space+"-low"], last), allFacts(t, views[space+"-high"], last)
		union := append(slices.Clone(low), high...)
		slices.SortFunc(union, func(a, b factRow) int { return cmp.Compare(a.id, b.id) })
		if !slices.Equal(union, whole) {
			t.Errorf("%s: halves hold %d+%d facts, whole holds %d, and they differ", space, len(low), len(high), len(whole))
		}
	}
	t.Logf("checked %d indexes up to %d", checked, last)
}
