package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeSums() map[string]string {
	sums := map[string]string{}
	for i, n := range []string{
		"kubectl-cni_migrate_linux_amd64.tar.gz", "kubectl-cni_migrate_linux_arm64.tar.gz",
		"kubectl-cni_migrate_darwin_amd64.tar.gz", "kubectl-cni_migrate_darwin_arm64.tar.gz",
		"kubectl-cni_migrate_windows_amd64.zip",
	} {
		sums[n] = strings.Repeat(string(rune('a'+i)), 64)
	}
	return sums
}

func readTemplate(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../krew/cni-migrate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderTemplate(t *testing.T) {
	data, m, err := Render(readTemplate(t), Options{Version: "v1.2.3", Sums: fakeSums()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Name != "cni-migrate" || m.Spec.Version != "v1.2.3" || len(m.Spec.Platforms) != 5 {
		t.Fatalf("%+v", m)
	}
	want := map[string]string{
		"linux/amd64":   "kubectl-cni_migrate_linux_amd64.tar.gz",
		"linux/arm64":   "kubectl-cni_migrate_linux_arm64.tar.gz",
		"darwin/amd64":  "kubectl-cni_migrate_darwin_amd64.tar.gz",
		"darwin/arm64":  "kubectl-cni_migrate_darwin_arm64.tar.gz",
		"windows/amd64": "kubectl-cni_migrate_windows_amd64.zip",
	}
	for _, p := range m.Spec.Platforms {
		key := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		archive := want[key]
		if archive == "" {
			t.Errorf("unexpected platform %s", key)
			continue
		}
		if p.URI != "https://github.com/cni-migrate/kubectl-cni-migrate/releases/download/v1.2.3/"+archive {
			t.Errorf("%s: uri %s", key, p.URI)
		}
		if p.Sha256 != fakeSums()[archive] {
			t.Errorf("%s: sha256 %s", key, p.Sha256)
		}
		bin := "kubectl-cni_migrate"
		if strings.HasPrefix(key, "windows/") {
			bin += ".exe"
		}
		if p.Bin != bin {
			t.Errorf("%s: bin %s", key, p.Bin)
		}
		var from []string
		for _, f := range p.Files {
			from = append(from, f.From)
		}
		wantFrom := "kubectl-cni_migrate kubectl_complete-cni_migrate LICENSE"
		if strings.HasPrefix(key, "windows/") {
			wantFrom = "kubectl-cni_migrate.exe LICENSE"
		}
		if got := strings.Join(from, " "); got != wantFrom {
			t.Errorf("%s: files %s, want %s", key, got, wantFrom)
		}
	}
	if bytes.Contains(data, []byte("{{")) || bytes.Contains(data, []byte("TagName")) {
		t.Errorf("template left over:\n%s", data)
	}
	// What users must be told on install.
	for _, w := range []string{"kubectl_complete-cni_migrate", "rbac.yaml", "kubectl cni-migrate plan"} {
		if !strings.Contains(m.Spec.Caveats, w) {
			t.Errorf("caveats do not mention %s:\n%s", w, m.Spec.Caveats)
		}
	}
}

func TestRenderBaseURL(t *testing.T) {
	_, m, err := Render(readTemplate(t), Options{Version: "v0.1.0-rc.1", BaseURL: "http://127.0.0.1:8080/files/", Sums: fakeSums()})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Spec.Platforms[0].URI; got != "http://127.0.0.1:8080/files/kubectl-cni_migrate_linux_amd64.tar.gz" {
		t.Fatalf("uri %s", got)
	}
}

func TestRenderErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"no v":         {Options{Version: "1.2.3", Sums: fakeSums()}, "leading v"},
		"git describe": {Options{Version: "e0f88a4-dirty", Sums: fakeSums()}, "semantic version"},
		"bad base":     {Options{Version: "v1.2.3", BaseURL: "file:///tmp", Sums: fakeSums()}, "base URL"},
		"missing archive": {Options{Version: "v1.2.3", Sums: func() map[string]string {
			s := fakeSums()
			delete(s, "kubectl-cni_migrate_darwin_arm64.tar.gz")
			return s
		}()}, "kubectl-cni_migrate_darwin_arm64.tar.gz"},
		"archive without platform": {Options{Version: "v1.2.3", Sums: func() map[string]string {
			s := fakeSums()
			s["kubectl-cni_migrate_linux_riscv64.tar.gz"] = strings.Repeat("f", 64)
			return s
		}()}, "no platform for kubectl-cni_migrate_linux_riscv64.tar.gz"},
	} {
		if _, _, err := Render(readTemplate(t), tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	bad := `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata: {name: cni-migrate}
spec:
  version: v1.2.3
  shortDescription: x
  description: x
  caveats: x
  platforms:
  - selector: {matchLabels: {os: linux, arch: amd64}}
    uri: https://example.com/a.tar.gz
    sha256: ABCDEF
    bin: kubectl-cni_migrate
    files: [{from: LICENSE, to: .}]
`
	_, err := Check([]byte(bad), "v1.2.3")
	if err == nil || !strings.Contains(err.Error(), "lowercase hex") || !strings.Contains(err.Error(), "do not copy bin") {
		t.Fatalf("%v", err)
	}
}

func TestRunWritesFile(t *testing.T) {
	dir := t.TempDir()
	for n := range fakeSums() {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "cni-migrate.yaml")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-template", "../../krew/cni-migrate.yaml", "-version", "v1.2.3", "-dist", dir, "-o", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// sha256("kubectl-cni_migrate_windows_amd64.zip"), computed from the file.
	if !strings.Contains(string(data), "sha256: ") || strings.Contains(string(data), strings.Repeat("e", 64)) {
		t.Fatalf("sums not computed from the files:\n%s", data)
	}
}
