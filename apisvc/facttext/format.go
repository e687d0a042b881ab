package facttext

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// FormatNode writes a node as <name>, or @ID when it has no name.
func FormatNode(n *apipb.NamedNode) string {
	if n.GetName() != "" {
		return "<" + n.Name + ">"
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
		s := strconv.FormatFloat(v.Float64, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0" // keep it a float when read back
		}
		return s
	case *apipb.ResultObject_Bool:
		return strconv.FormatBool(v.Bool)
	case *apipb.ResultObject_Timestamp:
		return FormatTimestamp(v.Timestamp)
	}
	return "?"
}

// FormatString quotes a string with its language tag.
func FormatString(s *entrypb.LangString) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	out := `"` + r.Replace(s.GetText()) + `"`
	if s.GetLang() != "" {
		out += "@" + s.Lang
	}
	return out
}

// FormatTimestamp writes a timestamp at its precision.
func FormatTimestamp(ts *entrypb.Timestamp) string {
	t := time.Unix(ts.UnixSeconds, int64(ts.Nanos)).UTC()
	switch ts.Precision {
	case entrypb.Timestamp_YEAR, entrypb.Timestamp_MONTH:
		return t.Format("2006-01")
	case entrypb.Timestamp_DAY:
		return t.Format("2006-01-02")
	case entrypb.Timestamp_NANOSECOND:
		return t.Format(time.RFC3339Nano)
	}
	return t.Format(time.RFC3339)
}

// FormatFact writes one result fact as a line of insert syntax.
func FormatFact(f *apipb.ResultFact) string {
	return fmt.Sprintf("%s %s %s", FormatNode(f.Subject), FormatNode(f.Predicate), FormatObject(f.Object))
}
