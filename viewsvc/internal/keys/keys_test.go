package keys

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/model/modeltest"
	"github.com/akutan/akutan/proto/entrypb"
)

func enc(t testing.TB, o *entrypb.Object) []byte {
	t.Helper()
	b, err := model.AppendObject(nil, o, model.IDOnly)
	if err != nil {
		t.Fatalf("encode %v: %v", o, err)
	}
	return b
}

func TestHashes(t *testing.T) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], 7)
	binary.BigEndian.PutUint64(b[8:], 9)
	if got, want := HashSP(7, 9), xxhash.Sum64(b[:]); got != want {
		t.Errorf("HashSP = %x, want %x", got, want)
	}
	o := enc(t, modeltest.Str("x", "en"))
	want := xxhash.Sum64(append(binary.BigEndian.AppendUint64(nil, 9), o...))
	if got := HashPO(9, o); got != want {
		t.Errorf("HashPO = %x, want %x", got, want)
	}
	for _, space := range []Space{SpaceSP, SpacePO} {
		body := AppendBody(nil, space, 7, 9, o)
		s, p, obj := ParseBody(space, body)
		if s != 7 || p != 9 || !bytes.Equal(obj, o) {
			t.Errorf("%v: ParseBody = %d %d %x", space, s, p, obj)
		}
		h := HashSP(7, 9)
		if space == SpacePO {
			h = HashPO(9, o)
		}
		if got := BodyHash(space, body); got != h {
			t.Errorf("%v: BodyHash = %x, want %x", space, got, h)
		}
	}
}

// TestSplitContract checks the properties Pebble requires of Split on full
// keys, bare prefixes, the partial keys lookups use as bounds, and the keys
// Separator and Successor derive.
func TestSplitContract(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var ks [][]byte
	for range 400 {
		space := SpaceSP
		if r.IntN(2) == 0 {
			space = SpacePO
		}
		s, p := uint64(r.IntN(3)), uint64(r.IntN(3))
		body := AppendBody(nil, space, s, p, enc(t, modeltest.RandObject(r)))
		var prefix []byte
		if r.IntN(2) == 0 {
			prefix = AppendFactPrefix(nil, space, BodyHash(space, body), body)
		} else {
			prefix = AppendOrderedPrefix(nil, space, body)
		}
		full := AppendVersion(slices.Clone(prefix), r.Uint64N(5)+uint64(r.IntN(2))*math.MaxUint64/2)
		if got := Split(full); got != len(prefix) {
			t.Fatalf("Split(%x) = %d, want %d", full, got, len(prefix))
		}
		if got := Split(prefix); got != len(prefix) {
			t.Fatalf("Split(prefix %x) = %d", prefix, got)
		}
		ks = append(ks, full, prefix)
		succ := Comparer.ImmediateSuccessor(nil, prefix)
		if Split(succ) != len(succ) || bytes.Compare(succ, AppendVersion(slices.Clone(prefix), 0)) <= 0 {
			t.Fatalf("ImmediateSuccessor(%x) = %x does not follow every version", prefix, succ)
		}
		ks = append(ks, succ)
		// Bounds used by lookups: truncations of the prefix and their ends.
		cut := slices.Clone(prefix[:1+r.IntN(len(prefix)-1)])
		ks = append(ks, cut)
		if end := PrefixEnd(cut); end != nil {
			ks = append(ks, end)
		}
	}
	ks = append(ks, TxRecordKey(nil, 5), PendingKey(nil, 9), MetaKey("applied"), []byte{TableSPFacts}, []byte{TablePOFacts + 1})
	slices.SortFunc(ks, bytes.Compare)
	var derived [][]byte
	for i := 0; i+1 < len(ks); i++ {
		a, b := ks[i], ks[i+1]
		if bytes.Equal(a, b) {
			continue
		}
		derived = append(derived, Comparer.Separator(nil, a, b), Comparer.Successor(nil, a))
		if sep := Comparer.Separator(nil, a, b); bytes.Compare(sep, a) < 0 || bytes.Compare(sep, b) >= 0 {
			t.Fatalf("Separator(%x, %x) = %x is out of order", a, b, sep)
		}
		if succ := Comparer.Successor(nil, a); bytes.Compare(succ, a) < 0 {
			t.Fatalf("Successor(%x) = %x < a", a, succ)
		}
	}
	ks = append(ks, derived...)
	slices.SortFunc(ks, bytes.Compare)
	prefixOf := func(k []byte) []byte { return k[:Split(k)] }
	for i, a := range ks {
		pa := prefixOf(a)
		if len(pa) < len(a) && bytes.Compare(pa, a) >= 0 {
			t.Fatalf("prefix %x does not sort before %x", pa, a)
		}
		for _, b := range ks[max(0, i-50):min(len(ks), i+50)] {
			pb := prefixOf(b)
			if bytes.Compare(a, b) <= 0 && bytes.Compare(pa, pb) > 0 {
				t.Fatalf("keys %x <= %x but prefixes %x > %x", a, b, pa, pb)
			}
			if bytes.Compare(pa, pb) < 0 && bytes.Compare(a, b) >= 0 {
				t.Fatalf("prefixes %x < %x but keys %x >= %x", pa, pb, a, b)
			}
		}
	}
}

func TestTxRecord(t *testing.T) {
	var rec []byte
	for i := uint64(1); i <= 300; i++ {
		rec = AppendTxRecord(rec, 7<<20|i*3, []byte(strings.Repeat("x", int(i))))
	}
	for i := uint64(1); i <= 300; i++ {
		b, err := FindInTxRecord(rec, 7<<20|i*3)
		if err != nil || len(b) != int(i) {
			t.Fatalf("find %d: %d bytes, %v", i, len(b), err)
		}
		if b, err := FindInTxRecord(rec, 7<<20|(i*3+1)); b != nil || err != nil {
			t.Fatalf("found a missing id: %v %v", b, err)
		}
	}
	if _, err := FindInTxRecord(rec[:len(rec)-1], 7<<20|900); err == nil {
		t.Error("truncated record accepted")
	}
}

func TestValues(t *testing.T) {
	live, id, err := ParseValue(LiveValue(nil, 42))
	if !live || id != 42 || err != nil {
		t.Errorf("live value: %v %d %v", live, id, err)
	}
	live, _, err = ParseValue(TombstoneValue)
	if live || err != nil {
		t.Errorf("tombstone: %v %v", live, err)
	}
	if _, _, err := ParseValue([]byte{7}); err == nil {
		t.Error("bad value parsed")
	}
}
