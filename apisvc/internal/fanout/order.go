package fanout

import (
	"cmp"

	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// Whole-space lookups gather a lookup's facts from several views, each in the
// view's key order; mergeSorted puts them back into that order, so the answer
// is the same as one view of the whole space would give. The order is the
// one view.proto states: objects by type (node < string < int64 < float64 <
// bool < timestamp), then by value.

// compareS orders LookupS facts: by predicate, then object (fact id breaks
// ties, which a view never has).
func compareS(a, b *viewpb.LookupFact) int {
	if c := cmp.Compare(a.GetPredicate(), b.GetPredicate()); c != 0 {
		return c
	}
	if c := compareObjects(a.GetObject(), b.GetObject()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetId(), b.GetId())
}

// compareSP orders LookupSP (and LookupSPO) facts: by object.
func compareSP(a, b *viewpb.LookupFact) int {
	if c := compareObjects(a.GetObject(), b.GetObject()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetId(), b.GetId())
}

// comparePO orders LookupPO facts: by subject.
func comparePO(a, b *viewpb.LookupFact) int {
	if c := cmp.Compare(a.GetSubject(), b.GetSubject()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetId(), b.GetId())
}

// comparePOCmp orders LookupPOCmp facts: by object, then subject.
func comparePOCmp(a, b *viewpb.LookupFact) int {
	if c := compareObjects(a.GetObject(), b.GetObject()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.GetSubject(), b.GetSubject()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetId(), b.GetId())
}

// compareObjects is the views' object order: the model's, which is the
// order of the encoding the views store.
func compareObjects(a, b *entrypb.Object) int { return model.CompareObjects(a, b) }

// mergeSorted merges lists that are each sorted by compare into one sorted
// list. A single list is returned as is.
func mergeSorted(lists [][]*viewpb.LookupFact, compare func(a, b *viewpb.LookupFact) int) []*viewpb.LookupFact {
	var nonEmpty [][]*viewpb.LookupFact
	total := 0
	for _, l := range lists {
		if len(l) > 0 {
			nonEmpty = append(nonEmpty, l)
			total += len(l)
		}
	}
	switch len(nonEmpty) {
	case 0:
		return nil
	case 1:
		return nonEmpty[0]
	}
	out := make([]*viewpb.LookupFact, 0, total)
	heads := make([]int, len(nonEmpty))
	for len(out) < total {
		best := -1
		for i, l := range nonEmpty {
			if heads[i] < len(l) && (best < 0 || compare(l[heads[i]], nonEmpty[best][heads[best]]) < 0) {
				best = i
			}
		}
		out = append(out, nonEmpty[best][heads[best]])
		heads[best]++
	}
	return out
}
