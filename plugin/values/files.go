package values

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// LoadFile reads a Helm values file the way Helm does (sigs.k8s.io/yaml:
// numbers become float64). An empty file, or one holding only comments or
// null, is an empty map.
func LoadFile(path string) (map[string]any, error) {
	const fix = "pass a readable YAML file to --values"
	data, err := os.ReadFile(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, errs.Wrap(errs.Usage, err, fmt.Sprintf("values file %s does not exist", path), fix)
		case isDir(path):
			return nil, errs.Wrap(errs.Usage, err, fmt.Sprintf("values file %s is a directory", path), fix)
		}
		return nil, errs.Wrap(errs.IO, err, fmt.Sprintf("cannot read values file %s: %s", path, reason(err)), fix)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		what := "is not valid YAML"
		if r := yamlReason(err); !strings.HasPrefix(r, "line ") {
			what = "cannot be read as Helm values" // valid YAML that JSON cannot hold, such as .inf
		}
		return nil, errs.Wrap(errs.Usage, err,
			fmt.Sprintf("values file %s %s: %s", path, what, yamlReason(err)),
			"fix the file or pass another one to --values")
	}
	switch v := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return v, nil
	default:
		return nil, errs.New(errs.Usage,
			fmt.Sprintf("values file %s holds %s at line %d, not a mapping of Helm values", path, kind(v), firstContentLine(data)),
			"write the values as key: value pairs, as in the chart's values.yaml")
	}
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// reason is the system's reason for a failed file operation, without the
// operation and path (which the message names already).
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}

// yamlReason shortens a sigs.k8s.io/yaml error to "line N: what".
func yamlReason(err error) string {
	s := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "yaml: "} {
		s = strings.TrimPrefix(s, p)
	}
	return oneLine(s)
}

func kind(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("a %T", v)
}

// firstContentLine is the 1-based line of the first thing in a YAML file that
// is not blank, a comment, a directive or a document marker.
func firstContentLine(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "%") || t == "---" {
			continue
		}
		return i + 1
	}
	return 1
}

// WriteStdout writes both documents to w, separated by "---".
func WriteStdout(w io.Writer, initial, final *Doc) error {
	var buf bytes.Buffer
	for i, d := range []*Doc{initial, final} {
		if d == nil {
			return errs.New(errs.Internal, "a values document is missing", "report this as a bug")
		}
		b, err := d.YAML()
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return errs.Wrap(errs.IO, err, fmt.Sprintf("cannot write the values to standard output: %v", err),
			"check where the output goes, or use --output-dir")
	}
	return nil
}

// WriteFiles writes values-initial.yaml and values-final.yaml into dir. Both
// are written to temporary files in dir first and then renamed into place;
// if anything fails, the temporary files are removed and any file already
// replaced is put back, so dir never holds one new file without the other.
func WriteFiles(dir string, initial, final *Doc) ([]string, error) {
	return writeFiles(dir, []*Doc{initial, final}, os.Rename)
}

// target is one file WriteFiles replaces.
type target struct {
	path    string
	tmp     string
	data    []byte
	mode    fs.FileMode
	old     []byte // previous content, to put back on failure
	existed bool
}

// writeFiles is WriteFiles with the rename step as a parameter, so tests can
// make it fail.
func writeFiles(dir string, docs []*Doc, rename func(from, to string) error) (paths []string, err error) {
	const fixDir = "create it or choose another --output-dir"
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errs.Wrap(errs.IO, err, fmt.Sprintf("output directory %s does not exist", dir), fixDir)
	case err != nil:
		return nil, errs.Wrap(errs.IO, err, fmt.Sprintf("cannot use output directory %s: %s", dir, reason(err)), fixDir)
	case !st.IsDir():
		return nil, errs.New(errs.IO, fmt.Sprintf("output directory %s is a file, not a directory", dir), "choose another --output-dir")
	}

	targets := make([]*target, 0, len(docs))
	for _, d := range docs {
		if d == nil {
			return nil, errs.New(errs.Internal, "a values document is missing", "report this as a bug")
		}
		data, err := d.YAML()
		if err != nil {
			return nil, err
		}
		t := &target{path: filepath.Join(dir, d.Name()), data: data, mode: 0o644}
		switch st, err := os.Lstat(t.path); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, errs.Wrap(errs.IO, err, fmt.Sprintf("cannot check %s: %s", t.path, reason(err)), "choose another --output-dir")
		case !st.Mode().IsRegular():
			return nil, errs.New(errs.IO, fmt.Sprintf("%s exists and is not a regular file", t.path), "move it away or choose another --output-dir")
		default:
			old, err := os.ReadFile(t.path)
			if err != nil {
				return nil, errs.Wrap(errs.IO, err, fmt.Sprintf("cannot read %s before replacing it: %s", t.path, reason(err)), "make it readable or choose another --output-dir")
			}
			t.old, t.existed, t.mode = old, true, st.Mode().Perm()
		}
		targets = append(targets, t)
	}

	defer func() {
		if err != nil {
			for _, t := range targets {
				if t.tmp != "" {
					_ = os.Remove(t.tmp)
				}
			}
		}
	}()
	for _, t := range targets {
		if t.tmp, err = writeTemp(dir, t.path, t.data, t.mode); err != nil {
			return nil, err
		}
	}

	var done []*target
	for _, t := range targets {
		if rerr := rename(t.tmp, t.path); rerr != nil {
			restore(dir, done)
			return nil, errs.Wrap(errs.IO, rerr, fmt.Sprintf("cannot write %s: %s", t.path, reason(rerr)), "make the directory writable or choose another --output-dir")
		}
		t.tmp = ""
		done = append(done, t)
		paths = append(paths, t.path)
	}
	syncDir(dir)
	return paths, nil
}

// writeTemp writes data to a new temporary file in dir, named after path.
func writeTemp(dir, path string, data []byte, mode fs.FileMode) (string, error) {
	const fix = "make it writable or choose another --output-dir"
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", errs.Wrap(errs.IO, err, fmt.Sprintf("cannot write to output directory %s: %s", dir, reason(err)), fix)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return "", errs.Wrap(errs.IO, err, fmt.Sprintf("cannot write %s: %s", path, reason(err)), fix)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", errs.Wrap(errs.IO, err, fmt.Sprintf("cannot write %s: %s", path, reason(err)), fix)
	}
	return name, nil
}

// restore undoes the renames already done: a replaced file gets its old
// content back, a new file is removed. It is best effort.
func restore(dir string, done []*target) {
	for _, t := range done {
		if !t.existed {
			_ = os.Remove(t.path)
			continue
		}
		if tmp, err := writeTemp(dir, t.path, t.old, t.mode); err == nil {
			if err := os.Rename(tmp, t.path); err != nil {
				_ = os.Remove(tmp)
			}
		}
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
