package facttext

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// FormatNode writes a node as <name>, or @ID when it has no name.
func FormatNode(n *apipb.NamedNode) string {
	if n.GetName() != "" {
		return formatName(n.Name)
	}
	return "@" + strconv.FormatUint(n.GetId(), 10)
}

// FormatObject writes an object in the syntax Parse reads.
func FormatObject(o *apipb.ResultObject) string {
	switch v := o.GetValue().(type) {
	case *apipb.ResultObject_Node:
		return FormatNode(v.Node)
	case *apipb.ResultObject_String_:
		return FormatString(v.String_)
	case *apipb.ResultObject_Int64:
		return strconv.FormatInt(v.Int64, 10)
	case *apipb.ResultObject_Float64:
		return formatFloat(v.Float64)
	case *apipb.ResultObject_Bool:
		return strconv.FormatBool(v.Bool)
	case *apipb.ResultObject_Timestamp:
		return FormatTimestamp(v.Timestamp)
	}
	return "?"
}

// FormatFact writes one result fact as a line of insert syntax.
func FormatFact(f *apipb.ResultFact) string {
	return fmt.Sprintf("%s %s %s", FormatNode(f.Subject), FormatNode(f.Predicate), FormatObject(f.Object))
}

// FormatLine writes a fact as the line Parse reads back as the same fact:
// the inverse of ParseLine (see the package documentation for its domain).
func FormatLine(f *apipb.Fact) string {
	return FormatInputNode(f.GetSubject()) + " " + FormatInputNode(f.GetPredicate()) + " " + FormatInputObject(f.GetObject())
}

// FormatInputNode writes a node of a fact to write as <name> or @ID.
func FormatInputNode(n *apipb.Node) string {
	if id, ok := n.GetRef().(*apipb.Node_Id); ok {
		return "@" + strconv.FormatUint(id.Id, 10)
	}
	return formatName(n.GetName())
}

// FormatInputObject writes the object of a fact to write.
func FormatInputObject(o *apipb.Object) string {
	switch v := o.GetValue().(type) {
	case *apipb.Object_Node:
		return FormatInputNode(v.Node)
	case *apipb.Object_String_:
		return FormatString(v.String_)
	case *apipb.Object_Int64:
		return strconv.FormatInt(v.Int64, 10)
	case *apipb.Object_Float64:
		return formatFloat(v.Float64)
	case *apipb.Object_Bool:
		return strconv.FormatBool(v.Bool)
	case *apipb.Object_Timestamp:
		return FormatTimestamp(v.Timestamp)
	}
	return "?"
}

func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0" // keep it a float when read back
	}
	return s
}

// formatName writes <name>, escaping what Parse would read otherwise.
func formatName(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 2)
	b.WriteByte('<')
	writeEscaped(&b, name, "<>")
	b.WriteByte('>')
	return b.String()
}

// FormatString quotes a string with its language tag.
func FormatString(s *entrypb.LangString) string {
	var b strings.Builder
	b.Grow(len(s.GetText()) + 2)
	b.WriteByte('"')
	writeEscaped(&b, s.GetText(), `"`)
	b.WriteByte('"')
	if s.GetLang() != "" {
		b.WriteString("@" + s.Lang)
	}
	return b.String()
}

// writeEscaped writes s with a backslash before '\' and each of quote, the
// short escapes \n \t \r, and \uXXXX for any other control character.
func writeEscaped(b *strings.Builder, s, quote string) {
	for i, r := range s {
		switch {
		case r == '\\' || strings.ContainsRune(quote, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError && invalidAt(s, i):
			b.WriteString(`\uFFFD`) // not UTF-8: protobuf strings never are
		case unicode.IsControl(r):
			fmt.Fprintf(b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
}

// invalidAt reports whether s has an invalid UTF-8 sequence at i.
func invalidAt(s string, i int) bool {
	r, n := utf8.DecodeRuneInString(s[i:])
	return r == utf8.RuneError && n == 1
}

// FormatTimestamp writes a timestamp at its precision, in UTC. A timestamp
// whose value has more detail than its precision (see Agrees) is written at
// its precision, without that detail.
func FormatTimestamp(ts *entrypb.Timestamp) string {
	t := time.Unix(ts.GetUnixSeconds(), int64(ts.GetNanos())).UTC()
	switch ts.GetPrecision() {
	case entrypb.Timestamp_YEAR:
		return t.Format("2006-")
	case entrypb.Timestamp_MONTH:
		return t.Format("2006-01")
	case entrypb.Timestamp_DAY:
		return t.Format("2006-01-02")
	case entrypb.Timestamp_HOUR:
		return t.Format("2006-01-02T15Z")
	case entrypb.Timestamp_MINUTE:
		return t.Format("2006-01-02T15:04Z")
	case entrypb.Timestamp_SECOND:
		return t.Format("2006-01-02T15:04:05Z")
	}
	// Nanoseconds, and a timestamp of no precision: every digit, at least
	// one after the point, so that it reads back at nanosecond precision.
	frac := strings.TrimRight(fmt.Sprintf("%09d", t.Nanosecond()), "0")
	if frac == "" {
		frac = "0"
	}
	return t.Format("2006-01-02T15:04:05") + "." + frac + "Z"
}
