package main

import (
	"os"
	"strings"
	"testing"
)

// TestDocsReference fails when docs/reference no longer matches the
// commands, or a README flag table disagrees with them.
func TestDocsReference(t *testing.T) {
	home, _ := os.UserHomeDir()
	root := Root()
	for _, p := range Stale("../../docs/reference", Generate(root, home)) {
		t.Errorf("%s", p)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range CheckREADME(root, string(readme)) {
		t.Errorf("%s", p)
	}
	if t.Failed() {
		t.Log("run `make docs` to regenerate docs/reference; README flag tables are edited by hand")
	}
}

func TestGenerateIsStable(t *testing.T) {
	home, _ := os.UserHomeDir()
	a := Generate(Root(), home)
	b := Generate(Root(), home)
	if len(a) != len(b) {
		t.Fatalf("%d pages, then %d", len(a), len(b))
	}
	for n, p := range a {
		if b[n] != p {
			t.Errorf("%s depends on the home directory or changes between runs", n)
		}
		if len(home) > 1 && strings.Contains(p, home+"/") {
			t.Errorf("%s names the home directory", n)
		}
	}
	for _, want := range []string{"kubectl_cni-migrate.md", "kubectl_cni-migrate_plan.md", "kubectl_cni-migrate_node.md", "README.md"} {
		if a[want] == "" {
			t.Errorf("no page %s", want)
		}
	}
	node := a["kubectl_cni-migrate_node.md"]
	for _, want := range []string{"# kubectl cni-migrate node", "kubectl cni-migrate node NODE... [flags]", "| `--reboot-command` | string |", "`3m0s`", "#global-flags"} {
		if !strings.Contains(node, want) {
			t.Errorf("node page lacks %q", want)
		}
	}
	if !strings.Contains(a["kubectl_cni-migrate.md"], "## Global flags") || !strings.Contains(a["kubectl_cni-migrate.md"], "`--kubeconfig`") {
		t.Errorf("root page lacks the global flags")
	}
}

func TestCheckREADME(t *testing.T) {
	readme := "## Commands\n\n### `kubectl cni-migrate plan`\n\n| flag | meaning |\n| --- | --- |\n" +
		"| `--cilium-version`, `--pod-cidr` | x |\n| `--no-such-flag` | x |\n| `-o`, `-n` | x |\n\n### `kubectl cni-migrate nope`\n"
	got := strings.Join(CheckREADME(Root(), readme), "\n")
	for _, want := range []string{"has no flag --no-such-flag", "lacks --cluster-pool-mask-size", `no command "nope"`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "--output") || strings.Contains(got, "-n") && strings.Contains(got, "no flag -n") {
		t.Errorf("short flags not resolved:\n%s", got)
	}
}
