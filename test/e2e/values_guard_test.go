package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// TestValuesGuard runs `values -f` with values that would break the
// dual-overlay migration against a flannel cluster: refused with exit code 4
// and one error line, written with a warning under --allow-unsafe-values.
func TestValuesGuard(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	c := NewCluster(t, Options{Nodes: Nodes(2)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := fixture.FlannelCluster(ctx, c.Cluster, "e2e-guard"); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", "ipam:\n  mode: kubernetes\n")
	port := write("port.yaml", "tunnelPort: 8472\n")
	good := write("good.yaml", "hubble:\n  enabled: false\ntunnelPort: 8475\n")

	t.Run("refused", func(t *testing.T) {
		dir := t.TempDir()
		c.cli(t, "values", "-f", bad, "--output-dir", dir).mustFail(t, 4,
			`error: --values `+bad+` sets ipam.mode to "kubernetes" in values-initial.yaml: Cilium would hand out pod addresses from the nodes' podCIDRs, the pod network flannel uses`)
		c.cli(t, "values", "-f", bad, "--output-dir", dir).mustFail(t, 4, "or pass --allow-unsafe-values to write the values anyway")
		c.cli(t, "values", "-f", port, "--output-dir", dir).mustFail(t, 4,
			`sets tunnelPort to 8472 in values-initial.yaml: UDP port 8472 is the one flannel's vxlan backend uses`)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("files left behind: %v", entries)
		}
	})

	t.Run("overridden with a warning", func(t *testing.T) {
		dir := t.TempDir()
		r := c.cli(t, "values", "-f", bad, "--allow-unsafe-values", "--output-dir", dir).mustSucceed(t)
		if !strings.Contains(r.Stderr, `warning: --allow-unsafe-values: writing it anyway: --values `+bad+` sets ipam.mode to "kubernetes"`) {
			t.Errorf("no override warning in stderr:\n%s", r.Stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, "values-initial.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "mode: kubernetes") {
			t.Errorf("values-initial.yaml lacks the user's ipam.mode:\n%s", b)
		}
	})

	t.Run("plan says what it found about the MTU", func(t *testing.T) {
		r := c.cli(t, "plan", "-o", "json", "--skip-access-check").mustSucceed(t)
		var p planJSON
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatalf("%v\n%s", err, r.Stdout)
		}
		st, msg := p.check(t, "mtu")
		if st != "PASS" || msg != "old overlay MTU node MTU - 50 (flannel vxlan, auto), Cilium vxlan MTU node MTU - 50 (auto): equal when both use the same interface" {
			t.Errorf("mtu: %s %s", st, msg)
		}
	})

	t.Run("plan --values fails the values check", func(t *testing.T) {
		r := c.cli(t, "plan", "-f", bad, "-o", "json", "--skip-access-check")
		if r.Code != 3 {
			t.Fatalf("plan -f bad.yaml: exit %d, want 3\n%s", r.Code, r.Stderr)
		}
		var p planJSON
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatalf("%v\n%s", err, r.Stdout)
		}
		if st, msg := p.check(t, "values"); st != "FAIL" || !strings.Contains(msg, `sets ipam.mode to "kubernetes" in values-initial.yaml`) {
			t.Errorf("values: %s %s", st, msg)
		}
		r = c.cli(t, "plan", "-f", good, "-o", "json", "--skip-access-check").mustSucceed(t)
		p = planJSON{}
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatal(err)
		}
		if st, _ := p.check(t, "values"); st != "PASS" {
			t.Errorf("values with good.yaml: %s", st)
		}
	})

	t.Run("an MTU from --values is checked", func(t *testing.T) {
		mtu := write("mtu.yaml", "MTU: 9000\n")
		r := c.cli(t, "values", "-f", mtu, "--output-dir", t.TempDir()).mustSucceed(t)
		if !strings.Contains(r.Stderr, "warning: --values "+mtu+" sets MTU 9000: old overlay MTU node MTU - 50 (flannel vxlan, auto), Cilium vxlan MTU 8950 (MTU 9000 from --values): cannot compare") {
			t.Errorf("no MTU warning in stderr:\n%s", r.Stderr)
		}
	})

	t.Run("accepted", func(t *testing.T) {
		dir := t.TempDir()
		r := c.cli(t, "values", "-f", good, "--output-dir", dir).mustSucceed(t)
		if strings.Contains(r.Stderr, "allow-unsafe-values") {
			t.Errorf("safe values warned about:\n%s", r.Stderr)
		}
	})
}
