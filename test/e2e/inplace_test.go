package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// inPlaceSummary is the part of `rollout --strategy in-place -o json` the
// test reads (kind InPlaceMigration).
type inPlaceSummary struct {
	Kind       string   `json:"kind"`
	Strategy   string   `json:"strategy"`
	PodCIDRs   []string `json:"podCIDRs"`
	Namespaces []struct {
		Name   string   `json:"name"`
		Pods   []string `json:"pods"`
		Result string   `json:"result"`
	} `json:"namespaces"`
	Nodes []struct {
		Name       string `json:"name"`
		PhaseAfter string `json:"phaseAfter"`
		OldPods    int    `json:"oldPods"`
	} `json:"nodes"`
	Result   string `json:"result"`
	ExitCode int    `json:"exitCode"`
}

// podNetworks returns, for the pods of the pod network (not hostNetwork,
// running or pending), "namespace/name uid ip" lines of those outside pool
// and the number inside it.
func podNetworks(t *testing.T, ctx context.Context, c *Cluster, pool netip.Prefix) (outside []string, inside int, uids map[string]string) {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uids = map[string]string{}
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || p.DeletionTimestamp != nil || (p.Status.Phase != "Running" && p.Status.Phase != "Pending") {
			continue
		}
		uids[p.Namespace+"/"+p.Name] = string(p.UID)
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil && pool.Contains(ip) {
			inside++
		} else {
			outside = append(outside, p.Namespace+"/"+p.Name+" "+p.Status.PodIP)
		}
	}
	sort.Strings(outside)
	return outside, inside, uids
}

// TestInPlaceMigration is the one-shot method of seed 000 on a 4-node
// Flannel cluster with the Cilium simulation: plan explains the strategy,
// values --strategy in-place renders with every pinned chart, helm install
// gives Cilium every node's CNI config at once (new pods on Cilium, old ones
// untouched), a rollout stops at a PodDisruptionBudget that allows nothing
// (exit 10, the budget named, its pods untouched), the same rollout with the
// budgets relaxed restarts every remaining pod onto Cilium namespace by
// namespace and records the nodes done, a re-run changes nothing, and
// finalize takes it to the final values.
func TestInPlaceMigration(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	start := time.Now()
	PluginPath(t)
	c := NewCluster(t, Options{Nodes: Nodes(4)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := fixture.FlannelCluster(ctx, c.Cluster, "e2e-inplace"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix(ciliumPool)

	t.Run("plan explains the strategy and the SNAT", func(t *testing.T) {
		r := c.cli(t, "plan", "--strategy", "in-place", "-o", "json").mustSucceed(t)
		var p struct {
			Proposal struct {
				Strategy              string `json:"strategy"`
				StrategySource        string `json:"strategySource"`
				IPv4NativeRoutingCIDR string `json:"ipv4NativeRoutingCIDR"`
			} `json:"proposal"`
			planJSON
		}
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatalf("%v\n%s", err, r.Stdout)
		}
		if p.Proposal.Strategy != "in-place" || p.Proposal.StrategySource != "--strategy" || p.Proposal.IPv4NativeRoutingCIDR != "10.244.0.0/15" {
			t.Errorf("proposal %+v", p.Proposal)
		}
		if st, msg := p.check(t, "strategy"); st != "WARN" || !strings.Contains(msg, "demo/payments") || !strings.Contains(msg, "all 4 nodes at once") {
			t.Errorf("strategy: %s %s", st, msg)
		}
		if st, msg := p.check(t, "pod-snat"); st != "WARN" || !strings.Contains(msg, "flanneld --ip-masq") || !strings.Contains(msg, "ipv4NativeRoutingCIDR 10.244.0.0/15") {
			t.Errorf("pod-snat: %s %s", st, msg)
		}
		table := c.cli(t, "plan").mustSucceed(t)
		for _, want := range []string{"dual-overlay", "10.244.0.0/15 (ipv4NativeRoutingCIDR while the migration runs", "pod-snat", "--strategy in-place instead restarts each pod once"} {
			if !strings.Contains(table.Stdout, want) {
				t.Errorf("plan table lacks %q:\n%s", want, table.Stdout)
			}
		}
	})

	valuesDir := t.TempDir()
	t.Run("values --strategy in-place renders with every pinned chart", func(t *testing.T) {
		for _, v := range pinnedCilium(t, c) {
			t.Run(v, func(t *testing.T) {
				dir := filepath.Join(valuesDir, v)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				r := c.cli(t, "values", "--strategy", "in-place", "--cilium-version", v, "--output-dir", dir).mustSucceed(t)
				if !strings.Contains(r.Stderr, "then: kubectl cni-migrate rollout --strategy in-place") {
					t.Errorf("values does not say what comes next:\n%s", r.Stderr)
				}
				initial := renderCiliumConfig(t, ctx, c, v, filepath.Join(dir, "values-initial.yaml"))
				expect(t, "initial", initial, map[string]string{
					"custom-cni-conf":                "false",
					"cni-exclusive":                  "true",
					"write-cni-conf-when-ready":      "/host/etc/cni/net.d/05-cilium.conflist",
					"ipv4-native-routing-cidr":       "10.244.0.0/15",
					"unmanaged-pod-watcher-interval": "0",
					// From Flannel Cilium audits the policies through
					// the migration, with either method.
					"enable-policy":              "default",
					"policy-audit-mode":          "true",
					"enable-host-legacy-routing": "true",
					"routing-mode":               "tunnel",
					"tunnel-port":                "8473",
					"cluster-pool-ipv4-cidr":     ciliumPool,
					"enable-ipv4-masquerade":     "true",
				})
				if initial["enable-bpf-masquerade"] == "true" {
					t.Errorf("BPF masquerading on: the SNAT rules of docs/snat.md are the iptables ones")
				}
				final := renderCiliumConfig(t, ctx, c, v, filepath.Join(dir, "values-final.yaml"))
				expect(t, "final", final, map[string]string{
					"custom-cni-conf":            "false",
					"cni-exclusive":              "true",
					"enable-policy":              "default",
					"policy-audit-mode":          "false",
					"enable-host-legacy-routing": "false",
				})
				if w := final["unmanaged-pod-watcher-interval"]; w == "0" || w == "" {
					t.Errorf("final values keep the unmanaged-pod watcher off (%q)", w)
				}
				if v, ok := final["ipv4-native-routing-cidr"]; ok {
					t.Errorf("final values keep ipv4-native-routing-cidr %q", v)
				}
				for _, f := range []string{"values-initial.yaml", "values-final.yaml"} {
					if out, err := fixture.Helm(ctx, c.Cluster, "lint", fixture.CiliumChart(c.Cluster, v), "--values", filepath.Join(dir, f)); err != nil {
						t.Errorf("helm lint %s: %v\n%s", f, err, out)
					}
				}
			})
		}
	})

	installStart := time.Now()
	if err := fixture.InstallCilium(ctx, c.Cluster, nodeTestCilium, filepath.Join(valuesDir, nodeTestCilium, "values-initial.yaml")); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING helm install of Cilium %s with the in-place values: %v", nodeTestCilium, time.Since(installStart).Round(time.Millisecond))

	t.Run("after the install new pods start on Cilium, old ones keep flannel's addresses", func(t *testing.T) {
		for _, n := range []string{"control-plane", "worker-1", "worker-2", "worker-3"} {
			deadline := time.Now().Add(time.Minute)
			for {
				st, err := c.Sim.Node(n)
				if err != nil {
					t.Fatal(err)
				}
				if st.Ready {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %s not on Cilium in the sim: %+v", n, st)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		createPinnedPod(t, ctx, c, "worker-2", "fresh")
		waitCiliumAddresses(t, ctx, c, "worker-2", pool, 1)
		outside, _, _ := podNetworks(t, ctx, c, pool)
		if len(outside) < 10 {
			t.Errorf("only %d pods outside Cilium's pod CIDR before the rollout: %v", len(outside), outside)
		}
		r := c.cli(t, "plan", "-o", "json").mustSucceed(t)
		var p struct {
			Proposal struct{ Strategy, StrategySource string } `json:"proposal"`
			planJSON
		}
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatal(err)
		}
		if p.Proposal.Strategy != "in-place" || !strings.Contains(p.Proposal.StrategySource, "custom-cni-conf false") {
			t.Errorf("strategy not detected from the installed Cilium: %+v", p.Proposal)
		}
		if st, msg := p.check(t, "cilium"); st != "PASS" || !strings.Contains(msg, "the in-place migration is under way") {
			t.Errorf("cilium check: %s %s", st, msg)
		}
		// The dual-overlay node steps are refused on this Cilium.
		runNode(t, c, "node", "worker-1", "--reboot=skip").expect(t, 2, "--reboot does not apply to the in-place method (the installed Cilium owns the CNI configuration")
	})

	t.Run("a PodDisruptionBudget that allows nothing stops the rollout", func(t *testing.T) {
		// Only the payments budget is under test: the web (minAvailable 2)
		// and db budgets allow one eviction at a time, which on a loaded
		// machine can outlast the short --timeout below, so they are
		// relaxed and cannot hold a pod.
		for _, name := range []string{"web", "db"} {
			patch := []byte(`{"spec":{"minAvailable":null,"maxUnavailable":"100%"}}`)
			if _, err := c.Client.PolicyV1().PodDisruptionBudgets(fixture.WorkloadNamespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		pays, err := c.Client.CoreV1().Pods(fixture.WorkloadNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=payments"})
		if err != nil || len(pays.Items) == 0 {
			t.Fatalf("payments pods: %v", err)
		}
		before := map[string]string{}
		for _, p := range pays.Items {
			before[p.Name] = string(p.UID)
		}
		r := runNode(t, c, "rollout", "--strategy", "in-place", "--timeout", "8s")
		r.expect(t, 10, "kube-system: restart", "PodDisruptionBudget demo/payments (0 disruptions allowed) holds", "kubectl -n demo edit pdb payments", "namespaces before it are done")
		for _, p := range pays.Items {
			cur, err := c.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || string(cur.UID) != before[p.Name] {
				t.Errorf("payments pod %s was restarted although its budget allows no disruption: %v", p.Name, err)
			}
		}
		// kube-system went first and is done.
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cni-migrate-in-place", metav1.GetOptions{})
		if err != nil || !strings.HasPrefix(cm.Data["kube-system"], "restarted 2 pods") || cm.Data["demo"] != "" {
			t.Errorf("progress after the blocked run: %v %v", cm, err)
		}
		// Every other pod of the namespace moved; only the held ones are left.
		outside, _, _ := podNetworks(t, ctx, c, pool)
		if len(outside) != len(pays.Items) {
			t.Errorf("pods outside Cilium's pod CIDR after the blocked run: %v", outside)
		}
		for _, o := range outside {
			if !strings.HasPrefix(o, "demo/payments-") {
				t.Errorf("%s not restarted although no budget held it", o)
			}
		}
		for _, n := range []string{"control-plane", "worker-1", "worker-2", "worker-3"} {
			if ph := getNode(t, ctx, c, n).Annotations[annPhase]; ph != "" {
				t.Errorf("node %s recorded %q although the run failed", n, ph)
			}
		}
	})

	relaxPDBs(t, ctx, c, "payments", "db")
	var done inPlaceSummary
	t.Run("the rollout restarts every pod onto Cilium, namespace by namespace", func(t *testing.T) {
		rolloutStart := time.Now()
		r := runNode(t, c, "rollout", "--strategy", "in-place", "--timeout", "2m", "-o", "json")
		r.expect(t, 0, "demo: restart", "their replacements run on 10.245.0.0/16", "recorded phase done on nodes control-plane, worker-1, worker-2, worker-3")
		t.Logf("TIMING rollout --strategy in-place of the demo namespace on 4 nodes: %v", time.Since(rolloutStart).Round(time.Millisecond))
		if err := json.Unmarshal([]byte(r.stdout), &done); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if done.Kind != "InPlaceMigration" || done.Result != "ok" || len(done.Namespaces) != 2 ||
			done.Namespaces[0].Name != "kube-system" || done.Namespaces[0].Result != "already-done" ||
			done.Namespaces[1].Name != "demo" || done.Namespaces[1].Result != "restarted" {
			t.Errorf("summary %+v", done)
		}
		// Only the pods the budget held were left for this run.
		for _, p := range done.Namespaces[1].Pods {
			if !strings.HasPrefix(p, "demo/payments-") {
				t.Errorf("restarted %s, which the blocked run had moved already", p)
			}
		}
		for _, n := range done.Nodes {
			if n.PhaseAfter != "done" || n.OldPods != 0 {
				t.Errorf("node %+v", n)
			}
		}
		if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		outside, inside, _ := podNetworks(t, ctx, c, pool)
		if len(outside) != 0 || inside < 12 {
			t.Errorf("after the rollout %d pods on Cilium, outside: %v", inside, outside)
		}
		for _, n := range []string{"control-plane", "worker-1", "worker-2", "worker-3"} {
			node := getNode(t, ctx, c, n)
			if node.Annotations[annPhase] != "done" || node.Spec.Unschedulable || node.Labels[migrationLabel] != "" {
				t.Errorf("node %s: phase %q, cordoned %v, label %q", n, node.Annotations[annPhase], node.Spec.Unschedulable, node.Labels[migrationLabel])
			}
		}
		// status agrees: every pod managed by Cilium, every node done.
		st := statusSettles(t, ctx, c, pool, "ciliumEndpoints")
		if st.Pods.OldCIDR != 0 || st.Rollout.Done != 4 {
			t.Errorf("status: pods %+v, rollout %+v", st.Pods, st.Rollout)
		}
	})

	t.Run("a re-run changes nothing", func(t *testing.T) {
		_, _, uids := podNetworks(t, ctx, c, pool)
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cni-migrate-in-place", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodeRV := getNode(t, ctx, c, "worker-1").ResourceVersion
		runNode(t, c, "rollout").expect(t, 0, "nothing to restart", "already-done")
		runNode(t, c, "node", "worker-3", "--strategy", "in-place").expect(t, 0, "every pod on node worker-3 is on Cilium's pod CIDR 10.245.0.0/16; nothing to restart")
		_, _, after := podNetworks(t, ctx, c, pool)
		for k, v := range uids {
			if after[k] != v {
				t.Errorf("pod %s changed (%s -> %s)", k, v, after[k])
			}
		}
		cm2, _ := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cni-migrate-in-place", metav1.GetOptions{})
		if cm2 == nil || cm2.ResourceVersion != cm.ResourceVersion {
			t.Errorf("the re-run wrote the progress ConfigMap")
		}
		// Node objects change on their own (kwok's heartbeats), so compare the recorded phase time.
		if getNode(t, ctx, c, "worker-1").Annotations[annPhaseTime] == "" || nodeRV == "" {
			t.Errorf("phase time gone")
		}
	})

	t.Run("finalize takes Cilium to the final values", func(t *testing.T) {
		helm := filepath.Join(c.Cache, "bin", "helm")
		chart := fixture.CiliumChart(c.Cluster, nodeTestCilium)
		dir := t.TempDir()
		args := []string{"finalize", "--output-dir", dir, "--yes", "--helm", helm, "--chart", chart, "--remove-old-cni"}
		fin := runNode(t, c, args...)
		fin.expect(t, 0, "policyAuditMode: true -> false", "restarting the Cilium agents", "deleted ConfigMap kube-system/cni-migrate-in-place", "daemonset/kube-flannel-ds -n kube-flannel")
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["custom-cni-conf"] != "false" || cm.Data["enable-policy"] != "default" || cm.Data["policy-audit-mode"] != "false" || cm.Data["ipv4-native-routing-cidr"] != "" || cm.Data["unmanaged-pod-watcher-interval"] == "0" {
			t.Errorf("cilium-config after finalize: %v", cm.Data)
		}
		if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cni-migrate-in-place", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("progress ConfigMap still there: %v", err)
		}
		again := runNode(t, c, args...)
		again.expect(t, 0, "helm upgrade done")
	})
	t.Logf("TIMING TestInPlaceMigration: %v", time.Since(start).Round(time.Second))
}
