package check

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cidr"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// IDPolicyCompat is the check of NetworkPolicies whose meaning changes
// under Cilium.
const IDPolicyCompat = "network-policy-compat"

// policyCompatCheck names the NetworkPolicies' ipBlock peers that cover
// pod or node addresses. The CNIs Cilium replaces match an ipBlock against
// any address; Cilium matches the pods it manages by identity and the
// cluster's nodes by its host and remote-node entities, so such an ipBlock
// stops matching them (an egress allow to 0.0.0.0/0 no longer reaches other
// pods; an ipBlock of the API server's node address no longer reaches it),
// unless policyCIDRMatchMode includes nodes (Cilium 1.15 and later) for
// node addresses. ok is false when there is no NetworkPolicy to judge.
func policyCompatCheck(c *detect.Cluster, p *proposal.Proposal) (Result, bool) {
	if len(c.NetworkPolicies) == 0 {
		return Result{}, false
	}
	var pods []netip.Prefix
	for _, s := range c.PodCIDRs {
		if r, err := cidr.ParseReserved(s.CIDR, "pod network"); err == nil {
			pods = append(pods, r.Prefix)
		}
	}
	if p != nil && p.PodCIDR != "" {
		pods = append(pods, p.Prefix())
	}
	var podHits, nodeHits []string
	for _, b := range c.PolicyIPBlocks {
		block, err := netip.ParsePrefix(b.CIDR)
		if err != nil {
			continue // the API server validates ipBlocks; nothing to judge
		}
		var except []netip.Prefix
		for _, e := range b.Except {
			if q, err := netip.ParsePrefix(e); err == nil {
				except = append(except, q)
			}
		}
		where := fmt.Sprintf("%s/%s %s %s", b.Policy.Namespace, b.Policy.Name, b.Direction, b.CIDR)
		for _, q := range pods {
			if block.Overlaps(q) && !withinAny(q, except) {
				podHits = append(podHits, where)
				break
			}
		}
		for _, n := range c.Nodes {
			a, err := netip.ParseAddr(n.InternalIP)
			if err == nil && block.Contains(a) && !withinAny(netip.PrefixFrom(a, a.BitLen()), except) {
				nodeHits = append(nodeHits, fmt.Sprintf("%s (node %s)", where, n.Name))
				break
			}
		}
	}
	if len(podHits) == 0 && len(nodeHits) == 0 {
		return pass(IDPolicyCompat, fmt.Sprintf("no ipBlock of the %s covers a pod or node address", count(len(c.NetworkPolicies), "NetworkPolicy", "NetworkPolicies"))), true
	}
	var msg, fix []string
	if len(podHits) > 0 {
		msg = append(msg, fmt.Sprintf("%s pod addresses (%s)", count(len(podHits), "ipBlock covers", "ipBlocks cover"), listSome(podHits)))
		fix = append(fix, "Cilium matches the pods it manages by identity, never by ipBlock: select those pods with podSelector and namespaceSelector")
	}
	if len(nodeHits) > 0 {
		msg = append(msg, fmt.Sprintf("%s node addresses (%s)", count(len(nodeHits), "ipBlock covers", "ipBlocks cover"), listSome(nodeHits)))
		fix = append(fix, "Cilium matches the cluster's nodes (and host-network pods, the API server included) by its host and remote-node entities: set policyCIDRMatchMode: [nodes] in the values you pass with -f (Cilium 1.15 and later), or allow them with a CiliumNetworkPolicy's toEntities/fromEntities")
	}
	return warn(IDPolicyCompat, strings.Join(msg, "; ")+": these stop matching once the pods are on Cilium",
		strings.Join(fix, "; ")), true
}

// withinAny reports whether q lies wholly inside one of the prefixes.
func withinAny(q netip.Prefix, in []netip.Prefix) bool {
	for _, e := range in {
		if e.Bits() <= q.Bits() && e.Contains(q.Addr()) {
			return true
		}
	}
	return false
}
