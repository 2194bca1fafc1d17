package connectivity

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestDocsConnectivitySchema fails when a JSON field of the matrix or a
// check is missing from docs/connectivity-schema.md.
func TestDocsConnectivitySchema(t *testing.T) {
	data, err := os.ReadFile("../../docs/connectivity-schema.md")
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
		if ty.Kind() != reflect.Struct || seen[ty] || ty.PkgPath() != reflect.TypeOf(Matrix{}).PkgPath() {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			if tag == "-" || !f.IsExported() || f.Anonymous {
				continue
			}
			if tag != "" && !regexp.MustCompile(`\b`+regexp.QuoteMeta(tag)+`\b`).MatchString(doc) {
				t.Errorf("field %s.%s (json %q) is not documented", ty.Name(), f.Name, tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Matrix{}))
	for _, v := range append(Checks(), APIVersion, Kind, NetOld, NetNew, NetOther, Name, ResultKey) {
		if !strings.Contains(doc, v) {
			t.Errorf("%q is not documented", v)
		}
	}
}
