package fanout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

// request is one call of a Fanout method: the snapshot it routes on, the
// views that failed it, and the goroutines of its RPC groups.
type request struct {
	f      *Fanout
	caller context.Context
	ctx    context.Context // the caller's, cancelled on the first error
	cancel context.CancelFunc
	top    *spaceTop
	index  uint64
	now    time.Time
	delay  time.Duration // hedge delay; negative: no hedging
	record bool          // record latencies for the hedge delay
	rpc    string        // the lookup RPC, for metrics
	page   *pageState    // lookups: the page being read

	wg sync.WaitGroup

	mu     sync.Mutex
	keys   []uint64 // per member: preference key, once known
	known  []bool
	failed []bool // per member: failed during this request
	err    error  // first error
}

func (f *Fanout) newRequest(ctx context.Context, space viewpb.Space, index uint64) (*request, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	top := f.top.Load().space(space)
	if top == nil {
		return nil, fmt.Errorf("%w: unknown space %v", ErrWrongInput, space)
	}
	r := &request{
		f: f, caller: ctx, top: top, index: index, now: time.Now(),
		delay: f.lat.hedgeDelay(), record: true,
		keys: make([]uint64, len(top.members)), known: make([]bool, len(top.members)), failed: make([]bool, len(top.members)),
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r, nil
}

// unusable is the key of a view that cannot serve the request.
const unusable = ^uint64(0)

// keyLocked is m's preference for this request, lower is better: views that
// are not slow first, then by tier, then a slow view being probed, then at
// random. The random part is drawn once per request, so all the points and
// segments a view could serve tend to go to the same view and travel in one
// RPC, while every view still gets an even share over many requests. A
// stopped view cannot serve an index past its last applied one. r.mu is
// held.
func (r *request) keyLocked(m *member) uint64 {
	if r.known[m.id] {
		return r.keys[m.id]
	}
	k := unusable
	if m.tier != tierStopped || r.index <= m.applied {
		avoid, probe := m.rep.slow.avoid(r.now)
		k = uint64(m.tier) << 34
		if m.fallback {
			k |= 1 << 42 // after every local view, slow or not
		}
		switch {
		case avoid:
			k |= 1<<40 | uint64(rand.Uint32())
		case !probe:
			k |= 1 + uint64(rand.Uint32()) // at most 2^32
		}
	}
	r.keys[m.id], r.known[m.id] = k, true
	return k
}

// best returns the preferred usable candidate that has not failed and is
// not in skip, or nil.
func (r *request) best(cands []*member, skip map[*member]bool) *member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *member
	bestKey := unusable
	for _, m := range cands {
		if r.failed[m.id] || skip[m] {
			continue
		}
		if k := r.keyLocked(m); k < bestKey {
			best, bestKey = m, k
		}
	}
	return best
}

// bestCovering is best among the members covering all of [lo, last].
func (r *request) bestCovering(lo, last uint64, skip map[*member]bool) *member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *member
	bestKey := unusable
	for _, m := range r.top.members {
		if !m.covers(lo, last) || r.failed[m.id] || skip[m] {
			continue
		}
		if k := r.keyLocked(m); k < bestKey {
			best, bestKey = m, k
		}
	}
	return best
}

// fail records that m failed this request, and makes it unhealthy.
func (r *request) fail(m *member, err error) {
	r.mu.Lock()
	r.failed[m.id] = true
	r.mu.Unlock()
	r.f.markFailed(m.rep, err)
}

// setErr records the request's first error and cancels the rest of it.
func (r *request) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
		r.cancel()
	}
}

// spawn runs fn in a goroutine of the request.
func (r *request) spawn(fn func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
}

// result is the request's outcome once its goroutines are done: nil, the
// caller's context error, ErrClosed or the first error.
func (r *request) result() error {
	r.mu.Lock()
	err := r.err
	r.mu.Unlock()
	switch {
	case err == nil:
		return nil
	case r.caller.Err() != nil:
		return r.caller.Err()
	case r.f.closed.Load():
		return ErrClosed
	}
	return err
}

// exhaustedError means every view that could serve a group as a whole
// failed; the group's points or segments may still be served by views that
// each cover part of it. last is the last view error.
type exhaustedError struct{ last error }

func (e *exhaustedError) Error() string { return "every view tried failed: " + e.last.Error() }

// attempt is one RPC of a group to one view.
type attempt struct {
	m      *member
	start  time.Time
	cancel context.CancelFunc
	done   bool
}

type attemptResult[T any] struct {
	a   *attempt
	val T
	err error
}

// hedge runs try on first and, if it has not answered within the hedge
// delay, once more on next's choice; when an attempt fails it tries next's
// choice at once. The first answer wins, and the other attempts are
// cancelled and waited for. next returns a view that can answer the same
// request, not in tried, or nil.
//
// It returns the answer, a final error, the request's context error, or an
// *exhaustedError when next has no view left.
func hedge[T any](r *request, first *member, next func(tried map[*member]bool) *member,
	try func(ctx context.Context, m *member) (T, error)) (T, error) {
	var zero T
	results := make(chan attemptResult[T])
	var attempts []*attempt
	tried := map[*member]bool{}
	inflight := 0
	launch := func(m *member) {
		ctx, cancel := context.WithCancel(r.ctx)
		a := &attempt{m: m, start: time.Now(), cancel: cancel}
		attempts = append(attempts, a)
		tried[m] = true
		inflight++
		if m.fallback {
			r.f.met.fallbacks.WithLabelValues(r.rpc).Inc()
		}
		go func() {
			val, err := try(ctx, m)
			results <- attemptResult[T]{a, val, err}
		}()
	}
	defer func() {
		for _, a := range attempts {
			a.cancel()
		}
		for ; inflight > 0; inflight-- {
			<-results
		}
	}()

	launch(first)
	var hedgeC <-chan time.Time
	if r.delay >= 0 {
		t := time.NewTimer(r.delay)
		defer t.Stop()
		hedgeC = t.C
	}
	var last error
	for {
		select {
		case res := <-results:
			inflight--
			res.a.done = true
			if res.err == nil {
				r.won(res.a, attempts)
				return res.val, nil
			}
			if r.ctx.Err() != nil {
				return zero, r.ctx.Err()
			}
			class, err := classify(r.ctx, res.a.m.rep.addr, res.err)
			if class == final {
				return zero, err
			}
			r.fail(res.a.m, err)
			last = err
			if m := next(tried); m != nil {
				launch(m)
			} else if inflight == 0 {
				return zero, &exhaustedError{last: last}
			}
		case <-hedgeC:
			hedgeC = nil
			// next prefers this datacenter's views: a hedge crosses to
			// another's (the fallback) only when none of ours can take it.
			if m := next(tried); m != nil {
				r.f.met.hedges.WithLabelValues(r.rpc).Inc()
				launch(m)
			}
		case <-r.ctx.Done():
			return zero, r.ctx.Err()
		}
	}
}

// won records the latency of the winning attempt and what the race says
// about the views: the winner was not slow; a view still working on an
// attempt that started earlier was outrun if the winner took less than half
// as long as that attempt has run. (When every view is merely waiting for
// the index, the winner started later and finishes about when the others
// would have, and nobody is outrun.)
func (r *request) won(w *attempt, attempts []*attempt) {
	now := time.Now()
	took := now.Sub(w.start)
	if r.record {
		r.f.lat.record(took)
	}
	w.m.rep.slow.outcome(false)
	for _, a := range attempts {
		if a != w && !a.done && a.start.Before(w.start) && took < now.Sub(a.start)/2 {
			a.m.rep.slow.outcome(true)
		}
	}
}
