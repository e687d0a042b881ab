// Package fanout is how an API server reads from the views: it discovers
// them, keeps track of their health, and sends each lookup to a view that
// holds its facts, with randomised choice, batching, hedging and retries.
//
// # Discovery and health
//
// The views are Config.Static addresses plus every address that the
// Config.DNS names resolve to, re-resolved every ResolveInterval; a name that
// fails to resolve keeps its previous addresses. Every view gets a Status RPC
// every PingInterval. A view is healthy while its last ping succeeded and no
// lookup has failed on it since; an unhealthy view is not used until a ping
// succeeds again. Routing works on an immutable snapshot of the healthy
// views, rebuilt on every change; each request uses the snapshot it started
// with.
//
// Each space is split into segments at every healthy view's range boundary,
// so views may overlap or be partitioned uncleanly (a 3 → 4 split in
// progress): a segment is covered by every view whose range holds all of it.
//
// # Choosing a view
//
// Each request draws a random rank for every view. Among the views that can
// serve a point or segment it takes the best by, in order:
//
//  1. not slow (see below);
//  2. state: SERVING first; then BOOTING or CATCHING_UP, which answer once
//     they reach the index; then STOPPED or reporting an error, which are
//     used only for indexes up to their last_applied and never past it;
//  3. the random rank.
//
// Because the rank is per request, everything one view could serve in a
// request goes to that one view, and over many requests the replicas of a
// range share the load evenly.
//
// # Point lookups
//
// LookupSP, LookupSPO and LookupPO route each lookup by its hash (HashSP for
// SP and SPO, HashPO for PO). The lookups for one view travel in one RPC, or
// in pieces of MaxLookupsPerRPC. The result has one slice of facts per
// lookup, in input order, each in the view's order.
//
// # Whole-space lookups
//
// LookupS and LookupPOCmp need every range. Each segment goes to a view that
// covers it, and a view gets one RPC for all its segments (per
// MaxLookupsPerRPC lookups). A view answers for its whole range, so of its
// facts only those whose hash (HashSP(s, p) for LookupS, HashPO(p, o) for
// LookupPOCmp) lies in the segments it was given are kept. Each segment is
// thus answered by exactly one view, and the result is complete and free of
// duplicates however the ranges overlap. A lookup's facts from several views
// are merged back into the view order, so the result is what one view of the
// whole space would return.
//
// # Hedging and retries
//
// Every lookup is an idempotent read, so it may be repeated anywhere:
//
//  1. If a view has not answered an RPC within the hedge delay, the same RPC
//     goes to one other view that can serve all of it (a view whose range
//     holds every point, or every segment, of the RPC). The first complete
//     answer wins; the others are cancelled.
//  2. The hedge delay is max(HedgeFloor, the HedgePercentile of the latencies
//     of the last 1000 successful RPCs), except that it never exceeds 3
//     times their median (so one slow replica that answers more than
//     1 - HedgePercentile of the calls cannot raise the delay to its own
//     latency; see latency.go).
//  3. An RPC that fails is sent at once to another view that can serve all
//     of it, and the failed view is marked unhealthy. If no single view can,
//     its points or segments are routed again one by one among the views
//     left. A point or segment with no view left fails the request with
//     ErrUncovered, naming the range and the last view error.
//  4. Errors that every view would give are returned, not retried: a lookup
//     the view calls invalid (ErrWrongInput) and a view's deadline, which is
//     the caller's (context.DeadlineExceeded).
//  5. A view is slow when, over its recent RPCs, hedges to other views
//     often beat it by a wide margin (the winner took less than half as long
//     as the view had been working). A slow view is preferred less than any
//     other, but one request per second prefers it (a probe); a probe
//     answered in time makes it normal again. So a slow replica costs about
//     one hedge delay per second rather than one on every request it would
//     get, and a replica that was only briefly slow is back within a second.
//
// A request's context bounds everything, including the views' waits for the
// index; when it ends the request returns its error unchanged. No goroutine
// outlives a call.
//
// # Digests
//
// Digests add up only over disjoint ranges, so Digest picks distinct ranges
// of healthy views that tile the space exactly and asks one view of each. It
// is retried on failure but not hedged (it scans a whole range). It fails
// with ErrNoTiling when the healthy ranges cover the space but cannot tile
// it.
//
// # Readiness
//
// New returns after every view answered or failed its first ping. WaitReady
// waits until both spaces are fully covered by healthy views. RecentIndex is
// the highest index every point of a space has applied on some healthy view.
package fanout
