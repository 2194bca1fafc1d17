package connectivity

import (
	"os"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/testdoc"
)

// TestDocsConnectivitySchema fails when a JSON field of the matrix or a
// check is missing from docs/connectivity-schema.md.
func TestDocsConnectivitySchema(t *testing.T) {
	data, err := os.ReadFile("../../docs/connectivity-schema.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	testdoc.Fields(t, doc, Matrix{})
	for _, v := range append(Checks(), APIVersion, Kind, NetOld, NetNew, NetOther, Name, ResultKey) {
		if !strings.Contains(doc, v) {
			t.Errorf("%q is not documented", v)
		}
	}
}
