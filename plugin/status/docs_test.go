package status

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestDocsStatusSchema fails when a JSON field of the report, a stage or a
// method is missing from docs/status-schema.md.
func TestDocsStatusSchema(t *testing.T) {
	data, err := os.ReadFile("../../docs/status-schema.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			if tag == "-" || !f.IsExported() {
				continue
			}
			if tag != "" && !regexp.MustCompile(`\b`+regexp.QuoteMeta(tag)+`\b`).MatchString(doc) {
				t.Errorf("field %s.%s (json %q) is not documented", ty.Name(), f.Name, tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Report{}))
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
