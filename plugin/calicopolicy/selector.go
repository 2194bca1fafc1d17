// Package calicopolicy translates Calico's own policies (NetworkPolicy and
// GlobalNetworkPolicy of projectcalico.org/v3, stored as
// crd.projectcalico.org/v1 objects when no Calico API server runs) into
// CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy where Cilium can
// express them, and says what it cannot translate and why.
package calicopolicy

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Term is one condition on a label: Op is "==", "!=", "in", "not in",
// "has" or "!has".
type Term struct {
	Key    string
	Op     string
	Values []string
}

// Selector is a Calico selector in disjunctive normal form: it matches
// when all the terms of any one conjunction match. One empty conjunction
// is all(); no conjunction at all matches nothing.
type Selector [][]Term

// maxConjunctions bounds the normal form, which can grow exponentially.
const maxConjunctions = 16

// ParseSelector parses Calico's selector syntax (==, !=, in, not in,
// has(), !has(), all(), &&, ||, parentheses) into its normal form. Terms
// Cilium cannot express (starts with, ends with, contains, global(), a
// negated group) are errors that say so.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return Selector{{}}, nil // an empty selector is all()
	}
	p := &parser{src: s}
	p.next()
	sel, err := p.or()
	if p.err != nil { // the lexer's error is the first one
		err = p.err
	}
	if err != nil {
		return nil, fmt.Errorf("selector %q: %w", s, err)
	}
	if p.tok.kind != tEOF {
		return nil, fmt.Errorf("selector %q: unexpected %q", s, p.tok.text)
	}
	return sel, nil
}

// Matches reports whether labels satisfy the selector.
func (s Selector) Matches(labels map[string]string) bool {
	for _, conj := range s {
		ok := true
		for _, t := range conj {
			if !t.matches(labels) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (t Term) matches(labels map[string]string) bool {
	v, has := labels[t.Key]
	switch t.Op {
	case "has":
		return has
	case "!has":
		return !has
	case "==":
		return has && v == t.Values[0]
	case "!=":
		return !has || v != t.Values[0]
	case "in":
		return has && contains(t.Values, v)
	case "not in":
		return !has || !contains(t.Values, v)
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tOp // == != && || ! ( ) { } ,
)

type token struct {
	kind tokKind
	text string
}

type parser struct {
	src string
	pos int
	tok token
	err error
}

func (p *parser) next() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
	if p.pos >= len(p.src) {
		p.tok = token{kind: tEOF}
		return
	}
	c := p.src[p.pos]
	switch {
	case c == '\'' || c == '"':
		end := strings.IndexByte(p.src[p.pos+1:], c)
		if end < 0 {
			p.err = fmt.Errorf("unterminated string")
			p.tok = token{kind: tEOF}
			return
		}
		p.tok = token{kind: tString, text: p.src[p.pos+1 : p.pos+1+end]}
		p.pos += end + 2
	case strings.HasPrefix(p.src[p.pos:], "==") || strings.HasPrefix(p.src[p.pos:], "!=") ||
		strings.HasPrefix(p.src[p.pos:], "&&") || strings.HasPrefix(p.src[p.pos:], "||"):
		p.tok = token{kind: tOp, text: p.src[p.pos : p.pos+2]}
		p.pos += 2
	case strings.ContainsRune("!(){},", rune(c)):
		p.tok = token{kind: tOp, text: string(c)}
		p.pos++
	default:
		start := p.pos
		for p.pos < len(p.src) && isIdent(p.src[p.pos]) {
			p.pos++
		}
		if start == p.pos {
			p.err = fmt.Errorf("unexpected %q", string(c))
			p.tok = token{kind: tEOF}
			return
		}
		p.tok = token{kind: tIdent, text: p.src[start:p.pos]}
	}
}

func isIdent(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (p *parser) expect(text string) error {
	if p.err != nil {
		return p.err
	}
	if p.tok.kind != tOp || p.tok.text != text {
		return fmt.Errorf("want %q, got %q", text, p.tok.text)
	}
	p.next()
	return p.err
}

func (p *parser) or() (Selector, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tOp && p.tok.text == "||" {
		p.next()
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = append(left, right...)
		if len(left) > maxConjunctions {
			return nil, fmt.Errorf("more than %d alternatives", maxConjunctions)
		}
	}
	return left, nil
}

func (p *parser) and() (Selector, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tOp && p.tok.text == "&&" {
		p.next()
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		if left = and(left, right); len(left) > maxConjunctions {
			return nil, fmt.Errorf("more than %d alternatives", maxConjunctions)
		}
	}
	return left, nil
}

// and is the conjunction of two selectors in normal form.
func and(a, b Selector) Selector {
	var out Selector
	for _, x := range a {
		for _, y := range b {
			out = append(out, append(append([]Term{}, x...), y...))
		}
	}
	return out
}

func (p *parser) unary() (Selector, error) {
	if p.err != nil {
		return nil, p.err
	}
	switch {
	case p.tok.kind == tOp && p.tok.text == "(":
		p.next()
		s, err := p.or()
		if err != nil {
			return nil, err
		}
		return s, p.expect(")")
	case p.tok.kind == tOp && p.tok.text == "!":
		p.next()
		if p.tok.kind == tIdent && p.tok.text == "has" {
			k, err := p.hasArg()
			if err != nil {
				return nil, err
			}
			return Selector{{{Key: k, Op: "!has"}}}, nil
		}
		return nil, fmt.Errorf("a negated group (only !has() has a Cilium equivalent)")
	case p.tok.kind == tIdent && p.tok.text == "has":
		k, err := p.hasArg()
		if err != nil {
			return nil, err
		}
		return Selector{{{Key: k, Op: "has"}}}, nil
	case p.tok.kind == tIdent && p.tok.text == "all":
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		return Selector{{}}, p.expect(")")
	case p.tok.kind == tIdent && p.tok.text == "global":
		return nil, fmt.Errorf("global() (Cilium has no global network sets)")
	case p.tok.kind == tIdent:
		return p.comparison()
	}
	return nil, fmt.Errorf("unexpected %q", p.tok.text)
}

func (p *parser) hasArg() (string, error) {
	p.next()
	if err := p.expect("("); err != nil {
		return "", err
	}
	if p.tok.kind != tIdent {
		return "", fmt.Errorf("has() wants a label key, got %q", p.tok.text)
	}
	k := p.tok.text
	p.next()
	return k, p.expect(")")
}

func (p *parser) comparison() (Selector, error) {
	key := p.tok.text
	p.next()
	switch {
	case p.tok.kind == tOp && (p.tok.text == "==" || p.tok.text == "!="):
		op := p.tok.text
		p.next()
		if p.tok.kind != tString {
			return nil, fmt.Errorf("%s %s wants a quoted value, got %q", key, op, p.tok.text)
		}
		v := p.tok.text
		p.next()
		return Selector{{{Key: key, Op: op, Values: []string{v}}}}, p.err
	case p.tok.kind == tIdent && p.tok.text == "in":
		p.next()
		vs, err := p.set()
		return Selector{{{Key: key, Op: "in", Values: vs}}}, err
	case p.tok.kind == tIdent && p.tok.text == "not":
		p.next()
		if p.tok.kind != tIdent || p.tok.text != "in" {
			return nil, fmt.Errorf("%s not wants in, got %q", key, p.tok.text)
		}
		p.next()
		vs, err := p.set()
		return Selector{{{Key: key, Op: "not in", Values: vs}}}, err
	case p.tok.kind == tIdent && (p.tok.text == "starts" || p.tok.text == "ends" || p.tok.text == "contains"):
		return nil, fmt.Errorf("%s %s (Cilium selectors match whole values only)", key, p.tok.text)
	}
	return nil, fmt.Errorf("unexpected %q after %s", p.tok.text, key)
}

func (p *parser) set() ([]string, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	var vs []string
	for p.tok.kind == tString {
		vs = append(vs, p.tok.text)
		p.next()
		if p.tok.kind == tOp && p.tok.text == "," {
			p.next()
		}
	}
	sort.Strings(vs)
	return vs, p.expect("}")
}
