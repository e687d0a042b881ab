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
// hedge delay from them: max(floor, percentile). The percentile is
// recomputed every recomputeEvery samples, not on every call.
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

const recomputeEvery = 16

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
		l.delay = max(l.floor, l.scratch[min(max(k, 0), l.n-1)])
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
// request per slowProbeInterval may still pick it normally, which is how the
// score comes down again once the view is fast.
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

// outcome records one attempt: outrun means a hedge beat it.
func (s *slowness) outcome(outrun bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := 0.0
	if outrun {
		v = 1
	}
	s.score += slowAlpha * (v - s.score)
}

// avoid reports whether a new request should prefer other views. It lets
// one request through per slowProbeInterval.
func (s *slowness) avoid(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.score < slowThreshold {
		return false
	}
	if now.Before(s.probeAt) {
		return true
	}
	s.probeAt = now.Add(slowProbeInterval)
	return false
}

func (s *slowness) slow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.score >= slowThreshold
}
