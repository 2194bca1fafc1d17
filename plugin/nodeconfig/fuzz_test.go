package nodeconfig

import (
	"strings"
	"testing"
)

// FuzzParseLabel: any --node-label gives a key and value, or a one-line error.
func FuzzParseLabel(f *testing.F) {
	for _, s := range []string{DefaultLabel, "a=b", "a", "=b", "a=", "example.com/x=y", "a b=c", "a=b=c", "-a=b", strings.Repeat("a", 70) + "=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseLabel(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if k == "" || k+"="+v != s {
			t.Fatalf("%q parsed as %q=%q", s, k, v)
		}
	})
}
