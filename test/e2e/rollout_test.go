package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// rolloutSummary is the part of `rollout -o json` the test reads.
type rolloutSummary struct {
	Kind  string `json:"kind"`
	Nodes []struct {
		Name       string `json:"name"`
		PhaseAfter string `json:"phaseAfter"`
		Result     string `json:"result"`
		Steps      []struct {
			Name   string `json:"name"`
			Detail string `json:"detail"`
		} `json:"steps"`
	} `json:"nodes"`
	Result string `json:"result"`
}

// statusJSON is the part of `status -o json` the rollout test reads.
type statusJSON struct {
	Pods struct {
		Total           int `json:"total"`
		ManagedByCilium int `json:"managedByCilium"`
		OldCIDR         int `json:"oldCIDR"`
		NewCIDR         int `json:"newCIDR"`
	} `json:"pods"`
	Rollout struct {
		Nodes     int      `json:"nodes"`
		Done      int      `json:"done"`
		Remaining int      `json:"remaining"`
		Order     []string `json:"order"`
	} `json:"rollout"`
	Next struct {
		Stage   string `json:"stage"`
		Command string `json:"command"`
	} `json:"next"`
}

func status(t *testing.T, c *Cluster) statusJSON {
	t.Helper()
	r := runNode(t, c, "status", "-o", "json")
	r.expect(t, 0)
	var s statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	return s
}

// TestRolloutFinalize migrates a 6-node Flannel cluster with one rollout
// (--batch 2, control plane last), checks during a pause between batches
// that a second rollout is refused by the lease and that finalize refuses
// to run, then finalizes with --remove-old-cni.
func TestRolloutFinalize(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := migrationCluster(t, 6)
	relaxPDBs(t, ctx, c, "payments", "db")
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	reboot := rebootScript(t) + " {{.Node}}"
	valuesDir := t.TempDir()

	runNode(t, c, "finalize", "--output-dir", valuesDir).expect(t, 15, "6 nodes are not migrated yet")

	before := status(t, c)
	if before.Rollout.Done != 0 || before.Rollout.Remaining != 6 || before.Pods.NewCIDR != 0 || before.Pods.ManagedByCilium != 0 ||
		before.Pods.OldCIDR != before.Pods.Total || before.Pods.Total == 0 {
		t.Errorf("status before the rollout: %+v", before)
	}
	if got := strings.Join(before.Rollout.Order, " "); got != "worker-1 worker-2 worker-3 worker-4 worker-5 control-plane" {
		t.Errorf("status rollout order %s", got)
	}
	if before.Next.Stage != "migrate-nodes" || before.Next.Command != "kubectl cni-migrate node worker-1" {
		t.Errorf("status next %+v", before.Next)
	}

	start := time.Now()
	first := startPlugin(t, c, nil, "rollout", "--batch", "2", "--pause-between", "20s", "--reboot-command", reboot, "-o", "json")
	first.waitFor(t, "pausing 20s before batch 2/4", 5*time.Minute)

	t.Run("halfway", func(t *testing.T) {
		half := status(t, c)
		if half.Rollout.Done != 2 || half.Rollout.Remaining != 4 || strings.Join(half.Rollout.Order, " ") != "worker-3 worker-4 worker-5 control-plane" {
			t.Errorf("status halfway: %+v", half.Rollout)
		}
		if half.Pods.Total != before.Pods.Total || half.Pods.OldCIDR+half.Pods.NewCIDR > half.Pods.Total {
			t.Errorf("status halfway pods: %+v (before: %+v)", half.Pods, before.Pods)
		}
		second := runNode(t, c, "rollout", "--batch", "2", "--reboot-command", reboot)
		second.expect(t, 18, "another run holds Lease kube-system/cni-migrate-rollout", ", rollout), renewed")
		if !strings.Contains(second.stderr, "--force-unlock") {
			t.Errorf("the refusal does not name --force-unlock: %s", second.stderr)
		}
		fin := runNode(t, c, "finalize", "--output-dir", valuesDir)
		fin.expect(t, 15, "4 nodes are not migrated yet")
		for _, n := range []string{"control-plane", "worker-3", "worker-4", "worker-5"} {
			if !strings.Contains(fin.stderr, n) {
				t.Errorf("finalize does not list %s: %s", n, fin.stderr)
			}
		}
	})

	r := first.wait(t, 15*time.Minute)
	r.expect(t, 0)
	t.Logf("TIMING rollout of 6 nodes, batch 2, 3 pauses of 20s: %v", time.Since(start).Round(time.Second))
	var s rolloutSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	var order []string
	for _, n := range s.Nodes {
		order = append(order, n.Name)
		if n.PhaseAfter != "done" {
			t.Errorf("node %s ended in phase %q (%s)", n.Name, n.PhaseAfter, n.Result)
		}
		// verify waited for flannel's pod on the node and had the probe
		// reach another node's flannel.1 (the rollout hands each node the
		// old CNI it detected).
		for _, st := range n.Steps {
			if st.Name != "verify" {
				continue
			}
			if !strings.Contains(st.Detail, "old CNI's pod kube-flannel-ds-") || !regexp.MustCompile(`the old network \(node [a-z0-9-]+'s flannel\.1 10\.244\.[0-9]+\.0\)`).MatchString(st.Detail) {
				t.Errorf("node %s: verify's detail %q does not name flannel's pod and the old network it reached", n.Name, st.Detail)
			}
		}
	}
	if got := strings.Join(order, " "); got != "worker-1 worker-2 worker-3 worker-4 worker-5 control-plane" {
		t.Errorf("rollout order %s", got)
	}
	for _, want := range []string{"batch 1/4: [worker-1 worker-2]", "batch 2/4: [worker-3 worker-4]", "batch 3/4: [worker-5]", "batch 4/4: [control-plane]"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	// The control plane went last: its phase time is the latest.
	cp := getNode(t, ctx, c, "control-plane").Annotations["cni-migrate.io/phase-time"]
	for _, w := range []string{"worker-1", "worker-2", "worker-3", "worker-4", "worker-5"} {
		if wt := getNode(t, ctx, c, w).Annotations["cni-migrate.io/phase-time"]; wt > cp {
			t.Errorf("%s finished at %s, after the control plane (%s)", w, wt, cp)
		}
	}
	after := status(t, c)
	if after.Rollout.Done != 6 || after.Rollout.Remaining != 0 || after.Next.Stage != "finalize" || after.Next.Command != "kubectl cni-migrate finalize" {
		t.Errorf("status after the rollout: %+v %+v", after.Rollout, after.Next)
	}
	// Every pod the drains moved was recreated on a migrated node; what is
	// left on the old CIDR is DaemonSet pods, which a real reboot would
	// re-address but the simulated one does not (test/e2e/README.md).
	if after.Pods.NewCIDR == 0 || after.Pods.ManagedByCilium == 0 || after.Pods.ManagedByCilium > after.Pods.Total {
		t.Errorf("status after the rollout pods: %+v", after.Pods)
	}
	// A second rollout finds nothing to do; the lease was released.
	runNode(t, c, "rollout", "--reboot-command", reboot).expect(t, 0, "all 6 nodes are migrated")

	t.Run("finalize", func(t *testing.T) {
		fin := runNode(t, c, "finalize", "--output-dir", valuesDir)
		fin.expect(t, 16, "Cilium still runs with its migration values")
		// Flannel enforces no policy: Cilium audited them through the
		// migration, and the upgrade turns audit mode off.
		for _, want := range []string{"cni.customConf: true -> false", "policyAuditMode: true -> false", "Cilium audited the NetworkPolicies during the migration",
			"kubectl cni-migrate policy-report", "helm upgrade cilium cilium/cilium --version " + nodeTestCilium} {
			if !strings.Contains(fin.stderr, want) {
				t.Errorf("finalize output lacks %q", want)
			}
		}
		helm := filepath.Join(c.Cache, "bin", "helm")
		chart := fixture.CiliumChart(c.Cluster, nodeTestCilium)
		args := []string{"finalize", "--output-dir", valuesDir, "--yes", "--helm", helm, "--chart", chart, "--remove-old-cni"}
		fin = runNode(t, c, args...)
		fin.expect(t, 0, "")
		for _, want := range []string{"daemonset/kube-flannel-ds -n kube-flannel", "configmap/kube-flannel-cfg -n kube-flannel", "namespace/kube-flannel", "deleted CiliumNodeConfig kube-system/cilium-default"} {
			if !strings.Contains(fin.stderr, want) {
				t.Errorf("finalize output lacks %q", want)
			}
		}
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["custom-cni-conf"] != "false" || cm.Data["enable-policy"] != "default" || cm.Data["policy-audit-mode"] != "false" {
			t.Errorf("cilium-config after finalize: custom-cni-conf=%q enable-policy=%q policy-audit-mode=%q", cm.Data["custom-cni-conf"], cm.Data["enable-policy"], cm.Data["policy-audit-mode"])
		}
		gvr := schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnodeconfigs"}
		if _, err := c.Dynamic.Resource(gvr).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("CiliumNodeConfig still there: %v", err)
		}
		if _, err := c.Client.AppsV1().DaemonSets("kube-flannel").Get(ctx, "kube-flannel-ds", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("flannel DaemonSet still there: %v", err)
		}
		for _, kind := range []string{"clusterrole", "clusterrolebinding"} {
			var err error
			if kind == "clusterrole" {
				_, err = c.Client.RbacV1().ClusterRoles().Get(ctx, "flannel", metav1.GetOptions{})
			} else {
				_, err = c.Client.RbacV1().ClusterRoleBindings().Get(ctx, "flannel", metav1.GetOptions{})
			}
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s flannel still there: %v", kind, err)
			}
		}
		if ns, err := c.Client.CoreV1().Namespaces().Get(ctx, "kube-flannel", metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
			t.Errorf("namespace kube-flannel is not being deleted")
		}
		nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes.Items {
			for k := range n.Annotations {
				if strings.HasPrefix(k, "cni-migrate.io/") {
					t.Errorf("node %s keeps annotation %s", n.Name, k)
				}
			}
			if _, ok := n.Labels["io.cilium.migration/cilium-default"]; ok {
				t.Errorf("node %s keeps the migration label", n.Name)
			}
		}
		// Finalize again: everything is recognised as done.
		again := runNode(t, c, args...)
		again.expect(t, 0, "")
		if !strings.Contains(again.stderr, "helm upgrade done") || !strings.Contains(again.stderr, "is gone") {
			t.Errorf("second finalize did not recognise the finished steps:\n%s", again.stderr)
		}
	})
}
