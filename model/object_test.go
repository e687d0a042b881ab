package model

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/akutan/akutan/model/modeltest"
	"github.com/akutan/akutan/proto/entrypb"
)

func enc(t testing.TB, o *entrypb.Object) []byte {
	t.Helper()
	b, err := AppendObject(nil, o, IDOnly)
	if err != nil {
		t.Fatalf("encode %v: %v", o, err)
	}
	return b
}

// semanticCompare is the documented object order, written independently of
// the encoding.
func semanticCompare(a, b *entrypb.Object) int {
	rank := func(o *entrypb.Object) int {
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
		}
		return 6
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	switch av := a.GetValue().(type) {
	case *entrypb.Object_Node:
		return cmp.Compare(av.Node.GetId(), b.GetNode().GetId())
	case *entrypb.Object_String_:
		if c := strings.Compare(av.String_.GetText(), b.GetString_().GetText()); c != 0 {
			return c
		}
		return strings.Compare(av.String_.GetLang(), b.GetString_().GetLang())
	case *entrypb.Object_Int64:
		return cmp.Compare(av.Int64, b.GetInt64())
	case *entrypb.Object_Float64:
		x, y := av.Float64, b.GetFloat64()
		if x == 0 {
			x = 0
		}
		if y == 0 {
			y = 0
		}
		switch xn, yn := math.IsNaN(x), math.IsNaN(y); {
		case xn && yn:
			return 0
		case xn:
			return 1
		case yn:
			return -1
		}
		return cmp.Compare(x, y)
	case *entrypb.Object_Bool:
		x, y := 0, 0
		if av.Bool {
			x = 1
		}
		if b.GetBool() {
			y = 1
		}
		return cmp.Compare(x, y)
	case *entrypb.Object_Timestamp:
		at, bt := av.Timestamp, b.GetTimestamp()
		return cmp.Or(cmp.Compare(at.UnixSeconds, bt.UnixSeconds), cmp.Compare(at.Nanos, bt.Nanos),
			cmp.Compare(at.Precision, bt.Precision))
	}
	panic("unreachable")
}

func TestObjectOrderAndRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	objs := make([]*entrypb.Object, 3000)
	for i := range objs {
		objs[i] = modeltest.RandObject(r)
	}
	for i, a := range objs {
		ea := enc(t, a)
		if n := ObjectLen(append(slices.Clone(ea), 0xAB, 0xCD)); n != len(ea) {
			t.Fatalf("ObjectLen(%x...) = %d, want %d", ea, n, len(ea))
		}
		for j := 1; j < len(ea); j++ {
			if n := ObjectLen(ea[:j]); n != -1 {
				t.Fatalf("ObjectLen of truncated %x = %d", ea[:j], n)
			}
		}
		back, err := DecodeObject(ea)
		if err != nil {
			t.Fatalf("decode %x: %v", ea, err)
		}
		if semanticCompare(a, back) != 0 || !bytes.Equal(enc(t, back), ea) {
			t.Fatalf("round trip %v -> %v", a, back)
		}
		b := objs[(i*7919+13)%len(objs)]
		eb := enc(t, b)
		if got, want := bytes.Compare(ea, eb), semanticCompare(a, b); got != want {
			t.Fatalf("order of %v and %v: encoding %d, semantic %d", a, b, got, want)
		}
	}
}

func TestFloatEdgeCases(t *testing.T) {
	if !bytes.Equal(enc(t, modeltest.Float(math.Copysign(0, -1))), enc(t, modeltest.Float(0))) {
		t.Error("-0 and +0 encode differently")
	}
	nan1 := enc(t, modeltest.Float(math.NaN()))
	nan2 := enc(t, modeltest.Float(math.Float64frombits(0xFFF8000000000123)))
	if !bytes.Equal(nan1, nan2) {
		t.Error("NaNs encode differently")
	}
	if bytes.Compare(nan1, enc(t, modeltest.Float(math.Inf(1)))) <= 0 {
		t.Error("NaN does not sort above +Inf")
	}
	back, _ := DecodeObject(nan1)
	if !math.IsNaN(back.GetFloat64()) {
		t.Errorf("NaN decodes to %v", back)
	}
}

func TestStringPrefix(t *testing.T) {
	for _, c := range []struct {
		prefix, text string
		want         bool
	}{
		{"", "anything", true}, {"ab", "ab", true}, {"ab", "abc", true}, {"ab", "a", false},
		{"a\x00", "a\x00b", true}, {"a\x00", "a", false}, {"a", "a\x00", true}, {"a\x00", "a\x01", false},
	} {
		p := AppendStringPrefix(nil, c.prefix)
		for _, lang := range []string{"", "en"} {
			e := enc(t, modeltest.Str(c.text, lang))
			if got := bytes.HasPrefix(e, p); got != c.want {
				t.Errorf("prefix %q of %q@%q: %v, want %v", c.prefix, c.text, lang, got, c.want)
			}
		}
	}
}

func TestInvalidObjects(t *testing.T) {
	for _, o := range []*entrypb.Object{
		nil, {}, modeltest.Timestamp(0, -1, 0), modeltest.Timestamp(0, 1_000_000_000, 0), modeltest.Timestamp(0, 0, 8),
		{Value: &entrypb.Object_Node{Node: &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: 1}}}},
	} {
		if _, err := AppendObject(nil, o, IDOnly); err == nil {
			t.Errorf("AppendObject(%v) succeeded", o)
		}
	}
}

// CompareObjects is the encoding's order, and unencodable objects sort last.
func TestCompareObjects(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		a, b := modeltest.RandObject(r), modeltest.RandObject(r)
		if got, want := CompareObjects(a, b), bytes.Compare(enc(t, a), enc(t, b)); got != want {
			t.Fatalf("CompareObjects(%v, %v) = %d, want %d", a, b, got, want)
		}
	}
	if CompareObjects(&entrypb.Object{}, modeltest.Timestamp(math.MaxInt64, 0, 0)) != 1 || CompareObjects(nil, &entrypb.Object{}) != 0 {
		t.Error("unset objects do not sort last")
	}
}
