package values

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A small YAML emitter for values in the JSON data model (map[string]any,
// []any, string, float64, bool, nil): block style, two-space indents, a
// comment above chosen keys. Strings are written plain only when they are
// unambiguous in YAML 1.1 (what sigs.k8s.io/yaml, and so Helm, reads), and
// double-quoted otherwise. The tests check that every document parses back
// to the map it was made from.

// dottedNumeric matches IP addresses, CIDRs and versions: digits with two or
// more dots cannot be read as a number, so they can be written plain.
func dottedNumeric() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9]+(\.[0-9]+){2,}(/[0-9]+)?$`)
}

// plainSafe reports whether s can be written as a plain scalar and still be
// read back as the same string.
func plainSafe(s string, dotted *regexp.Regexp) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if c >= '0' && c <= '9' {
		return dotted.MatchString(s)
	}
	if !(isLetter(c) || c == '_' || c == '/') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '/' || c == '-') {
			return false
		}
	}
	// YAML 1.1 booleans and null, in any case (quoting too often is harmless).
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "true", "false", "on", "off", "null":
		return false
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// quote writes s as a YAML double-quoted scalar, escaping everything that is
// not printable in YAML.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r == utf8.RuneError:
			// Invalid UTF-8 cannot be kept in a YAML document.
			b.WriteString(`\uFFFD`)
		case r == 0x2028 || r == 0x2029 || r == 0xfeff:
			// Line and paragraph separators are line breaks to YAML 1.1
			// readers; a byte order mark is dropped by some.
			fmt.Fprintf(&b, `\u%04X`, r)
		case (r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || (r >= 0x10000 && r <= 0x10ffff):
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatNumber writes f so that YAML reads back the same float64.
func formatNumber(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("cannot write %v as a Helm value", f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10), nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

// emitter writes one document.
type emitter struct {
	b      strings.Builder
	doc    *Doc
	dotted *regexp.Regexp
}

func (e *emitter) str(s string) string {
	if plainSafe(s, e.dotted) {
		return s
	}
	return quote(s)
}

func (e *emitter) scalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return formatNumber(v)
	case string:
		return e.str(v), nil
	}
	return "", fmt.Errorf("cannot write a %T as a Helm value", v)
}

func (e *emitter) comment(indent int, text string) {
	for _, line := range strings.Split(text, "\n") {
		e.b.WriteString(strings.Repeat(" ", indent))
		e.b.WriteString("# ")
		e.b.WriteString(strings.TrimRight(line, " \t\r"))
		e.b.WriteByte('\n')
	}
}

// mapping writes the entries of a non-empty map at indent. The first line
// starts with first (e.g. "  - " inside a list) instead of indent spaces.
// Comments are written only outside lists and outside values that came whole
// from the user's file (commented is false there).
func (e *emitter) mapping(m map[string]any, path []string, indent int, first string, commented bool) error {
	pad := strings.Repeat(" ", indent)
	keys := sortedKeys(m)
	if commented {
		keys = e.doc.orderKeys(path, m)
	}
	for i, k := range keys {
		p := append(path[:len(path):len(path)], k)
		fromUser := commented && e.doc.fromUser(p)
		if indent == 0 && i > 0 {
			e.b.WriteByte('\n') // a blank line between top-level keys
		}
		if commented {
			if note := e.doc.note(p); note != "" {
				e.comment(indent, note)
			}
		}
		if i == 0 && first != "" {
			e.b.WriteString(first)
		} else {
			e.b.WriteString(pad)
		}
		e.b.WriteString(e.str(k))
		e.b.WriteByte(':')
		if err := e.value(m[k], p, indent, commented && !fromUser); err != nil {
			return err
		}
	}
	return nil
}

// value writes what follows "key:" for a value of a key at indent.
func (e *emitter) value(v any, path []string, indent int, commented bool) error {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			e.b.WriteString(" {}\n")
			return nil
		}
		e.b.WriteByte('\n')
		return e.mapping(v, path, indent+2, "", commented)
	case []any:
		if len(v) == 0 {
			e.b.WriteString(" []\n")
			return nil
		}
		e.b.WriteByte('\n')
		return e.list(v, indent+2, "")
	}
	s, err := e.scalar(v)
	if err != nil {
		return err
	}
	e.b.WriteByte(' ')
	e.b.WriteString(s)
	e.b.WriteByte('\n')
	return nil
}

// list writes the items of a non-empty list as "- item" lines at indent; the
// first line starts with first instead of indent spaces when first is set.
func (e *emitter) list(items []any, indent int, first string) error {
	pad := strings.Repeat(" ", indent)
	for i, item := range items {
		lead := pad
		if i == 0 && first != "" {
			lead = first
		}
		switch item := item.(type) {
		case map[string]any:
			if len(item) == 0 {
				e.b.WriteString(lead + "- {}\n")
				continue
			}
			if err := e.mapping(item, nil, indent+2, lead+"- ", false); err != nil {
				return err
			}
		case []any:
			if len(item) == 0 {
				e.b.WriteString(lead + "- []\n")
				continue
			}
			if err := e.list(item, indent+2, lead+"- "); err != nil {
				return err
			}
		default:
			s, err := e.scalar(item)
			if err != nil {
				return err
			}
			e.b.WriteString(lead + "- " + s + "\n")
		}
	}
	return nil
}

// sortedKeys returns m's keys in byte order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
