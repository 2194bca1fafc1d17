package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The annotations `kubectl cni-migrate rollback` writes (plugin/migrate).
const (
	annRollbackPhase            = "cni-migrate.io/rollback-phase"
	annRollbackWasUnschedulable = "cni-migrate.io/rollback-was-unschedulable"
)

// rollbackSummary is `rollback -o json`.
type rollbackSummary struct {
	Kind, Result string
	ExitCode     int
	Nodes        []struct {
		Name, PhaseBefore, PhaseAfter, RollbackPhaseBefore, RollbackPhaseAfter, Result string
		Steps                                                                          []struct {
			Name, Result, Detail string
		}
	}
}

// newPodIP starts a pause pod pinned to node, waits for its address, deletes
// the pod and returns the address.
func newPodIP(t *testing.T, ctx context.Context, c *Cluster, node, name string) netip.Addr {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	pods := c.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}) }()
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.PodIP != "" {
			return netip.MustParseAddr(p.Status.PodIP)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s on %s got no address", name, node)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// podCIDR is the node's first spec.podCIDRs entry: flannel's range there.
func podCIDR(t *testing.T, ctx context.Context, c *Cluster, node string) netip.Prefix {
	t.Helper()
	n := getNode(t, ctx, c, node)
	if len(n.Spec.PodCIDRs) == 0 {
		t.Fatalf("node %s has no podCIDRs", node)
	}
	return netip.MustParsePrefix(n.Spec.PodCIDRs[0])
}

// pluginAnnotations are the node's cni-migrate.io/ annotations.
func pluginAnnotations(n *corev1.Node) map[string]string {
	out := map[string]string{}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, "cni-migrate.io/") {
			out[k] = v
		}
	}
	return out
}

// wantRolledBack checks that a node is back on flannel and not migrated:
// no label, no cni-migrate.io/ annotation, schedulable, a new Ready agent,
// the sim's view, and a new pod on the node's podCIDR.
func wantRolledBack(t *testing.T, ctx context.Context, c *Cluster, node string, oldAgent types.UID) {
	t.Helper()
	n := getNode(t, ctx, c, node)
	if _, ok := n.Labels[migrationLabel]; ok {
		t.Errorf("%s still has the label %s", node, migrationLabel)
	}
	if a := pluginAnnotations(n); len(a) != 0 {
		t.Errorf("%s keeps annotations %v", node, a)
	}
	if n.Spec.Unschedulable {
		t.Errorf("%s is still cordoned", node)
	}
	agent := agentOn(t, ctx, c, node)
	if agent.UID == oldAgent || !podReady(&agent) {
		t.Errorf("agent on %s: replaced %v, Ready %v", node, agent.UID != oldAgent, podReady(&agent))
	}
	if st, err := c.Sim.Node(node); err != nil || st.Labelled || st.Migrated {
		t.Errorf("the Cilium simulation sees %s as %+v (%v)", node, st, err)
	}
	cidr := podCIDR(t, ctx, c, node)
	if ip := newPodIP(t, ctx, c, node, "after-rollback"); !cidr.Contains(ip) || netip.MustParsePrefix(ciliumPool).Contains(ip) {
		t.Errorf("a new pod on %s got %s, want one in its podCIDR %s", node, ip, cidr)
	}
	noProbeJobs(t, ctx, c)
}

// TestRollback covers `kubectl cni-migrate rollback` on a three-node
// cluster: a node never migrated, a worker migrated with `node` and rolled
// back with a simulated reboot, a second rollback that changes nothing, the
// refusal once Cilium left migration mode, the same worker migrated again
// and rolled back with a manual reboot (waiting, refused by node meanwhile,
// resumed), and the --dry-run=client script run with bash on another worker.
func TestRollback(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	testStart := time.Now()
	c, ctx := migrationCluster(t, 3)
	reboot := rebootScript(t)
	rebootFlag := "--reboot-command=" + reboot + " {{.Node}}"
	const worker, scripted = "worker-1", "worker-2"

	t.Run("nothing to roll back", func(t *testing.T) {
		before := getNode(t, ctx, c, worker)
		r := runNode(t, c, "rollback", worker, rebootFlag).expect(t, 0, worker+": not migrated (phase none, no label "+migrationLabel+"); nothing to roll back")
		if strings.Contains(r.stderr, "rebooting") {
			t.Error("a node never migrated was rebooted")
		}
		after := getNode(t, ctx, c, worker)
		if after.Spec.Unschedulable || len(pluginAnnotations(after)) != 0 || after.Status.NodeInfo.BootID != before.Status.NodeInfo.BootID {
			t.Errorf("rollback changed a node never migrated: %v", after.Annotations)
		}
	})

	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	relaxPDBs(t, ctx, c, "payments", "db")
	cidr := podCIDR(t, ctx, c, worker)
	t.Logf("%s: podCIDR %s, Cilium's pool %s", worker, cidr, ciliumPool)

	t.Run("migrate, then roll back", func(t *testing.T) {
		start := time.Now()
		runNode(t, c, "node", worker, rebootFlag).expect(t, 0, worker+": uncordon")
		if got, want := stateOf(t, ctx, c, worker, ""), wantMigrated("command"); got != want {
			t.Fatalf("after node: %+v, want %+v", got, want)
		}
		if ip := newPodIP(t, ctx, c, worker, "on-cilium"); !netip.MustParsePrefix(ciliumPool).Contains(ip) {
			t.Fatalf("a new pod on the migrated %s got %s, outside %s", worker, ip, ciliumPool)
		}
		t.Logf("TIMING node %s: %v", worker, time.Since(start).Round(time.Millisecond))

		// A policy translated from Calico's (calico-policies --apply): the
		// rollback that leaves no node on Cilium removes it.
		if out, err := c.Apply(ctx, []byte(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: calico-allow-web
  namespace: default
  labels: {cni-migrate.io/translated-from: calico}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress: [{}]
`)); err != nil {
			t.Fatalf("applying a translated policy: %v (%v)", err, out)
		}
		oldAgent := agentOn(t, ctx, c, worker)
		before := getNode(t, ctx, c, worker)
		start = time.Now()
		r := runNode(t, c, "rollback", worker, rebootFlag, "-o", "json").expect(t, 0,
			"rolling back to flannel",
			worker+": unlabel       done",
			"removed "+migrationLabel,
			"replaced "+oldAgent.Name,
			"rm -f /etc/cni/net.d/05-cilium.conflist",
			"mv -n /etc/cni/net.d/10-flannel.conflist.cilium_bak /etc/cni/net.d/10-flannel.conflist",
			"rebooting "+worker,
			"annotations cleared (phase none)",
			"rolled-back          phase done -> none, 7 steps",
			"no node is on Cilium any more: deleted the policies translated from Calico's: ciliumnetworkpolicy.cilium.io/calico-allow-web -n default")
		t.Logf("TIMING rollback %s: %v", worker, time.Since(start).Round(time.Millisecond))
		cnp := schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
		if _, err := c.Dynamic.Resource(cnp).Namespace("default").Get(ctx, "calico-allow-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the translated policy is still there: %v", err)
		}
		// The CNI instruction comes at the reboot step, before the reboot runs.
		if i, j := strings.Index(r.stderr, "rm -f /etc/cni"), strings.Index(r.stderr, "rebooting "+worker); i < 0 || i > j || i < strings.Index(r.stderr, worker+": restart-agent") {
			t.Errorf("the CNI instruction is not printed at the reboot step:\n%s", r.stderr)
		}
		var s rollbackSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("-o json: %v\n%s", err, r.stdout)
		}
		if s.Kind != "NodeRollback" || s.Result != "ok" || len(s.Nodes) != 1 {
			t.Fatalf("summary %+v", s)
		}
		sn := s.Nodes[0]
		var steps []string
		for _, st := range sn.Steps {
			steps = append(steps, st.Name)
		}
		if sn.Result != "rolled-back" || sn.PhaseBefore != "done" || sn.PhaseAfter != "" || sn.RollbackPhaseAfter != "" ||
			strings.Join(steps, ",") != "cordon,drain,unlabel,restart-agent,reboot,verify,uncordon" {
			t.Fatalf("node summary %+v", sn)
		}
		m := regexp.MustCompile(`probe pod got ([0-9.]+) \(in ` + regexp.QuoteMeta(cidr.String()) + `, the node's podCIDR, outside Cilium's ` + regexp.QuoteMeta(ciliumPool) + `\)`).FindStringSubmatch(sn.Steps[5].Detail)
		if m == nil || !cidr.Contains(netip.MustParseAddr(m[1])) {
			t.Fatalf("verify detail %q", sn.Steps[5].Detail)
		}
		after := getNode(t, ctx, c, worker)
		if after.Status.NodeInfo.BootID == before.Status.NodeInfo.BootID {
			t.Error("the node was not rebooted")
		}
		wantRolledBack(t, ctx, c, worker, oldAgent.UID)
	})

	t.Run("a second rollback changes nothing", func(t *testing.T) {
		before := getNode(t, ctx, c, worker)
		agent := agentOn(t, ctx, c, worker)
		r := runNode(t, c, "rollback", worker, rebootFlag, "-o", "json").expect(t, 0, "nothing to roll back")
		var s rollbackSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Nodes[0].Result != "not-migrated" || len(s.Nodes[0].Steps) != 0 {
			t.Fatalf("summary %+v %v", s, err)
		}
		after := getNode(t, ctx, c, worker)
		if fmt.Sprint(after.Labels) != fmt.Sprint(before.Labels) || fmt.Sprint(after.Annotations) != fmt.Sprint(before.Annotations) ||
			after.Spec.Unschedulable != before.Spec.Unschedulable || after.Status.NodeInfo.BootID != before.Status.NodeInfo.BootID {
			t.Errorf("the node changed:\nbefore %v %v\nafter  %v %v", before.Labels, before.Annotations, after.Labels, after.Annotations)
		}
		if a := agentOn(t, ctx, c, worker); a.UID != agent.UID {
			t.Error("the agent was restarted")
		}
	})

	t.Run("node migrates it again", func(t *testing.T) {
		oldAgent := agentOn(t, ctx, c, worker).UID
		runNode(t, c, "node", worker, rebootFlag).expect(t, 0, worker+": cordon", worker+": uncordon")
		if got, want := stateOf(t, ctx, c, worker, oldAgent), wantMigrated("command"); got != want {
			t.Errorf("state %+v, want %+v", got, want)
		}
		if ip := newPodIP(t, ctx, c, worker, "on-cilium-again"); !netip.MustParsePrefix(ciliumPool).Contains(ip) {
			t.Errorf("a new pod on the re-migrated %s got %s", worker, ip)
		}
	})

	t.Run("refused once Cilium left migration mode", func(t *testing.T) {
		// What finalize's helm upgrade does to cilium-config, without helm.
		cms := c.Client.CoreV1().ConfigMaps("kube-system")
		setMode := func(v string) {
			patch := []byte(`{"data":{"custom-cni-conf":"` + v + `"}}`)
			if _, err := cms.Patch(ctx, "cilium-config", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setMode("false")
		defer setMode("true")
		r := runNode(t, c, "rollback", worker, rebootFlag).expect(t, 15, "not in migration mode", "the migration was finalized", "docs/rollback.md")
		if n := getNode(t, ctx, c, worker); n.Spec.Unschedulable || n.Labels[migrationLabel] != "true" || len(pluginAnnotations(n)) != 5 {
			t.Errorf("a refused rollback changed the node: %v\n%s", n.Annotations, r.stderr)
		}
	})

	t.Run("manual reboot: waits, node refuses meanwhile, resumes", func(t *testing.T) {
		oldAgent := agentOn(t, ctx, c, worker).UID
		setBootID(t, ctx, c, worker, "rollback-boot-1")
		r := runNode(t, c, "rollback", worker).expect(t, 14, "node "+worker+" waits for a manual reboot",
			"restore the old CNI's config on it as printed above", "run kubectl cni-migrate rollback "+worker+" to continue",
			"rm -f /etc/cni/net.d/05-cilium.conflist")
		if !strings.Contains(r.stderr, worker+": reboot        waiting") {
			t.Errorf("no waiting line:\n%s", r.stderr)
		}
		n := getNode(t, ctx, c, worker)
		if n.Annotations[annRollbackPhase] != "agent-restarted" || n.Annotations[annPhase] != "done" || n.Annotations[annBootID] != "rollback-boot-1" ||
			n.Annotations[annRollbackWasUnschedulable] != "false" || !n.Spec.Unschedulable || n.Labels[migrationLabel] != "" {
			t.Fatalf("while waiting: annotations %v labels %v unschedulable %v", n.Annotations, n.Labels, n.Spec.Unschedulable)
		}
		// The label is gone and the agent restarted: the Cilium simulation
		// already hands new pods flannel addresses (a real node would still
		// need 05-cilium.conflist removed).
		if ip := newPodIP(t, ctx, c, worker, "before-reboot"); !cidr.Contains(ip) {
			t.Errorf("after unlabel and agent restart a new pod got %s, outside %s", ip, cidr)
		}
		runNode(t, c, "node", worker).expect(t, 15, "node "+worker+" is being rolled back", "kubectl cni-migrate rollback "+worker)
		runNode(t, c, "rollback", worker).expect(t, 14, "waits for a manual reboot")
		setBootID(t, ctx, c, worker, "rollback-boot-2")
		r = runNode(t, c, "rollback", worker).expect(t, 0, "bootID rollback-boot-1 -> rollback-boot-2", "rollback phase agent-restarted -> none")
		if strings.Contains(r.stderr, worker+": drain") || strings.Contains(r.stderr, "rm -f /etc/cni") {
			t.Errorf("the resumed rollback drained again or repeated the CNI instruction after the reboot:\n%s", r.stderr)
		}
		wantRolledBack(t, ctx, c, worker, oldAgent)
	})

	t.Run("client dry-run script", func(t *testing.T) {
		runNode(t, c, "node", scripted, rebootFlag).expect(t, 0)
		oldAgent := agentOn(t, ctx, c, scripted).UID
		r := runNode(t, c, "rollback", scripted, rebootFlag, "--dry-run=client").expect(t, 0)
		if !strings.HasPrefix(r.stdout, "#!/usr/bin/env bash") || !strings.Contains(r.stdout, "record_rollback") {
			t.Fatalf("script:\n%s", r.stdout)
		}
		if n := getNode(t, ctx, c, scripted); n.Spec.Unschedulable || n.Annotations[annRollbackPhase] != "" || n.Labels[migrationLabel] != "true" {
			t.Fatal("--dry-run=client changed the node")
		}
		path := filepath.Join(t.TempDir(), "rollback.sh")
		if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := runCombined(ctx, c.Command("bash", path), 10*time.Minute)
		t.Logf("bash %s (%v):\n%s", path, time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("the script failed: %v", err)
		}
		if !strings.Contains(out, "node "+scripted+": rolled back") || !strings.Contains(out, "rm -f /etc/cni/net.d/05-cilium.conflist") {
			t.Errorf("script output:\n%s", out)
		}
		wantRolledBack(t, ctx, c, scripted, oldAgent)
		// The plugin accepts what the script did, and vice versa.
		runNode(t, c, "rollback", scripted, rebootFlag).expect(t, 0, "nothing to roll back")
		out, err = runCombined(ctx, c.Command("bash", path), time.Minute)
		if err != nil || !strings.Contains(out, "node "+scripted+": not migrated; nothing to roll back") {
			t.Errorf("script re-run: %v\n%s", err, out)
		}
	})
	t.Logf("TIMING whole test: %v", time.Since(testStart).Round(time.Millisecond))
}
