// Package snapfix loads detect's fixture files into a Snapshot for the
// tests of the packages that build on detection (plan, cmd).
package snapfix

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// Load reads the named fixtures of detect's testdata (YAML streams of
// cluster objects; the caller is a package beside detect) and loads them as
// one snapshot, failing the test on any error.
func Load(t testing.TB, names ...string) *detect.Snapshot {
	t.Helper()
	var streams [][]byte
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join("..", "detect", "testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, data)
	}
	s, err := detect.LoadSnapshot(streams...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
