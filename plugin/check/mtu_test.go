package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

func TestMTUCheck(t *testing.T) {
	cl := func(backend string, mtu int) *detect.Cluster {
		return &detect.Cluster{CNI: &detect.CNI{Name: "flannel", Backend: detect.Backend{Type: backend, MTU: mtu}}}
	}
	p := &proposal.Proposal{TunnelProtocol: "vxlan"}
	for _, tt := range []struct {
		name   string
		c      *detect.Cluster
		user   int
		status Status
		msg    string
	}{
		{"auto vxlan", cl("vxlan", 0), 0, Pass, "old overlay MTU node MTU - 50 (flannel vxlan, auto), Cilium vxlan MTU node MTU - 50 (auto): equal"},
		{"user equal", cl("vxlan", 1450), 1500, Pass, "old overlay MTU 1450 (flannel vxlan, configured), Cilium vxlan MTU 1450 (MTU 1500 from --values): equal"},
		{"host-gw", cl("host-gw", 0), 0, Warn, "old overlay MTU node MTU (flannel host-gw, auto), Cilium vxlan MTU node MTU - 50 (auto): Cilium's is 50 bytes smaller"},
		{"too small", cl("vxlan", 0), 100, Fail, "MTU 100 leaves Cilium's pods 50 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := MTU(tt.c, p, tt.user)
			if r.ID != IDMTU || r.Status != tt.status || !strings.Contains(r.Message, tt.msg) {
				t.Errorf("got %+v, want %s %q", r, tt.status, tt.msg)
			}
		})
	}
}
