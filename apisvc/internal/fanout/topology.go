package fanout

import (
	"slices"
	"sort"

	"github.com/akutan/akutan/proto/viewpb"
)

// A topology is an immutable snapshot of the healthy views, rebuilt whenever
// a ping or a failure changes what is known. Requests route on the snapshot
// they start with.
type topology struct {
	sp, po *spaceTop
}

func (t *topology) space(s viewpb.Space) *spaceTop {
	switch s {
	case viewpb.Space_HASH_SP:
		return t.sp
	case viewpb.Space_HASH_PO:
		return t.po
	}
	return nil
}

// Preference tiers of a view, best first.
const (
	tierServing  = iota // SERVING, no error
	tierCatching        // BOOTING, CATCHING_UP: answers once it reaches the index
	tierStopped         // STOPPED or reporting an error: only up to last_applied
)

// member is a healthy view in a snapshot.
type member struct {
	rep *replica
	id  int // position in spaceTop.members
	// lo and last bound the view's range, inclusive: [lo, last].
	lo, last uint64
	tier     int
	applied  uint64 // last_applied at the latest ping
	fallback bool   // another datacenter's: used only where no local view can serve
}

func (m *member) covers(lo, last uint64) bool { return m.lo <= lo && last <= m.last }

// spaceTop is one space of a snapshot, split into segments at every view's
// range boundary. Segment i is [bounds[i], segLast(i)].
type spaceTop struct {
	space   viewpb.Space
	members []*member
	bounds  []uint64
	cover   [][]*member // per segment: the members covering all of it
	recent  uint64      // see Fanout.RecentIndex
}

func (s *spaceTop) segLast(i int) uint64 {
	if i+1 < len(s.bounds) {
		return s.bounds[i+1] - 1
	}
	return ^uint64(0)
}

// segmentOf returns the segment holding hash h.
func (s *spaceTop) segmentOf(h uint64) int {
	return sort.Search(len(s.bounds), func(i int) bool { return s.bounds[i] > h }) - 1
}

// firstGap returns ErrUncovered for the first segment no member covers, or
// nil.
func (s *spaceTop) firstGap() error {
	for i, c := range s.cover {
		if len(c) == 0 {
			return uncovered(s.space, s.bounds[i], s.segLast(i))
		}
	}
	return nil
}

// buildTopology snapshots the healthy replicas.
func buildTopology(reps []*replica) *topology {
	return &topology{
		sp: buildSpace(viewpb.Space_HASH_SP, reps),
		po: buildSpace(viewpb.Space_HASH_PO, reps),
	}
}

func buildSpace(space viewpb.Space, reps []*replica) *spaceTop {
	s := &spaceTop{space: space, bounds: []uint64{0}}
	for _, rep := range reps {
		st := rep.status
		if !rep.healthy || st.GetSpace() != space {
			continue
		}
		m := &member{rep: rep, id: len(s.members), lo: st.GetRange().GetStart(), last: st.GetRange().GetEnd() - 1, applied: st.GetLastApplied(), fallback: rep.fallback}
		switch {
		case st.GetState() == viewpb.State_STOPPED || st.GetError() != "":
			m.tier = tierStopped
		case st.GetState() == viewpb.State_SERVING:
			m.tier = tierServing
		default:
			m.tier = tierCatching
		}
		s.members = append(s.members, m)
		s.bounds = append(s.bounds, m.lo)
		if m.last != ^uint64(0) {
			s.bounds = append(s.bounds, m.last+1)
		}
	}
	slices.Sort(s.bounds)
	s.bounds = slices.Compact(s.bounds)
	s.cover = make([][]*member, len(s.bounds))
	for i := range s.bounds {
		lo, last := s.bounds[i], s.segLast(i)
		for _, m := range s.members {
			if m.covers(lo, last) {
				s.cover[i] = append(s.cover[i], m)
			}
		}
	}
	// The recent index follows this datacenter's views wherever they cover
	// a segment; fallback views count only where none does.
	s.recent = ^uint64(0)
	for _, c := range s.cover {
		local, best, bestFallback := false, uint64(0), uint64(0)
		for _, m := range c {
			if m.fallback {
				bestFallback = max(bestFallback, m.applied)
			} else {
				local, best = true, max(best, m.applied)
			}
		}
		if !local {
			best = bestFallback
		}
		s.recent = min(s.recent, best)
	}
	return s
}

// intervals is a sorted list of disjoint inclusive hash intervals: the
// segments a view was asked to answer for.
type intervals [][2]uint64

// segmentIntervals merges the sorted segments segs into intervals.
func (s *spaceTop) segmentIntervals(segs []int) intervals {
	var out intervals
	for _, i := range segs {
		lo, last := s.bounds[i], s.segLast(i)
		if n := len(out); n > 0 && out[n-1][1]+1 == lo {
			out[n-1][1] = last
			continue
		}
		out = append(out, [2]uint64{lo, last})
	}
	return out
}

func (iv intervals) contains(h uint64) bool {
	i := sort.Search(len(iv), func(i int) bool { return iv[i][1] >= h })
	return i < len(iv) && iv[i][0] <= h
}
