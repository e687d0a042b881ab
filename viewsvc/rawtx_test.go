package viewsvc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
)

// checkRawTx compares the wire parser with protobuf on one input: whenever
// parseRawTx accepts, protobuf must decode the same transaction.
func checkRawTx(t testing.TB, data []byte) (accepted bool) {
	var fast rawTx
	version, ok := parseRawTx(data, &fast)
	if !ok {
		return false
	}
	var env entrypb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		t.Fatalf("parseRawTx accepted %x, protobuf refuses it: %v", data, err)
	}
	tx, isTx := env.Command.(*entrypb.Envelope_Transaction)
	if !isTx || env.Version != version {
		t.Fatalf("parseRawTx accepted %x as a version %d transaction; protobuf reads %v", data, version, &env)
	}
	slow := rawFromProto(tx.Transaction)
	if got, want := fmt.Sprintf("%+v", norm(fast)), fmt.Sprintf("%+v", norm(slow)); got != want {
		t.Fatalf("input %x:\nwire     %s\nprotobuf %s", data, got, want)
	}
	return true
}

// norm makes empty and nil slices compare equal.
func norm(tx rawTx) rawTx {
	obj := func(o rawObject) rawObject {
		if len(o.text) == 0 {
			o.text = nil
		}
		if len(o.lang) == 0 {
			o.lang = nil
		}
		return o
	}
	out := rawTx{newNodes: tx.newNodes, needsDecision: tx.needsDecision}
	for _, i := range tx.inserts {
		i.o = obj(i.o)
		out.inserts = append(out.inserts, i)
	}
	for _, d := range tx.deletes {
		d.o = obj(d.o)
		out.deletes = append(out.deletes, d)
	}
	return out
}

func rawTxSeeds() [][]byte {
	seeds := [][]byte{
		newTx(3).insert(newRef(1), idRef(7), strObj("x\x00y", "en")).insert(idRef(1), idRef(2), floatObj(math.NaN())).
			insert(idRef(1), idRef(2), tsObj(-5, 7, entrypb.Timestamp_DAY)).insert(idRef(1), idRef(2), boolObj(true)).
			insert(idRef(1), idRef(2), intObj(-1)).insert(nil, idRef(2), nil).insert(idRef(1), &entrypb.NodeRef{}, &entrypb.Object{}).
			deleteID(9).deleteSPO(1, 2, newNodeObj(1)).deleteSPO(1, 2, nil).held().bytes(),
		envBytes(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: &entrypb.Transaction{
			Deletes: []*entrypb.Delete{{}}, Inserts: []*entrypb.Insert{{}}}}}),
		envBytes(&entrypb.Envelope{Version: 7, Command: &entrypb.Envelope_Transaction{Transaction: &entrypb.Transaction{}}}),
		tsTx(math.MinInt64, -1, -3), tsTx(0, math.MaxInt32, math.MaxInt32),
		pingEntry(1), decisionEntry(1, true),
	}
	ds := makeDataset(5, 300, 30, true, 0)
	seeds = append(seeds, ds.entries...)
	g := newGen(9)
	for range 100 {
		seeds = append(seeds, g.next())
	}
	return seeds
}

func tsTx(sec int64, nanos int32, prec int32) []byte {
	return newTx(0).insert(idRef(1), idRef(2), tsObj(sec, nanos, entrypb.Timestamp_Precision(prec))).bytes()
}

// TestRawTxMatchesProtobuf: plain encodings are all taken by the wire
// parser, and mutated ones are either refused or read like protobuf does.
func TestRawTxMatchesProtobuf(t *testing.T) {
	seeds := rawTxSeeds()
	for _, s := range seeds {
		var env entrypb.Envelope
		if err := proto.Unmarshal(s, &env); err != nil {
			t.Fatal(err)
		}
		_, isTx := env.Command.(*entrypb.Envelope_Transaction)
		if got := checkRawTx(t, s); got != isTx {
			t.Errorf("parseRawTx took %v a plain encoding of %v", got, &env)
		}
	}
	// Encodings protobuf accepts but the parser leaves to it.
	b := newTx(1).bytes()
	for _, odd := range [][]byte{
		protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), 1),     // version twice
		protowire.AppendBytes(protowire.AppendTag(b, 99, protowire.BytesType), nil),    // unknown field
		protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), 1),     // wrong wire type
		protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), 1<<40), // over uint32
	} {
		if checkRawTx(t, odd) {
			t.Errorf("parseRawTx took %x", odd)
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	accepted := 0
	for range 30_000 {
		s := append([]byte(nil), seeds[r.IntN(len(seeds))]...)
		for range 1 + r.IntN(3) {
			if len(s) == 0 {
				break
			}
			switch i := r.IntN(len(s)); r.IntN(4) {
			case 0:
				s[i] ^= byte(1 << r.IntN(8))
			case 1:
				s[i] = byte(r.IntN(256))
			case 2:
				s = s[:i]
			default:
				s = append(s[:i], append([]byte{byte(r.IntN(256))}, s[i:]...)...)
			}
		}
		if checkRawTx(t, s) {
			accepted++
		}
	}
	t.Logf("%d mutated inputs taken by the wire parser", accepted)
}

func FuzzRawTx(f *testing.F) {
	for _, s := range rawTxSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkRawTx(t, data) })
}
