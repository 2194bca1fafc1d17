package plan

import (
	"bytes"
	"flag"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/testdoc"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixture() *detect.Cluster {
	return &detect.Cluster{
		Name: "prod-eu1", NameSource: "kubeadm-config ClusterConfiguration.clusterName",
		KubernetesVersion: "v1.34.4", APIServer: "https://192.168.10.10:6443",
		Nodes: []detect.Node{
			{Name: "cp-1", InternalIP: "192.168.10.10", ControlPlane: true, Ready: true, PodCIDRs: []string{"10.244.0.0/24"}},
			{Name: "worker-1", InternalIP: "192.168.10.11", Ready: true, PodCIDRs: []string{"10.244.1.0/24"}},
		},
		CNI: &detect.CNI{Name: "flannel", Version: "v0.28.4", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", ConfigMap: "kube-flannel-cfg",
			Network: "10.244.0.0/16", IPAM: "kubernetes", Backend: detect.Backend{Type: "vxlan", Port: 8472, PortDefaulted: true, VNI: 1}},
		CNIsSeen:        []detect.SeenCNI{{Name: "flannel", Object: "DaemonSet kube-flannel/kube-flannel-ds"}},
		PodCIDRs:        []detect.SourcedCIDR{{CIDR: "10.244.0.0/16", Source: "flannel net-conf.json Network"}},
		ServiceCIDRs:    []detect.SourcedCIDR{{CIDR: "10.96.0.0/12", Source: "ServiceCIDR objects"}},
		KubeProxy:       detect.KubeProxy{Present: true, Kind: "DaemonSet", Object: "kube-system/kube-proxy", Mode: "iptables", ClusterCIDR: "10.244.0.0/16"},
		NetworkPolicies: []detect.NamespacedName{{Namespace: "shop", Name: "deny-all"}},
		BlockingPDBs:    []detect.PDB{{Namespace: "shop", Name: "db", ExpectedPods: 3}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testdoc.Golden(t, name, got, *update)
}

func TestReportOutputs(t *testing.T) {
	c := fixture()
	p, err := proposal.Propose(c, proposal.Options{CiliumVersion: "1.18.11"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(c, p, check.Run(check.Input{Cluster: c, Proposal: p, Access: &access.Result{Checked: 31, Missing: []access.Need{}}}))
	if !r.Summary.Safe || r.Summary.Warn != 4 {
		t.Errorf("summary %+v", r.Summary)
	}
	var table bytes.Buffer
	if err := r.PrintTable(&table, output.NewStyle(&table, "")); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-table.golden", table.Bytes())
	for _, f := range []string{"json", "yaml"} {
		var b bytes.Buffer
		if err := output.PrintStructured(r, f, &b); err != nil {
			t.Fatal(err)
		}
		golden(t, "plan."+f+".golden", b.Bytes())
	}
}
