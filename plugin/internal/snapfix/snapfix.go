// Package snapfix loads detect's fixture files into a Snapshot for the
// tests of the packages that build on detection (plan, cmd).
package snapfix

import (
	"os"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// Load reads the files (YAML streams of cluster objects) and loads them as
// one snapshot, failing the test on any error.
func Load(t testing.TB, files ...string) *detect.Snapshot {
	t.Helper()
	var streams [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
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
