package calicopolicy

import (
	"fmt"
	"strings"
	"testing"
)

// String writes the normal form, for tests.
func (s Selector) String() string {
	var alts []string
	for _, conj := range s {
		var ts []string
		for _, t := range conj {
			ts = append(ts, fmt.Sprintf("%s %s %v", t.Key, t.Op, t.Values))
		}
		alts = append(alts, "("+strings.Join(ts, " & ")+")")
	}
	return strings.Join(alts, " | ")
}

func TestParseSelector(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "", want: "()"},
		{in: "all()", want: "()"},
		{in: "app == 'web'", want: "(app == [web])"},
		{in: `role != "db"`, want: "(role != [db])"},
		{in: "app == 'web' && has(tier)", want: "(app == [web] & tier has [])"},
		{in: "!has(projectcalico.org/orchestrator)", want: "(projectcalico.org/orchestrator !has [])"},
		{in: "env in {'prod', 'stage'}", want: "(env in [prod stage])"},
		{in: "env not in {'dev'}", want: "(env not in [dev])"},
		{in: "a == 'x' || b == 'y'", want: "(a == [x]) | (b == [y])"},
		{in: "(a == 'x' || b == 'y') && c == 'z'", want: "(a == [x] & c == [z]) | (b == [y] & c == [z])"},
		{in: "app == 'web' && projectcalico.org/namespace == 'shop'", want: "(app == [web] & projectcalico.org/namespace == [shop])"},
		{in: "app starts with 'we'", err: "Cilium selectors match whole values only"},
		{in: "!(a == 'x')", err: "negated group"},
		{in: "global()", err: "global()"},
		{in: "app == web", err: "wants a quoted value"},
		{in: "app == 'web' &&", err: "unexpected"},
		{in: "app == 'web", err: "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSelector(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want error with %q", s, err, tt.err)
				}
				return
			}
			if err != nil || s.String() != tt.want {
				t.Fatalf("got %s, %v; want %s", s, err, tt.want)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	s, err := ParseSelector("role == 'db' && env not in {'dev'} || has(debug)")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"role": "db"}, true},
		{map[string]string{"role": "db", "env": "dev"}, false},
		{map[string]string{"debug": ""}, true},
		{map[string]string{"role": "web"}, false},
	} {
		if got := s.Matches(tt.labels); got != tt.want {
			t.Errorf("%v: got %v", tt.labels, got)
		}
	}
}
