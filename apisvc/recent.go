package apisvc

import "sync/atomic"

// recentFloor is the lowest index this server may serve as "recent": the
// highest index it has published, answered or acknowledged. The views'
// own recent index can fall — a view that restarts reports a lower applied
// index while it boots, and a range with no healthy view reports 0 — but a
// client that has seen index N from this server must never read below N
// again, or a name it just created "names no node".
type recentFloor struct{ v atomic.Uint64 }

// raise moves the floor up to i and returns the floor, which never falls.
func (f *recentFloor) raise(i uint64) uint64 {
	for {
		cur := f.v.Load()
		if i <= cur {
			return cur
		}
		if f.v.CompareAndSwap(cur, i) {
			return i
		}
	}
}
