// Package facttext reads and writes Akutan's line-oriented fact syntax, used
// by the CLI for inserts, deletes and lookup results:
//
//	<alice> <knows> <bob>          # nodes by external ID
//	wd:Q42 <label> "Douglas Adams"@en
//	<alice> <age> 42
//	<alice> <height> 1.68
//	<alice> <member> true
//	<alice> <born> 1990-03-04T05:06:07Z
//	<alice> <born> 1990-03-04       # day precision; 1990-03 is month precision
//	@1048577 <name> "x\"y"          # a node by numeric ID
//
// A term is a node (<name>, a bare prefixed name such as wd:Q42, or @ID),
// a string in double quotes with an optional @lang tag, an integer, a float,
// true or false, or a timestamp. '#' outside a string or name starts a
// comment. Parse reports the line and column of the first syntax error and
// returns no facts then.
//
// Escapes: in a string, \" \\ \n \t \r; in a <name>, \< \> \\ \t \n \r;
// in both, \uXXXX and \UXXXXXXXX for any character. A raw tab or '<' in a
// name is an error.
//
// Integers are decimal and must fit in 64 bits: a longer one is an error,
// never a float. A float has a '.', an exponent, or both; infinities and NaN
// are errors.
//
// A timestamp's precision is how it is written, and its value never has
// more detail than its precision: 1990- (year: 1990 alone is an integer),
// 1990-03 (month), 1990-03-04 (day), 1990-03-04T05Z (hour),
// 1990-03-04T05:06Z (minute), 1990-03-04T05:06:07Z (second) and
// 1990-03-04T05:06:07.5Z (nanosecond: any fraction, even .0). Times may
// carry an offset (+02:00) and are stored in UTC; an hour whose offset has
// minutes is an error.
//
// The syntax round-trips: FormatLine(f) parses back to f for every fact
// whose names, strings and language tags it can hold (a tag is letters,
// digits and '-') and whose timestamp is in years 0000..9999 at a precision
// its value agrees with; and formatting a parsed canonical line (one
// FormatLine could have written) gives the line back.
package facttext

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// SyntaxError locates a problem in the input.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// maxLine bounds one line of input.
const maxLine = 16 << 20

// Parse reads every fact in r. On a syntax error it returns no facts.
func Parse(r io.Reader) ([]*apipb.Fact, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var facts []*apipb.Fact
	line := 0
	for sc.Scan() {
		line++
		f, err := ParseLine(sc.Text(), line)
		if err != nil {
			return nil, err
		}
		if f != nil {
			facts = append(facts, f)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return facts, nil
}

// ParseLine parses one line; a blank or comment line gives nil.
func ParseLine(text string, line int) (*apipb.Fact, error) {
	if !utf8.ValidString(text) {
		return nil, &SyntaxError{line, 1, "not UTF-8"}
	}
	p := &lexer{s: text, line: line}
	terms, err := p.terms()
	if err != nil {
		return nil, err
	}
	switch len(terms) {
	case 0:
		return nil, nil
	case 3:
	default:
		return nil, &SyntaxError{line, 1, fmt.Sprintf("want 3 terms (subject predicate object), found %d", len(terms))}
	}
	s, err := terms[0].node("subject")
	if err != nil {
		return nil, err
	}
	pr, err := terms[1].node("predicate")
	if err != nil {
		return nil, err
	}
	return &apipb.Fact{Subject: s, Predicate: pr, Object: terms[2].obj}, nil
}

// Term is one parsed term with its position.
type Term struct {
	Line, Column int
	Text         string
	obj          *apipb.Object
}

// Object returns the term as an object.
func (t Term) Object() *apipb.Object { return t.obj }

func (t Term) node(what string) (*apipb.Node, error) {
	if n := t.obj.GetNode(); n != nil {
		return n, nil
	}
	return nil, &SyntaxError{t.Line, t.Column, fmt.Sprintf("%s %s is not a node; write <name> or @ID", what, t.Text)}
}

// Node returns the term as a node, or an error naming what it is.
func (t Term) Node(what string) (*apipb.Node, error) { return t.node(what) }

// ParseTerm parses a single term, as a CLI argument.
func ParseTerm(s string) (Term, error) {
	p := &lexer{s: s, line: 1}
	terms, err := p.terms()
	if err != nil {
		return Term{}, err
	}
	if len(terms) != 1 {
		return Term{}, &SyntaxError{1, 1, fmt.Sprintf("want one term, found %d in %q", len(terms), s)}
	}
	return terms[0], nil
}

type lexer struct {
	s    string
	pos  int
	line int
}

func (l *lexer) errAt(pos int, format string, args ...any) error {
	return &SyntaxError{l.line, utf8.RuneCountInString(l.s[:pos]) + 1, fmt.Sprintf(format, args...)}
}

func (l *lexer) terms() ([]Term, error) {
	var out []Term
	for {
		for l.pos < len(l.s) && (l.s[l.pos] == ' ' || l.s[l.pos] == '\t' || l.s[l.pos] == '\r') {
			l.pos++
		}
		if l.pos >= len(l.s) || l.s[l.pos] == '#' {
			return out, nil
		}
		start := l.pos
		obj, err := l.term()
		if err != nil {
			return nil, err
		}
		if l.pos < len(l.s) && !strings.ContainsRune(" \t\r#", rune(l.s[l.pos])) {
			return nil, l.errAt(l.pos, "unexpected %q after %s", l.s[l.pos], l.s[start:l.pos])
		}
		out = append(out, Term{Line: l.line, Column: utf8.RuneCountInString(l.s[:start]) + 1, Text: l.s[start:l.pos], obj: obj})
	}
}

func (l *lexer) term() (*apipb.Object, error) {
	start := l.pos
	switch c := l.s[l.pos]; {
	case c == '<':
		name, err := l.name()
		if err != nil {
			return nil, err
		}
		return nodeObj(&apipb.Node{Ref: &apipb.Node_Name{Name: name}}), nil
	case c == '"':
		return l.str()
	case c == '@':
		word := l.word()
		id, err := strconv.ParseUint(word[1:], 10, 64)
		if err != nil || id == 0 {
			return nil, l.errAt(start, "bad node id %s", word)
		}
		return nodeObj(&apipb.Node{Ref: &apipb.Node_Id{Id: id}}), nil
	}
	word := l.word()
	switch {
	case word == "true" || word == "false":
		return &apipb.Object{Value: &apipb.Object_Bool{Bool: word == "true"}}, nil
	case isTimestamp(word):
		ts, err := parseTimestamp(word)
		if err != nil {
			return nil, l.errAt(start, "bad timestamp %s: %v", word, err)
		}
		return &apipb.Object{Value: &apipb.Object_Timestamp{Timestamp: ts}}, nil
	case isInteger(word):
		i, err := strconv.ParseInt(word, 10, 64)
		if err != nil {
			return nil, l.errAt(start, "integer %s does not fit in 64 bits", word)
		}
		return &apipb.Object{Value: &apipb.Object_Int64{Int64: i}}, nil
	case isNumber(word):
		f, err := strconv.ParseFloat(word, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, l.errAt(start, "bad number %s", word)
		}
		return &apipb.Object{Value: &apipb.Object_Float64{Float64: f}}, nil
	case strings.Contains(word, ":") && unicode.IsLetter(rune(word[0])):
		return nodeObj(&apipb.Node{Ref: &apipb.Node_Name{Name: word}}), nil
	}
	return nil, l.errAt(start, "unknown term %q: write <name>, \"text\", a number, true, false or a timestamp", word)
}

func (l *lexer) word() string {
	start := l.pos
	for l.pos < len(l.s) && !strings.ContainsRune(" \t\r#", rune(l.s[l.pos])) {
		l.pos++
	}
	return l.s[start:l.pos]
}

func (l *lexer) str() (*apipb.Object, error) {
	start := l.pos
	l.pos++
	var b strings.Builder
	for {
		if l.pos >= len(l.s) {
			return nil, l.errAt(start, "unterminated string")
		}
		c := l.s[l.pos]
		if c == '"' {
			l.pos++
			break
		}
		if c == '\\' {
			r, err := l.escape(stringEscapes)
			if err != nil {
				return nil, err
			}
			b.WriteRune(r)
			continue
		}
		b.WriteByte(c)
		l.pos++
	}
	ls := &entrypb.LangString{Text: b.String()}
	if l.pos < len(l.s) && l.s[l.pos] == '@' {
		at := l.pos
		l.pos++
		ls.Lang = l.word()
		if ls.Lang == "" || strings.Trim(ls.Lang, langChars) != "" {
			return nil, l.errAt(at, "bad language tag @%s: letters, digits and '-'", ls.Lang)
		}
	}
	return &apipb.Object{Value: &apipb.Object_String_{String_: ls}}, nil
}

const langChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

// Escapes of strings and names besides \uXXXX and \UXXXXXXXX.
var (
	stringEscapes = map[byte]rune{'"': '"', '\\': '\\', 'n': '\n', 't': '\t', 'r': '\r'}
	nameEscapes   = map[byte]rune{'<': '<', '>': '>', '\\': '\\', 'n': '\n', 't': '\t', 'r': '\r'}
)

// escape reads the escape at l.pos (a backslash) and returns its character.
func (l *lexer) escape(short map[byte]rune) (rune, error) {
	at := l.pos
	if at+1 >= len(l.s) {
		return 0, l.errAt(at, "unterminated escape")
	}
	c := l.s[at+1]
	if r, ok := short[c]; ok {
		l.pos += 2
		return r, nil
	}
	digits := map[byte]int{'u': 4, 'U': 8}[c]
	if digits == 0 {
		return 0, l.errAt(at, "unknown escape \\%c", c)
	}
	if at+2+digits > len(l.s) {
		return 0, l.errAt(at, "\\%c needs %d hex digits", c, digits)
	}
	hex := l.s[at+2 : at+2+digits]
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || strings.ContainsAny(hex, "+-_") || !utf8.ValidRune(rune(v)) {
		return 0, l.errAt(at, "bad escape \\%c%s: want %d hex digits naming a character", c, hex, digits)
	}
	l.pos += 2 + digits
	return rune(v), nil
}

// name reads a <name> at l.pos.
func (l *lexer) name() (string, error) {
	start := l.pos
	l.pos++
	var b strings.Builder
	for {
		if l.pos >= len(l.s) {
			return "", l.errAt(start, "unterminated <name>")
		}
		switch c := l.s[l.pos]; c {
		case '>':
			l.pos++
			if b.Len() == 0 {
				return "", l.errAt(start, "bad name <>: a name is not empty")
			}
			return b.String(), nil
		case '<', '\t':
			return "", l.errAt(start, "bad name %s: write %s inside a name as %s", l.s[start:l.pos+1], map[byte]string{'<': "<", '\t': "a tab"}[c], map[byte]string{'<': `\<`, '\t': `\t`}[c])
		case '\\':
			r, err := l.escape(nameEscapes)
			if err != nil {
				return "", err
			}
			b.WriteRune(r)
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
}

func nodeObj(n *apipb.Node) *apipb.Object { return &apipb.Object{Value: &apipb.Object_Node{Node: n}} }

// isInteger recognises [+-]digits.
func isInteger(w string) bool {
	if w != "" && (w[0] == '+' || w[0] == '-') {
		w = w[1:]
	}
	return w != "" && strings.Trim(w, "0123456789") == ""
}

func isNumber(w string) bool {
	if w == "" {
		return false
	}
	c := w[0]
	return c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')
}

// isTimestamp recognises YYYY-….
func isTimestamp(w string) bool {
	if len(w) < 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return len(w) > 4 && w[4] == '-'
}

// timestampForms are the layouts of each precision, finest last.
var timestampForms = []struct {
	layout string
	prec   entrypb.Timestamp_Precision
}{
	{"2006-", entrypb.Timestamp_YEAR},
	{"2006-01", entrypb.Timestamp_MONTH},
	{"2006-01-02", entrypb.Timestamp_DAY},
	{"2006-01-02T15Z07:00", entrypb.Timestamp_HOUR},
	{"2006-01-02T15:04Z07:00", entrypb.Timestamp_MINUTE},
	{time.RFC3339, entrypb.Timestamp_SECOND}, // time.Parse takes a fraction here too
}

func parseTimestamp(w string) (*entrypb.Timestamp, error) {
	for _, f := range timestampForms {
		t, err := time.Parse(f.layout, w)
		if err != nil {
			continue
		}
		prec := f.prec
		if prec == entrypb.Timestamp_SECOND && hasFraction(w) {
			prec = entrypb.Timestamp_NANOSECOND
		}
		ts := &entrypb.Timestamp{UnixSeconds: t.Unix(), Nanos: int32(t.Nanosecond()), Precision: prec}
		if !Agrees(ts) {
			return nil, fmt.Errorf("at %s precision its UTC time has more detail; write it in UTC", strings.ToLower(prec.String()))
		}
		return ts, nil
	}
	return nil, fmt.Errorf("want YYYY-, YYYY-MM, YYYY-MM-DD or an RFC 3339 time (seconds, minutes or hours)")
}

// hasFraction reports whether an RFC 3339 time has fractional seconds.
func hasFraction(w string) bool {
	t := strings.IndexByte(w, 'T')
	return t >= 0 && strings.ContainsAny(w[t:], ".,")
}

// Agrees reports whether a timestamp's value has no more detail than its
// precision (a day at midnight UTC, a second without nanoseconds, ...)
// and lies in years 0000..9999, so that the text can hold it exactly.
func Agrees(ts *entrypb.Timestamp) bool {
	if ts.GetNanos() < 0 || ts.GetNanos() >= 1e9 {
		return false
	}
	t := time.Unix(ts.GetUnixSeconds(), int64(ts.GetNanos())).UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return false
	}
	trunc := t
	switch ts.GetPrecision() {
	case entrypb.Timestamp_YEAR:
		trunc = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case entrypb.Timestamp_MONTH:
		trunc = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case entrypb.Timestamp_DAY:
		trunc = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case entrypb.Timestamp_HOUR:
		trunc = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC)
	case entrypb.Timestamp_MINUTE:
		trunc = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	case entrypb.Timestamp_SECOND:
		trunc = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	case entrypb.Timestamp_NANOSECOND:
	default:
		return false
	}
	return trunc.Equal(t)
}
