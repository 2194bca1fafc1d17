package sourcecni

import (
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// canal: flannel's networking with Calico's Felix enforcing policy, from
// canal.yaml (the canal DaemonSet, canal-config, calico-kube-controllers).
func canal() Source {
	return Source{
		ID:     Canal,
		Name:   detect.Canal().Name,
		Detect: detect.Canal(),
		Checks: Checks{
			Backend: flannelBackend("canal's flannel"),
			Extra:   []func(*detect.Cluster, *proposal.Proposal) Finding{calicoPoliciesCheck},
		},
		SNAT:     SNAT{OldToNew: flannelSNAT},
		Finalize: Finalize{Owned: calicoManifestObjects},
		Node: Node{
			Leftovers: "canal's interfaces (flannel.1, cali* veths), its iptables rules (FLANNEL-POSTRTG, FLANNEL-FWD, cali-*), routes to the old pod CIDR",
			ByHand:    "ip link delete flannel.1; iptables-save | grep -v -e FLANNEL -e cali | iptables-restore",
		},
		Plan: Plan{},
	}
}
