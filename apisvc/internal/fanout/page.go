package fanout

import (
	"cmp"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/viewpb"
)

// Paging. An answer is ordered by lookup, then by the lookup's key order
// (see order.go), so a position in it is a lookup offset and a fact: a
// viewpb.Cursor. A page asks every view group for the facts after the
// page's cursor, each group stopping at the page's limit or byte budget.
// A group that stopped early is complete only up to the last fact it
// read, its frontier; the page is then the merged facts up to the lowest
// frontier, so no fact is skipped however the groups were cut, and the
// next page resumes after the last position the page covered.

// Page asks for one page of a lookup's answer.
type Page struct {
	// From is where the page starts, in the caller's lookup offsets; nil
	// starts at the beginning.
	From *viewpb.Cursor
	// Limit is the most facts the page holds; 0 means no limit.
	Limit int
	// MaxBytes ends the page once the views' answers for it hold about this
	// many bytes; a page that has facts left holds at least one. 0 means no
	// limit. Paged requests also share the Fanout's MaxInflightBytes: when
	// it is used up, pages get shorter rather than memory growing.
	MaxBytes int
}

// PageResult is one page of an answer.
type PageResult struct {
	// Facts are in answer order; each fact's Lookup is its lookup's offset
	// in the caller's lookups.
	Facts []*viewpb.LookupFact
	// Next is where the next page starts; nil after the last page.
	Next *viewpb.Cursor

	release func()
}

// Release returns the page's bytes to the Fanout's in-flight budget; call it
// once the facts are sent. It is safe to call more than once.
func (p *PageResult) Release() {
	if p != nil && p.release != nil {
		p.release()
		p.release = nil
	}
}

// release returns the page's reservation; only the first call has effect.
func (p *pageState) release() { p.f.inflight.Add(-p.reserved.Swap(0)) }

// position is a place in an answer: a lookup offset and a fact of it.
type position struct {
	lookup int
	fact   *viewpb.LookupFact
}

// pageState is one page's progress across its groups.
type pageState struct {
	f       *Fanout
	page    Page
	compare func(a, b *viewpb.LookupFact) int

	bytes    atomic.Int64 // read from views for this page
	reserved atomic.Int64 // of the Fanout's in-flight budget

	mu       sync.Mutex
	frontier *position // the lowest frontier of a group that stopped early
}

// viewLimit is the limit a group asks its view for: one more than the page
// needs, so that a group that gets it all knows whether more follow.
func (p *pageState) viewLimit() uint32 {
	if p.page.Limit <= 0 {
		return 0
	}
	return uint32(min(p.page.Limit+1, 1<<31))
}

// viewCursor is the cursor for a group whose first lookup (in the caller's
// offsets) is first.
func (p *pageState) viewCursor(first int) *viewpb.Cursor {
	if from := p.page.From; from != nil && from.After != nil && int(from.Lookup) == first {
		return &viewpb.Cursor{After: from.After}
	}
	return nil
}

// admit accounts for one message of n bytes from a view and says whether
// the group should read on. A group's first message is always admitted.
func (p *pageState) admit(n int, first bool) bool {
	if p.page.MaxBytes <= 0 {
		return true
	}
	total := p.bytes.Add(int64(n))
	if !p.f.reserve(int64(n), first) {
		return false
	}
	p.reserved.Add(int64(n))
	return total < int64(p.page.MaxBytes)
}

// stopped records that a group stopped early after reading up to at.
func (p *pageState) stopped(at position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frontier == nil || comparePositions(at, *p.frontier, p.compare) < 0 {
		p.frontier = &at
	}
}

func comparePositions(a, b position, compare func(a, b *viewpb.LookupFact) int) int {
	if c := cmp.Compare(a.lookup, b.lookup); c != 0 {
		return c
	}
	return compare(a.fact, b.fact)
}

// assemble merges the groups' facts (per lookup, one sorted list per group)
// into the page, from the lookup first on.
func (p *pageState) assemble(lists [][][]*viewpb.LookupFact, first int) *PageResult {
	res := &PageResult{release: p.release}
	var last *position
	bytes, cut := 0, false
	emit := func(i int, f *viewpb.LookupFact) bool {
		if (p.page.Limit > 0 && len(res.Facts) >= p.page.Limit) || (p.page.MaxBytes > 0 && bytes >= p.page.MaxBytes) {
			cut = true
			return false
		}
		res.Facts = append(res.Facts, f)
		last = &position{i, f}
		if p.page.MaxBytes > 0 {
			bytes += proto.Size(f)
		}
		return true
	}
	front := p.frontier
lookups:
	for i := first; i < len(lists); i++ {
		if front != nil && i > front.lookup {
			break
		}
		for _, f := range mergeSorted(lists[i], p.compare) {
			if front != nil && i == front.lookup && p.compare(f, front.fact) > 0 {
				break lookups
			}
			if !emit(i, f) {
				break lookups
			}
		}
	}
	switch {
	case cut:
		res.Next = last.cursor()
	case front != nil:
		// Everything up to the frontier is in the page; resume after it,
		// even if its fact was not (a view's fact outside its segment).
		res.Next = front.cursor()
	}
	return res
}

func (p *position) cursor() *viewpb.Cursor {
	return &viewpb.Cursor{Lookup: uint32(p.lookup), After: &viewpb.FactKey{
		Subject: p.fact.GetSubject(), Predicate: p.fact.GetPredicate(), Object: p.fact.GetObject()}}
}

// reserve takes n bytes of the in-flight budget; force takes them even
// when the budget is used up (a group's first message, so every page makes
// progress).
func (f *Fanout) reserve(n int64, force bool) bool {
	for {
		cur := f.inflight.Load()
		if !force && cur+n > int64(f.cfg.MaxInflightBytes) {
			return false
		}
		if f.inflight.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// perLookup splits a whole answer into one slice per lookup.
func perLookup(res *PageResult, n int) [][]*viewpb.LookupFact {
	out := make([][]*viewpb.LookupFact, n)
	for _, f := range res.Facts {
		out[f.Lookup] = append(out[f.Lookup], f)
	}
	return out
}
