package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestArchiveNames(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":   "kubectl-cni_migrate_linux_amd64.tar.gz",
		"darwin/arm64":  "kubectl-cni_migrate_darwin_arm64.tar.gz",
		"windows/amd64": "kubectl-cni_migrate_windows_amd64.zip",
	} {
		p, err := ParsePlatform(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.ArchiveName(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/amd64/v2"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type file struct {
	mode  int64
	mtime time.Time
	data  string
}

func readTarGz(t *testing.T, b []byte) ([]string, map[string]file) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q / time %v", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	var names []string
	files := map[string]file{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		data, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		files[h.Name] = file{h.Mode, h.ModTime, string(data)}
	}
	return names, files
}

func TestTarGzReproducible(t *testing.T) {
	p := Platform{"linux", "arm64"}
	in := Inputs{License: []byte("Apache"), Completion: []byte("#!/bin/sh\n"), MTime: time.Unix(1700000000, 0)}
	a, err := Archive(p, []byte("ELF"), in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Archive(p, []byte("ELF"), in)
	if !bytes.Equal(a, b) {
		t.Fatal("two archives of the same inputs differ")
	}
	names, files := readTarGz(t, a)
	if got := strings.Join(names, " "); got != "LICENSE kubectl-cni_migrate kubectl_complete-cni_migrate" {
		t.Fatalf("entries %s", got)
	}
	for name, want := range map[string]file{
		"kubectl-cni_migrate":          {0o755, in.MTime, "ELF"},
		"kubectl_complete-cni_migrate": {0o755, in.MTime, "#!/bin/sh\n"},
		"LICENSE":                      {0o644, in.MTime, "Apache"},
	} {
		got := files[name]
		if got.mode != want.mode || !got.mtime.Equal(want.mtime) || got.data != want.data {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

func TestZipWindows(t *testing.T) {
	p := Platform{"windows", "amd64"}
	in := Inputs{License: []byte("Apache"), Completion: []byte("#!/bin/sh\n"), MTime: time.Unix(1700000000, 0)}
	a, err := Archive(p, []byte("MZ"), in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Archive(p, []byte("MZ"), in)
	if !bytes.Equal(a, b) {
		t.Fatal("two archives of the same inputs differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(in.MTime) {
			t.Errorf("%s: mtime %v", f.Name, f.Modified)
		}
		if want := map[string]os.FileMode{"LICENSE": 0o644, "kubectl-cni_migrate.exe": 0o755}[f.Name]; f.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), want)
		}
	}
	if got := strings.Join(names, " "); got != "LICENSE kubectl-cni_migrate.exe" {
		t.Fatalf("entries %s (no completion script on windows)", got)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, f := range []string{"linux_amd64/kubectl-cni_migrate", "windows_amd64/kubectl-cni_migrate.exe"} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(in, f)), 0o755)
		if err := os.WriteFile(filepath.Join(in, f), []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lic := filepath.Join(dir, "LICENSE")
	_ = os.WriteFile(lic, []byte("license"), 0o644)
	var log bytes.Buffer
	if err := run([]string{"-in", in, "-out", out, "-license", lic, "linux/amd64", "windows/amd64"}, &log); err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(out, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "  kubectl-cni_migrate_linux_amd64.tar.gz") ||
		!strings.HasSuffix(lines[1], "  kubectl-cni_migrate_windows_amd64.zip") || len(strings.Fields(lines[0])[0]) != 64 {
		t.Fatalf("sums:\n%s", sums)
	}
	if err := run([]string{"-in", in, "-out", out, "-license", lic, "darwin/arm64"}, &log); err == nil ||
		!strings.Contains(err.Error(), "darwin/arm64") {
		t.Fatalf("missing binary: %v", err)
	}
}
