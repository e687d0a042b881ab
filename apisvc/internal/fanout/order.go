package fanout

import (
	"cmp"
	"math"
	"strings"

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

// typeRank orders the object types; an unset object sorts last.
func typeRank(o *entrypb.Object) int {
	switch o.GetValue().(type) {
	case *entrypb.Object_Node:
		return 1
	case *entrypb.Object_String_:
		return 2
	case *entrypb.Object_Int64:
		return 3
	case *entrypb.Object_Float64:
		return 4
	case *entrypb.Object_Bool:
		return 5
	case *entrypb.Object_Timestamp:
		return 6
	}
	return 7
}

// compareObjects orders objects like the views' order-preserving encoding:
// nodes by id; strings by text bytes, then language; numbers numerically
// with -0 equal to 0 and NaN above +Inf; false before true; timestamps by
// seconds, nanos, then precision.
func compareObjects(a, b *entrypb.Object) int {
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case 1:
		return cmp.Compare(a.GetNode().GetId(), b.GetNode().GetId())
	case 2:
		sa, sb := a.GetString_(), b.GetString_()
		if c := strings.Compare(sa.GetText(), sb.GetText()); c != 0 {
			return c
		}
		return strings.Compare(sa.GetLang(), sb.GetLang())
	case 3:
		return cmp.Compare(a.GetInt64(), b.GetInt64())
	case 4:
		fa, fb := a.GetFloat64(), b.GetFloat64()
		na, nb := math.IsNaN(fa), math.IsNaN(fb)
		switch {
		case na || nb:
			return cmp.Compare(b2i(na), b2i(nb))
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	case 5:
		return cmp.Compare(b2i(a.GetBool()), b2i(b.GetBool()))
	case 6:
		ta, tb := a.GetTimestamp(), b.GetTimestamp()
		if c := cmp.Compare(ta.GetUnixSeconds(), tb.GetUnixSeconds()); c != 0 {
			return c
		}
		if c := cmp.Compare(ta.GetNanos(), tb.GetNanos()); c != 0 {
			return c
		}
		return cmp.Compare(ta.GetPrecision(), tb.GetPrecision())
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

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
