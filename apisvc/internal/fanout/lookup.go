package fanout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

type lookupStream = grpc.ServerStreamingClient[viewpb.LookupResponse]

// lookupOp is one kind of lookup over the caller's lookups.
type lookupOp struct {
	space viewpb.Space
	rpc   string // the view RPC's name, for metrics
	// open starts the RPC for the lookups sel (offsets into the caller's
	// lookups).
	open func(ctx context.Context, c viewpb.ViewClient, index uint64, sel []int, from *viewpb.Cursor, limit uint32) (lookupStream, error)
	// hash is a fact's hash in the space, for whole-space lookups.
	hash func(f *viewpb.LookupFact) (uint64, error)
	// compare is the views' order of one lookup's facts.
	compare func(a, b *viewpb.LookupFact) int
}

// pick returns the elements of all at the offsets sel.
func pick[T any](all []T, sel []int) []T {
	out := make([]T, len(sel))
	for k, i := range sel {
		out[k] = all[i]
	}
	return out
}

func nilLookup[T any](lookups []*T) error {
	for i, l := range lookups {
		if l == nil {
			return fmt.Errorf("%w: lookup %d is nil", ErrWrongInput, i)
		}
	}
	return nil
}

// checkText rejects strings that are not UTF-8: gRPC cannot send them, and
// the failure would look like the view's.
func checkText(i int, objects ...*entrypb.Object) error {
	for _, o := range objects {
		if s := o.GetString_(); s != nil && !(utf8.ValidString(s.GetText()) && utf8.ValidString(s.GetLang())) {
			return fmt.Errorf("%w: lookup %d: string object is not UTF-8", ErrWrongInput, i)
		}
	}
	return nil
}

// whole is a complete answer as one slice per lookup.
func whole(res *PageResult, err error, n int) ([][]*viewpb.LookupFact, error) {
	if err != nil {
		return nil, err
	}
	return perLookup(res, n), nil
}

// LookupSP finds the facts of each (subject, predicate). The result has one
// slice per lookup, in input order, each in the view's order (by object).
func (f *Fanout) LookupSP(ctx context.Context, index uint64, lookups []*viewpb.SPLookup) ([][]*viewpb.LookupFact, error) {
	res, err := f.LookupSPPage(ctx, index, lookups, Page{})
	return whole(res, err, len(lookups))
}

// LookupSPPage is one page of LookupSP's answer.
func (f *Fanout) LookupSPPage(ctx context.Context, index uint64, lookups []*viewpb.SPLookup, pg Page) (*PageResult, error) {
	if err := nilLookup(lookups); err != nil {
		return nil, err
	}
	hashes := make([]uint64, len(lookups))
	for i, l := range lookups {
		hashes[i] = hashSP(l.GetSubject(), l.GetPredicate())
	}
	op := &lookupOp{space: viewpb.Space_HASH_SP, rpc: "LookupSP", compare: compareSP,
		open: func(ctx context.Context, c viewpb.ViewClient, index uint64, sel []int, from *viewpb.Cursor, limit uint32) (lookupStream, error) {
			return c.LookupSP(ctx, &viewpb.LookupSPRequest{Index: index, Lookups: pick(lookups, sel), From: from, Limit: limit})
		}}
	return f.pointLookup(ctx, index, op, hashes, pg)
}

// LookupSPO finds each fact (subject, predicate, object) if it is live: one
// slice per lookup, in input order, empty or holding the fact.
func (f *Fanout) LookupSPO(ctx context.Context, index uint64, lookups []*viewpb.SPOLookup) ([][]*viewpb.LookupFact, error) {
	res, err := f.LookupSPOPage(ctx, index, lookups, Page{})
	return whole(res, err, len(lookups))
}

// LookupSPOPage is one page of LookupSPO's answer.
func (f *Fanout) LookupSPOPage(ctx context.Context, index uint64, lookups []*viewpb.SPOLookup, pg Page) (*PageResult, error) {
	if err := nilLookup(lookups); err != nil {
		return nil, err
	}
	hashes := make([]uint64, len(lookups))
	for i, l := range lookups {
		if err := checkText(i, l.GetObject()); err != nil {
			return nil, err
		}
		hashes[i] = hashSP(l.GetSubject(), l.GetPredicate())
	}
	op := &lookupOp{space: viewpb.Space_HASH_SP, rpc: "LookupSPO", compare: compareSP,
		open: func(ctx context.Context, c viewpb.ViewClient, index uint64, sel []int, from *viewpb.Cursor, limit uint32) (lookupStream, error) {
			return c.LookupSPO(ctx, &viewpb.LookupSPORequest{Index: index, Lookups: pick(lookups, sel), From: from, Limit: limit})
		}}
	return f.pointLookup(ctx, index, op, hashes, pg)
}

// LookupPO finds the facts of each (predicate, object): one slice per
// lookup, in input order, each by subject.
func (f *Fanout) LookupPO(ctx context.Context, index uint64, lookups []*viewpb.POLookup) ([][]*viewpb.LookupFact, error) {
	res, err := f.LookupPOPage(ctx, index, lookups, Page{})
	return whole(res, err, len(lookups))
}

// LookupPOPage is one page of LookupPO's answer.
func (f *Fanout) LookupPOPage(ctx context.Context, index uint64, lookups []*viewpb.POLookup, pg Page) (*PageResult, error) {
	if err := nilLookup(lookups); err != nil {
		return nil, err
	}
	hashes := make([]uint64, len(lookups))
	for i, l := range lookups {
		if err := checkText(i, l.GetObject()); err != nil {
			return nil, err
		}
		h, err := hashPO(l.GetPredicate(), l.GetObject())
		if err != nil {
			return nil, fmt.Errorf("%w: lookup %d: %v", ErrWrongInput, i, err)
		}
		hashes[i] = h
	}
	op := &lookupOp{space: viewpb.Space_HASH_PO, rpc: "LookupPO", compare: comparePO,
		open: func(ctx context.Context, c viewpb.ViewClient, index uint64, sel []int, from *viewpb.Cursor, limit uint32) (lookupStream, error) {
			return c.LookupPO(ctx, &viewpb.LookupPORequest{Index: index, Lookups: pick(lookups, sel), From: from, Limit: limit})
		}}
	return f.pointLookup(ctx, index, op, hashes, pg)
}

// LookupS finds the facts of each subject, from the whole HashSP space: one
// slice per subject, in input order, each by (predicate, object).
func (f *Fanout) LookupS(ctx context.Context, index uint64, subjects []uint64) ([][]*viewpb.LookupFact, error) {
	res, err := f.LookupSPage(ctx, index, subjects, Page{})
	return whole(res, err, len(subjects))
}

// LookupSPage is one page of LookupS's answer.
func (f *Fanout) LookupSPage(ctx context.Context, index uint64, subjects []uint64, pg Page) (*PageResult, error) {
	op := &lookupOp{space: viewpb.Space_HASH_SP, rpc: "LookupS",
		open: func(ctx context.Context, c viewpb.ViewClient, index uint64, sel []int, from *viewpb.Cursor, limit uint32) (lookupStream, error) {
			return c.LookupS(ctx, &viewpb.LookupSRequest{Index: index, Subjects: pick(subjects, sel), From: from, Limit: limit})
		},
		hash:    func(f *viewpb.LookupFact) (uint64, error) { return hashSP(f.GetSubject(), f.GetPredicate()), nil },
		compare: compareS,
	}
	return f.spaceLookup(ctx, index, op, len(subjects), pg)
}

// LookupPOCmp finds the facts of each predicate whose object compares to the
// lookup's operand, from the whole HashPO space: one slice per lookup, in
// input order, each by (object, subject).
func (f *Fanout) LookupPOCmp(ctx context.Context, index uint64, lookups []*viewpb.POCmpLookup) ([][]*viewpb.LookupFact, error) {
	res, err := f.LookupPOCmpPage(ctx, index, lookups, Page{})
	return whole(res, err, len(lookups))
}

// LookupPOCmpPage is one page of LookupPOCmp's answer.
func (f *Fanout) LookupPOCmpPage(ctx context.Context, index uint64, lookups []*viewpb.POCmpLookup, pg Page) (*PageResult, error) {
	if err := nilLookup(lookups); err != nil {
		return nil, err
	}
	for i, l := range lookups {
		if err := checkText(i, l.GetObject(), l.GetUpper()); err != nil {
			return nil, err
		}
	}
	op := &lookupOp{space: viewpb.Space_HASH_PO, rpc: "LookupPOCmp",
		open: func(ctx context.Context, c viewpb.ViewClient, index uint64, sel []int, from *viewpb.Cursor, limit uint32) (lookupStream, error) {
			return c.LookupPOCmp(ctx, &viewpb.LookupPOCmpRequest{Index: index, Lookups: pick(lookups, sel), From: from, Limit: limit})
		},
		hash:    func(f *viewpb.LookupFact) (uint64, error) { return hashPO(f.GetPredicate(), f.GetObject()) },
		compare: comparePOCmp,
	}
	return f.spaceLookup(ctx, index, op, len(lookups), pg)
}

// fetch runs the lookups sel on m, from the page's cursor, and returns
// their facts, one slice per lookup of sel. With keep set it drops the
// facts whose hash is outside it. A group that stops before the end of its
// answer (the page's limit or byte budget) records its frontier.
func (r *request) fetch(ctx context.Context, op *lookupOp, m *member, sel []int, keep intervals) (_ [][]*viewpb.LookupFact, err error) {
	start := time.Now()
	defer func() { r.f.met.observeRPC(op.rpc, start, err) }()
	pg := r.page
	limit := pg.viewLimit()
	stream, err := op.open(ctx, m.rep.client, r.index, sel, pg.viewCursor(sel[0]), limit)
	if err != nil {
		return nil, err
	}
	per := make([][]*viewpb.LookupFact, len(sel))
	var last position
	read := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			if limit > 0 && read >= int(limit) {
				pg.stopped(last)
			}
			return per, nil
		}
		if err != nil {
			return nil, err
		}
		if resp.GetIndex() != r.index {
			return nil, fmt.Errorf("%w: answered at index %d, not %d", ErrBadResponse, resp.GetIndex(), r.index)
		}
		for _, fact := range resp.GetFacts() {
			k := int(fact.GetLookup())
			if k >= len(sel) {
				return nil, fmt.Errorf("%w: fact for lookup %d of %d", ErrBadResponse, k, len(sel))
			}
			fact.Lookup = uint32(sel[k])
			last = position{sel[k], fact}
			read++
			if keep != nil {
				h, err := op.hash(fact)
				if err != nil {
					return nil, fmt.Errorf("%w: fact %d: %v", ErrBadResponse, fact.GetId(), err)
				}
				if !keep.contains(h) {
					continue
				}
			}
			per[k] = append(per[k], fact)
		}
		// Sizing a message costs a walk of it: only pages with a byte
		// budget pay for it, not the unpaged lookups (names, tests).
		if read > 0 && pg.page.MaxBytes > 0 && !pg.admit(proto.Size(resp), read == len(resp.GetFacts())) {
			pg.stopped(last)
			return per, nil
		}
	}
}

// pointLookup routes each lookup by its hash.
func (f *Fanout) pointLookup(ctx context.Context, index uint64, op *lookupOp, hashes []uint64, pg Page) (*PageResult, error) {
	first := pageStart(pg, len(hashes))
	if first == len(hashes) {
		return &PageResult{}, nil
	}
	r, err := f.newRequest(ctx, op.space, index)
	if err != nil {
		return nil, err
	}
	defer r.cancel()
	r.rpc = op.rpc
	r.page = &pageState{f: f, page: pg, compare: op.compare}
	out := make([][]*viewpb.LookupFact, len(hashes))
	all := make([]int, 0, len(hashes)-first)
	for i := first; i < len(hashes); i++ {
		all = append(all, i)
	}
	if err := r.routePoints(op, hashes, all, out, nil); err != nil {
		r.setErr(err)
	}
	r.wg.Wait()
	if err := r.result(); err != nil {
		r.page.release()
		return nil, err
	}
	lists := make([][][]*viewpb.LookupFact, len(out))
	for i, facts := range out {
		if len(facts) > 0 {
			lists[i] = [][]*viewpb.LookupFact{facts}
		}
	}
	return r.page.assemble(lists, first), nil
}

// pageStart is the first lookup a page reads, of n; n if none is left.
func pageStart(pg Page, n int) int {
	if pg.From == nil {
		return 0
	}
	return min(int(pg.From.GetLookup()), n)
}

// routePoints sends each lookup of idxs to the preferred view whose range
// holds its hash, the lookups for one view in as few RPCs as allowed. cause
// is why the lookups are being routed again, if they are.
func (r *request) routePoints(op *lookupOp, hashes []uint64, idxs []int, out [][]*viewpb.LookupFact, cause error) error {
	groups := map[*member][]int{}
	var order []*member
	for _, i := range idxs {
		seg := r.top.segmentOf(hashes[i])
		m := r.best(r.top.cover[seg], nil)
		if m == nil {
			return r.uncovered(r.top.bounds[seg], r.top.segLast(seg), cause)
		}
		if groups[m] == nil {
			order = append(order, m)
		}
		groups[m] = append(groups[m], i)
	}
	for _, m := range order {
		for chunk := range chunks(groups[m], r.f.cfg.MaxLookupsPerRPC) {
			r.spawn(func() { r.runPointGroup(op, hashes, m, chunk, out) })
		}
	}
	return nil
}

// runPointGroup runs the lookups idxs on m, hedged to views whose ranges
// hold all their hashes.
func (r *request) runPointGroup(op *lookupOp, hashes []uint64, m *member, idxs []int, out [][]*viewpb.LookupFact) {
	lo, last := ^uint64(0), uint64(0)
	for _, i := range idxs {
		lo, last = min(lo, hashes[i]), max(last, hashes[i])
	}
	per, err := hedge(r, m,
		func(tried map[*member]bool) *member { return r.bestCovering(lo, last, tried) },
		func(ctx context.Context, m *member) ([][]*viewpb.LookupFact, error) {
			return r.fetch(ctx, op, m, idxs, nil)
		})
	var ex *exhaustedError
	switch {
	case err == nil:
		for k, i := range idxs {
			out[i] = per[k]
		}
	case errors.As(err, &ex):
		if err := r.routePoints(op, hashes, idxs, out, ex.last); err != nil {
			r.setErr(err)
		}
	default:
		r.setErr(err)
	}
}

// partials collects the answers of whole-space groups.
type partials struct {
	mu    sync.Mutex
	lists [][][]*viewpb.LookupFact // per lookup: one sorted list per group
}

func (p *partials) add(sel []int, per [][]*viewpb.LookupFact) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, i := range sel {
		if len(per[k]) > 0 {
			p.lists[i] = append(p.lists[i], per[k])
		}
	}
}

// spaceLookup asks views covering the whole space, one per segment.
func (f *Fanout) spaceLookup(ctx context.Context, index uint64, op *lookupOp, n int, pg Page) (*PageResult, error) {
	first := pageStart(pg, n)
	if first == n {
		return &PageResult{}, nil
	}
	r, err := f.newRequest(ctx, op.space, index)
	if err != nil {
		return nil, err
	}
	defer r.cancel()
	r.rpc = op.rpc
	r.page = &pageState{f: f, page: pg, compare: op.compare}
	segs := make([]int, len(r.top.bounds))
	for i := range segs {
		segs[i] = i
	}
	all := make([]int, 0, n-first)
	for i := first; i < n; i++ {
		all = append(all, i)
	}
	parts := &partials{lists: make([][][]*viewpb.LookupFact, n)}
	for chunk := range chunks(all, f.cfg.MaxLookupsPerRPC) {
		if err := r.routeSegments(op, segs, chunk, parts, nil); err != nil {
			r.setErr(err)
			break
		}
	}
	r.wg.Wait()
	if err := r.result(); err != nil {
		r.page.release()
		return nil, err
	}
	return r.page.assemble(parts.lists, first), nil
}

// routeSegments sends the lookups sel to the preferred view of each segment
// of segs, one RPC per view.
func (r *request) routeSegments(op *lookupOp, segs []int, sel []int, parts *partials, cause error) error {
	groups := map[*member][]int{}
	var order []*member
	for _, s := range segs {
		m := r.best(r.top.cover[s], nil)
		if m == nil {
			return r.uncovered(r.top.bounds[s], r.top.segLast(s), cause)
		}
		if groups[m] == nil {
			order = append(order, m)
		}
		groups[m] = append(groups[m], s)
	}
	for _, m := range order {
		ss := groups[m]
		r.spawn(func() { r.runSegmentGroup(op, m, ss, sel, parts) })
	}
	return nil
}

// runSegmentGroup runs the lookups sel on m, keeping the facts in the
// segments segs; it is hedged to views covering all of segs.
func (r *request) runSegmentGroup(op *lookupOp, m *member, segs []int, sel []int, parts *partials) {
	keep := r.top.segmentIntervals(segs)
	lo, last := keep[0][0], keep[len(keep)-1][1]
	per, err := hedge(r, m,
		func(tried map[*member]bool) *member { return r.bestCovering(lo, last, tried) },
		func(ctx context.Context, m *member) ([][]*viewpb.LookupFact, error) {
			if len(keep) == 1 && keep[0][0] <= m.lo && m.last <= keep[0][1] {
				return r.fetch(ctx, op, m, sel, nil) // all its facts are wanted
			}
			return r.fetch(ctx, op, m, sel, keep)
		})
	var ex *exhaustedError
	switch {
	case err == nil:
		parts.add(sel, per)
	case errors.As(err, &ex):
		if err := r.routeSegments(op, segs, sel, parts, ex.last); err != nil {
			r.setErr(err)
		}
	default:
		r.setErr(err)
	}
}

// uncovered is ErrUncovered for [lo, last] at the request's index, with the
// view error that made it so, if any.
func (r *request) uncovered(lo, last uint64, cause error) error {
	err := fmt.Errorf("%w at index %d", uncovered(r.top.space, lo, last), r.index)
	if cause != nil {
		err = fmt.Errorf("%w (last error: %v)", err, cause)
	}
	return err
}

// chunks splits s into pieces of at most n.
func chunks(s []int, n int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		for len(s) > 0 {
			k := min(len(s), n)
			if !yield(s[:k:k]) {
				return
			}
			s = s[k:]
		}
	}
}
