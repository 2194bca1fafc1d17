// Package testdoc holds the helpers the packages' tests share: golden
// files under testdata/, and the check that a documented JSON form names
// every field of its Go type.
package testdoc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Golden compares got with testdata/name, rewriting the file first when
// update is set (go test -update).
func Golden(t *testing.T, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// Fields fails the test for every JSON field of v's type (and of the
// struct types of its fields, in the same package) that the document doc
// does not name as a word.
func Fields(t *testing.T, doc string, v any) {
	t.Helper()
	root := reflect.TypeOf(v)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty.PkgPath() != root.PkgPath() {
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
	walk(root)
}
