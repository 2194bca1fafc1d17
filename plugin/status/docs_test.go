package status

import (
	"os"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/testdoc"
)

// TestDocsStatusSchema fails when a JSON field of the report, a stage or a
// method is missing from docs/status-schema.md.
func TestDocsStatusSchema(t *testing.T) {
	data, err := os.ReadFile("../../docs/status-schema.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	testdoc.Fields(t, doc, Report{})
	for _, v := range []string{
		StageInstallCilium, StageNotMigration, StageApplyNodeConfig, StageMigrateNodes, StageFinalize, StageFinalized, StageRestartPods,
		MethodEndpoints, MethodPodIPs, MethodNone,
		MigrationDone, MigrationInProgress, MigrationNotStarted,
		APIVersion, Kind,
	} {
		if !strings.Contains(doc, v) {
			t.Errorf("%q is not documented", v)
		}
	}
}
