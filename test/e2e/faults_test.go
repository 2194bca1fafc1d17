package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// The fault matrix (docs/faults.md): the plugin killed outright at every
// step of node, rollout and rollback, the migration lock taken from a
// running rollout, two runs at once, users without one permission, and the
// API server gone for 30 s in the middle of a rollout. After each fault a
// re-run must reach the end state of an uninterrupted run, and nothing that
// must happen once (a reboot) may happen twice.

// faultReboot writes a reboot command for the simulated nodes that logs
// each reboot to log once it took effect (the new bootID is reported), and
// first writes "started NODE" to started and sleeps for sleep, so that a
// test can act while the command runs. It then reports the marked pods
// Ready again, as rebootScript does.
func faultReboot(t *testing.T, sleep time.Duration) (command, log, started string) {
	t.Helper()
	dir := t.TempDir()
	log, started = filepath.Join(dir, "reboots.log"), filepath.Join(dir, "started.log")
	script := fmt.Sprintf(`#!/bin/sh
set -eu
echo "rebooting $1"
echo "started $1" >> %[2]s
sleep %[1]d
kubectl patch node "$1" --subresource=status --type=merge \
  -p "{\"status\":{\"nodeInfo\":{\"bootID\":\"boot-$(date +%%s%%N)\"}}}" >/dev/null
echo "$1" >> %[3]s
`, int(sleep/time.Second), started, log) + podsReadyAgain
	path := filepath.Join(dir, "reboot-sim")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path + " {{.Node}}", log, started
}

// linesOf counts the lines equal to s in a log file.
func linesOf(t *testing.T, path, s string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if l == s {
			n++
		}
	}
	return n
}

// kill kills the plugin (kubectl and the plugin, and the reboot command
// they run: the whole process group) with SIGKILL.
func (p *pluginProc) kill(t *testing.T) nodeRun {
	t.Helper()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	r := p.wait(t, time.Minute)
	if r.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("kubectl cni-migrate %s ended (exit %d) before it was killed:\n%s", strings.Join(r.args, " "), r.code, r.stderr)
	}
	return r
}

// waitNode watches node until cond holds for it (or the plugin ended).
func waitNode(t *testing.T, ctx context.Context, c *Cluster, p *pluginProc, name string, timeout time.Duration, cond func(*corev1.Node) bool) *corev1.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			t.Fatalf("node %s: %v", name, err)
		}
		if len(list.Items) == 1 && cond(&list.Items[0]) {
			return &list.Items[0]
		}
		w, err := c.Client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatalf("watch node %s: %v", name, err)
		}
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*corev1.Node); ok && cond(n) {
				w.Stop()
				return n
			}
			if p != nil {
				select {
				case <-p.done:
					w.Stop()
					t.Fatalf("kubectl cni-migrate %s ended before node %s got there:\n%s", strings.Join(p.args, " "), name, p.stderr)
				default:
				}
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			t.Fatalf("node %s did not get there within %v", name, timeout)
		}
	}
}

// waitLine waits until the file at path has the line s.
func waitLine(t *testing.T, p *pluginProc, path, s string, timeout time.Duration) {
	t.Helper()
	waitLines(t, p, path, s, 1, timeout)
}

// waitLines waits until the file at path has the line s n times.
func waitLines(t *testing.T, p *pluginProc, path, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for linesOf(t, path, s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in %s within %v", s, path, timeout)
		}
		select {
		case <-p.done:
			t.Fatalf("kubectl cni-migrate ended before %q:\n%s", s, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lockHolder is the holder of the migration lock ("" when nobody).
func lockHolder(t *testing.T, ctx context.Context, c *Cluster) string {
	t.Helper()
	l, err := c.Client.CoordinationV1().Leases("kube-system").Get(ctx, "cni-migrate-rollout", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// waitHolder waits until the migration lock's holder satisfies cond.
func waitHolder(t *testing.T, ctx context.Context, c *Cluster, p *pluginProc, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond(lockHolder(t, ctx, c)) {
		if time.Now().After(deadline) {
			t.Fatalf("the migration lock is held by %q", lockHolder(t, ctx, c))
		}
		select {
		case <-p.done:
			t.Fatalf("kubectl cni-migrate ended before the lock was taken:\n%s", p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func phaseIs(phases ...string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		for _, p := range phases {
			if n.Annotations[annPhase] == p {
				return true
			}
		}
		return false
	}
}

// noCordonWithoutRecord: a cordoned node always has its original state
// recorded (the migration's or the rollback's was-unschedulable annotation),
// so that a re-run knows whether to uncordon it.
func noCordonWithoutRecord(t *testing.T, ctx context.Context, c *Cluster) {
	t.Helper()
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if !n.Spec.Unschedulable {
			continue
		}
		if _, ok := n.Annotations[annWasUnschedulable]; !ok {
			if _, ok := n.Annotations["cni-migrate.io/rollback-was-unschedulable"]; !ok {
				t.Errorf("node %s is cordoned with nothing recorded: %v", n.Name, pluginAnnotations(&n))
			}
		}
	}
}

// faultCluster is migrationCluster with the fixture's budgets relaxed and
// the CiliumNodeConfig applied: ready for node and rollout.
func faultCluster(t *testing.T, n int) (*Cluster, context.Context) {
	t.Helper()
	c, ctx := migrationCluster(t, n)
	relaxPDBs(t, ctx, c, "payments", "db")
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	return c, ctx
}

// TestFaultKillNode kills `node` outright (SIGKILL to kubectl, the plugin and
// the reboot command) at each point of its run, one worker per point, then
// runs the same command again: the node must end as an uninterrupted run
// leaves it, rebooted once.
func TestFaultKillNode(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 11)
	reboot, rebootLog, started := faultReboot(t, 2*time.Second)

	type point struct {
		name string
		wait func(t *testing.T, p *pluginProc, node string)
	}
	atPhase := func(phase string) func(*testing.T, *pluginProc, string) {
		return func(t *testing.T, p *pluginProc, node string) {
			waitNode(t, ctx, c, p, node, 3*time.Minute, phaseIs(phase))
		}
	}
	points := []point{
		{"just after taking the lock", func(t *testing.T, p *pluginProc, node string) {
			waitHolder(t, ctx, c, p, func(h string) bool { return strings.HasSuffix(h, ", node)") })
		}},
		{"after cordon", atPhase("cordoned")},
		{"after drain", atPhase("drained")},
		{"after label", atPhase("labelled")},
		{"while the agent restarts", func(t *testing.T, p *pluginProc, node string) {
			old := agentOn(t, ctx, c, node).UID
			deadline := time.Now().Add(3 * time.Minute)
			for {
				pods, err := c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium", FieldSelector: "spec.nodeName=" + node})
				if err != nil {
					t.Fatal(err)
				}
				gone := true
				for _, pod := range pods.Items {
					if pod.UID == old && pod.DeletionTimestamp == nil {
						gone = false
					}
				}
				if gone {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("the agent was not restarted")
				}
				select {
				case <-p.done:
					t.Fatalf("the run ended before its agent restart was seen:\n%s", p.stderr)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}},
		{"after the agent restart", atPhase("agent-restarted")},
		{"while the reboot command runs", func(t *testing.T, p *pluginProc, node string) {
			waitLine(t, p, started, "started "+node, 3*time.Minute)
		}},
		{"after reboot", atPhase("rebooted")},
		{"while the verify probe runs", func(t *testing.T, p *pluginProc, node string) {
			// A watch, not a poll: on kwok the probe is over in a fraction
			// of a second.
			sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=cni-migrate-probe"}
			list, err := c.Client.BatchV1().Jobs("kube-system").List(ctx, sel)
			if err != nil {
				t.Fatal(err)
			}
			sel.ResourceVersion = list.ResourceVersion
			w, err := c.Client.BatchV1().Jobs("kube-system").Watch(ctx, sel)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			timeout := time.After(3 * time.Minute)
			for {
				select {
				case ev := <-w.ResultChan():
					if j, ok := ev.Object.(*batchv1.Job); ok && ev.Type == watch.Added && j.Spec.Template.Spec.NodeName == node {
						return
					}
				case <-p.done:
					t.Fatalf("the run ended before its probe Job was seen:\n%s", p.stderr)
				case <-timeout:
					t.Fatal("no probe Job")
				}
			}
		}},
		{"after verify", atPhase("verified")},
	}
	for i, pt := range points {
		node := fmt.Sprintf("worker-%d", i+1)
		t.Run(pt.name, func(t *testing.T) {
			oldAgent := agentOn(t, ctx, c, node).UID
			p := startPlugin(t, c, nil, "node", node, "--reboot-command", reboot)
			pt.wait(t, p, node)
			p.kill(t)
			n := getNode(t, ctx, c, node)
			t.Logf("killed %s: phase %q, cordoned %v", pt.name, n.Annotations[annPhase], n.Spec.Unschedulable)
			noCordonWithoutRecord(t, ctx, c)

			// The killed run left the lock behind; the re-run, on the same
			// host, sees its holder is gone and takes it over at once.
			r := runNode(t, c, "node", node, "--reboot-command", reboot).expect(t, 0, "took over the migration lock from")
			if got, want := stateOf(t, ctx, c, node, oldAgent), wantMigrated("command"); got != want {
				t.Errorf("after the re-run: %+v, want %+v", got, want)
			}
			if n := linesOf(t, rebootLog, node); n != 1 {
				t.Errorf("%s rebooted %d times, want once:\n%s", node, n, r.stderr)
			}
		})
	}
	noProbeJobs(t, ctx, c)
}

// TestFaultKillRolloutRollback kills a rollout in its first batch and again
// in its second, then a rollback twice, each time running the same command
// again: every node ends migrated (then rolled back) as without the kills,
// each node rebooted once per direction.
func TestFaultKillRolloutRollback(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 5)
	reboot, rebootLog, started := faultReboot(t, time.Second)
	args := []string{"rollout", "--batch", "2", "--reboot-command", reboot}
	nodes := []string{"worker-1", "worker-2", "worker-3", "worker-4", "control-plane"}
	agents := map[string]types.UID{}
	for _, n := range nodes {
		agents[n] = agentOn(t, ctx, c, n).UID
	}

	p := startPlugin(t, c, nil, args...)
	waitNode(t, ctx, c, p, "worker-1", 3*time.Minute, phaseIs("labelled"))
	p.kill(t)
	noCordonWithoutRecord(t, ctx, c)
	p = startPlugin(t, c, nil, args...)
	p.waitFor(t, "batch 2/", 5*time.Minute)
	waitNode(t, ctx, c, p, "worker-3", 3*time.Minute, phaseIs("rebooted", "verified", "done"))
	p.kill(t)
	noCordonWithoutRecord(t, ctx, c)
	r := startPlugin(t, c, nil, args...).wait(t, 10*time.Minute)
	r.expect(t, 0, "took over the migration lock from")
	for _, n := range nodes {
		if got, want := stateOf(t, ctx, c, n, agents[n]), wantMigrated("command"); got != want {
			t.Errorf("%s after the rollout: %+v, want %+v", n, got, want)
		}
		if k := linesOf(t, rebootLog, n); k != 1 {
			t.Errorf("%s rebooted %d times, want once", n, k)
		}
	}

	// The rollback, killed after its drain and while the reboot command runs.
	const back = "worker-1"
	rb := []string{"rollback", back, "--reboot-command", reboot}
	p = startPlugin(t, c, nil, rb...)
	waitNode(t, ctx, c, p, back, 3*time.Minute, func(n *corev1.Node) bool { return n.Annotations["cni-migrate.io/rollback-phase"] == "drained" })
	p.kill(t)
	noCordonWithoutRecord(t, ctx, c)
	p = startPlugin(t, c, nil, rb...)
	waitLines(t, p, started, "started "+back, 2, 3*time.Minute) // the second reboot command of the node: the rollback's
	p.kill(t)
	noCordonWithoutRecord(t, ctx, c)
	runNode(t, c, rb...).expect(t, 0, "annotations cleared (phase none)")
	n := getNode(t, ctx, c, back)
	if n.Spec.Unschedulable || len(pluginAnnotations(n)) != 0 || n.Labels[migrationLabel] != "" {
		t.Errorf("%s after the rollback: unschedulable %v, annotations %v, label %q", back, n.Spec.Unschedulable, pluginAnnotations(n), n.Labels[migrationLabel])
	}
	// Once for the migration, once for the rollback: the rollback's killed
	// reboot command had not rebooted the node, so the re-run ran it again.
	if k := linesOf(t, rebootLog, back); k != 2 {
		t.Errorf("%s rebooted %d times, want twice (migration, rollback)", back, k)
	}
	noProbeJobs(t, ctx, c)
}

// stepNeed is one permission `node` needs (plugin/access.StepNeeds): the
// test removes each from docs/rbac.yaml in turn.
type stepNeed struct{ group, resource, verb, namespace string }

func (n stepNeed) String() string {
	r := n.resource
	if n.group != "" {
		r += "." + n.group
	}
	s := n.verb + " " + r
	if n.namespace != "" {
		s += " -n " + n.namespace
	}
	return s
}

var nodeStepNeeds = func() []stepNeed {
	var out []stepNeed
	add := func(group, resource, ns string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, stepNeed{group, resource, v, ns})
		}
	}
	add("", "nodes", "", "get", "list", "watch", "patch")
	add("", "pods", "", "get", "list", "watch", "delete")
	add("", "pods/eviction", "", "create")
	add("", "pods/status", "", "patch")
	add("apps", "daemonsets", "", "get", "list", "watch")
	add("", "configmaps", "", "get")
	add("cilium.io", "ciliumnodeconfigs", "kube-system", "get")
	add("batch", "jobs", "kube-system", "list", "watch", "create", "delete")
	add("policy", "poddisruptionbudgets", "", "list")
	add("coordination.k8s.io", "leases", "kube-system", "get", "watch", "create", "update")
	return out
}()

// rbacDoc is docs/rbac.yaml's ClusterRole and Role rules.
func rbacDoc(t *testing.T) (cluster, kubeSystem []rbacv1.PolicyRule) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			Kind  string              `json:"kind"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "ClusterRole":
			cluster = append(cluster, obj.Rules...)
		case "Role":
			kubeSystem = append(kubeSystem, obj.Rules...)
		}
	}
	return cluster, kubeSystem
}

// without expands rules to one rule per group, resource and verb, less
// the need's.
func without(rules []rbacv1.PolicyRule, n stepNeed) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == n.group && res == n.resource && v == n.verb {
						continue
					}
					out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: []string{v}})
				}
			}
		}
	}
	return out
}

// grantUser gives user the ClusterRole and kube-system Role made of rules.
func grantUser(t *testing.T, ctx context.Context, c *Cluster, user string, cluster, kubeSystem []rbacv1.PolicyRule) {
	t.Helper()
	subj := []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}
	meta := metav1.ObjectMeta{Name: "e2e-" + user}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: cluster}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subj,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: meta.Name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	meta.Namespace = "kube-system"
	if _, err := c.Client.RbacV1().Roles("kube-system").Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: kubeSystem}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().RoleBindings("kube-system").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subj,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: meta.Name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// nodeRecord is what the plugin changes on a node.
func nodeRecord(n *corev1.Node) string {
	return fmt.Sprintf("unschedulable=%v label=%q annotations=%v", n.Spec.Unschedulable, n.Labels[migrationLabel], pluginAnnotations(n))
}

// TestFaultPermissionsAndLock: a user with docs/rbac.yaml migrates a node; a
// user lacking any one permission of the steps is stopped before the first
// change (exit 8 naming it); two runs at once, and a node run during a
// rollout, are refused (exit 18 naming the holder); a rollout whose lock is
// taken from it stops before its next change (exit 18), and a re-run
// finishes.
func TestFaultPermissionsAndLock(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 6)
	reboot, _, _ := faultReboot(t, 0)
	clusterRules, nsRules := rbacDoc(t)

	t.Run("docs/rbac.yaml is enough", func(t *testing.T) {
		grantUser(t, ctx, c, "alice", clusterRules, nsRules)
		oldAgent := agentOn(t, ctx, c, "worker-1").UID
		runNode(t, c, "node", "worker-1", "--reboot-command", reboot, "--as", "alice").expect(t, 0)
		if got, want := stateOf(t, ctx, c, "worker-1", oldAgent), wantMigrated("command"); got != want {
			t.Errorf("worker-1 migrated by alice: %+v, want %+v", got, want)
		}
	})

	t.Run("each missing permission stops the run before any change", func(t *testing.T) {
		before := nodeRecord(getNode(t, ctx, c, "worker-2"))
		for i, need := range nodeStepNeeds {
			user := fmt.Sprintf("minus-%d", i)
			cr := without(clusterRules, need)
			nr := nsRules
			if need.namespace != "" {
				nr = without(nsRules, need)
			}
			grantUser(t, ctx, c, user, cr, nr)
			r := runNode(t, c, "node", "worker-2", "--reboot-command", reboot, "--as", user)
			r.expect(t, 8)
			line := r.errorLine()
			apiForm := fmt.Sprintf("cannot %s resource %q", need.verb, need.resource)
			if !strings.Contains(line, "permission to "+need.String()) && !strings.Contains(line, apiForm) {
				t.Errorf("without %s: the error does not name it: %s", need, line)
			}
			if after := nodeRecord(getNode(t, ctx, c, "worker-2")); after != before {
				t.Fatalf("without %s the run changed worker-2: %s -> %s", need, before, after)
			}
			if h := lockHolder(t, ctx, c); h != "" {
				t.Fatalf("without %s the run left the lock held by %q", need, h)
			}
		}
		// rollout and rollback check the same permissions.
		i := len(nodeStepNeeds) - 1 // update leases
		runNode(t, c, "rollout", "--reboot-command", reboot, "--as", fmt.Sprintf("minus-%d", i)).expect(t, 8, "permission to update leases.coordination.k8s.io -n kube-system")
		runNode(t, c, "rollback", "worker-1", "--reboot-command", reboot, "--as", "minus-3").expect(t, 8, "permission to patch nodes")
		if after := nodeRecord(getNode(t, ctx, c, "worker-2")); after != before {
			t.Fatalf("a refused rollout changed worker-2: %s -> %s", before, after)
		}
	})

	slow, _, slowStarted := faultReboot(t, 6*time.Second)
	t.Run("two runs at once", func(t *testing.T) {
		first := startPlugin(t, c, nil, "node", "worker-2", "--reboot-command", slow)
		waitLine(t, first, slowStarted, "started worker-2", 3*time.Minute)
		holder := lockHolder(t, ctx, c)
		if !strings.HasSuffix(holder, ", node)") {
			t.Fatalf("the lock's holder is %q", holder)
		}
		for _, args := range [][]string{
			{"node", "worker-2", "--reboot-command", slow},
			{"node", "worker-3", "--reboot-command", slow},
			{"rollout", "--reboot-command", slow},
			{"rollback", "worker-1", "--reboot-command", slow},
		} {
			runNode(t, c, args...).expect(t, 18, "another run holds Lease kube-system/cni-migrate-rollout: "+holder)
		}
		if n := getNode(t, ctx, c, "worker-3"); n.Spec.Unschedulable || len(pluginAnnotations(n)) != 0 {
			t.Errorf("a refused run changed worker-3: %s", nodeRecord(n))
		}
		first.wait(t, 5*time.Minute).expect(t, 0)
		if h := lockHolder(t, ctx, c); h != "" {
			t.Errorf("the lock is still held by %q", h)
		}
	})

	t.Run("the lock taken from a running rollout", func(t *testing.T) {
		p := startPlugin(t, c, nil, "rollout", "--batch", "1", "--reboot-command", slow)
		waitHolder(t, ctx, c, p, func(h string) bool { return strings.HasSuffix(h, ", rollout)") })
		// node while the rollout runs: refused.
		runNode(t, c, "node", "worker-5", "--reboot-command", reboot).expect(t, 18, "another run holds Lease kube-system/cni-migrate-rollout", ", rollout), renewed")
		waitNode(t, ctx, c, p, "worker-3", 3*time.Minute, phaseIs("agent-restarted"))
		l, err := c.Client.CoordinationV1().Leases("kube-system").Get(ctx, "cni-migrate-rollout", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		intruder := "intruder@elsewhere (pid 1, rollout)"
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.RenewTime = &intruder, &now
		if _, err := c.Client.CoordinationV1().Leases("kube-system").Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		took := time.Now()
		// Whatever write was on the wire when the lock went may still land.
		time.Sleep(500 * time.Millisecond)
		records := map[string]string{}
		for _, n := range []string{"worker-3", "worker-4", "worker-5", "control-plane"} {
			records[n] = nodeRecord(getNode(t, ctx, c, n))
		}
		r := p.wait(t, time.Minute)
		r.expect(t, 18, "lost Lease kube-system/cni-migrate-rollout to "+intruder+": stopped before the next change")
		t.Logf("TIMING the rollout ended %v after the lock was taken from it", p.end.Sub(took).Round(time.Millisecond))
		time.Sleep(2 * time.Second)
		for n, rec := range records {
			if now := nodeRecord(getNode(t, ctx, c, n)); now != rec {
				t.Errorf("%s changed after the lock was lost: %s -> %s", n, rec, now)
			}
		}
		for _, n := range []string{"worker-4", "worker-5", "control-plane"} {
			if rec := records[n]; strings.Contains(rec, annPhase) {
				t.Errorf("%s was begun although its batch came after the lost lock: %s", n, rec)
			}
		}
		// The intruder is gone: its lease expires, or here it gives it up.
		l, err = c.Client.CoordinationV1().Leases("kube-system").Get(ctx, "cni-migrate-rollout", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		empty := ""
		l.Spec.HolderIdentity = &empty
		if _, err := c.Client.CoordinationV1().Leases("kube-system").Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		runNode(t, c, "rollout", "--batch", "2", "--reboot-command", reboot).expect(t, 0)
		for _, n := range []string{"worker-1", "worker-2", "worker-3", "worker-4", "worker-5", "control-plane"} {
			if ph := getNode(t, ctx, c, n).Annotations[annPhase]; ph != "done" {
				t.Errorf("%s ended in phase %q", n, ph)
			}
		}
	})
	noProbeJobs(t, ctx, c)
}

// TestFaultAPIServerOutage stops kube-apiserver for 30 s while a rollout
// restarts an agent (its requests fail, its watches break), then starts it
// again: the rollout waits the outage out (kube.Outage); it finishes, or
// stops with a clear error and a recorded state and a re-run finishes,
// each node rebooted once.
func TestFaultAPIServerOutage(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 4)
	reboot, rebootLog, _ := faultReboot(t, 0)
	args := []string{"rollout", "--batch", "1", "--reboot-command", reboot}
	p := startPlugin(t, c, nil, args...)
	waitNode(t, ctx, c, p, "worker-1", 3*time.Minute, phaseIs("labelled"))
	if err := c.StopAPIServer(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(30 * time.Second)
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver was down for %v", time.Since(down).Round(time.Millisecond))
	// The outage is shorter than kube.OutageWait (90 s): the rollout waits
	// it out and says so. It then goes on, or stops with a one-line error
	// and the node's state recorded when what follows fails (once, the
	// Cilium simulation, catching up after the restart, gave the next
	// node's probe pod an old address: exit 12, node cordoned); a re-run
	// then finishes. (The simulation's requests wait out a refused
	// connection, so its informers resume as soon as the API server is
	// back; before, client-go's back-off kept them stale for up to a
	// minute, and the next node's probe pod got an old address, and so did
	// the re-run's.)
	r := p.wait(t, 15*time.Minute)
	r.expect(t, r.code, "the API server cannot be reached: waiting up to 1m30s for it to come back", "the API server is back after")
	if r.code != 0 {
		t.Logf("the rollout stopped after the outage (exit %d): %s", r.code, r.errorLine())
		noCordonWithoutRecord(t, ctx, c)
		runNode(t, c, args...).expect(t, 0)
	}
	for _, n := range []string{"worker-1", "worker-2", "worker-3", "control-plane"} {
		if ph := getNode(t, ctx, c, n).Annotations[annPhase]; ph != "done" {
			t.Errorf("%s ended in phase %q", n, ph)
		}
		if k := linesOf(t, rebootLog, n); k != 1 {
			t.Errorf("%s rebooted %d times, want once", n, k)
		}
	}
	noProbeJobs(t, ctx, c)
}

// TestFaultVanishingNodes deletes a node while the plugin waits for it to
// reboot, and replaces another (deleted and registered again under the
// same name): each run stops at once with a precondition error that says
// so (exit 15), and the next run refuses the missing node and migrates the
// replacement from the start.
func TestFaultVanishingNodes(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 4)
	reboot, rebootLog, _ := faultReboot(t, 0)
	// A reboot command that reboots nothing: the plugin waits for a new bootID.
	noop := "true {{.Node}}"
	for _, tc := range []struct {
		node    string
		replace bool
	}{{"worker-1", false}, {"worker-2", true}} {
		t.Run(map[bool]string{false: "deleted", true: "replaced"}[tc.replace], func(t *testing.T) {
			p := startPlugin(t, c, nil, "node", tc.node, "--reboot-command", noop, "--reboot-timeout", "3m")
			p.waitFor(t, "running true "+tc.node, 3*time.Minute)
			time.Sleep(time.Second) // waiting for the bootID now
			gone := time.Now()
			if err := c.Client.CoreV1().Nodes().Delete(ctx, tc.node, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if tc.replace {
				if _, err := c.AddNodes(ctx, []cluster.NodeSpec{{Name: tc.node}}); err != nil {
					t.Fatal(err)
				}
			}
			r := p.wait(t, time.Minute)
			r.expect(t, 15)
			if !strings.Contains(r.errorLine(), "node "+tc.node+" was deleted while it was being migrated") &&
				!strings.Contains(r.errorLine(), "node "+tc.node+" was replaced while it was being migrated") {
				t.Errorf("error line %q", r.errorLine())
			}
			t.Logf("TIMING stopped %v after the node was deleted", p.end.Sub(gone).Round(time.Millisecond))
			if !tc.replace {
				runNode(t, c, "node", tc.node, "--reboot-command", reboot).expect(t, 15, "node "+tc.node+" not found")
				return
			}
			if n := getNode(t, ctx, c, tc.node); len(pluginAnnotations(n)) != 0 || n.Spec.Unschedulable {
				t.Fatalf("the stopped run wrote on the new node: %s", nodeRecord(n))
			}
			if _, err := c.WaitNodesReady(ctx, []string{tc.node}, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
			waitAgent(t, ctx, c, tc.node)
			oldAgent := agentOn(t, ctx, c, tc.node).UID
			runNode(t, c, "node", tc.node, "--reboot-command", reboot).expect(t, 0, tc.node+": cordon")
			if got, want := stateOf(t, ctx, c, tc.node, oldAgent), wantMigrated("command"); got != want {
				t.Errorf("the replacement after the re-run: %+v, want %+v", got, want)
			}
			if k := linesOf(t, rebootLog, tc.node); k != 1 {
				t.Errorf("%s rebooted %d times, want once", tc.node, k)
			}
		})
	}
}

// waitAgent waits until the node has one Ready Cilium agent.
func waitAgent(t *testing.T, ctx context.Context, c *Cluster, node string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := c.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium", FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for i := range pods.Items {
			if pods.Items[i].DeletionTimestamp == nil && podReady(&pods.Items[i]) {
				ready++
			}
		}
		if ready == 1 && len(pods.Items) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Ready Cilium agent on %s", node)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// killOnLeaseNote kills the plugin (its process group) as soon as a watch
// of the migration lock's Lease sees the annotation key.
func killOnLeaseNote(t *testing.T, ctx context.Context, c *Cluster, p *pluginProc, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	w, err := c.Client.CoordinationV1().Leases("kube-system").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "cni-migrate-rollout").String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case <-p.done:
			t.Fatalf("the plugin ended before the Lease had %s:\n%s", key, p.stderr)
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch of the Lease ended before it had %s", key)
			}
			if l, ok := ev.Object.(*coordinationv1.Lease); ok && l.Annotations[key] != "" {
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				return
			}
		}
	}
}

// TestFaultKillFinalize kills finalize --yes --remove-old-cni (with its helm)
// in the middle of its helm upgrade, after it, in the middle of removing the
// old CNI and once more at its start, running it again after each kill: the
// last run ends where an uninterrupted finalize does, with the Helm release
// deployed, every object of the old CNI gone and no note left on the Lease.
func TestFaultKillFinalize(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 3)
	reboot, _, _ := faultReboot(t, 0)
	// One worker at a time: with two workers, a batch of two leaves the
	// evicted pods nowhere to go.
	runNode(t, c, "rollout", "--reboot-command", reboot).expect(t, 0)
	helm := filepath.Join(c.Cache, "bin", "helm")
	args := []string{"finalize", "--output-dir", t.TempDir(), "--yes", "--helm", helm, "--chart", fixture.CiliumChart(c.Cluster, nodeTestCilium), "--remove-old-cni"}
	gvr := schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnodeconfigs"}
	poll := func(t *testing.T, p *pluginProc, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not %s within 5m", what)
			}
			select {
			case <-p.done:
				t.Fatalf("finalize ended before %s:\n%s", what, p.stderr)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// A user short of a permission stops before any change: one with
	// docs/rbac.yaml lacks what helm needs (its release Secrets), one
	// without patch nodes cannot clean the nodes' state.
	clusterRules, nsRules := rbacDoc(t)
	grantUser(t, ctx, c, "finalizer", clusterRules, nsRules)
	grantUser(t, ctx, c, "finalizer-2", without(clusterRules, stepNeed{resource: "nodes", verb: "patch"}), nsRules)
	cfgBefore := func() string {
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, cncErr := c.Dynamic.Resource(gvr).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{})
		_, dsErr := c.Client.AppsV1().DaemonSets("kube-flannel").Get(ctx, "kube-flannel-ds", metav1.GetOptions{})
		return fmt.Sprintf("custom-cni-conf=%s cnc=%v flannel=%v", cm.Data["custom-cni-conf"], cncErr == nil, dsErr == nil)
	}
	before := cfgBefore()
	runNode(t, c, append(args, "--as", "finalizer")...).expect(t, 8,
		"the helm upgrade of finalize --yes needs permission to list secrets -n kube-system (helm upgrade keeps Cilium's release in Secrets)")
	runNode(t, c, "finalize", "--output-dir", t.TempDir(), "--remove-old-cni", "--as", "finalizer-2").expect(t, 8,
		"kubectl cni-migrate finalize needs permission to patch nodes (remove the migration label and annotations from the nodes)")
	if after := cfgBefore(); after != before {
		t.Fatalf("a finalize without a permission changed the cluster: %s -> %s", before, after)
	}
	if h := lockHolder(t, ctx, c); h != "" {
		t.Fatalf("a finalize without a permission left the lock held by %q", h)
	}
	for _, n := range []string{"worker-1", "worker-2"} {
		if got := getNode(t, ctx, c, n); got.Labels[migrationLabel] == "" {
			t.Fatalf("a finalize without a permission cleaned %s: %s", n, nodeRecord(got))
		}
	}

	pending := func() bool {
		l, err := c.Client.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=cilium,status=pending-upgrade"})
		return err == nil && len(l.Items) > 0
	}
	var killed []nodeRun
	for _, pt := range []struct {
		name string
		cond func() bool
	}{
		// helm and the plugin killed together (the process group), as by a
		// lost SSH session: the release stays pending-upgrade.
		{"in the middle of the helm upgrade", pending},
		{"after the helm upgrade", func() bool {
			cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
			return err == nil && cm.Data["custom-cni-conf"] == "false"
		}},
		// Killed from a watch of the Lease as soon as the removal's note
		// is there, so that (the deletions take milliseconds) some of the
		// old CNI's objects are left, and the DaemonSet that detection
		// finds it by is gone.
		{"while removing the old CNI", nil},
		// The removal's run got past this point before it was killed:
		// this run is killed at once, before any change of its own.
		{"after deleting the CiliumNodeConfig", func() bool {
			_, err := c.Dynamic.Resource(gvr).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}},
	} {
		p := startPlugin(t, c, nil, args...)
		if pt.cond != nil {
			poll(t, p, pt.name, pt.cond)
		} else {
			killOnLeaseNote(t, ctx, c, p, "cni-migrate.io/remove-old-cni")
		}
		killed = append(killed, p.kill(t))
		t.Logf("killed finalize %s", pt.name)
	}
	var left []string
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, "flannel", metav1.GetOptions{}); err == nil {
		left = append(left, "clusterrole/flannel")
	}
	if _, err := c.Client.AppsV1().DaemonSets("kube-flannel").Get(ctx, "kube-flannel-ds", metav1.GetOptions{}); err == nil {
		left = append(left, "daemonset/kube-flannel-ds")
	}
	t.Logf("left by the kill while removing the old CNI: %v", left)
	// The run after the kill inside helm found the release pending, its
	// helm gone, and rolled it back before upgrading again.
	if want := "left Helm release kube-system/cilium pending-upgrade at revision"; !strings.Contains(killed[1].stderr, want) || !strings.Contains(killed[1].stderr, "rolling back to revision") {
		t.Errorf("the run after the kill inside helm upgrade did not roll the pending release back (%q):\n%s", want, killed[1].stderr)
	}
	runNode(t, c, args...).expect(t, 0, "took over the migration lock from", "helm upgrade done")
	if out, err := fixture.Helm(ctx, c.Cluster, "status", "cilium", "--namespace", "kube-system"); err != nil || !strings.Contains(string(out), "STATUS: deployed") {
		t.Errorf("helm status after finalize (%v):\n%s", err, out)
	}
	if l, err := c.Client.CoordinationV1().Leases("kube-system").Get(ctx, "cni-migrate-rollout", metav1.GetOptions{}); err != nil || len(l.Annotations) != 0 {
		t.Errorf("the Lease after finalize (%v): annotations %v", err, l.Annotations)
	}
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["custom-cni-conf"] != "false" || cm.Data["enable-policy"] != "default" {
		t.Errorf("cilium-config: custom-cni-conf=%q enable-policy=%q", cm.Data["custom-cni-conf"], cm.Data["enable-policy"])
	}
	if _, err := c.Dynamic.Resource(gvr).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CiliumNodeConfig still there: %v", err)
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, "flannel", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("clusterrole flannel still there: %v", err)
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Get(ctx, "flannel", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("clusterrolebinding flannel still there: %v", err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-flannel").Get(ctx, "kube-flannel-cfg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("configmap kube-flannel-cfg still there: %v", err)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if len(pluginAnnotations(&n)) != 0 || n.Labels[migrationLabel] != "" || n.Spec.Unschedulable {
			t.Errorf("node %s after finalize: %s", n.Name, nodeRecord(&n))
		}
	}
}

// holdNotReady makes a node NotReady, as when its kubelet stops, and keeps
// it so (kwok would make it Ready again at once); ready lets kwok make it
// Ready again.
func holdNotReady(t *testing.T, ctx context.Context, c *Cluster, node string) (ready func()) {
	t.Helper()
	ann := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, cluster.HoldNotReadyAnnotation)
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(ann), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	st := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"container runtime is down","lastTransitionTime":%q}]}}`,
		time.Now().UTC().Format(time.RFC3339))
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(st), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		un := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, cluster.HoldNotReadyAnnotation)
		if _, err := c.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(un), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitNodesReady(ctx, []string{node}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFaultNodeReadyFlips makes a node NotReady in the middle of its
// migration (after its drain) and keeps it so for a while: verify waits for
// it (--reboot=skip) and goes on once it is Ready again; past
// --reboot-timeout it stops with exit 12, the node cordoned with its phase
// recorded, and the same command run again finishes; the reboot step waits
// for Ready as it does after any reboot.
func TestFaultNodeReadyFlips(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := faultCluster(t, 4)
	reboot, _, _ := faultReboot(t, 0)
	notReadyAt := func(t *testing.T, p *pluginProc, node string) func() {
		waitNode(t, ctx, c, p, node, 3*time.Minute, phaseIs("drained", "labelled"))
		return holdNotReady(t, ctx, c, node)
	}

	t.Run("Ready again while verify waits", func(t *testing.T) {
		p := startPlugin(t, c, nil, "node", "worker-1", "--reboot=skip")
		ready := notReadyAt(t, p, "worker-1")
		p.waitFor(t, "node worker-1 is not Ready (Ready=False since", 3*time.Minute)
		if n := getNode(t, ctx, c, "worker-1"); !n.Spec.Unschedulable || n.Annotations[annPhase] == "done" {
			t.Fatalf("while it waits: %s", nodeRecord(n))
		}
		ready()
		p.wait(t, 3*time.Minute).expect(t, 0, "(KubeletNotReady: container runtime is down)): waiting up to 10m0s for it before verifying", "node worker-1 is Ready again after")
		if n := getNode(t, ctx, c, "worker-1"); n.Spec.Unschedulable || n.Annotations[annPhase] != "done" {
			t.Errorf("after the run: %s", nodeRecord(n))
		}
	})

	t.Run("not Ready past the timeout, then run again", func(t *testing.T) {
		p := startPlugin(t, c, nil, "node", "worker-2", "--reboot=skip", "--reboot-timeout", "5s")
		ready := notReadyAt(t, p, "worker-2")
		r := p.wait(t, 3*time.Minute).expect(t, 12)
		if want := "node worker-2 is not Ready after 5s (Ready=False since"; !strings.Contains(r.errorLine(), want) || !strings.Contains(r.errorLine(), "the node stays cordoned") {
			t.Fatalf("error line %q, want %q", r.errorLine(), want)
		}
		n := getNode(t, ctx, c, "worker-2")
		if !n.Spec.Unschedulable || n.Annotations[annPhase] == "done" || n.Annotations[annPhase] == "" {
			t.Fatalf("after the stop: %s", nodeRecord(n))
		}
		noCordonWithoutRecord(t, ctx, c)
		ready()
		runNode(t, c, "node", "worker-2", "--reboot=skip").expect(t, 0)
		if n := getNode(t, ctx, c, "worker-2"); n.Spec.Unschedulable || n.Annotations[annPhase] != "done" {
			t.Errorf("after the re-run: %s", nodeRecord(n))
		}
	})

	t.Run("NotReady over the reboot step", func(t *testing.T) {
		p := startPlugin(t, c, nil, "node", "worker-3", "--reboot-command", reboot)
		ready := notReadyAt(t, p, "worker-3")
		p.waitFor(t, "running "+strings.Replace(reboot, "{{.Node}}", "worker-3", 1), 3*time.Minute)
		time.Sleep(2 * time.Second) // the new bootID is there; Ready is not
		if n := getNode(t, ctx, c, "worker-3"); n.Annotations[annPhase] == "rebooted" || n.Annotations[annPhase] == "done" {
			t.Fatalf("the reboot step passed a NotReady node: %s", nodeRecord(n))
		}
		ready()
		p.wait(t, 3*time.Minute).expect(t, 0)
		if n := getNode(t, ctx, c, "worker-3"); n.Spec.Unschedulable || n.Annotations[annPhase] != "done" {
			t.Errorf("after the run: %s", nodeRecord(n))
		}
	})
}
