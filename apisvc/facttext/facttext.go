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
// a string in double quotes with \" \\ \n \t \r escapes and an optional
// @lang tag, an integer, a float, true or false, or an RFC 3339 timestamp or
// date. '#' outside a string starts a comment. Parse reports the line and
// column of the first syntax error and returns no facts then.
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
		end := strings.IndexByte(l.s[l.pos:], '>')
		if end < 0 {
			return nil, l.errAt(start, "unterminated <name>")
		}
		name := l.s[l.pos+1 : l.pos+end]
		if name == "" || strings.ContainsAny(name, "<\t") {
			return nil, l.errAt(start, "bad name <%s>", name)
		}
		l.pos += end + 1
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
	case isNumber(word):
		if i, err := strconv.ParseInt(word, 10, 64); err == nil {
			return &apipb.Object{Value: &apipb.Object_Int64{Int64: i}}, nil
		}
		f, err := strconv.ParseFloat(word, 64)
		if err != nil || math.IsInf(f, 0) {
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
			if l.pos+1 >= len(l.s) {
				return nil, l.errAt(l.pos, "unterminated escape")
			}
			esc := map[byte]byte{'"': '"', '\\': '\\', 'n': '\n', 't': '\t', 'r': '\r'}[l.s[l.pos+1]]
			if esc == 0 {
				return nil, l.errAt(l.pos, "unknown escape \\%c", l.s[l.pos+1])
			}
			b.WriteByte(esc)
			l.pos += 2
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
		if ls.Lang == "" || strings.ContainsAny(ls.Lang, "\"<>@") {
			return nil, l.errAt(at, "bad language tag")
		}
	}
	return &apipb.Object{Value: &apipb.Object_String_{String_: ls}}, nil
}

func nodeObj(n *apipb.Node) *apipb.Object { return &apipb.Object{Value: &apipb.Object_Node{Node: n}} }

func isNumber(w string) bool {
	if w == "" {
		return false
	}
	c := w[0]
	return c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')
}

// isTimestamp recognises YYYY-… and 4-digit years followed by nothing.
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

func parseTimestamp(w string) (*entrypb.Timestamp, error) {
	layouts := []struct {
		layout string
		prec   entrypb.Timestamp_Precision
	}{
		{"2006-01", entrypb.Timestamp_MONTH},
		{"2006-01-02", entrypb.Timestamp_DAY},
		{time.RFC3339, entrypb.Timestamp_SECOND},
		{time.RFC3339Nano, entrypb.Timestamp_NANOSECOND},
	}
	for _, l := range layouts {
		t, err := time.Parse(l.layout, w)
		if err != nil {
			continue
		}
		prec := l.prec
		if prec == entrypb.Timestamp_NANOSECOND && t.Nanosecond() == 0 && !strings.Contains(w, ".") {
			prec = entrypb.Timestamp_SECOND
		}
		return &entrypb.Timestamp{UnixSeconds: t.Unix(), Nanos: int32(t.Nanosecond()), Precision: prec}, nil
	}
	return nil, fmt.Errorf("want YYYY-MM, YYYY-MM-DD or RFC 3339")
}
