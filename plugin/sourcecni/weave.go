package sourcecni

import (
	"fmt"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// weave: Weave Net's weave-net DaemonSet (weave, and weave-npc for
// policy), fastdp or sleeve.
func weave() Source {
	return Source{
		ID:     Weave,
		Name:   detect.Weave().Name,
		Detect: detect.Weave(),
		Checks: Checks{Backend: weaveBackend},
		SNAT:   SNAT{OldToNew: notAnalysed},
		Finalize: Finalize{Owned: func(cni *detect.CNI) Owned {
			// weave-net's ConfigMap is its IPAM peer list.
			return Owned{ConfigMaps: []string{"weave-net"}}
		}},
		Node: Node{
			Leftovers: "Weave Net's interfaces (weave, datapath, vxlan-6784, vethwe*), its iptables rules (WEAVE*), routes to the old pod CIDR and /var/lib/weave",
			ByHand:    "ip link delete weave; ip link delete datapath; ip link delete vxlan-6784; iptables-save | grep -v WEAVE | iptables-restore; rm -rf /var/lib/weave",
		},
		Plan: Plan{},
	}
}

func weaveBackend(cni *detect.CNI) Finding {
	const id = ""
	b := cni.Backend
	switch {
	case b.Encryption != "":
		return warn(id, "Weave Net encrypts old-pod traffic ("+b.Encryption+"); traffic between old and new pods leaves its tunnel unencrypted",
			"keep Cilium's own encryption off until finalize, and expect old-to-new pod traffic to be unencrypted during the migration")
	case b.Type == "sleeve":
		return warn(id, fmt.Sprintf("Weave Net runs sleeve only (WEAVE_NO_FASTDP, userspace encapsulation on UDP %d): outside the guide's tested path and slow", b.Port),
			"rehearse on a staging cluster first; Cilium's tunnel does not clash with it")
	}
	return pass(id, fmt.Sprintf("Weave Net fastdp (VXLAN in the kernel on UDP %d, sleeve fallback on UDP %d): an overlay on ports of its own, like flannel's vxlan", detect.WeaveFastDPPort, detect.WeaveSleevePort))
}
