package check

import (
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// IDMTU is the check comparing the old overlay's pod MTU with Cilium's.
const IDMTU = "mtu"

// MTU checks that traffic between the two overlays is neither fragmented
// nor dropped: PASS when both pod MTUs are equal, WARN when they differ or
// cannot be compared (the nodes' interface MTU is in no Kubernetes object),
// FAIL when userMTU (the MTU of the user's values, 0 for auto-detection)
// leaves Cilium's pods too little.
func MTU(c *detect.Cluster, p *proposal.Proposal, userMTU int) Result {
	protocol := "vxlan"
	if p != nil && p.TunnelProtocol != "" {
		protocol = p.TunnelProtocol
	}
	m := proposal.CheckMTU(c, protocol, userMTU)
	switch m.Status {
	case proposal.MTUEqual:
		return pass(IDMTU, m.Message)
	case proposal.MTUBad:
		return fail(IDMTU, m.Message, m.Fix)
	}
	return warn(IDMTU, m.Message, m.Fix)
}
