package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// The whole migration on the distributions' shapes, as TestRolloutFinalize
// does it on kubeadm's flannel: plan, values, Cilium installed with them,
// nodeconfig --apply, a rollout through the Cilium simulation, finalize
// --yes --remove-old-cni. What is simulated of k3s and RKE2 is what the
// plugin reads (the nodes' node-args annotations, RKE2's rke2-canal
// DaemonSet and ConfigMap); neither runs, so finalize has nothing real to
// switch off, and the tests check that it deletes nothing of theirs and
// says what the user changes in their configuration.

// distroCluster starts a cluster of n distroNodes and installs what steps
// put there, then CoreDNS and the demo workloads (their PDBs relaxed as
// TestRolloutFinalize does, so that a rollout drains).
func distroCluster(t *testing.T, n int, prefix string, serverArgs []string, steps ...func(context.Context, *cluster.Cluster) error) (*Cluster, context.Context) {
	t.Helper()
	PluginPath(t)
	start := time.Now()
	c := NewCluster(t, Options{Nodes: distroNodes(n, prefix, serverArgs...)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	for _, step := range append(steps, fixture.CoreDNS, fixture.Workloads) {
		if err := step(ctx, c.Cluster); err != nil {
			t.Fatal(err)
		}
	}
	if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 3*time.Minute, fixture.WorkloadNamespace); err != nil {
		t.Fatal(err)
	}
	relaxPDBs(t, ctx, c, "payments", "db")
	t.Logf("TIMING %s cluster with %d nodes: %v", prefix, n, time.Since(start).Round(time.Millisecond))
	return c, ctx
}

// installMigrationCilium writes the values (values --cilium-version) and
// installs Cilium with values-initial.yaml, then applies the
// CiliumNodeConfig.
func installMigrationCilium(t *testing.T, ctx context.Context, c *Cluster) string {
	t.Helper()
	dir := t.TempDir()
	v := runNode(t, c, "values", "--cilium-version", nodeTestCilium, "--output-dir", dir).expect(t, 0)
	if err := fixture.InstallCilium(ctx, c.Cluster, nodeTestCilium, filepath.Join(dir, "values-initial.yaml")); err != nil {
		t.Fatal(err)
	}
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	// What values says next, when the old CNI enforces policies (Canal):
	// the policy bridge, Ready before the first node.
	if strings.Contains(v.stderr, "policy-bridge --deploy") {
		runNode(t, c, "policy-bridge", "--deploy", "--image", "example.com/kubectl-cni-migrate:test").expect(t, 0, "the policy bridge is Ready")
	}
	return dir
}

// clusterObjects names the objects an old CNI's removal would delete
// (DaemonSets, Deployments, ConfigMaps, ServiceAccounts, ClusterRoles,
// ClusterRoleBindings, Namespaces), except Cilium's own, which its helm
// upgrade may change, and the policy bridge's (cni-migrate-*), which
// finalize removes first.
func clusterObjects(t *testing.T, ctx context.Context, c *Cluster) []string {
	t.Helper()
	var out []string
	add := func(kind, ns, name string) {
		if !strings.Contains(name, "cilium") && !strings.Contains(name, "hubble") && !strings.HasPrefix(name, "cni-migrate-policy-bridge") && !strings.HasPrefix(name, "cni-migrate-node-rules") {
			out = append(out, kind+"/"+ns+"/"+name)
		}
	}
	all := metav1.NamespaceAll
	ds, err := c.Client.AppsV1().DaemonSets(all).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing daemonsets: %v", err)
	}
	for _, o := range ds.Items {
		add("daemonset", o.Namespace, o.Name)
	}
	deps, err := c.Client.AppsV1().Deployments(all).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing deployments: %v", err)
	}
	for _, o := range deps.Items {
		add("deployment", o.Namespace, o.Name)
	}
	cms, err := c.Client.CoreV1().ConfigMaps(all).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing configmaps: %v", err)
	}
	for _, o := range cms.Items {
		add("configmap", o.Namespace, o.Name)
	}
	sas, err := c.Client.CoreV1().ServiceAccounts(all).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing serviceaccounts: %v", err)
	}
	for _, o := range sas.Items {
		add("serviceaccount", o.Namespace, o.Name)
	}
	crs, err := c.Client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing clusterroles: %v", err)
	}
	for _, o := range crs.Items {
		add("clusterrole", "", o.Name)
	}
	crbs, err := c.Client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing clusterrolebindings: %v", err)
	}
	for _, o := range crbs.Items {
		add("clusterrolebinding", "", o.Name)
	}
	nss, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing namespaces: %v", err)
	}
	for _, o := range nss.Items {
		if o.DeletionTimestamp == nil {
			add("namespace", "", o.Name)
		}
	}
	sort.Strings(out)
	return out
}

// rolloutAndFinalize migrates every node with one rollout (simulated
// reboots), then finalizes as TestRolloutFinalize does: a first finalize
// stops at Cilium's migration values (exit 16), the second, with --yes
// --remove-old-cni and the chart, upgrades Cilium and exits 0. It checks
// that the second deleted nothing but Cilium's migration objects (keep
// names objects that must be among those listed before it, as
// clusterObjects names them) and returns the stderr of both.
func rolloutAndFinalize(t *testing.T, ctx context.Context, c *Cluster, nodes int, keep ...string) string {
	t.Helper()
	start := time.Now()
	runNode(t, c, "rollout", "--reboot-command", rebootScript(t)+" {{.Node}}").expect(t, 0)
	t.Logf("TIMING rollout of %d nodes: %v", nodes, time.Since(start).Round(time.Second))
	after := status(t, c)
	if after.Rollout.Done != nodes || after.Rollout.Remaining != 0 || after.Next.Stage != "finalize" {
		t.Errorf("status after the rollout: %+v %+v", after.Rollout, after.Next)
	}

	valuesDir := t.TempDir()
	first := runNode(t, c, "finalize", "--output-dir", valuesDir).expect(t, 16, "Cilium still runs with its migration values")
	before := clusterObjects(t, ctx, c)
	for _, k := range keep {
		if !slices.Contains(before, k) {
			t.Fatalf("%s is not there before finalize: %v", k, before)
		}
	}
	helm := filepath.Join(c.Cache, "bin", "helm")
	chart := fixture.CiliumChart(c.Cluster, nodeTestCilium)
	fin := runNode(t, c, "finalize", "--output-dir", valuesDir, "--yes", "--helm", helm, "--chart", chart, "--remove-old-cni")
	fin.expect(t, 0, "deleted CiliumNodeConfig kube-system/cilium-default", "The old CNI is not removed by this plugin: ")
	if strings.Contains(fin.stderr, "deleting the old CNI's objects") {
		t.Errorf("finalize deleted objects of the old CNI:\n%s", fin.stderr)
	}
	left := map[string]bool{}
	for _, o := range clusterObjects(t, ctx, c) {
		left[o] = true
	}
	for _, o := range before {
		if !left[o] {
			t.Errorf("finalize deleted %s", o)
		}
	}
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["custom-cni-conf"] != "false" {
		t.Errorf("cilium-config after finalize: custom-cni-conf=%q", cm.Data["custom-cni-conf"])
	}
	return first.stderr + fin.stderr
}

// TestDistroK3sMigration: a k3s cluster (embedded flannel, embedded
// kube-proxy, no DaemonSet of either) migrated end to end. On the way a
// worker is migrated and rolled back: the rollback's instructions name
// k3s's CNI directory, where Cilium was given cni.confPath, not the
// CiliumNodeConfig's /host/etc/cni/net.d. Finalize deletes nothing (there
// is nothing of k3s's flannel to delete) and says what to set in k3s's
// configuration.
func TestDistroK3sMigration(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	const n = 3
	c, ctx := distroCluster(t, n, "k3s", []string{"--cluster-cidr", fixture.PodSubnet})
	p := cniPlan(t, c, 0)
	if cni := p.Cluster.CNI; cni == nil || cni.Name != "k3s-flannel" || cni.DaemonSet != "" {
		t.Fatalf("k3s's flannel: %+v", cni)
	}
	p.expectCheck(t, "k3s-config", "WARN", "flannel-backend: none and disable-network-policy: true")
	installMigrationCilium(t, ctx, c)

	t.Run("rollback names k3s's CNI directory", func(t *testing.T) {
		reboot := "--reboot-command=" + rebootScript(t) + " {{.Node}}"
		runNode(t, c, "node", "worker-1", reboot).expect(t, 0, "worker-1: uncordon")
		const dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
		rb := runNode(t, c, "rollback", "worker-1", reboot).expect(t, 0,
			"Cilium's agent no longer manages "+dir,
			"rm -f "+dir+"/05-cilium.conflist",
			"mv -n "+dir+"/10-flannel.conflist.cilium_bak "+dir+"/10-flannel.conflist")
		if strings.Contains(rb.stderr, "rm -f /etc/cni/net.d") || strings.Contains(rb.stderr, "mv -n /etc/cni/net.d") {
			t.Errorf("the rollback's commands name /etc/cni/net.d:\n%s", rb.stderr)
		}
	})

	stderr := rolloutAndFinalize(t, ctx, c, n, "deployment/kube-system/coredns", "configmap/kube-system/coredns")
	for _, want := range []string{
		"k3s's flannel is built into the k3s binary: there is no DaemonSet or ConfigMap to delete",
		"flannel-backend: none and disable-network-policy: true in /etc/rancher/k3s/config.yaml on every server node",
		"systemctl restart k3s",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("finalize output lacks %q:\n%s", want, stderr)
		}
	}
	for _, name := range []string{"control-plane", "worker-1", "worker-2"} {
		node := getNode(t, ctx, c, name)
		if node.Annotations["k3s.io/node-args"] == "" || node.Annotations["flannel.alpha.coreos.com/backend-type"] == "" {
			t.Errorf("node %s lost k3s's or flannel's annotations: %v", name, node.Annotations)
		}
	}
}

// TestDistroRKE2CanalMigration: RKE2's packaged Canal (the rke2-canal
// DaemonSet its HelmChart installs) migrated end to end after plan
// --ignore-unsupported-distribution (the other commands do not check the
// distribution). Finalize deletes nothing of the packaged CNI, which RKE2's
// helm-controller would re-create, and says to set cni: none.
func TestDistroRKE2CanalMigration(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	const n = 3
	c, ctx := distroCluster(t, n, "rke2", nil, fixture.KubeProxy, rke2Canal)
	cniPlan(t, c, 3).expectCheck(t, "distribution", "FAIL", "RKE2 does not support changing the CNI")
	// RKE2's canal runs flanneld with --ip-masq and the workloads carry a
	// NetworkPolicy: canal-masquerade FAILs and names RKE2's HelmChartConfig;
	// here the DaemonSet is changed the way that HelmChartConfig renders it
	// (no helm-controller runs on the simulated cluster).
	p := cniPlan(t, c, 3, "--ignore-unsupported-distribution")
	p.expectCheck(t, "canal-masquerade", "FAIL", "HelmChartConfig kube-system/rke2-canal")
	for _, args := range [][]string{
		{"-n", "kube-system", "set", "env", "daemonset/rke2-canal", "-c", "kube-flannel", "FLANNELD_IP_MASQ=false"},
		{"-n", "kube-system", "patch", "daemonset", "rke2-canal", "--type", "json", "-p", `[{"op":"replace","path":"/spec/template/spec/containers/1/command","value":["/opt/bin/flanneld","--kube-subnet-mgr"]}]`},
	} {
		if out, err := c.Kubectl(ctx, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	p = cniPlan(t, c, 0, "--ignore-unsupported-distribution")
	if cni := p.Cluster.CNI; cni == nil || cni.Name != "canal" || cni.DaemonSet != "rke2-canal" {
		t.Fatalf("RKE2's canal: %+v", cni)
	}
	installMigrationCilium(t, ctx, c)

	stderr := rolloutAndFinalize(t, ctx, c, n, "daemonset/kube-system/rke2-canal", "configmap/kube-system/rke2-canal-config",
		"daemonset/kube-system/kube-proxy", "deployment/kube-system/coredns")
	for _, want := range []string{
		"rke2-canal was installed by RKE2's HelmChart kube-system/rke2-canal",
		"nothing is deleted here",
		"Set cni: none in /etc/rancher/rke2/config.yaml on every server node",
		// Canal enforces policies: the bridge ran through the migration.
		"removed the policy bridge: daemonset/cni-migrate-node-rules",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("finalize output lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "rke2-canal", metav1.GetOptions{}); err != nil {
		t.Errorf("rke2-canal: %v", err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "rke2-canal-config", metav1.GetOptions{}); err != nil {
		t.Errorf("rke2-canal-config: %v", err)
	}
}
