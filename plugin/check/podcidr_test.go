package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// The pod-cidr check names the candidates skipped for nodes on them.
func TestPodCIDRSaysSkipped(t *testing.T) {
	c := &detect.Cluster{
		APIServer: "https://10.245.0.10:6443",
		Nodes:     []detect.Node{{Name: "cp-1", InternalIP: "10.245.0.10", ControlPlane: true, Ready: true}},
		CNI:       &detect.CNI{Name: "flannel", Network: "10.244.0.0/16", Backend: detect.Backend{Type: "vxlan", Port: 8472}},
		PodCIDRs:  []detect.SourcedCIDR{{CIDR: "10.244.0.0/16", Source: "flannel"}},
		KubeProxy: detect.KubeProxy{Present: true},
	}
	p, err := proposal.Propose(c, proposal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := podCIDRCheck(c, p)
	if r.Status != Pass || !strings.Contains(r.Message, "10.246.0.0/16 (first candidate that overlaps nothing)") ||
		!strings.Contains(r.Message, "skipped 10.245.0.0/16 (node cp-1 InternalIP 10.245.0.10)") {
		t.Errorf("%s %q", r.Status, r.Message)
	}
}
