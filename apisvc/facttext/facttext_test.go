package facttext

import (
	"errors"
	"strings"
	"testing"

	"github.com/akutan/akutan/proto/apipb"
)

func TestParse(t *testing.T) {
	in := `# people
<alice> <knows> <bob>
wd:Q42 <label> "Douglas \"D\" Adams"@en   # trailing comment
<alice> <age> 42
<alice> <height> 1.68
<alice> <member> true
<alice> <born> 1990-03-04T05:06:07Z
<alice> <day> 1990-03-04
@1048577 <ref> @7
<alice> <neg> -5

`
	facts, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 9 {
		t.Fatalf("%d facts", len(facts))
	}
	if facts[1].Subject.GetName() != "wd:Q42" || facts[1].Object.GetString_().GetText() != `Douglas "D" Adams` || facts[1].Object.GetString_().GetLang() != "en" {
		t.Fatalf("fact 2: %v", facts[1])
	}
	if facts[2].Object.GetInt64() != 42 || facts[3].Object.GetFloat64() != 1.68 || !facts[4].Object.GetBool() {
		t.Fatalf("scalars: %v %v %v", facts[2], facts[3], facts[4])
	}
	if ts := facts[5].Object.GetTimestamp(); ts.UnixSeconds != 636527167 || ts.Precision.String() != "SECOND" {
		t.Fatalf("timestamp %v", ts)
	}
	if ts := facts[6].Object.GetTimestamp(); ts.Precision.String() != "DAY" {
		t.Fatalf("date %v", ts)
	}
	if facts[7].Subject.GetId() != 1048577 || facts[7].Object.GetNode().GetId() != 7 || facts[8].Object.GetInt64() != -5 {
		t.Fatalf("ids: %v %v", facts[7], facts[8])
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"<a> <b>", "line 1, column 1: want 3 terms"},
		{"<a> <b> <c>\n<a> <b> \"open", "line 2, column 9: unterminated string"},
		{"<a> <b> foo", "line 1, column 9: unknown term \"foo\""},
		{"\"s\" <b> <c>", "line 1, column 1: subject \"s\" is not a node"},
		{"<a> 5 <c>", "line 1, column 5: predicate 5 is not a node"},
		{"<a> <b> 2020-13-01", "line 1, column 9: bad timestamp"},
		{"<a> <b> @x", "line 1, column 9: bad node id @x"},
		{"<a> <b> \"x\\q\"", "line 1, column 11: unknown escape \\q"},
		{"<a> <b> <c>d", "line 1, column 12: unexpected 'd'"},
		{"<a <b> <c>", "line 1, column 1: bad name"},
	}
	for _, c := range cases {
		facts, err := Parse(strings.NewReader(c.in))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) || facts != nil {
			t.Errorf("%q: got %v, want %q", c.in, err, c.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, line := range []string{
		`<alice> <says> "a \"quote\"\n"@en`,
		`<alice> <age> 42`,
		`<alice> <height> 1.5`,
		`<alice> <w> 2.0`,
		`<alice> <born> 1990-03-04T05:06:07Z`,
		`<alice> <day> 1990-03-04`,
		`@9 <p> false`,
	} {
		f, err := ParseLine(line, 1)
		if err != nil {
			t.Fatal(err)
		}
		rf := &apipb.ResultFact{Subject: named(f.Subject), Predicate: named(f.Predicate), Object: result(f.Object)}
		if got := FormatFact(rf); got != line {
			t.Errorf("round trip: %q became %q", line, got)
		}
	}
}

func named(n *apipb.Node) *apipb.NamedNode { return &apipb.NamedNode{Id: n.GetId(), Name: n.GetName()} }

func result(o *apipb.Object) *apipb.ResultObject {
	switch v := o.Value.(type) {
	case *apipb.Object_Node:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Node{Node: named(v.Node)}}
	case *apipb.Object_String_:
		return &apipb.ResultObject{Value: &apipb.ResultObject_String_{String_: v.String_}}
	case *apipb.Object_Int64:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Int64{Int64: v.Int64}}
	case *apipb.Object_Float64:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Float64{Float64: v.Float64}}
	case *apipb.Object_Bool:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Bool{Bool: v.Bool}}
	case *apipb.Object_Timestamp:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Timestamp{Timestamp: v.Timestamp}}
	}
	return nil
}
