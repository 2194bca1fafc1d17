package ciliumver

import (
	"strings"
	"testing"
)

// FuzzParse: any --cilium-version gives a version or a one-line error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.18.11", "v1.18.11", "1.18", "1", "1.18.x", "", "v", "1.18.11-rc.1", "01.2.3", "1..2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := Parse(s); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
	})
}
