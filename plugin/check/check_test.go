package check

import (
	"errors"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

func cluster() *detect.Cluster {
	return &detect.Cluster{
		APIServer: "https://192.168.10.10:6443",
		Nodes: []detect.Node{
			{Name: "cp-1", InternalIP: "192.168.10.10", ControlPlane: true, Ready: true},
			{Name: "w-1", InternalIP: "192.168.10.11", Ready: true},
		},
		CNI:          &detect.CNI{Name: "flannel", Version: "v0.28.4", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", Network: "10.244.0.0/16", Backend: detect.Backend{Type: "vxlan", Port: 8472, VNI: 1}},
		PodCIDRs:     []detect.SourcedCIDR{{CIDR: "10.244.0.0/16", Source: "flannel"}},
		ServiceCIDRs: []detect.SourcedCIDR{{CIDR: "10.96.0.0/12", Source: "ServiceCIDR objects"}},
		KubeProxy:    detect.KubeProxy{Present: true, Kind: "DaemonSet", Mode: "iptables", ClusterCIDR: "10.244.0.0/16"},
	}
}

func find(t *testing.T, rs []Result, id string) Result {
	t.Helper()
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no check %q in %+v", id, rs)
	return Result{}
}

func TestRun(t *testing.T) {
	allowed := &access.Result{Checked: 30, Missing: []access.Need{}}
	tests := []struct {
		name   string
		tweak  func(*detect.Cluster, *Input)
		opts   proposal.Options
		id     string
		status Status
		has    string
	}{
		{name: "vxlan passes", id: IDBackend, status: Pass, has: "port 8472"},
		{name: "host-gw warns", tweak: func(c *detect.Cluster, _ *Input) { c.CNI.Backend = detect.Backend{Type: "host-gw"} }, id: IDBackend, status: Warn, has: "host-gw"},
		{name: "wireguard warns", tweak: func(c *detect.Cluster, _ *Input) { c.CNI.Backend = detect.Backend{Type: "wireguard", Port: 51820} }, id: IDBackend, status: Warn, has: "wireguard"},
		{name: "udp fails", tweak: func(c *detect.Cluster, _ *Input) { c.CNI.Backend = detect.Backend{Type: "udp", Port: 8285} }, id: IDBackend, status: Fail, has: "udp"},
		{name: "free CIDR passes", id: IDPodCIDR, status: Pass, has: "10.245.0.0/16"},
		{name: "overlapping CIDR fails", opts: proposal.Options{PodCIDR: "10.96.0.0/16"}, id: IDPodCIDR, status: Fail, has: "service network 10.96.0.0/12"},
		{name: "port differs", id: IDTunnelPort, status: Pass, has: "8473"},
		{name: "port clash fails", opts: proposal.Options{TunnelPort: 8472}, id: IDTunnelPort, status: Fail, has: "address already in use"},
		{name: "no policies", id: IDNetworkPolicy, status: Pass},
		{name: "policies warn with count and namespaces", tweak: func(c *detect.Cluster, _ *Input) {
			c.NetworkPolicies = []detect.NamespacedName{{Namespace: "shop", Name: "a"}, {Namespace: "shop", Name: "b"}, {Namespace: "kube-system", Name: "c"}}
		}, id: IDNetworkPolicy, status: Warn, has: "3 NetworkPolicies in 2 namespaces (kube-system, shop)"},
		{name: "kube-proxy not covering warns", id: IDKubeProxy, status: Warn, has: "does not cover 10.245.0.0/16"},
		{name: "kube-proxy covering passes", tweak: func(c *detect.Cluster, _ *Input) { c.KubeProxy.ClusterCIDR = "10.244.0.0/16,10.245.0.0/16" }, id: IDKubeProxy, status: Pass},
		{name: "no kube-proxy passes", tweak: func(c *detect.Cluster, _ *Input) { c.KubeProxy = detect.KubeProxy{} }, id: IDKubeProxy, status: Pass, has: "192.168.10.10:6443"},
		{name: "blocking PDB warns", tweak: func(c *detect.Cluster, _ *Input) {
			c.BlockingPDBs = []detect.PDB{{Namespace: "shop", Name: "db", ExpectedPods: 3}}
		}, id: IDPDB, status: Warn, has: "shop/db"},
		{name: "cilium absent passes", id: IDCilium, status: Pass},
		{name: "cilium owner fails", tweak: func(c *detect.Cluster, _ *Input) { c.Cilium = detect.Cilium{Installed: true, Version: "1.17.6"} }, opts: proposal.Options{Strategy: proposal.DualOverlay}, id: IDCilium, status: Fail},
		{name: "cilium migration mode other minor warns", tweak: func(c *detect.Cluster, _ *Input) {
			c.Cilium = detect.Cilium{Installed: true, MigrationMode: true, Version: "1.17.6"}
		}, opts: proposal.Options{CiliumVersion: "1.18"}, id: IDCilium, status: Warn, has: "1.17.6"},
		{name: "node not ready warns", tweak: func(c *detect.Cluster, _ *Input) { c.Nodes[1].Ready = false }, id: IDNodesReady, status: Warn, has: "w-1"},
		{name: "permissions granted", id: IDPermissions, status: Pass, has: "30"},
		{name: "permission missing fails", tweak: func(_ *detect.Cluster, in *Input) {
			in.Access = &access.Result{Checked: 30, Missing: []access.Need{{Resource: "pods", Subresource: "eviction", Verb: "create"}}}
		}, id: IDPermissions, status: Fail, has: "create pods/eviction"},
		{name: "optional permission missing warns", tweak: func(_ *detect.Cluster, in *Input) {
			in.Access = &access.Result{Checked: 30, Missing: []access.Need{{Resource: "daemonsets", Group: "apps", Verb: "delete", Namespace: "kube-flannel", Optional: true}}}
		}, id: IDPermissions, status: Warn, has: "delete daemonsets.apps -n kube-flannel"},
		{name: "access error warns", tweak: func(_ *detect.Cluster, in *Input) { in.Access, in.AccessErr = nil, errors.New("boom") }, id: IDPermissions, status: Warn, has: "boom"},
		{name: "unsupported cluster fails cni", tweak: func(c *detect.Cluster, _ *Input) {
			c.CNI, c.Problem = nil, errs.New(errs.Unsupported, "found calico", "this version migrates from Flannel only")
		}, id: IDCNI, status: Fail, has: "calico"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster()
			in := Input{Cluster: c, Access: allowed}
			if tt.tweak != nil {
				tt.tweak(c, &in)
			}
			p, err := proposal.Propose(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			in.Proposal = p
			rs := Run(in)
			r := find(t, rs, tt.id)
			if r.Status != tt.status || !strings.Contains(r.Message, tt.has) {
				t.Fatalf("got %+v, want %s with %q", r, tt.status, tt.has)
			}
			if r.Status != Pass && r.Fix == "" {
				t.Errorf("%s without a fix: %+v", r.Status, r)
			}
			for _, r := range rs {
				if strings.Contains(r.Message+r.Fix, "\n") {
					t.Errorf("not one line: %+v", r)
				}
			}
			if Failed(rs) != (tt.status == Fail) && tt.id != IDCilium {
				t.Errorf("Failed()=%v for %+v", Failed(rs), rs)
			}
		})
	}
}
