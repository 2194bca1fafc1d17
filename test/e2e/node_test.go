package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// The node annotations `kubectl cni-migrate node` writes (plugin/migrate).
const (
	annPhase            = "cni-migrate.io/phase"
	annPhaseTime        = "cni-migrate.io/phase-time"
	annWasUnschedulable = "cni-migrate.io/was-unschedulable"
	annBootID           = "cni-migrate.io/boot-id"
	annReboot           = "cni-migrate.io/reboot"
	migrationLabel      = ciliumsim.DefaultMigrationLabel
	nodeTestCilium      = "1.18.11"
	ciliumPool          = "10.245.0.0/16"
)

// nodeRun is one finished run of `kubectl cni-migrate node ...`.
type nodeRun struct {
	args           []string
	stdout, stderr string
	code           int
	took           time.Duration
}

// errorLine is the last line of stderr (main prints the error last).
func (r nodeRun) errorLine() string {
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	return lines[len(lines)-1]
}

func (r nodeRun) expect(t *testing.T, code int, has ...string) nodeRun {
	t.Helper()
	if r.code != code {
		t.Fatalf("kubectl cni-migrate %s: exit %d, want %d\nstderr:\n%s\nstdout:\n%s", strings.Join(r.args, " "), r.code, code, r.stderr, r.stdout)
	}
	for _, h := range has {
		if !strings.Contains(r.stderr, h) {
			t.Fatalf("kubectl cni-migrate %s: stderr lacks %q:\n%s", strings.Join(r.args, " "), h, r.stderr)
		}
	}
	if code != 0 {
		line := r.errorLine()
		if !strings.HasPrefix(line, "error: ") || !strings.Contains(line, "; ") {
			t.Fatalf("want a last line 'error: <what>; <fix>', got %q", line)
		}
	}
	return r
}

// pluginProc is a running `kubectl cni-migrate`.
type pluginProc struct {
	cmd            *exec.Cmd
	args           []string
	stdout, stderr *lockedBuffer
	done           chan struct{}
	start, end     time.Time
	err            error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// spawner starts child processes from one locked OS thread, so that
// Pdeathsig (bound to the thread that started the child) kills them when
// the test binary dies, and never earlier.
var (
	spawnerOnce sync.Once
	spawnReqs   chan func()
)

func spawn(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		spawnReqs = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range spawnReqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- func() { errc <- cmd.Start() }
	return <-errc
}

// startPlugin starts `kubectl cni-migrate ARGS` through kubectl, as users
// run it: PLUGIN_BIN_DIR first in PATH, KUBECONFIG set, NO_COLOR on, extra
// environment appended. The process gets its own process group.
func startPlugin(t *testing.T, c *Cluster, env []string, args ...string) *pluginProc {
	t.Helper()
	dir := filepath.Dir(PluginPath(t))
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	cmd := exec.Command(kubectl, append([]string{"cni-migrate"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "NO_COLOR=1",
		"PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	p := &pluginProc{cmd: cmd, args: args, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.start = time.Now()
	if err := spawn(cmd); err != nil {
		t.Fatalf("start kubectl cni-migrate: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// wait waits for the run to end (killing it after timeout).
func (p *pluginProc) wait(t *testing.T, timeout time.Duration) nodeRun {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Fatalf("kubectl cni-migrate %s did not end within %v; stderr:\n%s", strings.Join(p.args, " "), timeout, p.stderr)
	}
	r := nodeRun{args: p.args, stdout: p.stdout.String(), stderr: p.stderr.String(), took: time.Since(p.start)}
	var exit *exec.ExitError
	switch {
	case errors.As(p.err, &exit):
		r.code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
	case p.err != nil:
		t.Fatalf("kubectl cni-migrate %v: %v", p.args, p.err)
	}
	t.Logf("kubectl cni-migrate %s -> exit %d in %v\n%s", strings.Join(p.args, " "), r.code, r.took.Round(time.Millisecond), r.stderr)
	return r
}

// waitFor waits until stderr contains s.
func (p *pluginProc) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.stderr.String(), s) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("kubectl cni-migrate ended before printing %q:\n%s", s, p.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("kubectl cni-migrate did not print %q within %v:\n%s", s, timeout, p.stderr)
}

func runNode(t *testing.T, c *Cluster, args ...string) nodeRun {
	t.Helper()
	return startPlugin(t, c, nil, args...).wait(t, 5*time.Minute)
}

// migrationCluster starts a cluster with n nodes (control-plane, worker-1,
// ...), installs the Flannel fixture, writes the Cilium values with
// `kubectl cni-migrate values` and installs Cilium with them (migration
// mode). The CiliumNodeConfig is not applied yet.
func migrationCluster(t *testing.T, n int) (*Cluster, context.Context) {
	t.Helper()
	PluginPath(t)
	start := time.Now()
	c := NewCluster(t, Options{Nodes: Nodes(n)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	if err := fixture.FlannelCluster(ctx, c.Cluster, "e2e-node"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runNode(t, c, "values", "--cilium-version", nodeTestCilium, "--output-dir", dir).expect(t, 0)
	if err := fixture.InstallCilium(ctx, c.Cluster, nodeTestCilium, filepath.Join(dir, "values-initial.yaml")); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING cluster with %d nodes, flannel fixture and Cilium %s: %v", n, nodeTestCilium, time.Since(start).Round(time.Millisecond))
	return c, ctx
}

// podsReadyAgain is the end of the simulated reboot commands: as the
// kubelet does once the node is back, it reports Ready again the pods of
// node $1 that the plugin marked NotReady for the reboot.
const podsReadyAgain = `kubectl get pods -A --field-selector spec.nodeName="$1" \
  -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name} {.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
while read -r ns name reason; do
  [ "$reason" = CNIMigrateReboot ] || continue
  kubectl -n "$ns" patch pod "$name" --subresource=status --type=strategic >/dev/null \
    -p '{"status":{"conditions":[{"type":"Ready","status":"True","reason":null,"message":null}]}}'
done
`

// rebootScript writes a reboot command for the simulated nodes: it gives
// the node a new status.nodeInfo.bootID, as a reboot does (kwok does not),
// and, as the kubelet does once the node is back, reports Ready again the
// pods the plugin marked NotReady for the reboot (reason CNIMigrateReboot,
// plugin/migrate.ReasonRebooting).
func rebootScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reboot-sim")
	script := `#!/bin/sh
set -eu
echo "rebooting $1"
kubectl patch node "$1" --subresource=status --type=merge \
  -p "{\"status\":{\"nodeInfo\":{\"bootID\":\"boot-$(date +%s%N)\"}}}" >/dev/null
` + podsReadyAgain
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func getNode(t *testing.T, ctx context.Context, c *Cluster, name string) *corev1.Node {
	t.Helper()
	n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func agentOn(t *testing.T, ctx context.Context, c *Cluster, node string) corev1.Pod {
	t.Helper()
	pods, err := fixture.PodsOn(ctx, c.Cluster, node, labels.SelectorFromSet(labels.Set{"k8s-app": "cilium"}))
	if err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		t.Fatalf("%d Cilium agents on %s", len(live), node)
	}
	return live[0]
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func setBootID(t *testing.T, ctx context.Context, c *Cluster, node, id string) {
	t.Helper()
	patch := []byte(`{"status":{"nodeInfo":{"bootID":"` + id + `"}}}`)
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
}

// relaxPDBs lets the fixture's budgets allow two evictions at a time: the
// payments one (maxUnavailable 0) blocks every drain, and the db one
// (maxUnavailable 1) holds a drain for two minutes when both db pods are on
// the node: the evicted db-1 comes back under the same name, and the
// disruption controller counts a pod of that name as disrupted until its
// two-minute deletion timeout.
func relaxPDBs(t *testing.T, ctx context.Context, c *Cluster, names ...string) {
	t.Helper()
	patch := []byte(`{"spec":{"maxUnavailable":2}}`)
	for _, name := range names {
		if _, err := c.Client.PolicyV1().PodDisruptionBudgets(fixture.WorkloadNamespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func noProbeJobs(t *testing.T, ctx context.Context, c *Cluster) {
	t.Helper()
	jobs, err := c.Client.BatchV1().Jobs("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=cni-migrate-probe"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Errorf("probe Jobs left behind: %d", len(jobs.Items))
	}
}

// migratedState is what a migrated node looks like, for comparisons.
type migratedState struct {
	Phase, WasUnschedulable, Reboot string
	HasPhaseTime, HasBootID         bool
	Label                           string
	Unschedulable                   bool
	AgentReplaced, AgentReady       bool
	CiliumNode                      bool
}

func stateOf(t *testing.T, ctx context.Context, c *Cluster, node string, oldAgent types.UID) migratedState {
	t.Helper()
	n := getNode(t, ctx, c, node)
	a := n.Annotations
	_, hasBoot := a[annBootID]
	_, err := time.Parse(time.RFC3339, a[annPhaseTime])
	agent := agentOn(t, ctx, c, node)
	_, cnErr := c.Dynamic.Resource(ciliumsim.CiliumNodes).Get(ctx, node, metav1.GetOptions{})
	return migratedState{
		Phase: a[annPhase], WasUnschedulable: a[annWasUnschedulable], Reboot: a[annReboot],
		HasPhaseTime: err == nil, HasBootID: hasBoot,
		Label:         n.Labels[migrationLabel],
		Unschedulable: n.Spec.Unschedulable,
		AgentReplaced: agent.UID != oldAgent, AgentReady: podReady(&agent),
		CiliumNode: cnErr == nil,
	}
}

func wantMigrated(reboot string) migratedState {
	return migratedState{Phase: "done", WasUnschedulable: "false", Reboot: reboot, HasPhaseTime: true, HasBootID: reboot != "skip",
		Label: "true", AgentReplaced: true, AgentReady: true, CiliumNode: true}
}

// nodeSummary is `node -o json`.
type nodeSummary struct {
	APIVersion, Kind, Result, Resume string
	ExitCode                         int
	Nodes                            []struct {
		Name, PhaseBefore, PhaseAfter, Result, Error string
		Seconds                                      float64 `json:"durationSeconds"`
		Steps                                        []struct {
			Name, Result, Detail string
			Seconds              float64 `json:"durationSeconds"`
		}
	}
}

// TestNodeMigrate covers `kubectl cni-migrate node` on a five-node cluster:
// the preconditions, a drain blocked by a PodDisruptionBudget (then killed,
// interrupted and finished once the budget is relaxed), a worker migrated
// end to end with a simulated reboot, a second run that changes nothing, a
// manual reboot, and a verification that fails.
func TestNodeMigrate(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	testStart := time.Now()
	c, ctx := migrationCluster(t, 5)
	reboot := rebootScript(t)
	rebootFlag := "--reboot-command=" + reboot + " {{.Node}}"

	t.Run("preconditions", func(t *testing.T) {
		runNode(t, c, "node", "worker-1").expect(t, 15, "CiliumNodeConfig kube-system/cilium-default not found", "nodeconfig --apply")
		runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
		runNode(t, c, "node", "control-plane").expect(t, 15, "node control-plane is a control-plane node and 4 workers are not migrated yet")
		runNode(t, c, "node", "worker-9").expect(t, 15, "node worker-9 not found")
		runNode(t, c, "node", "a;reboot").expect(t, 2, `"a;reboot" is not a valid node name`)
		runNode(t, c, "node", "worker-1", "--reboot-command", "ssh {{.Node}} reboot; rm -rf /").expect(t, 2, "shell operator")
		runNode(t, c, "node", "worker-1", "--node-label", "example.com/other=true").expect(t, 15, "does not match even with the label example.com/other=true")
		for _, w := range []string{"worker-1", "worker-2", "worker-3", "worker-4"} {
			if n := getNode(t, ctx, c, w); n.Spec.Unschedulable || n.Annotations[annPhase] != "" {
				t.Fatalf("a refused run changed %s", w)
			}
		}
	})

	// The node that runs a payments pod: its PDB (maxUnavailable 0) blocks
	// the drain.
	pays, err := c.Client.CoreV1().Pods(fixture.WorkloadNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=payments"})
	if err != nil || len(pays.Items) == 0 {
		t.Fatalf("payments pods: %v", err)
	}
	blocked := pays.Items[0].Spec.NodeName
	var blockedPods []string
	for _, p := range pays.Items {
		if p.Spec.NodeName == blocked {
			blockedPods = append(blockedPods, fixture.WorkloadNamespace+"/"+p.Name)
		}
	}
	var others []string
	for _, w := range []string{"worker-1", "worker-2", "worker-3", "worker-4"} {
		if w != blocked {
			others = append(others, w)
		}
	}
	happy, manual, unverified := others[0], others[1], others[2]
	t.Logf("payments pods on %s (%v); happy path on %s, manual reboot on %s, failed verification on %s", blocked, blockedPods, happy, manual, unverified)

	t.Run("drain blocked by a PDB, killed, interrupted, then finished", func(t *testing.T) {
		r := runNode(t, c, "node", blocked, rebootFlag, "--timeout=8s")
		r.expect(t, 10, "PodDisruptionBudget demo/payments (0 disruptions allowed) holds "+blockedPods[0], "the node stays cordoned", "kubectl -n demo edit pdb payments")
		if !strings.Contains(r.errorLine(), "draining node "+blocked+" did not finish within 8s") {
			t.Errorf("error line %q", r.errorLine())
		}
		n := getNode(t, ctx, c, blocked)
		if !n.Spec.Unschedulable || n.Annotations[annPhase] != "cordoned" || n.Annotations[annWasUnschedulable] != "false" {
			t.Fatalf("after the blocked drain: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
		}

		// Killed outright in the middle of the drain: nothing more recorded.
		p := startPlugin(t, c, nil, "node", blocked, rebootFlag, "--timeout=10m")
		p.waitFor(t, "will retry after 5s", time.Minute)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		if r := p.wait(t, time.Minute); r.code != 128+int(syscall.SIGKILL) {
			t.Fatalf("SIGKILL: exit %d", r.code)
		}
		if ph := getNode(t, ctx, c, blocked).Annotations[annPhase]; ph != "cordoned" {
			t.Fatalf("phase after SIGKILL %q", ph)
		}

		// Ctrl-C in the middle of the drain: a clean stop that says how to go on.
		p = startPlugin(t, c, nil, "node", blocked, rebootFlag, "--timeout=10m")
		p.waitFor(t, "will retry after 5s", time.Minute)
		signalled := time.Now()
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		r = p.wait(t, time.Minute)
		t.Logf("Ctrl-C stopped the run in %v", time.Since(signalled).Round(time.Millisecond))
		r.expect(t, 130, "interrupted during step drain of node "+blocked+"; its phase cordoned is recorded",
			"to continue: kubectl cni-migrate node "+blocked+" '--reboot-command="+reboot+" {{.Node}}' --timeout=10m0s")
		if ph := getNode(t, ctx, c, blocked).Annotations[annPhase]; ph != "cordoned" {
			t.Fatalf("phase after Ctrl-C %q", ph)
		}

		// Relax the budget: the same command finishes the node.
		oldAgent := agentOn(t, ctx, c, blocked).UID
		relaxPDBs(t, ctx, c, "payments", "db")
		r = runNode(t, c, "node", blocked, rebootFlag, "--timeout=2m").expect(t, 0, blocked+": drain", blocked+": uncordon")
		if strings.Contains(r.stderr, blocked+": cordon ") {
			t.Errorf("the resumed run cordoned again:\n%s", r.stderr)
		}
		if got, want := stateOf(t, ctx, c, blocked, oldAgent), wantMigrated("command"); got != want {
			t.Errorf("state %+v, want %+v", got, want)
		}
		noProbeJobs(t, ctx, c)
	})

	t.Run("one worker end to end", func(t *testing.T) {
		oldAgent := agentOn(t, ctx, c, happy)
		before := getNode(t, ctx, c, happy)
		var onNode []string
		pods, err := fixture.PodsOn(ctx, c.Cluster, happy, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			if !strings.HasPrefix(p.Name, "cilium") && p.Namespace == fixture.WorkloadNamespace && !strings.HasPrefix(p.Name, "node-exporter") {
				onNode = append(onNode, p.Namespace+"/"+p.Name)
			}
		}
		r := runNode(t, c, "node", happy, rebootFlag, "-o", "json").expect(t, 0, "rebooting "+happy)
		var s nodeSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("-o json: %v\n%s", err, r.stdout)
		}
		if s.Kind != "NodeMigration" || s.Result != "ok" || s.ExitCode != 0 || len(s.Nodes) != 1 {
			t.Fatalf("summary %+v", s)
		}
		sn := s.Nodes[0]
		if sn.Name != happy || sn.PhaseBefore != "" || sn.PhaseAfter != "done" || sn.Result != "migrated" || len(sn.Steps) != 7 {
			t.Fatalf("node summary %+v", sn)
		}
		var steps []string
		for _, st := range sn.Steps {
			steps = append(steps, st.Name)
			if st.Result != "done" || st.Seconds < 0 {
				t.Errorf("step %+v", st)
			}
		}
		if strings.Join(steps, ",") != "cordon,drain,label,restart-agent,reboot,verify,uncordon" {
			t.Errorf("steps %v", steps)
		}
		// The probe pod got an address in Cilium's pool.
		m := regexp.MustCompile(`probe pod got ([0-9.]+) \(in ` + regexp.QuoteMeta(ciliumPool) + `\)`).FindStringSubmatch(sn.Steps[5].Detail)
		if m == nil {
			t.Fatalf("verify detail %q", sn.Steps[5].Detail)
		}
		if ip := netip.MustParseAddr(m[1]); !netip.MustParsePrefix(ciliumPool).Contains(ip) {
			t.Errorf("probe address %s outside %s", ip, ciliumPool)
		}
		if !strings.Contains(sn.Steps[3].Detail, "replaced "+oldAgent.Name) {
			t.Errorf("restart-agent detail %q", sn.Steps[3].Detail)
		}
		if got, want := stateOf(t, ctx, c, happy, oldAgent.UID), wantMigrated("command"); got != want {
			t.Errorf("state %+v, want %+v", got, want)
		}
		after := getNode(t, ctx, c, happy)
		if after.Annotations[annBootID] != before.Status.NodeInfo.BootID || after.Status.NodeInfo.BootID == before.Status.NodeInfo.BootID {
			t.Errorf("boot-id annotation %q, bootID before %q after %q", after.Annotations[annBootID], before.Status.NodeInfo.BootID, after.Status.NodeInfo.BootID)
		}
		// The drained pods are gone from the node.
		for _, name := range onNode {
			parts := strings.SplitN(name, "/", 2)
			p, err := c.Client.CoreV1().Pods(parts[0]).Get(ctx, parts[1], metav1.GetOptions{})
			if err == nil && p.Spec.NodeName == happy && p.DeletionTimestamp == nil {
				t.Errorf("pod %s still on %s", name, happy)
			}
		}
		noProbeJobs(t, ctx, c)

		// New pods on the node get Cilium addresses.
		probe := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "after-migration", Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: happy, Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
		}
		if _, err := c.Client.CoreV1().Pods("default").Create(ctx, probe, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			p, err := c.Client.CoreV1().Pods("default").Get(ctx, "after-migration", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Status.PodIP != "" {
				if !netip.MustParsePrefix(ciliumPool).Contains(netip.MustParseAddr(p.Status.PodIP)) {
					t.Errorf("a new pod on %s got %s, outside %s", happy, p.Status.PodIP, ciliumPool)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("new pod got no address")
			}
			time.Sleep(200 * time.Millisecond)
		}
		_ = c.Client.CoreV1().Pods("default").Delete(ctx, "after-migration", metav1.DeleteOptions{})
	})

	t.Run("a second run changes nothing", func(t *testing.T) {
		before := getNode(t, ctx, c, happy)
		agent := agentOn(t, ctx, c, happy)
		r := runNode(t, c, "node", happy, rebootFlag, "-o", "json").expect(t, 0, happy+": already migrated")
		var s nodeSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Nodes[0].Result != "already-done" || len(s.Nodes[0].Steps) != 0 {
			t.Fatalf("summary %+v %v", s, err)
		}
		if strings.Contains(r.stderr, "rebooting") {
			t.Error("a migrated node was rebooted again")
		}
		after := getNode(t, ctx, c, happy)
		if after.ResourceVersion != before.ResourceVersion {
			// Only kwok's heartbeat may have touched the node.
			if fmt.Sprint(after.Labels) != fmt.Sprint(before.Labels) || fmt.Sprint(after.Annotations) != fmt.Sprint(before.Annotations) ||
				after.Spec.Unschedulable != before.Spec.Unschedulable || after.Status.NodeInfo.BootID != before.Status.NodeInfo.BootID {
				t.Errorf("the node changed:\nbefore %v %v\nafter  %v %v", before.Labels, before.Annotations, after.Labels, after.Annotations)
			}
		}
		if a := agentOn(t, ctx, c, happy); a.UID != agent.UID {
			t.Error("the agent was restarted")
		}
	})

	t.Run("manual reboot", func(t *testing.T) {
		oldAgent := agentOn(t, ctx, c, manual).UID
		setBootID(t, ctx, c, manual, "manual-boot-1")
		r := runNode(t, c, "node", manual).expect(t, 14, "node "+manual+" waits for a manual reboot", "run kubectl cni-migrate node "+manual+" to continue")
		if !strings.Contains(r.stderr, manual+": reboot        waiting") {
			t.Errorf("no waiting line:\n%s", r.stderr)
		}
		n := getNode(t, ctx, c, manual)
		if n.Annotations[annPhase] != "agent-restarted" || n.Annotations[annBootID] != "manual-boot-1" || !n.Spec.Unschedulable {
			t.Fatalf("annotations %v unschedulable %v", n.Annotations, n.Spec.Unschedulable)
		}
		runNode(t, c, "node", manual).expect(t, 14, "waits for a manual reboot")
		setBootID(t, ctx, c, manual, "manual-boot-2")
		r = runNode(t, c, "node", manual).expect(t, 0, "bootID manual-boot-1 -> manual-boot-2")
		if strings.Contains(r.stderr, manual+": drain") {
			t.Error("the resumed run drained again")
		}
		if got, want := stateOf(t, ctx, c, manual, oldAgent), wantMigrated("manual"); got != want {
			t.Errorf("state %+v, want %+v", got, want)
		}
	})

	t.Run("verification fails when the node does not move to Cilium", func(t *testing.T) {
		// A CiliumNodeConfig on another label: the simulated Cilium (like a
		// misconfigured real one) leaves the node on flannel.
		runNode(t, c, "nodeconfig", "--apply", "--name", "other", "--node-label", "example.com/other=true").expect(t, 0)
		r := runNode(t, c, "node", unverified, "--nodeconfig-name", "other", "--node-label", "example.com/other=true", "--reboot=skip", "--probe-timeout=1m")
		r.expect(t, 12, "outside Cilium's pod CIDR "+ciliumPool, "the node stays cordoned", "kubectl -n kube-system logs job/cni-migrate-probe-"+unverified)
		if !strings.Contains(r.stderr, "skipped: the old CNI's interfaces") {
			t.Errorf("--reboot=skip does not say what is left behind:\n%s", r.stderr)
		}
		n := getNode(t, ctx, c, unverified)
		if !n.Spec.Unschedulable || n.Annotations[annPhase] != "rebooted" || n.Annotations[annReboot] != "skip" {
			t.Errorf("unschedulable %v annotations %v", n.Spec.Unschedulable, n.Annotations)
		}
		if _, err := c.Client.BatchV1().Jobs("kube-system").Get(ctx, "cni-migrate-probe-"+unverified, metav1.GetOptions{}); err != nil {
			t.Errorf("the failed probe Job is not kept for its logs: %v", err)
		}
	})

	t.Run("control plane last", func(t *testing.T) {
		runNode(t, c, "node", "control-plane").expect(t, 15, "1 worker is not migrated yet ("+unverified+")")
	})
	t.Logf("TIMING whole test: %v", time.Since(testStart).Round(time.Millisecond))
}

// TestNodeDryRuns checks --dry-run=server (nothing changes) and that the
// --dry-run=client script, run with bash on a fresh node, reaches the same
// end state as the command on another.
func TestNodeDryRuns(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	testStart := time.Now()
	c, ctx := migrationCluster(t, 3)
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	relaxPDBs(t, ctx, c, "payments", "db")
	reboot := rebootScript(t)
	rebootFlag := "--reboot-command=" + reboot + " {{.Node}}"
	const scripted, commanded = "worker-1", "worker-2"

	t.Run("server dry run changes nothing", func(t *testing.T) {
		before := getNode(t, ctx, c, commanded)
		agent := agentOn(t, ctx, c, commanded)
		r := runNode(t, c, "node", commanded, rebootFlag, "--dry-run=server", "-o", "json").expect(t, 0, "server dry run", "would run "+reboot+" "+commanded)
		var s nodeSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Nodes[0].Result != "dry-run" || s.Nodes[0].PhaseAfter != "" {
			t.Fatalf("summary %+v %v", s, err)
		}
		after := getNode(t, ctx, c, commanded)
		if after.Spec.Unschedulable || len(after.Annotations) != len(before.Annotations) || after.Labels[migrationLabel] != "" {
			t.Errorf("the dry run changed the node: %v %v", after.Annotations, after.Labels)
		}
		if strings.Contains(r.stderr, "rebooting") {
			t.Error("the dry run ran the reboot command")
		}
		if a := agentOn(t, ctx, c, commanded); a.UID != agent.UID {
			t.Error("the dry run restarted the agent")
		}
		noProbeJobs(t, ctx, c)
	})

	t.Run("client dry run script and command reach the same end state", func(t *testing.T) {
		r := runNode(t, c, "node", scripted, rebootFlag, "--dry-run=client").expect(t, 0)
		if !strings.HasPrefix(r.stdout, "#!/usr/bin/env bash") {
			t.Fatalf("script:\n%s", r.stdout)
		}
		if n := getNode(t, ctx, c, scripted); n.Spec.Unschedulable || n.Annotations[annPhase] != "" {
			t.Fatal("--dry-run=client changed the node")
		}
		path := filepath.Join(t.TempDir(), "migrate.sh")
		if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		scriptedAgent := agentOn(t, ctx, c, scripted).UID
		commandedAgent := agentOn(t, ctx, c, commanded).UID

		start := time.Now()
		cmd := c.Command("bash", path)
		out, err := runCombined(ctx, cmd, 10*time.Minute)
		t.Logf("bash %s (%v):\n%s", path, time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("the script failed: %v", err)
		}
		runNode(t, c, "node", commanded, rebootFlag).expect(t, 0)

		gotScript := stateOf(t, ctx, c, scripted, scriptedAgent)
		gotCommand := stateOf(t, ctx, c, commanded, commandedAgent)
		if gotScript != gotCommand || gotCommand != wantMigrated("command") {
			t.Errorf("end states differ:\nscript  %+v\ncommand %+v\nwant    %+v", gotScript, gotCommand, wantMigrated("command"))
		}
		// The same set of annotation keys and the same boot-id semantics.
		a, b := getNode(t, ctx, c, scripted), getNode(t, ctx, c, commanded)
		if keys(a.Annotations) != keys(b.Annotations) {
			t.Errorf("annotation keys differ: script %s, command %s", keys(a.Annotations), keys(b.Annotations))
		}
		for _, n := range []*corev1.Node{a, b} {
			if n.Annotations[annBootID] == n.Status.NodeInfo.BootID {
				t.Errorf("%s: boot-id %q is the current bootID", n.Name, n.Annotations[annBootID])
			}
		}
		noProbeJobs(t, ctx, c)

		// The plugin accepts what the script did, and vice versa.
		runNode(t, c, "node", scripted, rebootFlag).expect(t, 0, scripted+": already migrated")
		out, err = runCombined(ctx, c.Command("bash", path), time.Minute)
		if err != nil || !strings.Contains(out, "node "+scripted+": already migrated") {
			t.Errorf("script re-run: %v\n%s", err, out)
		}
	})
	t.Logf("TIMING whole test: %v", time.Since(testStart).Round(time.Millisecond))
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		if strings.HasPrefix(k, "cni-migrate.io/") {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// runCombined runs cmd (its own process group, killed with the test) and
// returns its combined output.
func runCombined(ctx context.Context, cmd *exec.Cmd, timeout time.Duration) (string, error) {
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	return out.String(), fmt.Errorf("killed after %v", timeout)
}
