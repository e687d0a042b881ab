package fanout

import (
	"math"
	"slices"
	"sync"
	"time"
)

// latencyWindow is how many recent successful calls the hedge delay is
// computed from.
const latencyWindow = 1000

// latencies tracks the latencies of recent successful calls and derives the
// hedge delay from them: max(floor, min(percentile, medianCap × median)).
// The delay is recomputed every recomputeEvery samples, not on every call.
//
// The cap matters when one replica turns slow gradually. Its answers are a
// fixed share of all answers (a quarter, with two ranges of two replicas),
// often more than 1 - percentile, so the percentile follows its latency up;
// hedges then fire only as it answers, never beat it, and it is never found
// slow. The median stays with the healthy replicas, and the cap keeps the
// delay near them, so the slow replica is outrun and avoided.
type latencies struct {
	floor      time.Duration
	percentile float64

	mu      sync.Mutex
	ring    [latencyWindow]time.Duration
	n       int // samples in ring
	next    int // where the next sample goes
	fresh   int // samples since the delay was computed
	delay   time.Duration
	scratch []time.Duration
}

const (
	recomputeEvery = 16
	medianCap      = 3
)

func newLatencies(floor time.Duration, percentile float64) *latencies {
	return &latencies{floor: floor, percentile: percentile, delay: floor}
}

func (l *latencies) record(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = d
	l.next = (l.next + 1) % latencyWindow
	l.n = min(l.n+1, latencyWindow)
	l.fresh++
	if l.fresh >= recomputeEvery || l.n < recomputeEvery {
		l.fresh = 0
		l.scratch = append(l.scratch[:0], l.ring[:l.n]...)
		slices.Sort(l.scratch)
		k := int(math.Ceil(float64(l.n)*l.percentile)) - 1
		pct, median := l.scratch[min(max(k, 0), l.n-1)], l.scratch[(l.n-1)/2]
		l.delay = max(l.floor, min(pct, medianCap*median))
	}
}

// hedgeDelay is how long to wait for a view before asking another.
func (l *latencies) hedgeDelay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delay
}

// Slow views. Hedging caps the latency a slow view adds at the hedge delay,
// but a view that is slow on every call would still add that delay to every
// call routed to it. So each view keeps a score: an exponentially weighted
// average, over its attempts, of whether another view's hedge beat it by a
// wide margin (see hedge). A view whose score reaches slowThreshold is
// "slow" and preferred less than any view that is not; while slow, one
// request per slowProbeInterval prefers it instead (a probe), and a probe
// answered in time makes it normal again.
const (
	slowAlpha         = 0.25
	slowThreshold     = 0.5
	slowProbeInterval = time.Second
)

type slowness struct {
	mu      sync.Mutex
	score   float64
	probeAt time.Time
}

// outcome records one attempt: outrun means a hedge beat it. An answer that
// was not outrun from a slow view (a probe, usually) clears the score: the
// view is fast again, or its slowness comes and goes and it will soon be
// found slow again.
func (s *slowness) outcome(outrun bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case outrun:
		s.score += slowAlpha * (1 - s.score)
	case s.score >= slowThreshold:
		s.score = 0
	default:
		s.score -= slowAlpha * s.score
	}
}

// avoid reports whether a new request should prefer other views, or, once
// per slowProbeInterval while the view is slow, that the request should
// prefer it (probe) so that its score can come down.
func (s *slowness) avoid(now time.Time) (avoid, probe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.score < slowThreshold {
		return false, false
	}
	if now.Before(s.probeAt) {
		return true, false
	}
	s.probeAt = now.Add(slowProbeInterval)
	return false, true
}

func (s *slowness) slow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.score >= slowThreshold
}
