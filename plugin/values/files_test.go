package values

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantErr(t *testing.T, err error, code int, msgHas, fixHas string) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *errs.Error", err)
	}
	if e.Code != code {
		t.Errorf("code = %d, want %d (%q)", e.Code, code, e.Error())
	}
	if !strings.Contains(e.Msg, msgHas) {
		t.Errorf("Msg = %q, want it to contain %q", e.Msg, msgHas)
	}
	if !strings.Contains(e.Fix, fixHas) || e.Fix == "" {
		t.Errorf("Fix = %q, want it to contain %q", e.Fix, fixHas)
	}
	if strings.Contains(e.Error(), "\n") {
		t.Errorf("error is not one line: %q", e.Error())
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          map[string]any
	}{
		{"empty.yaml", "", map[string]any{}},
		{"comments.yaml", "# nothing here\n\n", map[string]any{}},
		{"null.yaml", "---\nnull\n", map[string]any{}},
		{"values.yaml", "hubble:\n  relay:\n    enabled: yes\ntunnelPort: 8473\nlist: [a, 1]\ncluster: {name: null}\n",
			map[string]any{
				"hubble":     map[string]any{"relay": map[string]any{"enabled": true}},
				"tunnelPort": 8473.0,
				"list":       []any{"a", 1.0},
				"cluster":    map[string]any{"name": nil},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadFile(writeFile(t, dir, tt.name, tt.content))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := LoadFile(missing)
	wantErr(t, err, errs.Usage, "values file "+missing+" does not exist", "pass a readable YAML file to --values")
	if got := err.Error(); got != "values file "+missing+" does not exist; pass a readable YAML file to --values" {
		t.Errorf("error = %q", got)
	}

	_, err = LoadFile(dir)
	wantErr(t, err, errs.Usage, "is a directory", "--values")

	file := writeFile(t, dir, "file", "x: 1\n")
	_, err = LoadFile(filepath.Join(file, "under-a-file.yaml"))
	wantErr(t, err, errs.IO, "cannot read values file", "--values")

	tests := []struct {
		name, content, msg string
	}{
		{"bad.yaml", "a: 1\nb: [1\n", "is not valid YAML: line 2"},
		{"tabs.yaml", "a:\n\tb: 1\n", "is not valid YAML: line 2"},
		{"indent.yaml", "a: 1\n b: 2\n", "is not valid YAML: line 2"},
		{"list.yaml", "# values\n\n- a\n- b\n", "holds a list at line 3, not a mapping"},
		{"scalar.yaml", "hello\n", "holds a string at line 1, not a mapping"},
		{"number.yaml", "---\n42\n", "holds a number at line 2"},
		{"inf.yaml", "a: .inf\n", "cannot be read as Helm values: json: unsupported value: +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFile(writeFile(t, dir, tt.name, tt.content))
			wantErr(t, err, errs.Usage, tt.msg, "")
		})
	}
}

func testDocs(t *testing.T) (*Doc, *Doc) {
	t.Helper()
	in := baseInput(t, "1.18.11")
	ini, fin, _ := generate(t, in)
	return ini, fin
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFiles(t *testing.T) {
	ini, fin := testDocs(t)
	dir := t.TempDir()
	paths, err := WriteFiles(dir, ini, fin)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, InitialFile), filepath.Join(dir, FinalFile)}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
	for i, d := range []*Doc{ini, fin} {
		got, err := os.ReadFile(want[i])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := d.YAML()
		if !bytes.Equal(got, b) {
			t.Errorf("%s content differs from YAML()", want[i])
		}
		st, _ := os.Stat(want[i])
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s mode = %v, want 0644", want[i], st.Mode().Perm())
		}
	}
	if names := listDir(t, dir); !reflect.DeepEqual(names, []string{FinalFile, InitialFile}) {
		t.Errorf("directory holds %q", names)
	}

	// Writing again replaces the files and keeps their mode.
	if err := os.Chmod(want[0], 0o600); err != nil {
		t.Fatal(err)
	}
	in := baseInput(t, "1.20.2")
	ini2, fin2, _ := generate(t, in)
	if _, err := WriteFiles(dir, ini2, fin2); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(want[1])
	if !strings.Contains(string(got), "Cilium 1.20.2") {
		t.Errorf("values-final.yaml was not replaced:\n%s", got)
	}
	if st, _ := os.Stat(want[0]); st.Mode().Perm() != 0o600 {
		t.Errorf("mode of the replaced file = %v, want 0600", st.Mode().Perm())
	}
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("directory holds %q", names)
	}
}

func TestWriteFilesErrors(t *testing.T) {
	ini, fin := testDocs(t)
	base := t.TempDir()
	file := writeFile(t, base, "regular-file", "x")

	_, err := WriteFiles(filepath.Join(base, "missing"), ini, fin)
	wantErr(t, err, errs.IO, "does not exist", "create it or choose another --output-dir")

	// A directory that cannot be made: a path under a regular file (the
	// tests run as root, so permissions would not stop them).
	_, err = WriteFiles(filepath.Join(file, "out"), ini, fin)
	wantErr(t, err, errs.IO, "cannot use output directory", "create it or choose another --output-dir")

	_, err = WriteFiles(file, ini, fin)
	wantErr(t, err, errs.IO, "is a file, not a directory", "choose another --output-dir")

	_, err = WriteFiles(base, nil, fin)
	wantErr(t, err, errs.Internal, "missing", "bug")

	// values-final.yaml is a directory: nothing is written, no temp files left.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, FinalFile), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = WriteFiles(dir, ini, fin)
	wantErr(t, err, errs.IO, "is not a regular file", "--output-dir")
	if names := listDir(t, dir); !reflect.DeepEqual(names, []string{FinalFile}) {
		t.Errorf("directory holds %q after a failure", names)
	}
}

// TestWriteFilesRollback makes the second rename fail: the first file must
// not stay behind (new) or must get its old content back (replaced).
func TestWriteFilesRollback(t *testing.T) {
	ini, fin := testDocs(t)
	failSecond := func() func(string, string) error {
		n := 0
		return func(from, to string) error {
			n++
			if n == 2 {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: errors.New("injected failure")}
			}
			return os.Rename(from, to)
		}
	}

	dir := t.TempDir()
	_, err := writeFiles(dir, []*Doc{ini, fin}, failSecond())
	wantErr(t, err, errs.IO, "injected failure", "--output-dir")
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q after a failed write, want nothing", names)
	}

	dir = t.TempDir()
	oldInitial := writeFile(t, dir, InitialFile, "old initial\n")
	oldFinal := writeFile(t, dir, FinalFile, "old final\n")
	_, err = writeFiles(dir, []*Doc{ini, fin}, failSecond())
	wantErr(t, err, errs.IO, "injected failure", "--output-dir")
	for p, want := range map[string]string{oldInitial: "old initial\n", oldFinal: "old final\n"} {
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s = %q after a failed write, want %q", p, got, want)
		}
	}
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("directory holds %q after a failed write", names)
	}
}

func TestWriteStdout(t *testing.T) {
	ini, fin := testDocs(t)
	var buf bytes.Buffer
	if err := WriteStdout(&buf, ini, fin); err != nil {
		t.Fatal(err)
	}
	a, _ := ini.YAML()
	b, _ := fin.YAML()
	if want := string(a) + "---\n" + string(b); buf.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", buf.String(), want)
	}
	parts := strings.Split(buf.String(), "\n---\n")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "# values-initial.yaml") || !strings.HasPrefix(parts[1], "# values-final.yaml") {
		t.Errorf("documents are not separated by --- with their headers:\n%s", buf.String())
	}
	for i, p := range parts {
		if got, want := parseBack(t, []byte(p)), []*Doc{ini, fin}[i].Map(); !reflect.DeepEqual(got, want) {
			t.Errorf("document %d does not parse back to its map", i)
		}
	}

	err := WriteStdout(failingWriter{}, ini, fin)
	wantErr(t, err, errs.IO, "cannot write the values to standard output", "")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
