package fanout

import (
	"context"
	"testing"

	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc"
)

// pageAll reads a lookup's answer page by page and checks every page's
// bounds on the way.
func pageAll(t *testing.T, f *Fanout, what string, pg Page, read func(Page) (*PageResult, error)) [][]*viewpb.LookupFact {
	t.Helper()
	var out [][]*viewpb.LookupFact
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("%s: no end after %d pages", what, pages)
		}
		res, err := read(pg)
		if err != nil {
			t.Fatalf("%s, page %d from %v: %v", what, pages, pg.From, err)
		}
		if pg.Limit > 0 && len(res.Facts) > pg.Limit {
			t.Fatalf("%s: page of %d facts, limit %d", what, len(res.Facts), pg.Limit)
		}
		if res.Next == nil && len(res.Facts) == 0 && pages > 0 && pg.Limit > 0 {
			// An empty last page is allowed only after a page that was
			// cut by bytes; it still ends the answer.
			t.Logf("%s: empty last page after %d pages", what, pages)
		}
		for _, fact := range res.Facts {
			for len(out) <= int(fact.Lookup) {
				out = append(out, nil)
			}
			out[fact.Lookup] = append(out[fact.Lookup], fact)
		}
		res.Release()
		if res.Next == nil {
			return out
		}
		if pg.From != nil && res.Next.Lookup < pg.From.Lookup {
			t.Fatalf("%s: the next page goes back from lookup %d to %d", what, pg.From.Lookup, res.Next.Lookup)
		}
		pg.From = res.Next
	}
}

// padTo extends a per-lookup answer to n lookups, for comparison.
func padTo(res [][]*viewpb.LookupFact, n int) [][]*viewpb.LookupFact {
	for len(res) < n {
		res = append(res, nil)
	}
	return res
}

// Every lookup read in pages, of any limit and byte budget, over real views
// split so that groups are cut at different places, is the whole answer:
// no fact skipped or repeated, in the same order.
func TestRealViewsPaged(t *testing.T) {
	checkLeaks(t)
	log, model := writeLog(t, makeFacts(23))
	cfg := testConfig()
	for _, space := range []viewsvc.Space{viewsvc.SpaceSP, viewsvc.SpacePO} {
		for _, rng := range [][2]uint64{{0, half}, {half, 0}, {quarter, 3 * quarter}} {
			// Small messages, so byte budgets cut groups at many places.
			_, addr := realView(t, log, space, rng[0], rng[1], true, func(c *viewsvc.Config) { c.MaxChunkBytes = 300 })
			cfg.Static = append(cfg.Static, addr)
		}
	}
	cfg.MaxLookupsPerRPC = 7 // several RPCs per view: more groups to cut
	f := open(t, cfg)
	ctx := ctxT(t)
	r := newRand(5)
	subjects := []uint64{numSubjects + 1} // no facts
	for range 30 {
		subjects = append(subjects, uint64(1+r.IntN(numSubjects)))
	}
	sp, spo, po, cmp := spLookups(r, model, 40), spoLookups(r, model, 40), poLookups(r, model, 40), poCmpLookups(r, 4)
	type kind struct {
		name  string
		n     int
		page  func(context.Context, Page) (*PageResult, error)
		whole func(context.Context) ([][]*viewpb.LookupFact, error)
	}
	kinds := []kind{
		{"LookupS", len(subjects),
			func(ctx context.Context, pg Page) (*PageResult, error) {
				return f.LookupSPage(ctx, realTxs, subjects, pg)
			},
			func(ctx context.Context) ([][]*viewpb.LookupFact, error) { return f.LookupS(ctx, realTxs, subjects) }},
		{"LookupSP", len(sp),
			func(ctx context.Context, pg Page) (*PageResult, error) { return f.LookupSPPage(ctx, realTxs, sp, pg) },
			func(ctx context.Context) ([][]*viewpb.LookupFact, error) { return f.LookupSP(ctx, realTxs, sp) }},
		{"LookupSPO", len(spo),
			func(ctx context.Context, pg Page) (*PageResult, error) { return f.LookupSPOPage(ctx, realTxs, spo, pg) },
			func(ctx context.Context) ([][]*viewpb.LookupFact, error) { return f.LookupSPO(ctx, realTxs, spo) }},
		{"LookupPO", len(po),
			func(ctx context.Context, pg Page) (*PageResult, error) { return f.LookupPOPage(ctx, realTxs, po, pg) },
			func(ctx context.Context) ([][]*viewpb.LookupFact, error) { return f.LookupPO(ctx, realTxs, po) }},
		{"LookupPOCmp", len(cmp),
			func(ctx context.Context, pg Page) (*PageResult, error) {
				return f.LookupPOCmpPage(ctx, realTxs, cmp, pg)
			},
			func(ctx context.Context) ([][]*viewpb.LookupFact, error) { return f.LookupPOCmp(ctx, realTxs, cmp) }},
	}
	for _, k := range kinds {
		want, err := k.whole(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if countFacts(want) < 20 {
			t.Fatalf("%s: only %d facts; the test needs more", k.name, countFacts(want))
		}
		for _, pg := range []Page{{Limit: 1}, {Limit: 7}, {Limit: 1000}, {MaxBytes: 200}, {MaxBytes: 3000}, {Limit: 13, MaxBytes: 2000}} {
			got := pageAll(t, f, k.name, pg, func(pg Page) (*PageResult, error) { return k.page(ctx, pg) })
			sameFacts(t, k.name, padTo(got, k.n), want)
		}
	}
	if n := f.inflight.Load(); n != 0 {
		t.Fatalf("%d bytes still in flight after every page was released", n)
	}
}

// When the server-wide in-flight budget is used up, pages get shorter but
// the answer is still whole: one client's huge answers cannot take the
// memory every other request needs.
func TestInflightBudgetShortensPages(t *testing.T) {
	log, model := writeLog(t, makeFacts(24))
	cfg := testConfig()
	for _, space := range []viewsvc.Space{viewsvc.SpaceSP, viewsvc.SpacePO} {
		for _, rng := range [][2]uint64{{0, half}, {half, 0}} {
			_, addr := realView(t, log, space, rng[0], rng[1], true, func(c *viewsvc.Config) { c.MaxChunkBytes = 256 })
			cfg.Static = append(cfg.Static, addr)
		}
	}
	cfg.MaxInflightBytes = 1000
	f := open(t, cfg)
	ctx := ctxT(t)
	subjects := make([]uint64, numSubjects)
	for i := range subjects {
		subjects[i] = uint64(i + 1)
	}
	want, err := f.LookupS(ctx, realTxs, subjects)
	if err != nil {
		t.Fatal(err)
	}
	// Another request holds the whole budget.
	f.inflight.Add(1000)
	pages := 0
	got := pageAll(t, f, "LookupS", Page{MaxBytes: 16 << 20}, func(pg Page) (*PageResult, error) {
		pages++
		return f.LookupSPage(ctx, realTxs, subjects, pg)
	})
	sameFacts(t, "LookupS", padTo(got, len(subjects)), want)
	if pages < 3 {
		t.Errorf("%d pages with the budget used up; want short pages", pages)
	}
	if n := f.inflight.Load(); n != 1000 {
		t.Errorf("in flight %d after release, want the other request's 1000", n)
	}
	_ = model
}
