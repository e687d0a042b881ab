package facttext

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// FuzzParseLine: any line either is a syntax error or parses to a fact
// that prints as a canonical line, which reads back as the same fact and
// prints as itself.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`<alice> <knows> <bob>`,
		`wd:Q42 <label> "Douglas \"D\" Adams"@en   # trailing comment`,
		`<a\>b> <c\<d> <tab\there\\>`,
		`<alice> <age> 42`, `<alice> <age> 99999999999999999999999`, `<a> <b> -0.0`, `<a> <b> 1e+23`,
		`<alice> <born> 1990-03-04T05:06:07.5Z`, `<a> <b> 1990-`, `<a> <b> 1990-03-04T05+05:30`,
		`<a> <b> 1990-03-04T05:06Z`, `<a> <b> 1990-03-04T05:06:07,25+01:00`,
		`@1048577 <ref> @7`, `<a> <b> "\u0007\U0001F600"@x-y`, `<a> <b> +NaN`, `# comment`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fact, err := ParseLine(s, 1)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("%q: %v is not a SyntaxError", s, err)
			}
			return
		}
		if fact == nil {
			return
		}
		checkRoundTrip(t, fact)
	})
}

// FuzzFormatLine: every fact in the text's domain prints as a line that
// reads back as the same fact.
func FuzzFormatLine(f *testing.F) {
	f.Add("alice", "knows", uint8(0), "bob", "", int64(0), 0.0, int64(0), int32(0), uint8(0))
	f.Add("a>b", "c\td", uint8(1), "x\"y\\\n", "en", int64(0), 0.0, int64(0), int32(0), uint8(0))
	f.Add("a", "b", uint8(2), "", "", int64(math.MinInt64), 0.0, int64(0), int32(0), uint8(0))
	f.Add("a", "b", uint8(3), "", "", int64(0), math.Copysign(0, -1), int64(0), int32(0), uint8(0))
	f.Add("a", "b", uint8(5), "", "", int64(0), 0.0, int64(636527167), int32(5e8), uint8(7))
	f.Add("a", "b", uint8(5), "", "", int64(0), 0.0, int64(636502400), int32(0), uint8(3))
	f.Fuzz(func(t *testing.T, subj, pred string, kind uint8, text, lang string, i int64, fl float64, sec int64, nanos int32, prec uint8) {
		if subj == "" || pred == "" || !utf8.ValidString(subj) || !utf8.ValidString(pred) || !utf8.ValidString(text) ||
			strings.Trim(lang, langChars) != "" || math.IsNaN(fl) || math.IsInf(fl, 0) {
			return
		}
		var o *apipb.Object
		switch kind % 6 {
		case 0:
			o = &apipb.Object{Value: &apipb.Object_Node{Node: nameNode(text)}}
			if text == "" {
				o = &apipb.Object{Value: &apipb.Object_Node{Node: &apipb.Node{Ref: &apipb.Node_Id{Id: uint64(i) | 1}}}}
			}
		case 1:
			o = &apipb.Object{Value: &apipb.Object_String_{String_: &entrypb.LangString{Text: text, Lang: lang}}}
		case 2:
			o = &apipb.Object{Value: &apipb.Object_Int64{Int64: i}}
		case 3:
			o = &apipb.Object{Value: &apipb.Object_Float64{Float64: fl}}
		case 4:
			o = &apipb.Object{Value: &apipb.Object_Bool{Bool: i&1 == 1}}
		default:
			ts := &entrypb.Timestamp{UnixSeconds: sec, Nanos: nanos, Precision: entrypb.Timestamp_Precision(prec % 8)}
			if !Agrees(ts) {
				return
			}
			o = &apipb.Object{Value: &apipb.Object_Timestamp{Timestamp: ts}}
		}
		checkRoundTrip(t, &apipb.Fact{Subject: nameNode(subj), Predicate: nameNode(pred), Object: o})
	})
}

func checkRoundTrip(t *testing.T, fact *apipb.Fact) {
	t.Helper()
	line := FormatLine(fact)
	back, err := ParseLine(line, 1)
	if err != nil {
		t.Fatalf("%v printed as %q, which does not parse: %v", fact, line, err)
	}
	if !proto.Equal(back, fact) || math.Signbit(back.Object.GetFloat64()) != math.Signbit(fact.Object.GetFloat64()) {
		t.Fatalf("%v printed as %q, read back as %v", fact, line, back)
	}
	if again := FormatLine(back); again != line {
		t.Fatalf("%q printed again as %q", line, again)
	}
}
