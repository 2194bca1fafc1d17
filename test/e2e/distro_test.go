package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// The distributions: k3s with its embedded flannel (no DaemonSet: the
// nodes' k3s.io and flannel annotations tell), and RKE2 with its packaged
// Canal (the rke2-canal DaemonSet its HelmChart installs).

// distroNodes are n simulated nodes carrying the node-args annotation k3s
// or RKE2 writes (prefix "k3s" or "rke2"), the first a server started
// with serverArgs, and flannel's annotations.
func distroNodes(n int, prefix string, serverArgs ...string) []cluster.NodeSpec {
	specs := Nodes(n)
	for i := range specs {
		args := `["agent"]`
		if specs[i].ControlPlane {
			quoted := []string{`"server"`}
			for _, a := range serverArgs {
				quoted = append(quoted, `"`+a+`"`)
			}
			args = "[" + strings.Join(quoted, ",") + "]"
		}
		specs[i].Annotations = map[string]string{
			prefix + ".io/node-args": args,
			prefix + ".io/hostname":  specs[i].Name,
		}
		specs[i].Labels = map[string]string{"node.kubernetes.io/instance-type": prefix}
	}
	return specs
}

// TestDistroK3sFlannel: k3s's flannel is found from the nodes alone, plan
// says what to change in k3s's configuration and when, and the values give
// Cilium k3s's CNI directories; kube-proxy runs inside k3s.
func TestDistroK3sFlannel(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	c := NewCluster(t, Options{Nodes: distroNodes(3, "k3s", "--cluster-cidr", fixture.PodSubnet)})

	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "k3s-flannel" || cni.DaemonSet != "" || cni.Network != fixture.PodSubnet ||
		cni.Backend.Type != "vxlan" || cni.Backend.Port != 8472 || !cni.EnforcesPolicy {
		t.Fatalf("k3s's flannel: %+v", cni)
	}
	if !p.Cluster.KubeProxy.Present || p.Proposal == nil || p.Proposal.KubeProxyReplacement {
		t.Errorf("k3s's embedded kube-proxy: %+v, proposal %+v", p.Cluster.KubeProxy, p.Proposal)
	}
	p.expectCheck(t, "cni", "PASS", "k3s-flannel", "built into k3s, no DaemonSet", "flannel annotations on 3 of 3 nodes")
	p.expectCheck(t, "cni-backend", "PASS", "vxlan backend (port 8472, VNI 1)")
	p.expectCheck(t, "k3s-config", "WARN", "inside its own process", "flannel-backend: none and disable-network-policy: true", "/etc/rancher/k3s/config.yaml", "once every node is on Cilium")
	p.expectCheck(t, "distribution", "WARN", "k3s", "cni.confPath /var/lib/rancher/k3s/agent/etc/cni/net.d", "cni.binPath /var/lib/rancher/k3s/data/cni", "config.toml")

	v, dir := cniValues(t, c, p)
	if v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] != "10.245.0.0/16" || v.TunnelPort != 8473 || v.KubeProxyReplacement != "false" {
		t.Errorf("values %+v", v)
	}
	data, err := os.ReadFile(filepath.Join(dir, "values-initial.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var paths struct {
		CNI struct {
			ConfPath string `json:"confPath"`
			BinPath  string `json:"binPath"`
		} `json:"cni"`
	}
	if err := yaml.Unmarshal(data, &paths); err != nil {
		t.Fatal(err)
	}
	if paths.CNI.ConfPath != "/var/lib/rancher/k3s/agent/etc/cni/net.d" || paths.CNI.BinPath != "/var/lib/rancher/k3s/data/cni" {
		t.Errorf("values-initial.yaml cni: %+v\n%s", paths.CNI, data)
	}

	table := c.cli(t, "plan").mustSucceed(t)
	for _, want := range []string{"k3s-flannel", "k3s-config", "distribution"} {
		if !strings.Contains(table.Stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, table.Stdout)
		}
	}
}

// rke2Canal creates what RKE2's rke2-canal HelmChart installs, as far as
// detection reads it: the rke2-canal DaemonSet (Helm's labels, calico-node
// and kube-flannel containers) and its rke2-canal-config ConfigMap.
func rke2Canal(ctx context.Context, c *cluster.Cluster) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "rke2-canal-config", Namespace: "kube-system"},
		Data:       map[string]string{"masquerade": "true", "net-conf.json": `{"Network": "` + fixture.PodSubnet + `", "Backend": {"Type": "vxlan"}}`},
	}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return err
	}
	labels := map[string]string{"k8s-app": "canal"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "rke2-canal", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "canal", "app.kubernetes.io/managed-by": "Helm"},
			Annotations: map[string]string{"meta.helm.sh/release-name": "rke2-canal", "meta.helm.sh/release-namespace": "kube-system"}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork: true,
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{
						{Name: "calico-node", Image: "rancher/hardened-calico:v3.29.1-build20250108"},
						{Name: "kube-flannel", Image: "rancher/hardened-flannel:v0.26.1-build20241210", Command: []string{"/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"}},
					},
					Volumes: []corev1.Volume{{Name: "flannel-cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "rke2-canal-config"}}}}},
				},
			},
		},
	}
	_, err := c.Client.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{})
	return err
}

// TestDistroRKE2Canal: RKE2's packaged Canal is found as Canal, and plan
// FAILs its distribution check (RKE2 does not support changing the CNI)
// unless --ignore-unsupported-distribution, which makes it a WARN.
func TestDistroRKE2Canal(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	c := NewCluster(t, Options{Nodes: distroNodes(2, "rke2")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := rke2Canal(ctx, c.Cluster); err != nil {
		t.Fatal(err)
	}

	p := cniPlan(t, c, 3)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "canal" || cni.DaemonSet != "rke2-canal" || cni.ConfigMap != "rke2-canal-config" || cni.Network != fixture.PodSubnet {
		t.Fatalf("RKE2's canal: %+v", cni)
	}
	p.expectCheck(t, "cni", "PASS", "canal", "DaemonSet kube-system/rke2-canal")
	p.expectCheck(t, "distribution", "FAIL", "rke2", "HelmChart kube-system/rke2-canal", "RKE2 does not support changing the CNI", "--ignore-unsupported-distribution")

	p = cniPlan(t, c, 0, "--ignore-unsupported-distribution")
	p.expectCheck(t, "distribution", "WARN", "RKE2 does not support changing the CNI", "migrating anyway", "cni: none")
}

// TestDistroOldFlannel: an old flannel install (one DaemonSet per
// architecture in kube-system, kube-flannel-cfg there with a custom VXLAN
// port and VNI) is one provider, and a node on 10.245.0.0/16, the first
// candidate for Cilium's pod CIDR, makes plan skip it and say so (the
// simulated nodes' InternalIPs are loopback addresses: flannel's public-ip
// annotation, the node's address on the network flannel uses, says it).
func TestDistroOldFlannel(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	nodes := Nodes(3)
	nodes[1].Annotations = map[string]string{"flannel.alpha.coreos.com/public-ip": "10.245.0.21"}
	c := NewCluster(t, Options{Nodes: nodes})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-cfg", Namespace: "kube-system"},
		Data:       map[string]string{"net-conf.json": `{"Network": "` + fixture.PodSubnet + `", "Backend": {"Type": "vxlan", "Port": 4790, "VNI": 4096}}`},
	}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		labels := map[string]string{"app": "flannel", "arch": arch}
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-ds-" + arch, Namespace: "kube-system", Labels: labels},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						HostNetwork:  true,
						NodeSelector: map[string]string{"kubernetes.io/arch": arch},
						Containers:   []corev1.Container{{Name: "kube-flannel", Image: "quay.io/coreos/flannel:v0.11.0-" + arch, Command: []string{"/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"}}},
						Volumes:      []corev1.Volume{{Name: "flannel-cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-flannel-cfg"}}}}},
					},
				},
			},
		}
		if _, err := c.Client.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	p := cniPlan(t, c, 0)
	cni := p.Cluster.CNI
	if cni == nil || cni.Name != "flannel" || cni.Namespace != "kube-system" || cni.DaemonSet != "kube-flannel-ds-amd64" || cni.ConfigMap != "kube-flannel-cfg" ||
		cni.Backend.Port != 4790 || cni.Backend.VNI != 4096 {
		t.Fatalf("old flannel: %+v", cni)
	}
	p.expectCheck(t, "cni-backend", "PASS", "port 4790, VNI 4096")
	p.expectCheck(t, "pod-cidr", "PASS", "10.246.0.0/16 (first candidate that overlaps nothing)", "skipped 10.245.0.0/16 (node worker-1 flannel public-ip 10.245.0.21)")
	v, _ := cniValues(t, c, p)
	if v.IPAM.Operator.ClusterPoolIPv4PodCIDRList[0] != "10.246.0.0/16" || v.TunnelPort != 8473 {
		t.Errorf("values %+v", v)
	}
}
