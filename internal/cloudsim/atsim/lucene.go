package atsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Query is a parsed search query.
type Query interface {
	// Match reports whether an event, as decoded JSON, matches.
	Match(doc map[string]any) bool
}

// ErrSyntax is wrapped by every query parse error.
var ErrSyntax = errors.New("atsim: query syntax error")

// Parse parses the supported Lucene subset:
//
//	field:value        dotted paths into the event JSON (action, outcome,
//	                   target.id, initiator.name, responseData.keyState, ...);
//	                   values compare case-insensitively, numbers and
//	                   booleans by their text
//	field:"a value"    quoted values (backslash escapes " and \)
//	field:prefix*      a trailing * matches any suffix; field:* means the
//	                   field exists
//	value, "a value"   without a field: a case-insensitive substring of the
//	                   event's JSON
//	a AND b, a OR b    AND binds tighter than OR; && and || work too
//	NOT a, -a          negation
//	( ... )            grouping
//
// Adjacent terms without an operator are ANDed (a simulator choice; Lucene's
// default operator is configurable). An empty query (or "*") matches
// everything. Ranges, fuzzy, proximity, boosts, regular expressions and
// leading wildcards are not supported and give an error wrapping ErrSyntax.
func Parse(s string) (Query, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if len(toks) == 0 {
		return all{}, nil
	}
	q, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q at position %d", ErrSyntax, p.toks[p.pos].text, p.toks[p.pos].at)
	}
	return q, nil
}

type tokKind int

const (
	tTerm tokKind = iota
	tAnd
	tOr
	tNot
	tLParen
	tRParen
)

type token struct {
	kind   tokKind
	text   string // raw text, for errors
	field  string // for terms
	value  string
	quoted bool
	at     int
}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{kind: tLParen, text: "(", at: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tRParen, text: ")", at: i})
			i++
		case strings.HasPrefix(s[i:], "&&"):
			toks = append(toks, token{kind: tAnd, text: "&&", at: i})
			i += 2
		case strings.HasPrefix(s[i:], "||"):
			toks = append(toks, token{kind: tOr, text: "||", at: i})
			i += 2
		case c == '-' || c == '!':
			toks = append(toks, token{kind: tNot, text: string(c), at: i})
			i++
		default:
			t, n, err := lexTerm(s[i:], i)
			if err != nil {
				return nil, err
			}
			switch t.text {
			case "AND":
				t.kind = tAnd
			case "OR":
				t.kind = tOr
			case "NOT":
				t.kind = tNot
			}
			toks = append(toks, t)
			i += n
		}
	}
	return toks, nil
}

// lexTerm reads field:value, field:"quoted", value or "quoted".
func lexTerm(s string, at int) (token, int, error) {
	t := token{kind: tTerm, at: at}
	i := 0
	if s[0] != '"' {
		for i < len(s) && !isDelim(s[i]) && s[i] != ':' {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			i++
		}
		if i < len(s) && s[i] == ':' {
			t.field = unescape(s[:i])
			i++
			if i >= len(s) || isDelim(s[i]) && s[i] != '"' {
				return t, 0, fmt.Errorf("%w: field %q has no value at position %d", ErrSyntax, t.field, at)
			}
		} else {
			t.value = unescape(s[:i])
			t.text = s[:i]
			return t, i, checkValue(t, at)
		}
	}
	if i < len(s) && s[i] == '"' {
		j := i + 1
		var b strings.Builder
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		if j >= len(s) {
			return t, 0, fmt.Errorf("%w: unterminated quote at position %d", ErrSyntax, at+i)
		}
		t.value, t.quoted = b.String(), true
		t.text = s[:j+1]
		return t, j + 1, nil
	}
	j := i
	for j < len(s) && !isDelim(s[j]) {
		if s[j] == '\\' && j+1 < len(s) {
			j++
		}
		j++
	}
	t.value = unescape(s[i:j])
	t.text = s[:j]
	return t, j, checkValue(t, at)
}

func checkValue(t token, at int) error {
	v := t.value
	switch {
	case strings.HasPrefix(v, "[") || strings.HasPrefix(v, "{"):
		return fmt.Errorf("%w: range queries are not supported (position %d)", ErrSyntax, at)
	case strings.HasPrefix(v, "/"):
		return fmt.Errorf("%w: regular expressions are not supported (position %d)", ErrSyntax, at)
	case strings.ContainsAny(v, "~^?"):
		return fmt.Errorf("%w: fuzzy, proximity, boost and ? wildcard queries are not supported (position %d)", ErrSyntax, at)
	case v != "*" && strings.Contains(strings.TrimSuffix(v, "*"), "*"):
		return fmt.Errorf("%w: only a trailing * wildcard is supported (position %d)", ErrSyntax, at)
	}
	return nil
}

func isDelim(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == '"'
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *parser) or() (Query, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t != nil && t.kind == tOr; t = p.peek() {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = orQ{left, right}
	}
	return left, nil
}

func (p *parser) and() (Query, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t == nil || t.kind == tOr || t.kind == tRParen {
			return left, nil
		}
		if t.kind == tAnd {
			p.pos++
		}
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = andQ{left, right}
	}
}

func (p *parser) unary() (Query, error) {
	t := p.peek()
	if t == nil {
		return nil, fmt.Errorf("%w: the query ends where a term was expected", ErrSyntax)
	}
	switch t.kind {
	case tNot:
		p.pos++
		q, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notQ{q}, nil
	case tLParen:
		p.pos++
		q, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c == nil || c.kind != tRParen {
			return nil, fmt.Errorf("%w: missing ) for ( at position %d", ErrSyntax, t.at)
		}
		p.pos++
		return q, nil
	case tTerm:
		p.pos++
		if t.field == "" {
			if t.value == "*" {
				return all{}, nil
			}
			return textQ{strings.ToLower(t.value)}, nil
		}
		return fieldQ{path: strings.Split(t.field, "."), value: t.value, quoted: t.quoted}, nil
	}
	return nil, fmt.Errorf("%w: unexpected %q at position %d", ErrSyntax, t.text, t.at)
}

type all struct{}

func (all) Match(map[string]any) bool { return true }

type andQ struct{ a, b Query }

func (q andQ) Match(d map[string]any) bool { return q.a.Match(d) && q.b.Match(d) }

type orQ struct{ a, b Query }

func (q orQ) Match(d map[string]any) bool { return q.a.Match(d) || q.b.Match(d) }

type notQ struct{ q Query }

func (q notQ) Match(d map[string]any) bool { return !q.q.Match(d) }

// textQ matches a substring anywhere in the event's JSON.
type textQ struct{ lower string }

func (q textQ) Match(d map[string]any) bool {
	raw, _ := d[rawKey].(string)
	return strings.Contains(raw, q.lower)
}

type fieldQ struct {
	path   []string
	value  string
	quoted bool
}

func (q fieldQ) Match(d map[string]any) bool {
	var cur any = d
	for _, p := range q.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[p]; !ok {
			return false
		}
	}
	if !q.quoted && q.value == "*" {
		return cur != nil
	}
	return matchAny(cur, q.value, q.quoted)
}

func matchAny(v any, want string, quoted bool) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if matchAny(e, want, quoted) {
				return true
			}
		}
		return false
	case string:
		return matchWord(want, x, quoted)
	case float64:
		return matchWord(want, strconv.FormatFloat(x, 'f', -1, 64), quoted)
	case bool:
		return matchWord(want, strconv.FormatBool(x), quoted)
	}
	return false
}

// matchWord compares case-insensitively; an unquoted trailing * is a prefix
// match.
func matchWord(want, got string, quoted bool) bool {
	if !quoted && strings.HasSuffix(want, "*") {
		return strings.HasPrefix(strings.ToLower(got), strings.ToLower(strings.TrimSuffix(want, "*")))
	}
	return strings.EqualFold(want, got)
}

// rawKey holds the lower-cased event JSON inside a decoded document, for
// field-less terms. It cannot clash with an event field (they are ASCII
// identifiers).
const rawKey = "\x00raw"

func toDoc(ev *simcore.Event) (map[string]any, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("atsim: encoding an event: %w", err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("atsim: decoding an event: %w", err)
	}
	d[rawKey] = strings.Map(unicode.ToLower, string(b))
	return d, nil
}
