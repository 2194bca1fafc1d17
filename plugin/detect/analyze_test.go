package detect

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

var update = flag.Bool("update", false, "rewrite golden files")

// loadSnapshot builds a Snapshot from YAML fixture files, as Fetch would
// from the API.
func loadSnapshot(t *testing.T, files ...string) *Snapshot {
	t.Helper()
	var streams [][]byte
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, data)
	}
	s, err := LoadSnapshot(streams...)
	if err != nil {
		t.Fatalf("%v: %v", files, err)
	}
	s.ServerVersion, s.KubeconfigCluster, s.APIServerURL = "v1.34.4", "kind-dev", "https://192.168.10.10:6443"
	return s
}

// result is what the golden files hold: the Cluster and its Problem.
type result struct {
	Cluster *Cluster `json:"cluster"`
	Problem string   `json:"problem,omitempty"`
	Code    int      `json:"code"`
}

func TestAnalyzeGolden(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		// tweak adjusts the snapshot for cases no fixture file covers.
		tweak func(*Snapshot)
		// override is what --from and --old-pod-cidr say.
		override Override
		check    func(t *testing.T, c *Cluster)
	}{
		{
			name:  "flannel-kubeadm",
			files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "kubeadm.yaml", "workloads.yaml"},
			check: func(t *testing.T, c *Cluster) {
				want := Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}
				if c.CNI == nil || c.CNI.Network != "10.244.0.0/16" || c.CNI.Backend != want || c.CNI.Version != "v0.28.4" {
					t.Errorf("flannel: %+v", c.CNI)
				}
				if c.Name != "prod-eu1" || c.ServiceCIDRs[0].Source != "ServiceCIDR objects" {
					t.Errorf("name %q, service %+v", c.Name, c.ServiceCIDRs)
				}
				if c.KubeProxy.Mode != "iptables" || c.KubeProxy.ClusterCIDR != "10.244.0.0/16" || c.KubeProxy.Kind != "DaemonSet" ||
					c.KubeProxy.APIServer != "https://k8s-api.prod-eu1.example:6443" {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
				if len(c.BlockingPDBs) != 1 || c.BlockingPDBs[0].Name != "db" {
					t.Errorf("blocking PDBs %+v", c.BlockingPDBs)
				}
				if cp := c.ControlPlaneNodes(); len(cp) != 1 || cp[0] != "cp-1" {
					t.Errorf("control plane %v", cp)
				}
			},
		},
		{
			name:  "flannel-no-servicecidr-objects",
			files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "kubeadm.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.ServiceCIDRs[0].Source != "kube-apiserver --service-cluster-ip-range" {
					t.Errorf("service %+v", c.ServiceCIDRs)
				}
			},
		},
		{
			name:  "flannel-legacy-kube-system",
			files: []string{"common-nodes.yaml", "flannel-legacy.yaml"},
			tweak: func(s *Snapshot) { s.KubernetesServiceIP = "10.32.0.1" },
			check: func(t *testing.T, c *Cluster) {
				want := Backend{Type: "vxlan", Port: 4790, VNI: 4096}
				if c.CNI == nil || c.CNI.Namespace != "kube-system" || c.CNI.Network != "172.30.0.0/16" || c.CNI.Backend != want {
					t.Errorf("flannel: %+v", c.CNI)
				}
				if !c.ServiceCIDRs[0].Guessed || c.ServiceCIDRs[0].CIDR != "10.32.0.0/12" {
					t.Errorf("service %+v", c.ServiceCIDRs)
				}
				if c.KubeProxy.Kind != "static pods" || c.KubeProxy.Mode != "ipvs" || c.KubeProxy.ClusterCIDR != "172.30.0.0/16" {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
				if c.Name != "kind-dev" || c.NameSource != "kubeconfig cluster name" {
					t.Errorf("name %q from %q", c.Name, c.NameSource)
				}
			},
		},
		{
			name:  "flannel-host-gw-no-kube-proxy",
			files: []string{"common-nodes.yaml", "flannel-hostgw.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.CNI == nil || c.CNI.Backend.Type != "host-gw" || c.CNI.Backend.Port != 0 || c.CNI.ConfigMap != "custom-flannel" {
					t.Errorf("flannel: %+v", c.CNI)
				}
				if c.KubeProxy.Present || len(c.ServiceCIDRs) != 0 {
					t.Errorf("kube-proxy %+v services %+v", c.KubeProxy, c.ServiceCIDRs)
				}
			},
		},
		{
			name:  "flannel-with-cilium-in-migration-mode",
			files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "kubeadm.yaml", "cilium-migration.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if !c.Cilium.Installed || !c.Cilium.MigrationMode || c.Cilium.Version != "1.18.11" || c.Cilium.TunnelPort != 8473 {
					t.Errorf("cilium %+v", c.Cilium)
				}
			},
		},
		{name: "cilium-owns-network", files: []string{"common-nodes.yaml", "cilium-owner.yaml"}},
		{name: "calico", files: []string{"common-nodes.yaml", "calico.yaml"}},
		{name: "flannel-and-calico", files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml", "calico.yaml"}},
		{name: "nothing", files: []string{"common-nodes.yaml"}},
		{
			name:  "canal",
			files: []string{"common-nodes.yaml", "kubeadm.yaml", "canal.yaml", "workloads.yaml"},
			check: func(t *testing.T, c *Cluster) {
				want := Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}
				if c.Problem != nil || c.CNI == nil || c.CNI.Name != "canal" || c.CNI.Network != "10.244.0.0/16" || c.CNI.Backend != want ||
					!c.CNI.EnforcesPolicy || c.CNI.ConfigMap != "canal-config" || c.CNI.Version != "v3.28.5" || c.CNI.IPAM != "kubernetes" {
					t.Errorf("canal: %+v (%v)", c.CNI, c.Problem)
				}
				if len(c.PodCIDRs) == 0 || c.PodCIDRs[0].Source != "canal canal-config net-conf.json Network" {
					t.Errorf("pod CIDRs %+v", c.PodCIDRs)
				}
				if f := c.CNI.FlannelContainer; f == nil || f.Name == "" || c.CNI.IPMasq == nil {
					t.Errorf("flannel container %+v, ip-masq %v", f, c.CNI.IPMasq)
				}
			},
		},
		{
			name:  "canal-ippool",
			files: []string{"common-nodes.yaml", "kubeadm.yaml", "canal.yaml", "canal-ippool.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.CNI == nil || len(c.CNI.Pools) != 1 || !c.CNI.Pools[0].NATOutgoing || c.CNI.Pools[0].CIDR != "10.244.0.0/16" || c.CNI.IPAM != "kubernetes" {
					t.Errorf("canal's pools: %+v", c.CNI)
				}
			},
		},
		{
			name:  "calico-manifest-ipip",
			files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-manifest.yaml"},
			check: func(t *testing.T, c *Cluster) {
				cni := c.CNI
				if c.Problem != nil || cni == nil || cni.Install != "manifest" || cni.Routing != "bgp" || cni.Backend.Type != "ipip" || cni.Backend.Port != 0 ||
					cni.NodeAddressAutodetection != "first-found" || cni.IPAM != "calico" || cni.ConfigMap != "calico-config" || len(cni.UDPPorts) != 1 || cni.UDPPorts[0] != 4789 {
					t.Fatalf("calico: %+v (%v)", cni, c.Problem)
				}
				if len(cni.Pools) != 1 || cni.Pools[0].CIDR != "10.244.0.0/16" || cni.Pools[0].BlockSize != 26 || !cni.Pools[0].NATOutgoing {
					t.Errorf("pools %+v", cni.Pools)
				}
				if cni.FelixMarkMask != 0xff000000 {
					t.Errorf("felix's mark mask %#x, want FELIX_IPTABLESMARKMASK's 0xff000000", cni.FelixMarkMask)
				}
			},
		},
		{
			name:  "calico-vxlan",
			files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-vxlan.yaml"},
			check: func(t *testing.T, c *Cluster) {
				cni := c.CNI
				want := Backend{Type: "vxlan", Port: 4789, PortDefaulted: true, VNI: 4096, MTU: 1450}
				if c.Problem != nil || cni == nil || cni.Backend != want || cni.Routing != "" || cni.Network != "10.245.0.0/16" ||
					cni.NodeAddressAutodetection != "kubernetes-internal-ip" || len(cni.Pools) != 2 || !cni.Pools[1].Disabled {
					t.Fatalf("calico: %+v (%v)", cni, c.Problem)
				}
				if len(c.CalicoPolicies) != 2 {
					t.Errorf("calico policies %+v", c.CalicoPolicies)
				}
				var cidrs []string
				for _, pc := range c.PodCIDRs {
					cidrs = append(cidrs, pc.CIDR)
				}
				if strings.Join(cidrs, ",") != "10.245.0.0/16,10.246.0.0/16,10.244.0.0/16" {
					t.Errorf("pod CIDRs %v: every pool, disabled ones too, is reserved", cidrs)
				}
			},
		},
		{
			name:  "calico-operator",
			files: []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-operator.yaml"},
			check: func(t *testing.T, c *Cluster) {
				cni := c.CNI
				if c.Problem != nil || cni == nil || cni.Install != "operator" || cni.Installation != "default" || cni.Namespace != "calico-system" ||
					cni.Backend.Type != "vxlan-cross-subnet" || cni.Backend.Port != 4789 || cni.NodeAddressAutodetection != "first-found" ||
					len(cni.Pools) != 1 || cni.Pools[0].CIDR != "192.168.0.0/16" || cni.Routing != "bgp" {
					t.Fatalf("calico: %+v (%v)", cni, c.Problem)
				}
			},
		},
		{
			name:  "weave",
			files: []string{"plain-nodes.yaml", "kubeadm.yaml", "weave.yaml"},
			check: func(t *testing.T, c *Cluster) {
				cni := c.CNI
				want := Backend{Type: "fastdp", Port: 6784, PortDefaulted: true, MTU: 1376}
				if c.Problem != nil || cni == nil || cni.Name != "weave" || cni.Network != "10.40.0.0/16" || cni.Backend != want || !cni.EnforcesPolicy ||
					cni.IPAM != "weave" || cni.Version != "2.8.1" || len(cni.UDPPorts) != 2 {
					t.Fatalf("weave: %+v (%v)", cni, c.Problem)
				}
			},
		},
		{
			name:  "kube-router",
			files: []string{"plain-nodes.yaml", "kubeadm.yaml", "kube-router.yaml"},
			tweak: dropKubeProxy,
			check: func(t *testing.T, c *Cluster) {
				cni := c.CNI
				if c.Problem != nil || cni == nil || cni.Name != "kube-router" || cni.Routing != "bgp" || !cni.ServiceProxy || !cni.EnforcesPolicy ||
					cni.Backend.Type != "ipip-cross-subnet" || cni.Backend.MTU != 1480 || cni.Network != "10.244.0.0/16" || cni.ConfigMap != "kube-router-cfg" {
					t.Fatalf("kube-router: %+v (%v)", cni, c.Problem)
				}
				if c.KubeProxy.Present {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
			},
		},
		{name: "canal-and-weave", files: []string{"common-nodes.yaml", "canal.yaml", "weave.yaml"}},
		{
			name: "canal-and-weave-from-weave", files: []string{"common-nodes.yaml", "canal.yaml", "weave.yaml"},
			override: Override{From: "weave"},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.Name != "weave" || len(c.CNIsSeen) != 2 || len(c.PodCIDRs) != 2 || c.PodCIDRs[1].CIDR != "10.244.0.0/16" {
					t.Fatalf("%+v (%v)", c.CNI, c.Problem)
				}
			},
		},
		{
			name: "nothing-from-calico", files: []string{"plain-nodes.yaml"},
			override: Override{From: "calico", OldPodCIDRs: []string{"10.50.0.0/16", "10.51.0.0/16"}},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.Name != "calico" || c.CNI.Network != "10.50.0.0/16,10.51.0.0/16" || c.CNI.UDPPorts[0] != 4789 ||
					c.CNI.Override != "--from calico --old-pod-cidr 10.50.0.0/16 --old-pod-cidr 10.51.0.0/16" || c.PodCIDRs[0].Source != "--old-pod-cidr" {
					t.Fatalf("%+v (%v)", c.CNI, c.Problem)
				}
			},
		},
		{name: "nothing-from-calico-without-cidr", files: []string{"plain-nodes.yaml"}, override: Override{From: "calico"}},
		{
			name: "flannel-old-pod-cidr", files: []string{"common-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml"},
			override: Override{OldPodCIDRs: []string{"10.244.0.0/15"}},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.Network != "10.244.0.0/15" || c.CNI.Backend.Port != 8472 || c.PodCIDRs[0].CIDR != "10.244.0.0/15" {
					t.Fatalf("%+v (%v)", c.CNI, c.Problem)
				}
			},
		},
		{
			// One DaemonSet per architecture (old manifests) is one install.
			name:  "flannel-legacy-multiarch",
			files: []string{"common-nodes.yaml", "flannel-legacy-multiarch.yaml", "flannel-legacy.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.DaemonSet != "kube-flannel-ds-amd64" || c.CNI.ConfigMap != "kube-flannel-cfg" ||
					strings.Join(c.CNI.ArchDaemonSets, ",") != "kube-flannel-ds-amd64,kube-flannel-ds-arm,kube-flannel-ds-arm64" || c.CNI.Backend.Port != 4790 || c.CNI.Backend.VNI != 4096 {
					t.Fatalf("cni %+v (%v)", c.CNI, c.Problem)
				}
			},
		},
		{
			name:  "k3s-flannel",
			files: []string{"k3s-nodes.yaml"},
			check: func(t *testing.T, c *Cluster) {
				want := Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}
				if c.Problem != nil || c.CNI == nil || c.CNI.Name != "k3s-flannel" || c.CNI.Embedded != "k3s" || !c.CNI.Found() ||
					c.CNI.Network != "10.42.0.0/16" || c.CNI.Backend != want || !c.CNI.EnforcesPolicy || c.CNI.IPMasq == nil || !*c.CNI.IPMasq {
					t.Fatalf("cni %+v (%v)", c.CNI, c.Problem)
				}
				if d := c.Distribution; d == nil || d.Name != "k3s" || d.Version != "v1.31.4+k3s1" || d.CNIConfDir != K3sCNIConfDir || d.CNIBinDir != K3sCNIBinDir {
					t.Errorf("distribution %+v", d)
				}
				if len(c.ServiceCIDRs) != 1 || c.ServiceCIDRs[0].CIDR != "10.43.0.0/16" || c.ServiceCIDRs[0].Guessed {
					t.Errorf("service %+v", c.ServiceCIDRs)
				}
				if !c.KubeProxy.Present || c.KubeProxy.Kind != "embedded in k3s" || c.KubeProxy.ClusterCIDR != "10.42.0.0/16" {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
				if cp := c.ControlPlaneNodes(); len(cp) != 1 || cp[0] != "k3s-server-1" {
					t.Errorf("control plane %v", cp)
				}
			},
		},
		{
			// k3s started with its own CIDRs, host-gw, no network policy
			// controller and no kube-proxy (config.yaml values are in
			// k3s.io/node-args).
			name:  "k3s-flannel-configured",
			files: []string{"k3s-nodes.yaml"},
			tweak: func(s *Snapshot) {
				s.Nodes[0].Annotations["k3s.io/node-args"] = `["server","--cluster-cidr","10.52.0.0/16","--service-cidr=10.53.0.0/16","--flannel-backend","host-gw","--disable-network-policy","--disable-kube-proxy"]`
				for i := range s.Nodes {
					s.Nodes[i].Annotations[annFlannelBackendType] = "host-gw"
					delete(s.Nodes[i].Annotations, annFlannelBackendData)
				}
			},
			check: func(t *testing.T, c *Cluster) {
				if c.CNI == nil || c.CNI.Network != "10.52.0.0/16" || c.CNI.Backend != (Backend{Type: "host-gw"}) || c.CNI.EnforcesPolicy || len(c.CNI.UDPPorts) != 0 {
					t.Fatalf("cni %+v (%v)", c.CNI, c.Problem)
				}
				if len(c.ServiceCIDRs) != 1 || c.ServiceCIDRs[0].CIDR != "10.53.0.0/16" || c.KubeProxy.Present {
					t.Errorf("service %+v kube-proxy %+v", c.ServiceCIDRs, c.KubeProxy)
				}
			},
		},
		{
			// k3s with --flannel-backend=none and a flannel DaemonSet of its
			// own: that flannel is the CNI; k3s's CNI directories still apply.
			name:  "k3s-with-flannel-daemonset",
			files: []string{"k3s-nodes.yaml", "flannel-daemonset.yaml", "flannel-configmap.yaml"},
			tweak: func(s *Snapshot) {
				s.Nodes[0].Annotations["k3s.io/node-args"] = `["server","--flannel-backend","none","--disable-network-policy"]`
			},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.Name != "flannel" || c.CNI.Embedded != "" {
					t.Fatalf("cni %+v (%v)", c.CNI, c.Problem)
				}
				if c.Distribution == nil || c.Distribution.CNIConfDir != K3sCNIConfDir {
					t.Errorf("distribution %+v", c.Distribution)
				}
				for _, seen := range c.CNIsSeen {
					if seen.Name == "k3s-flannel" {
						t.Errorf("k3s-flannel seen: %+v", c.CNIsSeen)
					}
				}
			},
		},
		{
			name:  "rke2-canal",
			files: []string{"rke2-nodes.yaml", "rke2-canal.yaml"},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.Name != "canal" || c.CNI.DaemonSet != "rke2-canal" || c.CNI.ConfigMap != "rke2-canal-config" || c.CNI.Network != "10.42.0.0/16" {
					t.Fatalf("cni %+v (%v)", c.CNI, c.Problem)
				}
				if d := c.Distribution; d == nil || d.Name != "rke2" || d.CNIConfDir != "" || RKE2Chart(c.CNI) != "rke2-canal" {
					t.Errorf("distribution %+v", d)
				}
				if !c.KubeProxy.Present || c.KubeProxy.Kind != "static pods" {
					t.Errorf("kube-proxy %+v", c.KubeProxy)
				}
			},
		},
		{
			// --from k3s-flannel on nodes that show no k3s.
			name: "nothing-from-k3s-flannel", files: []string{"plain-nodes.yaml"},
			override: Override{From: "k3s-flannel", OldPodCIDRs: []string{"10.42.0.0/16"}},
			check: func(t *testing.T, c *Cluster) {
				if c.Problem != nil || c.CNI == nil || c.CNI.Found() || c.Distribution != nil {
					t.Fatalf("cni %+v distribution %+v (%v)", c.CNI, c.Distribution, c.Problem)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadSnapshot(t, tt.files...)
			if tt.tweak != nil {
				tt.tweak(s)
			}
			c := AnalyzeWith(s, tt.override)
			if tt.check != nil {
				tt.check(t, c)
			}
			r := result{Cluster: c, Code: errs.Code(c.Problem)}
			if c.Problem != nil {
				r.Problem = c.Problem.Error()
				if strings.Contains(r.Problem, "\n") {
					t.Errorf("problem is not one line: %q", r.Problem)
				}
			}
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
				t.Errorf("result differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// dropKubeProxy removes kube-proxy, as clusters whose CNI proxies Services do.
func dropKubeProxy(s *Snapshot) {
	var keep []appsv1.DaemonSet
	for _, ds := range s.DaemonSets {
		if ds.Name != "kube-proxy" {
			keep = append(keep, ds)
		}
	}
	s.DaemonSets = keep
}

func TestParseFlannelNetConf(t *testing.T) {
	tests := []struct {
		name, in, network string
		want              Backend
		err               bool
	}{
		{"vxlan defaults", `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`, "10.244.0.0/16", Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}, false},
		{"vxlan custom", `{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","Port":8475,"VNI":7}}`, "10.1.0.0/16", Backend{Type: "vxlan", Port: 8475, VNI: 7}, false},
		{"lower-case keys", `{"network":"10.1.0.0/16","backend":{"type":"VXLAN"}}`, "10.1.0.0/16", Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}, false},
		{"host-gw", `{"Network":"10.1.0.0/16","Backend":{"Type":"host-gw"}}`, "10.1.0.0/16", Backend{Type: "host-gw"}, false},
		{"wireguard", `{"Network":"10.1.0.0/16","Backend":{"Type":"wireguard"}}`, "10.1.0.0/16", Backend{Type: "wireguard", Port: 51820, PortDefaulted: true}, false},
		{"no backend is udp", `{"Network":"10.1.0.0/16"}`, "10.1.0.0/16", Backend{Type: "udp", Port: 8285, PortDefaulted: true}, false},
		{"broken", `{"Network":`, "", Backend{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, b, err := ParseFlannelNetConf(tt.in)
			if (err != nil) != tt.err || n != tt.network || b != tt.want {
				t.Fatalf("got %q %+v %v", n, b, err)
			}
		})
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"quay.io/cilium/cilium:v1.18.11@sha256:abc": "v1.18.11",
		"ghcr.io/flannel-io/flannel:v0.28.4":        "v0.28.4",
		"localhost:5000/flannel":                    "",
		"flannel":                                   "",
	} {
		if got := imageTag(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
