package apisvc

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

func TestPageTokenRoundTrip(t *testing.T) {
	for _, tok := range []pageToken{
		{index: 7, fingerprint: 1, from: &viewpb.Cursor{Lookup: 3}},
		{index: 1 << 40, fingerprint: ^uint64(0), from: &viewpb.Cursor{Lookup: 9999, After: &viewpb.FactKey{Subject: 1 << 20, Predicate: 5,
			Object: &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: "a\x00b", Lang: "en"}}}}}},
	} {
		s, err := tok.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodePageToken(s)
		if err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
		if got.index != tok.index || got.fingerprint != tok.fingerprint || !proto.Equal(got.from, tok.from) {
			t.Errorf("round trip of %+v gave %+v", tok, got)
		}
	}
	for _, bad := range []string{"", "!!", "AQ", "AgAAAAAAAAAAAQA", "AQEAAAAAAAAAAQA"} {
		if _, err := decodePageToken(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("token %q: %v, want ErrInvalid", bad, err)
		}
	}
}

// A token names its request: the same lookups with another index or limit
// match, other lookups do not.
func TestFingerprint(t *testing.T) {
	node := func(n string) *apipb.Node { return &apipb.Node{Ref: &apipb.Node_Name{Name: n}} }
	a := &apipb.LookupSRequest{Subjects: []*apipb.Node{node("alice")}}
	b := &apipb.LookupSRequest{Subjects: []*apipb.Node{node("alice")}, Limit: 5, PageToken: "x",
		Index: &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_Recent{Recent: true}}}
	c := &apipb.LookupSRequest{Subjects: []*apipb.Node{node("bob")}}
	if fingerprint(a) != fingerprint(b) {
		t.Error("index, limit or token changed the fingerprint")
	}
	if fingerprint(a) == fingerprint(c) {
		t.Error("different lookups, same fingerprint")
	}
	if b.PageToken != "x" || b.Limit != 5 {
		t.Error("fingerprint changed its argument")
	}
}

// FuzzPageToken: a token from a client never panics the server, and one
// that decodes encodes back to the same token.
func FuzzPageToken(f *testing.F) {
	f.Add("AQcAAAAAAAAAAQMA")
	tok := pageToken{index: 9, fingerprint: 3, from: &viewpb.Cursor{Lookup: 1, After: &viewpb.FactKey{Subject: 2, Predicate: 3,
		Object: &entrypb.Object{Value: &entrypb.Object_Int64{Int64: -4}}}}}
	if s, err := tok.encode(); err == nil {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodePageToken(s)
		if err != nil {
			return
		}
		again, err := got.encode()
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", s, err)
		}
		back, err := decodePageToken(again)
		if err != nil || back.index != got.index || back.fingerprint != got.fingerprint || !proto.Equal(back.from, got.from) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, got, again, back, err)
		}
	})
}
