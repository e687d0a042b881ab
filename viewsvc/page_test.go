package viewsvc

import (
	"fmt"
	"testing"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// A lookup answer read in pages of any size, each resuming after the last
// fact of the one before, is the whole answer, fact for fact: for every
// kind of lookup and both spaces.
func TestPagesResumeAfterCursor(t *testing.T) {
	log := NewMemLog()
	tx := newTx(3)
	objs := []*entrypb.Object{intObj(5), intObj(-2), strObj("b", ""), strObj("a", "en"), nodeObj(100), boolObj(true)}
	for s := uint32(1); s <= 3; s++ {
		for _, p := range []uint64{100, 101} {
			for _, o := range objs {
				tx.insert(newRef(s), idRef(p), o)
			}
		}
	}
	log.Append(tx.bytes())
	subject := func(k uint64) uint64 { return 1<<20 | k }

	open := func(space Space) viewpb.ViewClient {
		v := openView(t, testConfig(t, space, FullRange))
		start(t, v, log)
		waitApplied(t, v, 1)
		return serve(t, v)
	}
	sp, po := open(SpaceSP), open(SpacePO)

	type call func(from *viewpb.Cursor, limit uint32) ([]*viewpb.LookupResponse, error)
	calls := map[string]call{
		"S": func(from *viewpb.Cursor, limit uint32) ([]*viewpb.LookupResponse, error) {
			return recvAll(sp.LookupS(t.Context(), &viewpb.LookupSRequest{Index: 1, Subjects: []uint64{subject(2), 999, subject(1), subject(3)}, From: from, Limit: limit}))
		},
		"SP": func(from *viewpb.Cursor, limit uint32) ([]*viewpb.LookupResponse, error) {
			return recvAll(sp.LookupSP(t.Context(), &viewpb.LookupSPRequest{Index: 1, From: from, Limit: limit,
				Lookups: []*viewpb.SPLookup{{Subject: subject(1), Predicate: 101}, {Subject: subject(3), Predicate: 100}, {Subject: subject(2), Predicate: 100}}}))
		},
		"SPO": func(from *viewpb.Cursor, limit uint32) ([]*viewpb.LookupResponse, error) {
			return recvAll(sp.LookupSPO(t.Context(), &viewpb.LookupSPORequest{Index: 1, From: from, Limit: limit,
				Lookups: []*viewpb.SPOLookup{{Subject: subject(1), Predicate: 101, Object: intObj(5)}, {Subject: subject(1), Predicate: 101, Object: intObj(6)}, {Subject: subject(2), Predicate: 100, Object: strObj("b", "")}}}))
		},
		"PO": func(from *viewpb.Cursor, limit uint32) ([]*viewpb.LookupResponse, error) {
			return recvAll(po.LookupPO(t.Context(), &viewpb.LookupPORequest{Index: 1, From: from, Limit: limit,
				Lookups: []*viewpb.POLookup{{Predicate: 100, Object: intObj(5)}, {Predicate: 101, Object: strObj("a", "en")}}}))
		},
		"POCmp": func(from *viewpb.Cursor, limit uint32) ([]*viewpb.LookupResponse, error) {
			return recvAll(po.LookupPOCmp(t.Context(), &viewpb.LookupPOCmpRequest{Index: 1, From: from, Limit: limit,
				Lookups: []*viewpb.POCmpLookup{{Predicate: 101, Op: viewpb.CmpOp_GE, Object: intObj(-10)}, {Predicate: 100, Op: viewpb.CmpOp_LT, Object: strObj("z", "")}}}))
		},
	}
	ids := func(resps []*viewpb.LookupResponse) []string {
		var out []string
		for _, r := range resps {
			for _, f := range r.Facts {
				out = append(out, fmt.Sprintf("%d/%d", f.Lookup, f.Id))
			}
		}
		return out
	}
	for name, c := range calls {
		t.Run(name, func(t *testing.T) {
			all, err := c(nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := ids(all)
			if len(want) < 2 {
				t.Fatalf("only %d facts; the test needs more", len(want))
			}
			for _, limit := range []uint32{1, 2, 5, 1000} {
				var got []string
				var from *viewpb.Cursor
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("limit %d: no end after %d pages", limit, pages)
					}
					resps, err := c(from, limit)
					if err != nil {
						t.Fatalf("limit %d, page %d from %v: %v", limit, pages, from, err)
					}
					page := ids(resps)
					if len(page) > int(limit) {
						t.Fatalf("limit %d: page of %d facts", limit, len(page))
					}
					got = append(got, page...)
					if len(page) < int(limit) {
						break
					}
					last := resps[len(resps)-1].Facts
					f := last[len(last)-1]
					from = &viewpb.Cursor{Lookup: f.Lookup, After: &viewpb.FactKey{Subject: f.Subject, Predicate: f.Predicate, Object: f.Object}}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("limit %d: paged %v\nwhole %v", limit, got, want)
				}
			}
			// A cursor past the last lookup is malformed.
			if _, err := c(&viewpb.Cursor{Lookup: 10}, 0); err == nil {
				t.Error("a cursor past the last lookup was accepted")
			}
		})
	}
}
