package logsvc

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
)

func TestCommandRoundTrip(t *testing.T) {
	entries := [][]byte{pingEntry("a"), {}, pingEntry("c")}
	c, err := decodeCommand(encodeAppend(entries, 0, nil))
	if err != nil || c.kind != cmdAppend || len(c.entries) != 3 || !bytes.Equal(c.entries[2], entries[2]) {
		t.Fatalf("append: %+v %v", c, err)
	}
	if c, err := decodeCommand(encodeIndex(cmdDiscard, 1<<40)); err != nil || c.index != 1<<40 {
		t.Fatalf("discard: %+v %v", c, err)
	}
	if c, err := decodeCommand(encodeRegister("n1", "127.0.0.1:9")); err != nil || c.id != "n1" || c.addr != "127.0.0.1:9" {
		t.Fatalf("register: %+v %v", c, err)
	}
	g, err := decodeCommand(encodeAppend(entries, 9, [][]byte{[]byte("k1"), []byte("k2")}))
	if err != nil || g.kind != cmdGuarded || g.since != 9 || len(g.keys) != 2 || string(g.keys[1]) != "k2" || len(g.entries) != 3 {
		t.Fatalf("guarded append: %+v %v", g, err)
	}
	full := encodeAppend(entries, 9, [][]byte{[]byte("key")})
	for i := 0; i < len(full); i++ {
		if _, err := decodeCommand(full[:i]); !errors.Is(err, errBadCommand) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := decodeCommand([]byte{99}); !errors.Is(err, errBadCommand) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodeAppend([][]byte{pingEntry("x")}, 0, nil))
	f.Add(encodeAppend([][]byte{pingEntry("x")}, 3, [][]byte{[]byte("k")}))
	f.Add(encodeRegister("a", "b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeCommand(b)
		peekEnvelope(b)
	})
}

func TestPeekEnvelope(t *testing.T) {
	h, err := peekEnvelope(versionChangeEntry(1, 5))
	if err != nil || h.version != 1 || !h.versionChange || h.toVersion != 5 {
		t.Fatalf("version change head %+v %v", h, err)
	}
	h, err = peekEnvelope(pingEntry("p"))
	if err != nil || h.version != 1 || h.versionChange {
		t.Fatalf("ping head %+v %v", h, err)
	}
	if _, err := peekEnvelope([]byte{0x0a, 0x10}); err == nil {
		t.Fatal("truncated envelope accepted")
	}
}

// checkWire accepts exactly what proto.Unmarshal accepts, on valid
// envelopes and on every corruption of one.
func TestCheckWireMatchesUnmarshal(t *testing.T) {
	valid, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: &entrypb.Transaction{
		NewNodes: 1,
		Inserts: []*entrypb.Insert{{
			Subject:   &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: 1}},
			Predicate: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: 42}},
			Object:    &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: "héllo", Lang: "en"}}},
		}, {
			Subject:   &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: 7}},
			Predicate: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: 8}},
			Object:    &entrypb.Object{Value: &entrypb.Object_Float64{Float64: 2.5}},
		}},
		Deletes: []*entrypb.Delete{{Target: &entrypb.Delete_FactId{FactId: 99}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	inputs := [][]byte{valid, pingEntry("x"), versionChangeEntry(1, 2)}
	for i := range valid {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), valid...)
			b[i] ^= x
			inputs = append(inputs, b)
		}
		inputs = append(inputs, valid[:i])
	}
	for _, b := range inputs {
		_, werr := checkWire(b, envelopeDesc, 0)
		uerr := proto.Unmarshal(b, &entrypb.Envelope{})
		if (werr == nil) != (uerr == nil) {
			t.Fatalf("input %x: checkWire %v, Unmarshal %v", b, werr, uerr)
		}
	}
}
