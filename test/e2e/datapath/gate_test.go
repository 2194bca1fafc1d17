package datapath

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
)

// rolloutArgs is the lab's rollout: one node at a time, real reboots,
// gated on the connectivity matrix (green for 15s after each batch).
func rolloutArgs(l *lab.Lab) []string {
	return []string{"rollout", "--batch", "1", "--reboot-command", l.RebootCommand(),
		"--probe-image", lab.Images.Agnhost, "--reboot-timeout", "5m", "--agent-timeout", "5m",
		"--gate", "connectivity", "--gate-image", lab.Images.Agnhost, "--gate-settle", "15s", "--gate-timeout", "3m"}
}

// gateRecord collects the connectivity matrices and gate lines of the
// fault scenario for docs/connectivity-results.md.
type gateRecord struct {
	b strings.Builder
	// rollout is the stopped rollout's summary (its first node's window).
	rollout rolloutSummary
}

func (g *gateRecord) record(title, cmd, out string, code int) {
	fmt.Fprintf(&g.b, "### %s\n\n```\n$ kubectl cni-migrate %s\n%s\n(exit %d)\n```\n\n", title, cmd, strings.TrimSpace(out), code)
}

// write puts the record into LAB_DIR/connectivity.md and, with
// E2E_DATAPATH_REPORT_DIR=DIR, DIR/connectivity-results.md.
func (g *gateRecord) write(t testing.TB, l *lab.Lab) {
	t.Helper()
	md := g.b.String()
	t.Logf("connectivity report:\n%s", md)
	files := []string{filepath.Join(l.Dir, "connectivity.md")}
	if d := os.Getenv("E2E_DATAPATH_REPORT_DIR"); d != "" {
		files = append(files, filepath.Join(d, "connectivity-results.md"))
	}
	for _, f := range files {
		if err := os.WriteFile(f, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// gateFault proves the connectivity gate on real nodes, at the start of
// the rollout: green before the migration; with Cilium's tunnel port
// dropped by the broken node's host firewall (a rule it keeps across
// reboots, as a security group would), the rollout migrates the first
// worker and the gate after it stops there: the replies of that worker's
// Cilium pods to the broken node's pods on the old network come through
// Cilium's tunnel, so the broken node shows as soon as one node is on
// Cilium, and the broken node and the control plane are left untouched.
// The rule is then removed; the caller runs the same rollout again, which
// must end green. The fault is a disruption window of the broken node in
// the monitor's judgement, from the rule's insertion to its removal.
func gateFault(t testing.TB, ctx context.Context, l *lab.Lab, tl *timeline, work, broken string) *gateRecord {
	t.Helper()
	g := &gateRecord{}
	fmt.Fprintf(&g.b, "The connectivity gate on the real-datapath lab (Cilium %s, %d nodes; docs/datapath.md), as `TestDatapathMigration/flannel` ran it. The probes run the lab's agnhost: every `connectivity` below ran with `--image %s`.\n\n", l.CiliumVersion(), len(l.Nodes), lab.Images.Agnhost)
	probe := []string{"--image", lab.Images.Agnhost}
	out := mustPlugin(t, ctx, l, append([]string{"connectivity"}, probe...)...)
	if !strings.Contains(out, "green for") || strings.Contains(out, "FAILURES") {
		t.Fatalf("the matrix is not green before the migration:\n%s", out)
	}
	g.record("Before the migration: Flannel, Cilium installed beside it", "connectivity", out, 0)

	port := tunnelPort(t, filepath.Join(work, "values-initial.yaml"))
	n := l.Node(broken)
	end := tl.Fault(broken, "fault: firewall drops Cilium's tunnel port UDP "+port)
	if err := n.BlockUDP(ctx, port); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's firewall drops UDP %s (Cilium's tunnel) from now on, across reboots", broken, port)

	args := append(rolloutArgs(l), "--gate-timeout", "1m", "-o", "json")
	out, code := plugin(t, ctx, l, args...)
	if code != 19 {
		t.Fatalf("the gated rollout with %s's tunnel port blocked exited %d, want 19 (connectivity-failed)", broken, code)
	}
	first := "worker-1"
	g.rollout, _ = parseRollout(out)
	errLine := lastLine(out)
	if !strings.Contains(errLine, fmt.Sprintf("connectivity gate after batch 1/%d", len(l.Nodes))) || !strings.Contains(errLine, broken+" (old) -> "+first+" (new") {
		t.Errorf("the gate's error does not name batch 1/%d and the pairs from %s into %s: %s", len(l.Nodes), broken, first, errLine)
	}
	var summary struct {
		Result string `json:"result"`
		Nodes  []struct {
			Name, Result, PhaseAfter string
		} `json:"nodes"`
	}
	// The summary is the JSON object that starts a line (the "to
	// continue" line before it holds the reboot command's {{.Node}}).
	if i, j := strings.Index(out, "\n{"), strings.LastIndex(out, "\n}"); i < 0 || j < i || json.Unmarshal([]byte(out[i+1:j+2]), &summary) != nil {
		t.Fatalf("no JSON summary:\n%s", out)
	}
	got := map[string]string{}
	for _, n := range summary.Nodes {
		got[n.Name] = n.Result + "/" + n.PhaseAfter
	}
	if summary.Result != "connectivity-failed" || got[first] != "migrated/done" || got[broken] != "not-started/" || got["control-plane"] != "not-started/" {
		t.Errorf("summary: %s %v", summary.Result, got)
	}
	for _, name := range []string{broken, "control-plane"} {
		n, err := l.Cluster.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.Unschedulable || n.Annotations["cni-migrate.io/phase"] != "" {
			t.Errorf("%s was touched: unschedulable %v, phase %q", name, n.Spec.Unschedulable, n.Annotations["cni-migrate.io/phase"])
		}
	}
	g.record("The gated rollout, "+broken+"'s firewall dropping UDP "+port, strings.Join(args, " "), gateLines(out), code)

	out, code = plugin(t, ctx, l, append([]string{"connectivity"}, probe...)...)
	if code != 19 || !strings.Contains(out, "FAILURES") || !strings.Contains(out, "FAIL pod") {
		t.Errorf("connectivity with the port blocked: exit %d, want 19 with failures:\n%s", code, out)
	}
	g.record("The matrix while "+broken+" drops Cilium's tunnel", "connectivity", out, code)

	if err := n.ClearFirewall(ctx); err != nil {
		t.Fatal(err)
	}
	end()
	t.Logf("%s's firewall rule removed", broken)
	return g
}

// tunnelPort reads Cilium's tunnel port from the plugin's values.
func tunnelPort(t testing.TB, valuesFile string) string {
	t.Helper()
	b, err := os.ReadFile(valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		TunnelPort int `json:"tunnelPort"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil || v.TunnelPort == 0 {
		t.Fatalf("%s: no tunnelPort (%v)", valuesFile, err)
	}
	return fmt.Sprint(v.TunnelPort)
}

// gateLines keeps a rollout's batch, step, gate and error lines (not its
// drain details or JSON summary).
func gateLines(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "batch ") || strings.HasPrefix(s, "gate ") || strings.HasPrefix(s, "rollout:") ||
			strings.HasPrefix(s, "error:") || strings.Contains(s, ": verify ") || strings.Contains(s, ": uncordon ") {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, "\n")
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
