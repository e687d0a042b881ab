package health

import (
	"strings"
	"testing"
)

const half = uint64(1) << 63

func fullViews(n int) []View {
	var vs []View
	for _, space := range Spaces {
		for i := 0; i < n; i++ {
			vs = append(vs, View{Space: space, Start: 0, End: half, UpToDate: true}, View{Space: space, Start: half, End: 0, UpToDate: true})
		}
	}
	return vs
}

func TestVerdicts(t *testing.T) {
	in := Input{LogAvailable: true, Views: fullViews(3), APIServers: 3}
	fully, healthy := Evaluate(in)
	if !fully.OK || !healthy.OK {
		t.Fatalf("full cluster: %+v %+v", fully, healthy)
	}
	in = Input{LogAvailable: true, Views: fullViews(1), APIServers: 1}
	fully, healthy = Evaluate(in)
	if !fully.OK || healthy.OK {
		t.Fatalf("minimal cluster: %+v %+v", fully, healthy)
	}
	if len(healthy.Missing) != 5 || !strings.Contains(healthy.Missing[0], "HashSP [0x0, 0x8000000000000000): 1 up-to-date views, need 3") ||
		!strings.Contains(healthy.Missing[4], "API servers: 1 available, need 3") {
		t.Fatalf("healthy missing: %q", healthy.Missing)
	}
	// One stale view leaves its half uncovered.
	in.Views[1].UpToDate = false
	in.LogAvailable = false
	in.LogError = "no leader"
	fully, _ = Evaluate(in)
	if fully.OK || len(fully.Missing) != 2 || !strings.Contains(fully.Missing[0], "HashSP [0x8000000000000000, 2^64): 0 up-to-date views") ||
		fully.Missing[1] != "log: not available for appends and non-stale reads: no leader" {
		t.Fatalf("stale view: %q", fully.Missing)
	}
}

// A 3 → 4 split in progress: overlapping ranges are judged point by point.
func TestCoverageOverlap(t *testing.T) {
	third := ^uint64(0)/3 + 1
	quarter := uint64(1) << 62
	views := []View{
		{Space: "HashSP", Start: 0, End: third, UpToDate: true},
		{Space: "HashSP", Start: third, End: 2 * third, UpToDate: true},
		{Space: "HashSP", Start: 2 * third, End: 0, UpToDate: false},
		{Space: "HashSP", Start: 2 * quarter, End: 3 * quarter, UpToDate: true},
		{Space: "HashSP", Start: 3 * quarter, End: 0, UpToDate: true},
	}
	segs := Coverage(views, "HashSP")
	for _, s := range segs {
		if s.UpToDate == 0 {
			t.Fatalf("segment %s uncovered: %+v", s, segs)
		}
	}
	if len(segs) != 5 || segs[0].Start != 0 || segs[len(segs)-1].End != 0 {
		t.Fatalf("segments %+v", segs)
	}
	// Without the new quarter views, the last third is uncovered.
	segs = Coverage(views[:3], "HashSP")
	if segs[2].UpToDate != 0 || segs[2].String() != "HashSP [0xaaaaaaaaaaaaaaac, 2^64)" {
		t.Fatalf("segments %+v", segs)
	}
	// No views at all: one uncovered segment.
	if segs := Coverage(nil, "HashPO"); len(segs) != 1 || segs[0].UpToDate != 0 {
		t.Fatalf("empty: %+v", segs)
	}
}
