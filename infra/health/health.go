// Package health evaluates an Akutan cluster's coverage and gives the
// verdicts DESIGN.md defines:
//
//   - fully available: every point of every space is served by at least one
//     available, up-to-date view; the log is available for appends and
//     non-stale reads; at least one API server is available.
//   - healthy: the same with three views at every point, the log available,
//     and three API servers.
//
// Coverage is computed point by point: each space is split at every view's
// range boundary, so overlapping or uncleanly partitioned ranges (a split in
// progress) are judged exactly. The package is pure: callers gather the
// state, it only judges it.
package health

import (
	"fmt"
	"sort"
)

// Spaces are the hash spaces every cluster must cover.
var Spaces = []string{"HashSP", "HashPO"}

// View is one view's state as the caller observed it.
type View struct {
	Addr  string
	Space string
	// Start and End bound the half-open hash range; End == 0 means 2^64.
	Start, End uint64
	// UpToDate: reachable, serving, and within the allowed lag.
	UpToDate bool
}

// Input is the observed state of one cluster.
type Input struct {
	// LogAvailable: a leader answered a linearizable request.
	LogAvailable bool
	LogError     string
	Views        []View
	// APIServers is how many API servers answered a health check.
	APIServers int
}

// Segment is a piece of a space between two consecutive range boundaries.
type Segment struct {
	Space      string
	Start, End uint64 // End == 0 means 2^64
	// UpToDate counts the up-to-date views covering the whole segment.
	UpToDate int
}

// String formats the segment as "HashSP [0x0, 0x8000000000000000)".
func (s Segment) String() string {
	end := fmt.Sprintf("%#x", s.End)
	if s.End == 0 {
		end = "2^64"
	}
	return fmt.Sprintf("%s [%#x, %s)", s.Space, s.Start, end)
}

// Coverage splits space at every boundary of its views' ranges and counts
// the up-to-date views over each segment. Segments are in hash order and
// tile [0, 2^64).
func Coverage(views []View, space string) []Segment {
	cuts := map[uint64]bool{0: true}
	for _, v := range views {
		if v.Space == space {
			cuts[v.Start] = true
			cuts[v.End] = true // 0 for 2^64 merges with the start, harmlessly
		}
	}
	points := make([]uint64, 0, len(cuts))
	for p := range cuts {
		points = append(points, p)
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	segs := make([]Segment, len(points))
	for i, p := range points {
		end := uint64(0)
		if i+1 < len(points) {
			end = points[i+1]
		}
		segs[i] = Segment{Space: space, Start: p, End: end}
		for _, v := range views {
			if v.Space == space && v.UpToDate && covers(v, p, end) {
				segs[i].UpToDate++
			}
		}
	}
	return segs
}

// covers reports whether v's range contains the segment [start, end).
func covers(v View, start, end uint64) bool {
	return v.Start <= start && endLE(end, v.End)
}

// endLE compares exclusive ends, where 0 stands for 2^64.
func endLE(a, b uint64) bool {
	switch {
	case b == 0:
		return true
	case a == 0:
		return false
	}
	return a <= b
}

// Verdict says whether a property holds and, if not, what is missing.
type Verdict struct {
	OK      bool
	Missing []string
}

// Evaluate judges the cluster: fully available and healthy.
func Evaluate(in Input) (fully, healthy Verdict) {
	return judge(in, 1, 1), judge(in, 3, 3)
}

func judge(in Input, viewsPerPoint, apiServers int) Verdict {
	var missing []string
	for _, space := range Spaces {
		for _, seg := range Coverage(in.Views, space) {
			if seg.UpToDate < viewsPerPoint {
				missing = append(missing, fmt.Sprintf("%s: %d up-to-date views, need %d", seg, seg.UpToDate, viewsPerPoint))
			}
		}
	}
	if !in.LogAvailable {
		msg := "log: not available for appends and non-stale reads"
		if in.LogError != "" {
			msg += ": " + in.LogError
		}
		missing = append(missing, msg)
	}
	if in.APIServers < apiServers {
		missing = append(missing, fmt.Sprintf("API servers: %d available, need %d", in.APIServers, apiServers))
	}
	return Verdict{OK: len(missing) == 0, Missing: missing}
}
