package output

import (
	"strings"
	"testing"
)

func TestListAndPlural(t *testing.T) {
	if got := List([]string{"a", "b"}, 4); got != "a, b" {
		t.Fatal(got)
	}
	if got := List([]string{"a", "b", "c", "d", "e", "f"}, 4); got != "a, b, c, d and 2 more" {
		t.Fatal(got)
	}
	if Plural(1, "pod", "pods") != "pod" || Plural(0, "pod", "pods") != "pods" {
		t.Fatal("plural")
	}
}

func TestDedupWriter(t *testing.T) {
	var b strings.Builder
	w := NewDedupWriter(&b)
	for _, s := range []string{"evicting pod a\n", "evicting pod a\nretry", " after 5s\n", "evicting pod a\n", "retry after 5s\n", "done\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if b.String() != "evicting pod a\nretry after 5s\ndone\n" {
		t.Fatalf("%q", b.String())
	}
}
