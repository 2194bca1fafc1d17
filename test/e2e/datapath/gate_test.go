package datapath

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	e2e "github.com/cni-migrate/kubectl-cni-migrate/test/e2e"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab"
)

// rolloutArgs is the lab's rollout: one node at a time, real reboots,
// gated on the connectivity matrix (green for 15s after each batch).
func rolloutArgs(l *lab.Lab) []string {
	return []string{"rollout", "--batch", "1", "--reboot-command", l.RebootCommand(),
		"--probe-image", lab.Images.Agnhost, "--reboot-timeout", "5m", "--agent-timeout", "5m",
		"--gate", "connectivity", "--gate-image", lab.Images.Agnhost, "--gate-settle", "15s", "--gate-timeout", "3m"}
}

// TestDatapathGate proves the connectivity gate on real nodes: green
// before the migration; with Cilium's tunnel port dropped by worker-2's
// host firewall (a rule it keeps across reboots, as a security group
// would), the rollout migrates worker-1 and the gate after it stops there:
// the replies of worker-1's Cilium pods to worker-2's Flannel pods come
// through Cilium's tunnel, so the broken node shows as soon as one node is
// on Cilium, and worker-2 and the control plane are left untouched. With
// the rule gone, the same rollout resumes and ends green. The matrices it printed
// go to the log, LAB_DIR/connectivity.md and, with
// E2E_CONNECTIVITY_REPORT=PATH, to PATH (docs/connectivity-results.md).
func TestDatapathGate(t *testing.T) {
	need(t)
	e2e.PluginPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	l := startLab(t, ctx, lab.Options{CiliumVersion: ciliumVersion})
	flannelCluster(t, ctx, l)
	work := filepath.Join(l.Dir, "migration")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	ciliumBeside(t, ctx, l, work, nil)
	mustPlugin(t, ctx, l, "nodeconfig", "--apply")
	var report strings.Builder
	fmt.Fprintf(&report, "`TestDatapathGate` on the real-datapath lab (Cilium %s, 3 nodes; docs/datapath.md). The probes run the lab's agnhost: every `connectivity` below ran with `--image %s`.\n\n", ciliumVersion, lab.Images.Agnhost)
	record := func(title, cmd, out string, code int) {
		fmt.Fprintf(&report, "### %s\n\n```\n$ kubectl cni-migrate %s\n%s\n(exit %d)\n```\n\n", title, cmd, strings.TrimSpace(out), code)
	}
	probe := []string{"--image", lab.Images.Agnhost}

	out := mustPlugin(t, ctx, l, append([]string{"connectivity"}, probe...)...)
	if !strings.Contains(out, "green for") || strings.Contains(out, "FAILURES") {
		t.Fatalf("the matrix is not green before the migration:\n%s", out)
	}
	record("Before the migration: Flannel, Cilium installed beside it", "connectivity", out, 0)

	port := tunnelPort(t, filepath.Join(work, "values-initial.yaml"))
	broken := l.Node("worker-2")
	if err := broken.BlockUDP(ctx, port); err != nil {
		t.Fatal(err)
	}
	t.Logf("worker-2's firewall drops UDP %s (Cilium's tunnel) from now on, across reboots", port)

	args := append(rolloutArgs(l), "-o", "json")
	out, code := plugin(t, ctx, l, args...)
	if code != 19 {
		t.Fatalf("the gated rollout with worker-2's tunnel port blocked exited %d, want 19 (connectivity-failed)", code)
	}
	errLine := lastLine(out)
	if !strings.Contains(errLine, "connectivity gate after batch 1/3") || !strings.Contains(errLine, "worker-2 (old) -> worker-1 (new") {
		t.Errorf("the gate's error does not name batch 1/3 and the pairs from worker-2 into worker-1: %s", errLine)
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
	if summary.Result != "connectivity-failed" || got["worker-1"] != "migrated/done" || got["worker-2"] != "not-started/" || got["control-plane"] != "not-started/" {
		t.Errorf("summary: %s %v", summary.Result, got)
	}
	for _, name := range []string{"worker-2", "control-plane"} {
		n, err := l.Cluster.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.Unschedulable || n.Annotations["cni-migrate.io/phase"] != "" {
			t.Errorf("%s was touched: unschedulable %v, phase %q", name, n.Spec.Unschedulable, n.Annotations["cni-migrate.io/phase"])
		}
	}
	record("The gated rollout, worker-2's firewall dropping UDP "+port, strings.Join(args, " "), gateLines(out), code)

	out, code = plugin(t, ctx, l, append([]string{"connectivity"}, probe...)...)
	if code != 19 || !strings.Contains(out, "FAILURES") || !strings.Contains(out, "FAIL pod") {
		t.Errorf("connectivity with the port blocked: exit %d, want 19 with failures:\n%s", code, out)
	}
	record("The matrix while worker-2 drops Cilium's tunnel", "connectivity", out, code)

	if err := broken.ClearFirewall(ctx); err != nil {
		t.Fatal(err)
	}
	t.Log("worker-2's firewall rule removed")
	args = rolloutArgs(l)
	out = mustPlugin(t, ctx, l, args...)
	if !strings.Contains(out, "gate after batch 2/2: green") {
		t.Errorf("the resumed rollout did not pass its gate after the control plane:\n%s", out)
	}
	record("The same rollout again, the rule removed", strings.Join(args, " "), gateLines(out), 0)
	out = mustPlugin(t, ctx, l, append([]string{"connectivity"}, probe...)...)
	record("After the migration", "connectivity", out, 0)
	mustPlugin(t, ctx, l, "status")
	mustPlugin(t, ctx, l, "connectivity", "--cleanup")

	md := report.String()
	t.Logf("connectivity report:\n%s", md)
	files := []string{filepath.Join(l.Dir, "connectivity.md")}
	if p := os.Getenv("E2E_CONNECTIVITY_REPORT"); p != "" {
		files = append(files, p)
	}
	for _, f := range files {
		if err := os.WriteFile(f, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// tunnelPort reads Cilium's tunnel port from the plugin's values.
func tunnelPort(t *testing.T, valuesFile string) string {
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
