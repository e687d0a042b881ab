package apisvc

import (
	"errors"
	"strings"
	"testing"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

func named(n string) *apipb.Node { return &apipb.Node{Ref: &apipb.Node_Name{Name: n}} }
func id(i uint64) *apipb.Node    { return &apipb.Node{Ref: &apipb.Node_Id{Id: i}} }
func str(s string) *apipb.Object {
	return &apipb.Object{Value: &apipb.Object_String_{String_: &entrypb.LangString{Text: s}}}
}
func nodeObject(n *apipb.Node) *apipb.Object {
	return &apipb.Object{Value: &apipb.Object_Node{Node: n}}
}

// New names become new nodes in sorted order, each with its HasExternalID
// fact first; existing names and IDs are used as they are.
func TestBuildTx(t *testing.T) {
	req := &apipb.WriteRequest{Inserts: []*apipb.Fact{
		{Subject: named("zoe"), Predicate: named("knows"), Object: nodeObject(named("alice"))},
		{Subject: id(5 << 20), Predicate: named("knows"), Object: nodeObject(named("bob"))},
	}}
	names := nameSet{}
	for i, f := range req.Inserts {
		if err := checkFact(names, f, "insert", 0); err != nil {
			t.Fatal(i, err)
		}
	}
	ids := map[string]uint64{"alice": 3<<20 | 1}
	tx, newNames, err := buildTx(req, names, nil, ids, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bob", "knows", "zoe"}; len(newNames) != 3 || newNames[0] != want[0] || newNames[2] != want[2] {
		t.Fatalf("new names %v, want %v", newNames, want)
	}
	if tx.NewNodes != 3 || len(tx.Inserts) != 5 {
		t.Fatalf("tx: %v", tx)
	}
	naming := tx.Inserts[2] // zoe is new node 3
	if naming.Subject.GetNewNode() != 3 || naming.Predicate.GetId() != HasExternalID || naming.Object.GetString_().GetText() != "zoe" {
		t.Fatalf("naming fact %v", naming)
	}
	first := tx.Inserts[3]
	if first.Subject.GetNewNode() != 3 || first.Predicate.GetNewNode() != 2 || first.Object.GetNode().GetId() != 3<<20|1 {
		t.Fatalf("insert %v", first)
	}
	if second := tx.Inserts[4]; second.Subject.GetId() != 5<<20 || second.Object.GetNode().GetNewNode() != 1 {
		t.Fatalf("insert %v", second)
	}
}

func TestBuildTxErrors(t *testing.T) {
	del := &apipb.WriteRequest{Deletes: []*apipb.Fact{{Subject: named("ghost"), Predicate: id(9), Object: str("x")}}}
	names := nameSet{}
	checkFact(names, del.Deletes[0], "delete", 0)
	if _, _, err := buildTx(del, names, nil, map[string]uint64{}, 4); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("delete of unknown name: %v", err)
	}
	// Naming a node with a name another node has.
	rename := &apipb.Fact{Subject: named("bob"), Predicate: named("HasExternalID"), Object: str("alice")}
	req := &apipb.WriteRequest{Inserts: []*apipb.Fact{rename}}
	names = nameSet{}
	checkFact(names, rename, "insert", 0)
	ids := map[string]uint64{"alice": 1 << 20, "bob": 2 << 20}
	if _, _, err := buildTx(req, names, map[string]*apipb.Fact{"alice": rename}, ids, 4); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("taken name: %v", err)
	}
	if err := checkIDs(&apipb.WriteRequest{DeleteIds: []uint64{9 << 20}}, 8); !errors.Is(err, errFutureID) {
		t.Fatalf("future id: %v", err)
	}
	if err := checkIDs(&apipb.WriteRequest{DeleteIds: []uint64{8 << 20}}, 8); err != nil {
		t.Fatalf("id at the resolution index: %v", err)
	}
	for _, bad := range []*apipb.Fact{
		{Subject: named(""), Predicate: id(1), Object: str("x")},
		{Subject: id(0), Predicate: id(1), Object: str("x")},
		{Subject: id(1), Predicate: id(1)},
		{Subject: id(1), Predicate: id(1), Object: &apipb.Object{Value: &apipb.Object_String_{String_: &entrypb.LangString{Text: "\xff"}}}},
	} {
		if err := checkFact(nameSet{}, bad, "insert", 7); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "insert 7") {
			t.Errorf("%v: %v (want ErrInvalid naming insert 7)", bad, err)
		}
	}
}
