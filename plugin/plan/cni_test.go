package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/snapfix"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// TestSourceCNITables checks the CLUSTER rows that describe each source
// CNI, from the detect package's fixtures.
func TestSourceCNITables(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		rows  []string
	}{
		{"canal", []string{"common-nodes.yaml", "kubeadm.yaml", "canal.yaml"}, []string{
			"cni                canal v3.28.5 (DaemonSet kube-system/canal, ConfigMap canal-config)",
			"backend            vxlan, port 8472 (default), VNI 1",
			"ipam               kubernetes (the nodes' podCIDRs)",
			"policy             enforced by canal",
		}},
		{"calico manifest", []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-manifest.yaml"}, []string{
			"cni                calico v3.28.5 (DaemonSet kube-system/calico-node, ConfigMap calico-config)",
			"backend            ipip, iptables dataplane",
			"ip pools           default-ipv4-ippool 10.244.0.0/16, ipip, /26 blocks, natOutgoing",
			"routing            BGP (BIRD)",
			"udp ports          4789 (kept free of Cilium's tunnel)",
			"ipam               calico (IPAM blocks from the IP pools)",
			"node address       first-found (calico-node IPv4 autodetection)",
			"node-address-autodetection   WARN",
		}},
		{"calico vxlan", []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-vxlan.yaml"}, []string{
			"backend            vxlan, port 4789 (default), VNI 4096, MTU 1450, iptables dataplane",
			"ip pools           default-ipv4-ippool 10.245.0.0/16, vxlan, /26 blocks, natOutgoing",
			"ip pools           default-ipv4-ippool 10.245.0.0/16, vxlan, /26 blocks, natOutgoing",
			"                   old-pool 10.246.0.0/16, vxlan, /26 blocks, natOutgoing, disabled",
			"pod CIDR           10.247.0.0/16",
		}},
		{"calico operator", []string{"plain-nodes.yaml", "kubeadm.yaml", "calico-operator.yaml"}, []string{
			"cni                calico (Tigera operator, Installation default; calico-node in calico-system)",
		}},
		{"weave", []string{"plain-nodes.yaml", "kubeadm.yaml", "weave.yaml"}, []string{
			"cni                weave 2.8.1 (DaemonSet kube-system/weave-net, ConfigMap none)",
			"backend            fastdp, port 6784 (default), MTU 1376",
			"udp ports          6783, 6784 (kept free of Cilium's tunnel)",
			"ipam               weave (its own, from IPALLOC_RANGE)",
		}},
		{"kube-router", []string{"plain-nodes.yaml", "kube-router.yaml"}, []string{
			"cni                kube-router v2.4.1 (DaemonSet kube-system/kube-router, ConfigMap kube-router-cfg)",
			"backend            ipip-cross-subnet, MTU 1480",
			"routing            BGP (--run-router)",
			"services           proxied by kube-router (--run-service-proxy)",
			"service-proxy                WARN",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snapfix.Load(t, tt.files...)
			s.APIServerURL = "https://192.168.10.10:6443"
			c := detect.Analyze(s)
			if c.Problem != nil {
				t.Fatal(c.Problem)
			}
			p, err := proposal.Propose(c, proposal.Options{CiliumVersion: "1.18.11"})
			if err != nil {
				t.Fatal(err)
			}
			r := New(c, p, check.Run(check.Input{Cluster: c, Proposal: p, Access: &access.Result{Checked: 31, Missing: []access.Need{}}}))
			var table bytes.Buffer
			if err := r.PrintTable(&table, output.NewStyle(&table, "")); err != nil {
				t.Fatal(err)
			}
			// Rows are compared with their runs of spaces collapsed: column
			// widths depend on the other rows.
			var lines []string
			for _, l := range strings.Split(table.String(), "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			flat := strings.Join(lines, "\n")
			for _, row := range tt.rows {
				if !strings.Contains(flat, strings.Join(strings.Fields(row), " ")) {
					t.Errorf("table lacks %q:\n%s", row, table.String())
				}
			}
		})
	}
}
