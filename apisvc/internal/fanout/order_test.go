package fanout

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

func TestCompareObjects(t *testing.T) {
	// In the views' order.
	sorted := []*entrypb.Object{
		nodeObj(1), nodeObj(2), nodeObj(1 << 40),
		strObj("", ""), strObj("", "en"), strObj("\x00", ""), strObj("a", ""), strObj("a", "de"), strObj("a", "en"),
		strObj("a\x00", ""), strObj("ab", ""), strObj("b", ""), strObj("é", ""),
		intObj(math.MinInt64), intObj(-1), intObj(0), intObj(1), intObj(math.MaxInt64),
		floatObj(math.Inf(-1)), floatObj(-1.5), floatObj(0), floatObj(1e-300), floatObj(2), floatObj(math.Inf(1)), floatObj(math.NaN()),
		boolObj(false), boolObj(true),
		tsObj(-5, 0), tsObj(0, 0), tsObj(0, 1), tsObj(1, 0),
		{},
	}
	for i, a := range sorted {
		for j, b := range sorted {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareObjects(a, b); got != want {
				t.Errorf("compare(%v, %v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if compareObjects(floatObj(math.Copysign(0, -1)), floatObj(0)) != 0 {
		t.Error("-0 != 0")
	}
	day := &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{UnixSeconds: 1, Precision: entrypb.Timestamp_DAY}}}
	if compareObjects(day, tsObj(1, 0)) >= 0 {
		t.Error("precision is not the last key of a timestamp")
	}
}

func TestMergeSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var all []*viewpb.LookupFact
	for i := range 100 {
		all = append(all, &viewpb.LookupFact{Id: uint64(i), Predicate: uint64(r.IntN(5)), Object: intObj(int64(r.IntN(10)))})
	}
	slices.SortFunc(all, compareS)
	lists := make([][]*viewpb.LookupFact, 4)
	for _, f := range all {
		k := r.IntN(len(lists))
		lists[k] = append(lists[k], f)
	}
	if got := mergeSorted(lists, compareS); !slices.Equal(got, all) {
		t.Error("merge is not sorted")
	}
	if got := mergeSorted([][]*viewpb.LookupFact{nil, all[:3], nil}, compareS); !slices.Equal(got, all[:3]) {
		t.Error("single list")
	}
	if got := mergeSorted(nil, compareS); got != nil {
		t.Error("no lists")
	}
}

func TestTopology(t *testing.T) {
	rep := func(start, end, applied uint64, state viewpb.State) *replica {
		return &replica{healthy: true, status: &viewpb.StatusResponse{Space: viewpb.Space_HASH_SP,
			Range: &viewpb.HashRange{Start: start, End: end}, LastApplied: applied, State: state}}
	}
	reps := []*replica{
		rep(0, half, 5, viewpb.State_SERVING),
		rep(half, 0, 9, viewpb.State_SERVING),
		rep(quarter, 3*quarter, 7, viewpb.State_CATCHING_UP),
		{healthy: false, status: &viewpb.StatusResponse{Space: viewpb.Space_HASH_SP, Range: &viewpb.HashRange{}}},
	}
	s := buildTopology(reps).sp
	if want := []uint64{0, quarter, half, 3 * quarter}; !slices.Equal(s.bounds, want) {
		t.Fatalf("bounds %x", s.bounds)
	}
	for i, want := range []int{1, 2, 2, 1} {
		if len(s.cover[i]) != want {
			t.Errorf("segment %d covered by %d", i, len(s.cover[i]))
		}
	}
	if s.recent != 5 || s.firstGap() != nil {
		t.Errorf("recent %d, gap %v", s.recent, s.firstGap())
	}
	if s.segmentOf(0) != 0 || s.segmentOf(quarter-1) != 0 || s.segmentOf(quarter) != 1 || s.segmentOf(^uint64(0)) != 3 {
		t.Error("segmentOf")
	}
	iv := s.segmentIntervals([]int{0, 1, 3})
	if len(iv) != 2 || iv[0] != [2]uint64{0, half - 1} || iv[1] != [2]uint64{3 * quarter, ^uint64(0)} {
		t.Errorf("intervals %x", iv)
	}
	for h, want := range map[uint64]bool{0: true, half - 1: true, half: false, 3*quarter - 1: false, 3 * quarter: true, ^uint64(0): true} {
		if iv.contains(h) != want {
			t.Errorf("contains(%x) != %v", h, want)
		}
	}
	empty := buildTopology(nil).po
	if err := empty.firstGap(); err == nil || err.Error() != "no healthy view covers [0x0000000000000000, 0x10000000000000000) of HashPO" {
		t.Errorf("empty space: %v", err)
	}
}
