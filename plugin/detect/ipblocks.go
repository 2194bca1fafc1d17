package detect

import networkingv1 "k8s.io/api/networking/v1"

// PolicyIPBlock is one ipBlock peer of a NetworkPolicy: Cilium matches it
// differently from the CNIs it replaces when it covers pod or node
// addresses (check's network-policy-compat).
type PolicyIPBlock struct {
	Policy NamespacedName `json:"policy"`
	// Direction is "ingress" (a from peer) or "egress" (a to peer).
	Direction string   `json:"direction"`
	CIDR      string   `json:"cidr"`
	Except    []string `json:"except,omitempty"`
}

// ipBlocksOf lists the ipBlock peers of np, in the policy's order.
func ipBlocksOf(np *networkingv1.NetworkPolicy) []PolicyIPBlock {
	var out []PolicyIPBlock
	name := NamespacedName{np.Namespace, np.Name}
	add := func(dir string, peers []networkingv1.NetworkPolicyPeer) {
		for _, p := range peers {
			if p.IPBlock != nil {
				out = append(out, PolicyIPBlock{Policy: name, Direction: dir, CIDR: p.IPBlock.CIDR, Except: p.IPBlock.Except})
			}
		}
	}
	for _, r := range np.Spec.Ingress {
		add("ingress", r.From)
	}
	for _, r := range np.Spec.Egress {
		add("egress", r.To)
	}
	return out
}
