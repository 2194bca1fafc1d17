package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// The source CNIs other than Flannel, each from its upstream manifest
// (Calico, Canal, the Tigera operator: applied unchanged; Weave Net and
// kube-router: fixtures shaped like theirs, see fixture/cnis.go), detected
// by `plan -o json` and carried through `values`.

// cniPlanJSON is the part of `plan -o json` these tests read.
type cniPlanJSON struct {
	Cluster struct {
		CNI *struct {
			Name, Namespace, DaemonSet, ConfigMap, Version, Network, IPAM string
			Backend                                                       struct {
				Type string `json:"type"`
				Port int    `json:"port"`
				VNI  int    `json:"vni"`
			} `json:"backend"`
			EnforcesPolicy           bool   `json:"enforcesPolicy"`
			Install                  string `json:"install"`
			Installation             string `json:"installation"`
			Routing                  string `json:"routing"`
			UDPPorts                 []int  `json:"udpPorts"`
			NodeAddressAutodetection string `json:"nodeAddressAutodetection"`
			ServiceProxy             bool   `json:"serviceProxy"`
			Override                 string `json:"override"`
			Pools                    []struct {
				Name, CIDR, Encapsulation, Source string
				BlockSize                         int  `json:"blockSize"`
				Disabled                          bool `json:"disabled"`
			} `json:"pools"`
		} `json:"cni"`
		CNIsSeen       []struct{ Name, Object string }    `json:"cnisSeen"`
		PodCIDRs       []struct{ CIDR, Source string }    `json:"podCIDRs"`
		CalicoPolicies []struct{ Namespace, Name string } `json:"calicoPolicies"`
		KubeProxy      struct {
			Present bool `json:"present"`
		} `json:"kubeProxy"`
	} `json:"cluster"`
	Proposal *struct {
		PodCIDR              string `json:"podCIDR"`
		TunnelPort           int    `json:"tunnelPort"`
		KubeProxyReplacement bool   `json:"kubeProxyReplacement"`
	} `json:"proposal"`
	Checks []struct {
		ID, Status, Message, Fix string
		Commands                 []string
	} `json:"checks"`
}

// followCommands runs the commands plan gives for check id (plan -o json),
// as a user who follows its advice would, and fails if there are none.
func (p cniPlanJSON) followCommands(t *testing.T, ctx context.Context, c *Cluster, id string) {
	t.Helper()
	for _, ch := range p.Checks {
		if ch.ID != id {
			continue
		}
		if len(ch.Commands) == 0 {
			t.Fatalf("check %s gives no commands: %s", id, ch.Fix)
		}
		for _, cmd := range ch.Commands {
			x := exec.CommandContext(ctx, "bash", "-c", cmd)
			x.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
			if b, err := x.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, b)
			}
		}
		return
	}
	t.Fatalf("plan has no check %s", id)
}

func (p cniPlanJSON) check(t *testing.T, id string) (status, message, fix string) {
	t.Helper()
	for _, c := range p.Checks {
		if c.ID == id {
			return c.Status, c.Message, c.Fix
		}
	}
	return "", "", ""
}

// expectCheck fails unless check id has the status and its message (and
// fix) contain the strings.
func (p cniPlanJSON) expectCheck(t *testing.T, id, status string, has ...string) {
	t.Helper()
	st, msg, fix := p.check(t, id)
	if st != status {
		t.Errorf("check %s: %s %q (fix %q), want %s", id, st, msg, fix, status)
		return
	}
	for _, h := range has {
		if !strings.Contains(msg+" -> "+fix, h) {
			t.Errorf("check %s %q (fix %q) lacks %q", id, msg, fix, h)
		}
	}
}

// cniNodes are n simulated nodes; without flannel's node annotations
// unless the CNI runs flanneld (Canal).
func cniNodes(n int, flannel bool) []cluster.NodeSpec {
	specs := Nodes(n)
	for i := range specs {
		specs[i].NoFlannelAnnotations = !flannel
	}
	return specs
}

// cniCluster starts a cluster of n nodes running a kubeadm-like setup and
// the CNI that install puts there.
func cniCluster(t *testing.T, n int, flannel bool, install func(context.Context, *cluster.Cluster) error) (*Cluster, context.Context) {
	t.Helper()
	PluginPath(t)
	start := time.Now()
	c := NewCluster(t, Options{Nodes: cniNodes(n, flannel)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	if err := fixture.CNICluster(ctx, c.Cluster, "e2e-"+strings.ToLower(strings.SplitN(t.Name(), "/", 2)[0]), install); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 3*time.Minute, fixture.WorkloadNamespace); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING cluster with %d nodes and its CNI: %v", n, time.Since(start).Round(time.Millisecond))
	return c, ctx
}

// cniPlan runs `plan -o json ARGS` and decodes it.
func cniPlan(t *testing.T, c *Cluster, code int, args ...string) cniPlanJSON {
	t.Helper()
	r := c.cli(t, append([]string{"plan", "-o", "json"}, args...)...)
	if r.Code != code {
		t.Fatalf("plan %v: exit %d, want %d: %s\n%s", args, r.Code, code, r.Stderr, r.Stdout)
	}
	var p cniPlanJSON
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	return p
}

// valuesInitial is what the tests read of values-initial.yaml.
type valuesInitial struct {
	TunnelPort int `json:"tunnelPort"`
	IPAM       struct {
		Operator struct {
			ClusterPoolIPv4PodCIDRList []string `json:"clusterPoolIPv4PodCIDRList"`
		} `json:"operator"`
	} `json:"ipam"`
	KubeProxyReplacement string `json:"kubeProxyReplacement"`
	K8sServiceHost       string `json:"k8sServiceHost"`
}

// cniValues runs `values --output-dir DIR ARGS`, checks that Cilium's pool
// overlaps none of the pod networks plan found and that its tunnel port is
// none of the old CNI's, and returns values-initial.yaml and the dir.
func cniValues(t *testing.T, c *Cluster, p cniPlanJSON, args ...string) (valuesInitial, string) {
	t.Helper()
	dir := t.TempDir()
	c.cli(t, append([]string{"values", "--output-dir", dir}, args...)...).mustSucceed(t)
	data, err := os.ReadFile(filepath.Join(dir, "values-initial.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v valuesInitial
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.IPAM.Operator.ClusterPoolIPv4PodCIDRList) != 1 {
		t.Fatalf("pool list %v", v.IPAM.Operator.ClusterPoolIPv4PodCIDRList)
	}
	pool := netip.MustParsePrefix(v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0])
	for _, pc := range p.Cluster.PodCIDRs {
		if q, err := netip.ParsePrefix(pc.CIDR); err == nil && q.Overlaps(pool) {
			t.Errorf("Cilium's pool %s overlaps %s (%s)", pool, pc.CIDR, pc.Source)
		}
	}
	if p.Cluster.CNI != nil {
		for _, port := range append([]int{p.Cluster.CNI.Backend.Port}, p.Cluster.CNI.UDPPorts...) {
			if port == v.TunnelPort {
				t.Errorf("Cilium's tunnel port %d is %s's", v.TunnelPort, p.Cluster.CNI.Name)
			}
		}
	}
	return v, dir
}

func TestCanal(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := cniCluster(t, 3, true, func(ctx context.Context, c *cluster.Cluster) error {
		return fixture.ApplyCalicoManifest(ctx, c, fixture.CanalManifest)
	})
	// canal.yaml runs flanneld with --ip-masq and the workloads carry a
	// NetworkPolicy: plan FAILs until its fix turns the masquerading off.
	p := cniPlan(t, c, 3)
	p.expectCheck(t, "canal-masquerade", "FAIL", "masquerades connections from Cilium's pods", "drop the flows they allow", "FLANNELD_IP_MASQ=false")
	p.followCommands(t, ctx, c, "canal-masquerade")
	p = cniPlan(t, c, 0)
	p.expectCheck(t, "canal-masquerade", "PASS", "does not masquerade")
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "canal" || cni.Namespace != "kube-system" || cni.DaemonSet != "canal" || cni.ConfigMap != "canal-config" ||
		cni.Network != "10.244.0.0/16" || cni.Backend.Type != "vxlan" || cni.Backend.Port != 8472 || !cni.EnforcesPolicy ||
		cni.IPAM != "kubernetes" || !strings.HasPrefix(cni.Version, "v3.") {
		t.Fatalf("canal from the upstream canal.yaml: %+v", cni)
	}
	p.expectCheck(t, "cni", "PASS", "canal v3.")
	p.expectCheck(t, "cni-backend", "PASS", "canal uses the vxlan backend (port 8472")
	p.expectCheck(t, "network-policies", "PASS", "canal enforces them today, and Cilium from the install on", "policy-bridge --deploy before the first node")
	p.expectCheck(t, "calico-policies", "PASS")
	if st, _, _ := p.check(t, "node-address-autodetection"); st != "" {
		t.Errorf("Canal got the calico-node address check: %s", st)
	}
	v, _ := cniValues(t, c, p)
	if v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] != "10.245.0.0/16" || v.TunnelPort != 8473 {
		t.Errorf("values %+v", v)
	}
	table := c.cli(t, "plan").mustSucceed(t)
	for _, want := range []string{"canal v3.", "DaemonSet kube-system/canal, ConfigMap canal-config", "enforced by canal", "calico-policies"} {
		if !strings.Contains(table.Stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, table.Stdout)
		}
	}
}

// TestCalicoManifest: the default calico.yaml, BIRD and IP-in-IP, before
// calico-node created its pool (the simulated nodes run none), then with
// the address autodetection fixed the way plan says.
func TestCalicoManifest(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := cniCluster(t, 3, false, func(ctx context.Context, c *cluster.Cluster) error {
		return fixture.ApplyCalicoManifest(ctx, c, fixture.CalicoManifest)
	})
	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "calico" || cni.Install != "manifest" || cni.DaemonSet != "calico-node" || cni.ConfigMap != "calico-config" ||
		cni.Routing != "bgp" || cni.Backend.Type != "ipip" || cni.IPAM != "calico" || cni.NodeAddressAutodetection != "first-found" ||
		len(cni.Pools) != 1 || cni.Pools[0].CIDR != fixture.PodSubnet || cni.Pools[0].Encapsulation != "ipip" || cni.Pools[0].BlockSize != 26 {
		t.Fatalf("calico from the upstream calico.yaml: %+v", cni)
	}
	if !strings.Contains(cni.Pools[0].Source, "kubeadm-config networking.podSubnet") {
		t.Errorf("pool source %q", cni.Pools[0].Source)
	}
	p.expectCheck(t, "cni-backend", "WARN", "IP-in-IP with BGP (BIRD)", "outside the guide's tested path", `"vxlanMode":"Always"`, "calico_backend: vxlan")
	p.expectCheck(t, "node-address-autodetection", "WARN", "first-found", "cilium/cilium#31273",
		"kubectl -n kube-system set env daemonset/calico-node IP_AUTODETECTION_METHOD=kubernetes-internal-ip")
	p.expectCheck(t, "tunnel-port", "PASS", "8473", "4789")
	v, _ := cniValues(t, c, p)
	if v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] != "10.245.0.0/16" || v.TunnelPort != 8473 {
		t.Errorf("values %+v", v)
	}
	c.cli(t, "values", "--tunnel-port", "4789").mustFail(t, 4, "tunnel port 4789 is the one calico uses")

	// The fix plan printed, run as printed.
	if out, err := c.Kubectl(ctx, "-n", "kube-system", "set", "env", "daemonset/calico-node", "IP_AUTODETECTION_METHOD=kubernetes-internal-ip"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p = cniPlan(t, c, 0)
	p.expectCheck(t, "node-address-autodetection", "PASS", "kubernetes-internal-ip")
}

// TestCalicoVXLANMigration: calico-vxlan.yaml with the pool calico-node
// creates and a second pool on Cilium's first candidate; plan and values
// avoid both; then the whole migration, and finalize --remove-old-cni
// deletes Calico's own objects but keeps its CRDs and pools.
func TestCalicoVXLANMigration(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := cniCluster(t, 3, false, func(ctx context.Context, c *cluster.Cluster) error {
		if err := fixture.ApplyCalicoManifest(ctx, c, fixture.CalicoVXLANManifest); err != nil {
			return err
		}
		if err := fixture.CalicoIPPool(ctx, c, "default-ipv4-ippool", fixture.PodSubnet, "Always", "Never", false); err != nil {
			return err
		}
		if err := fixture.CalicoIPPool(ctx, c, "extra", "10.245.0.0/16", "Always", "Never", false); err != nil {
			return err
		}
		_, err := c.Apply(ctx, []byte(`apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: default.deny-metadata
spec:
  selector: all()
  types: [Egress]
`))
		return err
	})
	if out, err := c.Kubectl(ctx, "-n", "kube-system", "set", "env", "daemonset/calico-node", "IP_AUTODETECTION_METHOD=kubernetes-internal-ip"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "calico" || cni.Backend.Type != "vxlan" || cni.Backend.Port != 4789 || cni.Backend.VNI != 4096 ||
		cni.Routing != "" || cni.Network != fixture.PodSubnet+",10.245.0.0/16" || len(cni.Pools) != 2 {
		t.Fatalf("calico from calico-vxlan.yaml and its IPPools: %+v", cni)
	}
	p.expectCheck(t, "cni-backend", "PASS", "Calico uses VXLAN", "UDP port 4789, VNI 4096")
	p.expectCheck(t, "node-address-autodetection", "PASS")
	p.expectCheck(t, "calico-policies", "WARN", "1 Calico policy (1 global)", "CiliumNetworkPolicies")
	if p.Proposal == nil || p.Proposal.PodCIDR != "10.246.0.0/16" {
		t.Fatalf("proposal %+v: 10.245.0.0/16 is a Calico pool", p.Proposal)
	}
	c.cli(t, "values", "--pod-cidr", "10.245.0.0/16").mustFail(t, 4, "overlaps pod network 10.245.0.0/16 (calico IPPool extra)")
	v, dir := cniValues(t, c, p, "--cilium-version", nodeTestCilium)

	// The migration: Cilium with those values, every node, finalize.
	if err := fixture.InstallCilium(ctx, c.Cluster, nodeTestCilium, filepath.Join(dir, "values-initial.yaml")); err != nil {
		t.Fatal(err)
	}
	relaxPDBs(t, ctx, c, "payments", "db")
	runNode(t, c, "nodeconfig", "--apply").expect(t, 0)
	// Calico enforces policies: values keeps Cilium's enforcement on, and
	// no node moves before the policy bridge runs.
	if cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{}); err != nil || cm.Data["enable-policy"] != "default" {
		t.Fatalf("cilium-config from values-initial.yaml from Calico: %v enable-policy=%q", err, cm.Data["enable-policy"])
	}
	runNode(t, c, "rollout", "--reboot-command", rebootScript(t)+" {{.Node}}").expect(t, 15,
		`Cilium enforces network policies (cilium-config enable-policy "default") and the policy bridge in kube-system is not deployed`,
		"kubectl cni-migrate policy-bridge --deploy")
	// The policy bridge through the migration (its node rules with felix's);
	// finalize removes it.
	runNode(t, c, "policy-bridge", "--deploy", "--image", "example.com/kubectl-cni-migrate:test").expect(t, 0, "felix: true", "the policy bridge is Ready: bridge 1/1 ready, node rules ready on 3/3 nodes")
	start := time.Now()
	runNode(t, c, "rollout", "--reboot-command", rebootScript(t)+" {{.Node}}").expect(t, 0)
	t.Logf("TIMING rollout of 3 Calico nodes: %v", time.Since(start).Round(time.Second))
	p = cniPlan(t, c, 0)
	if p.Proposal == nil || p.Proposal.PodCIDR != v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] {
		t.Errorf("after the rollout the proposal moved: %+v", p.Proposal)
	}

	// What plan's calico-policies check tells the user to do before
	// finalize: Calico's policy as a Cilium one, stored under the real CRD
	// schema of the Cilium the migration installed.
	ccnp := schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
	tr := c.cli(t, "calico-policies").mustSucceed(t)
	for _, want := range []string{"# from Calico's GlobalNetworkPolicy default.deny-metadata: translated exactly", "kind: CiliumClusterwideNetworkPolicy", "name: calico-default.deny-metadata", "egress:\n  - {}"} {
		if !strings.Contains(tr.Stdout, want) {
			t.Errorf("calico-policies printed no %q:\n%s", want, tr.Stdout)
		}
	}
	// finalize refuses while the translation is not in the cluster.
	runNode(t, c, "finalize", "--output-dir", t.TempDir(), "--dry-run=client").expect(t, 15,
		"ciliumclusterwidenetworkpolicy.cilium.io/calico-default.deny-metadata missing (from GlobalNetworkPolicy default.deny-metadata)",
		"kubectl cni-migrate calico-policies --apply", "--accept-untranslated")
	runNode(t, c, "finalize", "--output-dir", t.TempDir(), "--dry-run=client", "--accept-untranslated").expect(t, 0,
		"warning: 1 Cilium policies translated from Calico's are not in the cluster as translated")
	c.cli(t, "calico-policies", "--apply", "--dry-run=server").mustSucceed(t)
	if _, err := c.Dynamic.Resource(ccnp).Get(ctx, "calico-default.deny-metadata", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a server dry run stored the policy: %v", err)
	}
	if r := c.cli(t, "calico-policies", "--apply").mustSucceed(t); !strings.Contains(r.Stdout, "ciliumclusterwidenetworkpolicy.cilium.io/calico-default.deny-metadata serverside-applied") {
		t.Errorf("calico-policies --apply: %s", r.Stdout)
	}
	if got, err := c.Dynamic.Resource(ccnp).Get(ctx, "calico-default.deny-metadata", metav1.GetOptions{}); err != nil ||
		got.GetLabels()["cni-migrate.io/translated-from"] != "calico" {
		t.Errorf("translated policy not stored: %v %v", err, got)
	}

	// A Calico policy changed after --apply: its translation is out of
	// date until applied again.
	if out, err := c.Kubectl(ctx, "patch", "globalnetworkpolicies.crd.projectcalico.org", "default.deny-metadata", "--type=merge",
		"-p", `{"spec":{"types":["Ingress","Egress"]}}`); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	runNode(t, c, "finalize", "--output-dir", t.TempDir(), "--dry-run=client").expect(t, 15,
		"calico-default.deny-metadata out of date (from GlobalNetworkPolicy default.deny-metadata)")
	c.cli(t, "calico-policies", "--apply").mustSucceed(t)

	helm := filepath.Join(c.Cache, "bin", "helm")
	chart := fixture.CiliumChart(c.Cluster, nodeTestCilium)
	fin := runNode(t, c, "finalize", "--output-dir", t.TempDir(), "--yes", "--helm", helm, "--chart", chart, "--remove-old-cni")
	fin.expect(t, 0, "Calico's 1 policies: their Cilium translation is in the cluster",
		"removed the policy bridge: daemonset/cni-migrate-node-rules, configmap/cni-migrate-node-rules, deployment/cni-migrate-policy-bridge",
		"daemonset/calico-node -n kube-system", "deployment/calico-kube-controllers -n kube-system",
		"poddisruptionbudget/calico-kube-controllers -n kube-system", "configmap/calico-config -n kube-system",
		"clusterrole/calico-node", "clusterrolebinding/calico-cni-plugin", "serviceaccount/calico-kube-controllers -n kube-system",
		"Kept: Calico's CustomResourceDefinitions", "removing what calico left on the 3 nodes (a Job cni-migrate-sweep-NODE per node",
		"worker-1: its Job succeeded, but what it removed could not be read")
	for _, bad := range []string{"kube-proxy", "coredns", "customresourcedefinition"} {
		if strings.Contains(strings.ToLower(fin.stderr[strings.Index(fin.stderr, "deleting the old CNI"):strings.Index(fin.stderr, "Kept:")]), bad) {
			t.Errorf("finalize deleted something of %s:\n%s", bad, fin.stderr)
		}
	}
	if _, err := c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("calico-node still there: %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "calico-kube-controllers", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("calico-kube-controllers still there: %v", err)
	}
	for _, name := range []string{"calico-node", "calico-kube-controllers", "calico-cni-plugin"} {
		if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole %s still there: %v", name, err)
		}
	}
	pools, err := c.Dynamic.Resource(schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}).List(ctx, metav1.ListOptions{})
	if err != nil || len(pools.Items) != 2 {
		t.Errorf("Calico's IPPools are not kept: %v %v", err, pools)
	}
	if _, err := c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-proxy: %v", err)
	}
	// Nothing left to remove; plan says Cilium owns the network.
	runNode(t, c, "finalize", "--output-dir", t.TempDir(), "--remove-old-cni").expect(t, 0, "no objects of the old CNI are left")
	c.cli(t, "plan").mustFail(t, 6, "already owns the network")
	// finalize keeps the translation (it replaces Calico's policy); --delete
	// removes it.
	if r := c.cli(t, "calico-policies", "--delete").mustSucceed(t); !strings.Contains(r.Stdout, "ciliumclusterwidenetworkpolicy.cilium.io/calico-default.deny-metadata deleted") {
		t.Errorf("calico-policies --delete: %s", r.Stdout)
	}
	if _, err := c.Dynamic.Resource(ccnp).Get(ctx, "calico-default.deny-metadata", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("translated policy still there: %v", err)
	}
}

// TestCalicoOperator: tigera-operator.yaml and custom-resources.yaml; the
// operator does not act on kwok nodes, detection reads the Installation.
func TestCalicoOperator(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, ctx := cniCluster(t, 3, false, fixture.CalicoOperator)
	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "calico" || cni.Install != "operator" || cni.Installation != "default" || cni.Namespace != "calico-system" ||
		len(cni.Pools) != 1 || cni.Pools[0].CIDR != "192.168.0.0/16" || cni.Pools[0].Encapsulation != "vxlan-cross-subnet" ||
		cni.Backend.Port != 4789 || cni.NodeAddressAutodetection != "first-found" {
		t.Fatalf("calico from the Installation of custom-resources.yaml: %+v", cni)
	}
	p.expectCheck(t, "cni", "PASS", "Tigera operator, Installation default")
	p.expectCheck(t, "cni-backend", "WARN", "VXLANCrossSubnet")
	const patch = `{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":{"firstFound":null,"kubernetes":"NodeInternalIP"}}}}`
	p.expectCheck(t, "node-address-autodetection", "WARN", "kubectl patch installation default --type=merge -p '"+patch+"'")
	v, _ := cniValues(t, c, p)
	if v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] != "10.245.0.0/16" || v.TunnelPort != 8473 {
		t.Errorf("values %+v", v)
	}

	// The printed patch, applied as printed, pins the address.
	if out, err := c.Kubectl(ctx, "patch", "installation", "default", "--type=merge", "-p", patch); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p = cniPlan(t, c, 0)
	p.expectCheck(t, "node-address-autodetection", "PASS", "kubernetes-internal-ip")
}

func TestWeave(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, _ := cniCluster(t, 3, false, func(ctx context.Context, c *cluster.Cluster) error { return fixture.Weave(ctx, c, "") })
	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "weave" || cni.DaemonSet != "weave-net" || cni.Network != "10.32.0.0/12" || cni.IPAM != "weave" ||
		cni.Backend.Type != "fastdp" || cni.Backend.Port != 6784 || fmt.Sprint(cni.UDPPorts) != "[6783 6784]" || !cni.EnforcesPolicy || cni.Version != "2.8.1" {
		t.Fatalf("weave: %+v", cni)
	}
	p.expectCheck(t, "cni-backend", "PASS", "fastdp")
	p.expectCheck(t, "network-policies", "WARN", "weave enforces them today")
	cniValues(t, c, p)
	c.cli(t, "values", "--tunnel-port", "6783").mustFail(t, 4, "tunnel port 6783 is the one weave uses")
	if r := c.cli(t, "plan", "--tunnel-protocol", "geneve", "--tunnel-port", "6784"); r.Code != 3 {
		t.Errorf("plan with weave's fastdp port: exit %d", r.Code)
	}
}

func TestKubeRouter(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	c, _ := cniCluster(t, 3, false, func(ctx context.Context, c *cluster.Cluster) error { return fixture.KubeRouter(ctx, c) })
	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "kube-router" || cni.Routing != "bgp" || !cni.ServiceProxy || !cni.EnforcesPolicy ||
		cni.Backend.Type != "ipip-cross-subnet" || cni.Network != fixture.PodSubnet || cni.ConfigMap != "kube-router-cfg" || cni.IPAM != "kubernetes" {
		t.Fatalf("kube-router: %+v", cni)
	}
	if p.Cluster.KubeProxy.Present || p.Proposal == nil || !p.Proposal.KubeProxyReplacement {
		t.Errorf("kube-proxy %+v, proposal %+v", p.Cluster.KubeProxy, p.Proposal)
	}
	p.expectCheck(t, "cni-backend", "WARN", "BGP (--run-router)", "not tested with BGP routing")
	p.expectCheck(t, "service-proxy", "WARN", "--run-service-proxy", "Cilium replaces it")
	v, _ := cniValues(t, c, p)
	if v.KubeProxyReplacement != "true" || v.K8sServiceHost != "127.0.0.1" || v.TunnelPort != 8473 {
		t.Errorf("values %+v", v)
	}
}

// TestSeveralOrNoCNIs: two providers at once, --from to pick one; a
// provider under names detection does not know, --from with
// --old-pod-cidr; Cilium already owning the network.
func TestSeveralOrNoCNIs(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	t.Run("canal and weave", func(t *testing.T) {
		c, _ := cniCluster(t, 2, true, func(ctx context.Context, c *cluster.Cluster) error {
			if err := fixture.ApplyCalicoManifest(ctx, c, fixture.CanalManifest); err != nil {
				return err
			}
			return fixture.Weave(ctx, c, "10.40.0.0/16")
		})
		r := c.cli(t, "plan")
		r.mustFail(t, 6, "more than one network provider found: canal (DaemonSet kube-system/canal), weave (DaemonSet kube-system/weave-net)")
		if !strings.Contains(r.Stderr, "--from canal or --from weave") {
			t.Errorf("no --from offered: %s", r.Stderr)
		}
		c.cli(t, "values").mustFail(t, 6, "more than one network provider found")
		p := cniPlan(t, c, 0, "--from", "weave")
		if p.Cluster.CNI == nil || p.Cluster.CNI.Name != "weave" || p.Cluster.CNI.Network != "10.40.0.0/16" {
			t.Fatalf("--from weave: %+v", p.Cluster.CNI)
		}
		p.expectCheck(t, "cni", "PASS", "also seen, left alone: canal (DaemonSet kube-system/canal)")
		cniValues(t, c, p, "--from", "weave")
		p = cniPlan(t, c, 3, "--from", "canal")
		if p.Cluster.CNI == nil || p.Cluster.CNI.Name != "canal" {
			t.Fatalf("--from canal: %+v", p.Cluster.CNI)
		}
		p.expectCheck(t, "canal-masquerade", "FAIL", "masquerades connections from Cilium's pods")
		// Both pod networks stay reserved whichever is chosen.
		c.cli(t, "values", "--from", "canal", "--pod-cidr", "10.40.0.0/16").mustFail(t, 4, "")
	})

	t.Run("unrecognised", func(t *testing.T) {
		PluginPath(t)
		c := NewCluster(t, Options{Nodes: cniNodes(2, false)})
		c.cli(t, "plan").mustFail(t, 6, "pass --from flannel|canal|calico|weave|kube-router --old-pod-cidr CIDR")
		c.cli(t, "plan", "--from", "calico").mustFail(t, 6, "--from calico --old-pod-cidr CIDR")
		p := cniPlan(t, c, 0, "--from", "calico", "--old-pod-cidr", "10.245.0.0/16")
		if p.Cluster.CNI == nil || p.Cluster.CNI.Override != "--from calico --old-pod-cidr 10.245.0.0/16" {
			t.Fatalf("%+v", p.Cluster.CNI)
		}
		p.expectCheck(t, "cni", "WARN", "not found under its usual names")
		v, _ := cniValues(t, c, p, "--from", "calico", "--old-pod-cidr", "10.245.0.0/16")
		if v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] != "10.246.0.0/16" || v.TunnelPort != 8473 {
			t.Errorf("values %+v", v)
		}
		c.cli(t, "values", "--from", "calico", "--old-pod-cidr", "10.245.0.0/16", "--tunnel-port", "4789").mustFail(t, 4, "tunnel port 4789 is the one calico uses")
	})

	t.Run("cilium owns the network", func(t *testing.T) {
		PluginPath(t)
		c := NewCluster(t, Options{Nodes: cniNodes(2, false)})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		values := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(values, []byte("ipam: {mode: cluster-pool, operator: {clusterPoolIPv4PodCIDRList: [10.245.0.0/16]}}\nroutingMode: tunnel\ntunnelProtocol: vxlan\noperator: {replicas: 1}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := fixture.InstallCilium(ctx, c.Cluster, nodeTestCilium, values); err != nil {
			t.Fatal(err)
		}
		r := c.cli(t, "plan")
		r.mustFail(t, 6, "Cilium "+nodeTestCilium+" already owns the network (DaemonSet kube-system/cilium, custom-cni-conf off) and no other network provider was found; there is nothing to migrate")
		p := cniPlan(t, c, 6)
		p.expectCheck(t, "cni", "FAIL", "already owns the network")
		c.cli(t, "values").mustFail(t, 6, "already owns the network")
	})
}
