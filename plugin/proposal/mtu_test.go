package proposal

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

func TestCheckMTU(t *testing.T) {
	cl := func(name, backend string, mtu int) *detect.Cluster {
		return &detect.Cluster{CNI: &detect.CNI{Name: name, Backend: detect.Backend{Type: backend, MTU: mtu}}}
	}
	tests := []struct {
		name     string
		c        *detect.Cluster
		protocol string
		user     int
		status   MTUStatus
		msg      string
		fix      string
		suggest  int
	}{
		{name: "flannel vxlan auto", c: cl("flannel", "vxlan", 0), status: MTUEqual,
			msg: "old overlay MTU node MTU - 50 (flannel vxlan, auto), Cilium vxlan MTU node MTU - 50 (auto): equal when both use the same interface"},
		{name: "calico vxlan auto, geneve", c: cl("calico", "vxlan", 0), protocol: "geneve", status: MTUEqual,
			msg: "Cilium geneve MTU node MTU - 50 (auto): equal"},
		{name: "flannel vxlan configured", c: cl("flannel", "vxlan", 1400), status: MTUDiffer, suggest: 1450,
			msg: "old overlay MTU 1400 (flannel vxlan, configured), Cilium vxlan MTU node MTU - 50 (auto): equal only if the nodes' MTU is 1450",
			fix: "set MTU: 1450 in a --values file, so Cilium's pods get 1400 like the old ones"},
		{name: "weave default", c: cl("weave", "fastdp", 0), status: MTUDiffer, suggest: 1426,
			msg: "old overlay MTU 1376 (weave fastdp, Weave's default, WEAVE_MTU unset)"},
		{name: "calico ipip auto", c: cl("calico", "ipip", 0), status: MTUDiffer,
			msg: "old overlay MTU node MTU - 20 (calico ipip, auto), Cilium vxlan MTU node MTU - 50 (auto): Cilium's is 30 bytes smaller; packets above the smaller MTU",
			fix: "nothing to set"},
		{name: "flannel wireguard auto", c: cl("flannel", "wireguard", 0), status: MTUDiffer,
			msg: "Cilium's is 30 bytes larger"},
		{name: "kube-router no overlay", c: cl("kube-router", "none", 0), status: MTUDiffer, msg: "Cilium's is 50 bytes smaller"},
		{name: "calico ipip configured", c: cl("calico", "ipip", 1480), status: MTUDiffer,
			msg: "equal only if the nodes' MTU is 1530", fix: "check the nodes' MTU (ip link): if it is at least 1530 set MTU: 1530"},
		{name: "calico mixed pools", c: cl("calico", "ipip,vxlan", 0), status: MTUEqual},
		{name: "unknown backend", c: cl("calico", "policy-only (AWS VPC)", 0), status: MTUUnknown,
			msg: "old overlay MTU unknown (calico policy-only (AWS VPC))"},
		{name: "no CNI", c: &detect.Cluster{}, status: MTUUnknown, msg: "no old CNI detected"},

		{name: "user MTU equal", c: cl("flannel", "vxlan", 1450), user: 1500, status: MTUEqual,
			msg: "old overlay MTU 1450 (flannel vxlan, configured), Cilium vxlan MTU 1450 (MTU 1500 from --values): equal"},
		{name: "user MTU equal but above the old overlay's nodes", c: cl("calico", "ipip", 1480), user: 1530, status: MTUDiffer,
			msg: "equal, but MTU 1530 needs a node interface MTU of at least 1530"},
		{name: "user MTU smaller", c: cl("flannel", "vxlan", 1450), user: 1400, status: MTUDiffer,
			msg: "Cilium vxlan MTU 1350 (MTU 1400 from --values): Cilium's is 100 bytes smaller", fix: "set MTU to 1500 in --values"},
		{name: "user MTU with auto old", c: cl("flannel", "vxlan", 0), user: 9000, status: MTUUnknown,
			msg: "cannot compare: the nodes' interface MTU is in no Kubernetes object", fix: "the old pods get it minus 50, Cilium's pods 8950"},
		{name: "user MTU too small", c: cl("flannel", "vxlan", 0), user: 600, status: MTUBad, msg: "MTU 600 leaves Cilium's pods 550 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := CheckMTU(tt.c, tt.protocol, tt.user)
			if m.Status != tt.status || !strings.Contains(m.Message, tt.msg) || !strings.Contains(m.Fix, tt.fix) || m.Suggest != tt.suggest {
				t.Errorf("got %s %q (fix %q, suggest %d)\nwant %s %q (fix %q, suggest %d)", m.Status, m.Message, m.Fix, m.Suggest, tt.status, tt.msg, tt.fix, tt.suggest)
			}
			if m.Status != MTUEqual && m.Fix == "" {
				t.Errorf("no fix for %s", m.Status)
			}
		})
	}
}
