// Package modeltest builds objects for tests of the model's encoding and of
// the stores that keep it.
package modeltest

import (
	"math"
	"math/rand/v2"

	"github.com/akutan/akutan/proto/entrypb"
)

// Object constructors.

func Node(id uint64) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Node{Node: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}}}}
}
func Str(text, lang string) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: text, Lang: lang}}}
}
func Int(v int64) *entrypb.Object { return &entrypb.Object{Value: &entrypb.Object_Int64{Int64: v}} }
func Float(v float64) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Float64{Float64: v}}
}
func Bool(v bool) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Bool{Bool: v}}
}
func Timestamp(sec int64, nanos int32, p entrypb.Timestamp_Precision) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{UnixSeconds: sec, Nanos: nanos, Precision: p}}}
}

// RandObject is a random object, biased to the edges of each type's order.
func RandObject(r *rand.Rand) *entrypb.Object {
	strs := []string{"", "a", "a\x00", "a\x00b", "a\x01", "ab", "abc", "b", "\x00", "\x00\x00", "\xff", "é", "z\x00\xff"}
	langs := []string{"", "en", "en-GB", "fr", "\x00"}
	ints := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64 - 1, math.MaxInt64}
	floats := []float64{math.NaN(), math.Copysign(0, -1), math.Inf(-1), -math.MaxFloat64, -1e10, -1, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 0.5, 1, 1e300, math.Inf(1)}
	switch r.IntN(6) {
	case 0:
		ids := []uint64{0, 1, 2, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
		return Node(ids[r.IntN(len(ids))])
	case 1:
		return Str(strs[r.IntN(len(strs))], langs[r.IntN(len(langs))])
	case 2:
		if r.IntN(2) == 0 {
			return Int(int64(r.Uint64()))
		}
		return Int(ints[r.IntN(len(ints))])
	case 3:
		if r.IntN(2) == 0 {
			return Float(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20)))
		}
		return Float(floats[r.IntN(len(floats))])
	case 4:
		return Bool(r.IntN(2) == 1)
	}
	secs := []int64{math.MinInt64, -1, 0, 1, 1700000000, math.MaxInt64}
	return Timestamp(secs[r.IntN(len(secs))], int32(r.IntN(3))*499_999_999, entrypb.Timestamp_Precision(r.IntN(8)))
}
