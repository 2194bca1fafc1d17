package e2e

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/ciliumsim"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// migrationValues are the dual-overlay initial values of the Cilium
// migration guide (what the plugin generates as values-initial.yaml).
const migrationValues = `operator:
  unmanagedPodWatcher:
    restart: false
routingMode: tunnel
tunnelProtocol: vxlan
tunnelPort: 8473
cni:
  customConf: true
  uninstall: false
ipam:
  mode: cluster-pool
  operator:
    clusterPoolIPv4PodCIDRList: ["10.245.0.0/16"]
    clusterPoolIPv4MaskSize: 24
policyEnforcementMode: "never"
bpf:
  hostLegacyRouting: true
`

const ciliumNodeConfig = `apiVersion: cilium.io/v2
kind: CiliumNodeConfig
metadata:
  namespace: kube-system
  name: cilium-default
spec:
  nodeSelector:
    matchLabels:
      io.cilium.migration/cilium-default: "true"
  defaults:
    write-cni-conf-when-ready: /host/etc/cni/net.d/05-cilium.conflist
    custom-cni-conf: "false"
    cni-chaining-mode: "none"
    cni-exclusive: "true"
`

// TestClusterSmoke checks the harness end to end: a kubeadm-like Flannel
// cluster, Cilium 1.18 installed with the migration values, and one node
// migrated by hand.
func TestClusterSmoke(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	testStart := time.Now()
	env := NewCluster(t, Options{Nodes: Nodes(3)})
	t.Logf("TIMING cluster start incl. 3 nodes: %v", time.Since(testStart).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := env.Cluster
	cs := c.Client

	step := time.Now()
	if err := fixture.FlannelCluster(ctx, c, "cni-migrate-e2e"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING flannel fixture ready: %v", time.Since(step).Round(time.Millisecond))

	// Every pod-network pod so far has a flannel address from its node's podCIDR.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	podCIDR := map[string]netip.Prefix{}
	for _, n := range nodes.Items {
		podCIDR[n.Name] = netip.MustParsePrefix(n.Spec.PodCIDR)
	}
	web, err := cs.CoreV1().Pods(fixture.WorkloadNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range web.Items {
		if ip := netip.MustParseAddr(p.Status.PodIP); !podCIDR[p.Spec.NodeName].Contains(ip) {
			t.Errorf("pod %s on %s: IP %s not in node podCIDR %s", p.Name, p.Spec.NodeName, ip, podCIDR[p.Spec.NodeName])
		}
	}

	values := filepath.Join(t.TempDir(), "values-initial.yaml")
	if err := os.WriteFile(values, []byte(migrationValues), 0o644); err != nil {
		t.Fatal(err)
	}
	step = time.Now()
	if err := fixture.CiliumCRDs(ctx, c, "1.18.11"); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING cilium CRDs applied and established: %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	if err := fixture.InstallCilium(ctx, c, "1.18.11", values); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING helm install --wait (CRDs already there): %v", time.Since(step).Round(time.Millisecond))

	ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "cilium", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !fixture.DaemonSetReady(ds) || ds.Status.NumberReady != 3 {
		t.Fatalf("cilium DaemonSet not ready on 3 nodes: %+v", ds.Status)
	}
	agents, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium"})
	if err != nil {
		t.Fatal(err)
	}
	onNode := map[string]bool{}
	for _, p := range agents.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("cilium pod %s is %s", p.Name, p.Status.Phase)
		}
		onNode[p.Spec.NodeName] = true
	}
	if len(onNode) != 3 {
		t.Fatalf("cilium agents on %v, want all 3 nodes", onNode)
	}
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"cluster-pool-ipv4-cidr": "10.245.0.0/16", "tunnel-port": "8473", "custom-cni-conf": "true", "enable-policy": "never"} {
		if cm.Data[k] != want {
			t.Errorf("cilium-config %s = %q, want %q", k, cm.Data[k], want)
		}
	}
	if _, err := c.Apply(ctx, []byte(ciliumNodeConfig)); err != nil {
		t.Fatal(err)
	}

	// Migrate worker-1 by hand: label, then delete its agent pod.
	const migrated, other = "worker-1", "worker-2"
	step = time.Now()
	patch := []byte(`{"metadata":{"labels":{"` + ciliumsim.DefaultMigrationLabel + `":"true"}}}`)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, migrated, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	old, err := fixture.PodsOn(ctx, c, migrated, labels.SelectorFromSet(labels.Set{"k8s-app": "cilium"}))
	if err != nil || len(old) != 1 {
		t.Fatalf("cilium pods on %s: %v %v", migrated, len(old), err)
	}
	if err := cs.CoreV1().Pods("kube-system").Delete(ctx, old[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var cidr netip.Prefix
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(ciliumsim.CiliumNodes).Get(ctx, migrated, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		cidrs, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "ipam", "podCIDRs")
		if len(cidrs) == 0 {
			return false, nil
		}
		cidr = netip.MustParsePrefix(cidrs[0])
		st, err := env.Sim.Node(migrated)
		return st.Ready, err
	})
	if err != nil {
		t.Fatalf("CiliumNode %s with podCIDRs and a ready agent: %v", migrated, err)
	}
	if pool := netip.MustParsePrefix("10.245.0.0/16"); !pool.Contains(cidr.Addr()) || cidr.Bits() != 24 {
		t.Fatalf("CiliumNode %s podCIDR %s not a /24 of %s", migrated, cidr, pool)
	}
	t.Logf("TIMING node %s migrated (CiliumNode %s) in %v", migrated, cidr, time.Since(step).Round(time.Millisecond))
	if _, err := c.Dynamic.Resource(ciliumsim.CiliumNodes).Get(ctx, other, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CiliumNode %s exists or error (%v); only migrated nodes should have one", other, err)
	}

	// New pods: Cilium address on the migrated node, flannel on the other.
	newPod := func(name, node string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "probe"}},
			Spec: corev1.PodSpec{
				NodeName:    node,
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				Containers:  []corev1.Container{{Name: "probe", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53"}},
			},
		}
	}
	for _, p := range []*corev1.Pod{newPod("probe-migrated", migrated), newPod("probe-other", other)} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ips := map[string]netip.Addr{}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range []string{"probe-migrated", "probe-other"} {
			p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false, nil
			}
			ips[name] = netip.MustParseAddr(p.Status.PodIP)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("probe pods not running: %v", err)
	}
	if !cidr.Contains(ips["probe-migrated"]) {
		t.Errorf("pod on migrated node %s got %s, want an address in %s", migrated, ips["probe-migrated"], cidr)
	}
	if flannel := netip.MustParsePrefix("10.244.0.0/16"); !flannel.Contains(ips["probe-other"]) || !podCIDR[other].Contains(ips["probe-other"]) {
		t.Errorf("pod on %s got %s, want an address in its flannel podCIDR %s", other, ips["probe-other"], podCIDR[other])
	}
	// The migrated pod has a CiliumEndpoint with its address; the other none.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(ciliumsim.CiliumEndpoints).Namespace("default").Get(ctx, "probe-migrated", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		addrs, _, _ := unstructured.NestedSlice(u.Object, "status", "networking", "addressing")
		return len(addrs) == 1 && addrs[0].(map[string]any)["ipv4"] == ips["probe-migrated"].String(), nil
	})
	if err != nil {
		t.Errorf("CiliumEndpoint default/probe-migrated: %v", err)
	}
	if _, err := c.Dynamic.Resource(ciliumsim.CiliumEndpoints).Namespace("default").Get(ctx, "probe-other", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CiliumEndpoint default/probe-other should not exist (err %v)", err)
	}
	t.Logf("probe-migrated %s (CiliumNode %s), probe-other %s (podCIDR %s)", ips["probe-migrated"], cidr, ips["probe-other"], podCIDR[other])
	t.Logf("TIMING whole test before cleanup: %v", time.Since(testStart).Round(time.Millisecond))
}
