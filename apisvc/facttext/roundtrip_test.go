package facttext

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// The three defects of issue 12, finding 8.
func TestFinding8(t *testing.T) {
	// A fractional-second timestamp keeps its fraction at nanosecond
	// precision, and prints as it was written.
	f, err := ParseLine(`<a> <at> 1990-03-04T05:06:07.5Z`, 1)
	if err != nil {
		t.Fatal(err)
	}
	ts := f.Object.GetTimestamp()
	if ts.Precision != entrypb.Timestamp_NANOSECOND || ts.Nanos != 5e8 || !Agrees(ts) {
		t.Errorf("fractional second parsed as %v", ts)
	}
	if got := FormatLine(f); got != `<a> <at> 1990-03-04T05:06:07.5Z` {
		t.Errorf("printed as %s", got)
	}
	// Names with <, > or a tab survive printing.
	for _, name := range []string{"a>b", "a<b", "a\tb", `a\b`, "x\ny", "<>", "\x00\x7f\u0085"} {
		f := &apipb.Fact{Subject: nameNode(name), Predicate: nameNode("p"), Object: &apipb.Object{Value: &apipb.Object_Node{Node: nameNode(name)}}}
		line := FormatLine(f)
		back, err := ParseLine(line, 1)
		if err != nil || !proto.Equal(back, f) {
			t.Errorf("name %q printed as %s, read back as %v, %v", name, line, back, err)
		}
		rf := &apipb.ResultFact{Subject: &apipb.NamedNode{Name: name}, Predicate: &apipb.NamedNode{Name: "p"}, Object: result(f.Object)}
		if got := FormatFact(rf); got != line {
			t.Errorf("a result prints as %s, a fact as %s", got, line)
		}
	}
	// An integer outside int64 is an error naming the text.
	for _, n := range []string{"99999999999999999999999", "-9223372036854775809", "9223372036854775808"} {
		_, err := ParseLine(`<a> <n> `+n, 1)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), n) {
			t.Errorf("%s: %v, want a syntax error naming it", n, err)
		}
	}
	if f, err := ParseLine(`<a> <n> 9223372036854775807`, 1); err != nil || f.Object.GetInt64() != math.MaxInt64 {
		t.Errorf("max int64: %v %v", f, err)
	}
}

// Every canonical line prints back as itself.
func TestCanonicalLines(t *testing.T) {
	for _, line := range []string{
		`<alice> <says> "a \"quote\"\n\\"@en`,
		`<alice> <says> "bell \u0007 del \u007F"`,
		`<a\>b> <c\<d> <tab\there\\>`,
		`<wd:Q42> <label> "Douglas"@en-GB`,
		`<alice> <age> 42`,
		`<alice> <age> -42`,
		`<alice> <height> 1.5`,
		`<alice> <w> 2.0`,
		`<alice> <w> -0.0`,
		`<alice> <big> 1e+23`,
		`<alice> <small> 5e-324`,
		`<alice> <born> 1990-`,
		`<alice> <born> 1990-03`,
		`<alice> <day> 1990-03-04`,
		`<alice> <born> 1990-03-04T05Z`,
		`<alice> <born> 1990-03-04T05:06Z`,
		`<alice> <born> 1990-03-04T05:06:07Z`,
		`<alice> <born> 1990-03-04T05:06:07.0Z`,
		`<alice> <born> 1990-03-04T05:06:07.000000001Z`,
		`<alice> <born> 0000-01-01T00:00:00.123Z`,
		`<alice> <born> 9999-12-31T23:59:59.999999999Z`,
		`@9 <p> false`,
		`@18446744073709551615 @1 true`,
	} {
		f, err := ParseLine(line, 1)
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if got := FormatLine(f); got != line {
			t.Errorf("%s printed as %s", line, got)
		}
	}
}

// Accepted but not canonical lines print as the canonical form of the same
// fact.
func TestNonCanonicalLines(t *testing.T) {
	for in, want := range map[string]string{
		`wd:Q42 <p> +7`:                          `<wd:Q42> <p> 7`,
		`<a> <p> "\u0041\U0001F600"`:             `<a> <p> "A😀"`,
		`<a> <p> 1990-03-04T07:06:07+02:00`:      `<a> <p> 1990-03-04T05:06:07Z`,
		`<a> <p> 1990-03-04T05:06:07.500Z`:       `<a> <p> 1990-03-04T05:06:07.5Z`,
		`<a> <p> 1990-03-04T05:06:07,5Z`:         `<a> <p> 1990-03-04T05:06:07.5Z`,
		`<a> <p> 1.50`:                           `<a> <p> 1.5`,
		`<a> <p> 0x1p4`:                          `<a> <p> 16.0`,
		"<a>\t<p>  <o>   # comment":              `<a> <p> <o>`,
		`@007 <p> <o>`:                           `@7 <p> <o>`,
		`<a> <p> 1990-03-04T06+01:00`:            `<a> <p> 1990-03-04T05Z`,
		`<a> <p> 1990-03-04T05:06:07.000000000Z`: `<a> <p> 1990-03-04T05:06:07.0Z`,
	} {
		f, err := ParseLine(in, 1)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := FormatLine(f); got != want {
			t.Errorf("%s printed as %s, want %s", in, got, want)
		}
	}
}

func TestRefused(t *testing.T) {
	for in, want := range map[string]string{
		"<a\tb> <p> <o>":                   `write a tab inside a name as \t`,
		`<a<b> <p> <o>`:                    `write < inside a name as \<`,
		`<> <p> <o>`:                       "a name is not empty",
		`<a\q> <p> <o>`:                    `unknown escape \q`,
		`<a> <p> "\uD800"`:                 `bad escape \uD800`,
		`<a> <p> "\u12"`:                   `\u needs 4 hex digits`,
		`<a> <p> "x"@en_US`:                "bad language tag @en_US",
		`<a> <p> 1e999`:                    "bad number 1e999",
		`<a> <p> +NaN`:                     "bad number +NaN",
		`<a> <p> 1990-03-04T05+05:30`:      "at hour precision",
		`<a> <p> 1990-13`:                  "bad timestamp",
		`<a> <p> 1990-03-04T05:06:07.5+01`: "bad timestamp",
	} {
		_, err := ParseLine(in, 1)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a syntax error saying %q", in, err, want)
		}
	}
}

func nameNode(s string) *apipb.Node { return &apipb.Node{Ref: &apipb.Node_Name{Name: s}} }

// randomFact makes a fact in the domain the text holds exactly.
func randomFact(r *rand.Rand) *apipb.Fact {
	node := func() *apipb.Node {
		if r.IntN(4) == 0 {
			return &apipb.Node{Ref: &apipb.Node_Id{Id: 1 + r.Uint64N(math.MaxUint64)}}
		}
		return nameNode(randomText(r, 1))
	}
	var o *apipb.Object
	switch r.IntN(6) {
	case 0:
		o = &apipb.Object{Value: &apipb.Object_Node{Node: node()}}
	case 1:
		ls := &entrypb.LangString{Text: randomText(r, 0)}
		if r.IntN(2) == 0 {
			ls.Lang = []string{"en", "en-GB", "zh-Hant-TW", "x1"}[r.IntN(4)]
		}
		o = &apipb.Object{Value: &apipb.Object_String_{String_: ls}}
	case 2:
		o = &apipb.Object{Value: &apipb.Object_Int64{Int64: int64(r.Uint64())}}
	case 3:
		f := math.Float64frombits(r.Uint64())
		for math.IsNaN(f) || math.IsInf(f, 0) {
			f = math.Float64frombits(r.Uint64())
		}
		o = &apipb.Object{Value: &apipb.Object_Float64{Float64: f}}
	case 4:
		o = &apipb.Object{Value: &apipb.Object_Bool{Bool: r.IntN(2) == 0}}
	default:
		o = &apipb.Object{Value: &apipb.Object_Timestamp{Timestamp: randomTimestamp(r)}}
	}
	return &apipb.Fact{Subject: node(), Predicate: node(), Object: o}
}

func randomText(r *rand.Rand, minLen int) string {
	const special = "<>\"\\\t\n\r #@:\x00\x7f"
	var b strings.Builder
	for b.Len() < minLen || r.IntN(8) != 0 {
		switch r.IntN(4) {
		case 0:
			b.WriteByte(special[r.IntN(len(special))])
		case 1:
			b.WriteRune(rune(r.IntN(0xD800)))
		default:
			b.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	return b.String()
}

func randomTimestamp(r *rand.Rand) *entrypb.Timestamp {
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	t := time.Unix(lo+r.Int64N(hi-lo), r.Int64N(1e9)).UTC()
	prec := entrypb.Timestamp_Precision(1 + r.IntN(7))
	switch prec {
	case entrypb.Timestamp_YEAR:
		t = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case entrypb.Timestamp_MONTH:
		t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case entrypb.Timestamp_DAY:
		t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case entrypb.Timestamp_HOUR:
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC)
	case entrypb.Timestamp_MINUTE:
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	case entrypb.Timestamp_SECOND:
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	default:
		if r.IntN(4) == 0 {
			t = t.Truncate(time.Second) // a fraction of .0
		}
	}
	return &entrypb.Timestamp{UnixSeconds: t.Unix(), Nanos: int32(t.Nanosecond()), Precision: prec}
}

// parse(print(f)) == f for every fact in the text's domain, and the
// printed line is canonical: print(parse(line)) == line.
func TestRoundTripRandomFacts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f := randomFact(r)
		line := FormatLine(f)
		back, err := ParseLine(line, 1)
		if err != nil {
			t.Fatalf("%v printed as %s: %v", f, line, err)
		}
		if !proto.Equal(back, f) || math.Signbit(back.Object.GetFloat64()) != math.Signbit(f.Object.GetFloat64()) {
			t.Fatalf("%v printed as %s, read back as %v", f, line, back)
		}
		if again := FormatLine(back); again != line {
			t.Fatalf("%s printed again as %s", line, again)
		}
	}
}
