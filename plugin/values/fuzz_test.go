package values

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadFile: any file given to --values loads as a map of Helm values or
// is refused with a one-line error naming the file.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{
		"image:\n  repository: lab.local/cilium\n  tag: v1.18.11\n",
		"# only a comment\n", "null\n", "", "- a\n- b\n", "a: .inf\n", "a: [1, {b: c}]\n",
		"a:\n\tb: tab\n", "key: 'unterminated\n", "{", "ipam:\n  mode: kubernetes\ncni:\n  customConf: false\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(dir, "values.yaml")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := LoadFile(path)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, path) {
				t.Fatalf("error is not one line naming the file: %q", msg)
			}
			return
		}
		if v == nil {
			t.Fatal("nil map without an error")
		}
	})
}
