package cidr

import (
	"strings"
	"testing"
)

// FuzzParse: any --pod-cidr and any address found in the cluster parses or
// gives a one-line error; what parses is canonical and within bounds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"10.245.0.0/16", "10.245.1.0/16", "10.0.0.0/7", "10.0.0.0/29", "fd00::/48", "10.1.2.3", "::1", "", "x/16", "10.0.0.0/33", " 10.0.0.0/16"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePodCIDR(s); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		} else if p != p.Masked() || !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 28 {
			t.Fatalf("%q accepted as %s", s, p)
		}
		if _, err := ParseReserved(s, "a test object"); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
	})
}
