package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
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

func TestValuesCheck(t *testing.T) {
	if r := Values("v.yaml", nil); len(r) != 1 || r[0].ID != IDValues || r[0].Status != Pass || r[0].Message != "--values v.yaml breaks nothing the migration needs" {
		t.Errorf("got %+v", r)
	}
	r := Values("v.yaml", []values.Unsafe{{Key: "ipam.mode", Msg: "m", Fix: "set ipam.mode to cluster-pool"}, {Key: "tunnelPort", Msg: "n", Fix: "f"}})
	if len(r) != 2 || r[0].Status != Fail || r[0].Message != "m" || r[0].Fix != "set ipam.mode to cluster-pool, or pass --allow-unsafe-values to values to write it anyway" || r[1].Message != "n" {
		t.Errorf("got %+v", r)
	}
}
