package proposal

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// flannelCluster is a kubeadm-style flannel cluster with three nodes.
func flannelCluster() *detect.Cluster {
	return &detect.Cluster{
		Name:      "prod",
		APIServer: "https://192.168.10.10:6443",
		Nodes: []detect.Node{
			{Name: "cp-1", InternalIP: "192.168.10.10", ControlPlane: true, Ready: true},
			{Name: "w-1", InternalIP: "192.168.10.11", Ready: true},
			{Name: "w-2", InternalIP: "192.168.10.12", Ready: true},
		},
		CNI:          &detect.CNI{Name: "flannel", Network: "10.244.0.0/16", Backend: detect.Backend{Type: "vxlan", Port: 8472, VNI: 1}},
		PodCIDRs:     []detect.SourcedCIDR{{CIDR: "10.244.0.0/16", Source: "flannel"}},
		ServiceCIDRs: []detect.SourcedCIDR{{CIDR: "10.96.0.0/12", Source: "ServiceCIDR objects"}},
		KubeProxy:    detect.KubeProxy{Present: true, Kind: "DaemonSet", Mode: "iptables", ClusterCIDR: "10.244.0.0/16"},
	}
}

func TestPropose(t *testing.T) {
	tests := []struct {
		name   string
		tweak  func(*detect.Cluster)
		opts   Options
		check  func(t *testing.T, p *Proposal)
		code   int
		errHas string
		unsafe string
	}{
		{
			name: "defaults follow the guide",
			check: func(t *testing.T, p *Proposal) {
				if p.PodCIDR != "10.245.0.0/16" || p.TunnelPort != 8473 || p.TunnelProtocol != "vxlan" || p.MaskSize != 24 {
					t.Errorf("%+v", p)
				}
				if p.CiliumVersion != "1.20.2" || p.NodeConfigAPIVersion != "cilium.io/v2" || p.KubeProxyReplacement || p.ClusterName != "prod" {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			// Nodes on networks that are the usual candidates: skipped, and
			// the proposal says which and why.
			name: "node networks on the candidates are skipped and named",
			tweak: func(c *detect.Cluster) {
				c.Nodes[1].InternalIP, c.Nodes[2].InternalIP = "10.245.3.11", "10.246.0.12"
			},
			check: func(t *testing.T, p *Proposal) {
				want := []string{"10.245.0.0/16 (node w-1 InternalIP 10.245.3.11)", "10.246.0.0/16 (node w-2 InternalIP 10.246.0.12)"}
				if p.PodCIDR != "10.247.0.0/16" || strings.Join(p.PodCIDRSkipped, "|") != strings.Join(want, "|") {
					t.Errorf("pod CIDR %s, skipped %q", p.PodCIDR, p.PodCIDRSkipped)
				}
			},
		},
		{
			name:  "old CNI on 8473 moves us to 8474",
			tweak: func(c *detect.Cluster) { c.CNI.Backend.Port = 8473 },
			check: func(t *testing.T, p *Proposal) {
				if p.TunnelPort != 8474 {
					t.Errorf("port %d", p.TunnelPort)
				}
			},
		},
		{
			name: "geneve gets 6081",
			opts: Options{TunnelProtocol: "geneve"},
			check: func(t *testing.T, p *Proposal) {
				if p.TunnelPort != 6081 {
					t.Errorf("port %d", p.TunnelPort)
				}
			},
		},
		{
			name:  "no kube-proxy: replacement with the API server address",
			tweak: func(c *detect.Cluster) { c.KubeProxy = detect.KubeProxy{} },
			check: func(t *testing.T, p *Proposal) {
				if !p.KubeProxyReplacement || p.K8sServiceHost != "192.168.10.10" || p.K8sServicePort != 6443 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name:  "the old CNI chains portmap, kube-proxy stays: portmap chained after Cilium",
			tweak: func(c *detect.Cluster) { c.CNI.PortMap = true },
			check: func(t *testing.T, p *Proposal) {
				if !p.PortMapChaining {
					t.Errorf("no portmap chaining: %+v", p)
				}
			},
		},
		{
			name:  "the old CNI chains portmap, no kube-proxy: Cilium serves hostPorts itself",
			tweak: func(c *detect.Cluster) { c.CNI.PortMap, c.KubeProxy = true, detect.KubeProxy{} },
			check: func(t *testing.T, p *Proposal) {
				if p.PortMapChaining {
					t.Errorf("portmap chaining with kube-proxy replacement: %+v", p)
				}
			},
		},
		{
			name: "the old CNI chains no portmap: none",
			check: func(t *testing.T, p *Proposal) {
				if p.PortMapChaining {
					t.Errorf("portmap chaining without the old CNI's: %+v", p)
				}
			},
		},
		{
			name: "installed Cilium's pool and version are kept",
			tweak: func(c *detect.Cluster) {
				c.Cilium = detect.Cilium{Installed: true, MigrationMode: true, Version: "1.15.19", PodCIDRs: []string{"10.250.0.0/16"}, TunnelPort: 8480, TunnelProtocol: "geneve", MaskSize: 26}
			},
			check: func(t *testing.T, p *Proposal) {
				if p.PodCIDR != "10.250.0.0/16" || p.CiliumVersion != "1.15.19" || p.NodeConfigAPIVersion != "cilium.io/v2alpha1" || p.TunnelPort != 8480 ||
					p.TunnelProtocol != "geneve" || p.MaskSize != 26 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name:  "single node runs one operator",
			tweak: func(c *detect.Cluster) { c.Nodes = c.Nodes[:1] },
			check: func(t *testing.T, p *Proposal) {
				if p.OperatorReplicas != 1 {
					t.Errorf("%+v", p)
				}
			},
		},
		{
			name: "a minor alone means its pinned release",
			opts: Options{CiliumVersion: "1.18"},
			check: func(t *testing.T, p *Proposal) {
				if p.CiliumVersion != "1.18.11" {
					t.Errorf("version %s", p.CiliumVersion)
				}
			},
		},
		{name: "bad CIDR", opts: Options{PodCIDR: "10.245.0.0/33"}, code: errs.Usage, errHas: "--pod-cidr"},
		{name: "bad version", opts: Options{CiliumVersion: "banana"}, code: errs.Usage, errHas: "banana"},
		{name: "old version", opts: Options{CiliumVersion: "1.9"}, code: errs.Usage, errHas: "1.9"},
		{name: "port out of range", opts: Options{TunnelPort: 70000}, code: errs.Usage, errHas: "--tunnel-port 70000"},
		{name: "bad protocol", opts: Options{TunnelProtocol: "gre"}, code: errs.Usage, errHas: "--tunnel-protocol"},
		{name: "mask does not fit", opts: Options{PodCIDR: "10.245.0.0/24", MaskSize: 20}, code: errs.Usage, errHas: "--cluster-pool-mask-size"},
		{name: "overlap with pod network", opts: Options{PodCIDR: "10.244.0.0/16"}, unsafe: "overlaps pod network 10.244.0.0/16"},
		{name: "overlap with service network", opts: Options{PodCIDR: "10.96.0.0/16"}, unsafe: "e.g. 10.245.0.0/16"},
		{name: "overlap with node", opts: Options{PodCIDR: "192.168.0.0/16"}, unsafe: "node cp-1 InternalIP"},
		{name: "same port as flannel", opts: Options{TunnelPort: 8472}, unsafe: "e.g. 8473"},
		{name: "pool too small", opts: Options{PodCIDR: "10.245.0.0/23", MaskSize: 24}, unsafe: "gives 2 node blocks but the cluster has 3 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := flannelCluster()
			if tt.tweak != nil {
				tt.tweak(c)
			}
			p, err := Propose(c, tt.opts)
			if tt.code != 0 {
				if errs.Code(err) != tt.code || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("got %v (code %d), want code %d with %q", err, errs.Code(err), tt.code, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			unsafe := Safety(c, p)
			if tt.unsafe != "" {
				if len(unsafe) != 1 || errs.Code(unsafe[0]) != errs.Unsafe || !strings.Contains(unsafe[0].Error(), tt.unsafe) {
					t.Fatalf("got %v, want one Unsafe error with %q", unsafe, tt.unsafe)
				}
				return
			}
			if len(unsafe) > 0 {
				t.Fatalf("unexpected: %v", unsafe)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}
