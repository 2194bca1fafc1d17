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
	var msg, fix []string
	if len(podHits) > 0 {
		msg = append(msg, fmt.Sprintf("%s pod addresses (%s)", count(len(podHits), "ipBlock covers", "ipBlocks cover"), listSome(podHits)))
		fix = append(fix, "Cilium matches the pods it manages by identity, never by ipBlock (and, with kube-proxy, judges a connection to a Service by its ClusterIP, before kube-proxy picks the pod): select those pods with podSelector and namespaceSelector")
	}
	if len(nodeHits) > 0 {
		msg = append(msg, fmt.Sprintf("%s node addresses (%s)", count(len(nodeHits), "ipBlock covers", "ipBlocks cover"), listSome(nodeHits)))
		fix = append(fix, "Cilium matches the cluster's nodes (and host-network pods, the API server included, the pod's own node, and NodePort traffic kube-proxy forwards from another node under that node's address) by its host and remote-node entities: set policyCIDRMatchMode: [nodes] in the values you pass with -f (Cilium 1.15 and later), or allow them with a CiliumNetworkPolicy's toEntities/fromEntities")
	}
	if m, f := endPortItems(c, p); m != "" {
		msg, fix = append(msg, m), append(fix, f)
	}
	if m, f := namedPortItems(c); m != "" {
		msg, fix = append(msg, m), append(fix, f)
	}
	if len(msg) == 0 {
		return pass(IDPolicyCompat, fmt.Sprintf("no ipBlock of the %s covers a pod or node address, and none has a port Cilium reads differently", count(len(c.NetworkPolicies), "NetworkPolicy", "NetworkPolicies"))), true
	}
	return warn(IDPolicyCompat, strings.Join(msg, "; ")+": these stop matching once the pods are on Cilium",
		strings.Join(fix, "; ")), true
}

// endPortItems names the port ranges (endPort) of the policies when the
// proposed Cilium is older than 1.16: Cilium 1.15 and earlier warn
// "EndPort in kubernetes NetworkPolicy is not supported" and allow only
// the range's first port.
func endPortItems(c *detect.Cluster, p *proposal.Proposal) (string, string) {
	if p == nil || p.Version.AtLeast(1, 16) {
		return "", ""
	}
	var hits []string
	for _, pp := range c.PolicyPorts {
		if pp.EndPort != 0 {
			hits = append(hits, fmt.Sprintf("%s/%s %s %s-%d/%s", pp.Policy.Namespace, pp.Policy.Name, pp.Direction, pp.Port, pp.EndPort, pp.Protocol))
		}
	}
	if len(hits) == 0 {
		return "", ""
	}
	return fmt.Sprintf("%s (%s): Cilium %s ignores endPort and allows only the first port",
			count(len(hits), "port range", "port ranges"), listSome(hits), p.Version.MinorString()),
		"migrate to Cilium 1.16 or later (--cilium-version), which reads endPort, or list the ports one by one"
}

// namedPortItems names the egress rules' port names that the cluster's
// pods give several numbers: Kubernetes resolves a name on each
// destination pod, Cilium over the named ports of every pod in the cluster
// (pkg/endpoint/policy.go GetNamedPort), and a name with two numbers for
// one protocol resolves to none there, so the rule allows no port.
func namedPortItems(c *detect.Cluster) (string, string) {
	numbers := map[string][]detect.NamedPort{}
	for _, n := range c.NamedPorts {
		k := n.Name + "/" + n.Protocol
		numbers[k] = append(numbers[k], n)
	}
	var hits []string
	seen := map[string]bool{}
	for _, pp := range c.PolicyPorts {
		k := pp.Port + "/" + pp.Protocol
		if pp.Direction != "egress" || !pp.Named() || len(numbers[k]) < 2 || seen[k+pp.Policy.Namespace+"/"+pp.Policy.Name] {
			continue
		}
		seen[k+pp.Policy.Namespace+"/"+pp.Policy.Name] = true
		var where []string
		for _, n := range numbers[k] {
			where = append(where, fmt.Sprintf("%d on %s (%s)", n.Port, n.Example.Namespace+"/"+n.Example.Name, count(n.Pods, "pod", "pods")))
		}
		hits = append(hits, fmt.Sprintf("%s/%s egress to port %q, which is %s", pp.Policy.Namespace, pp.Policy.Name, pp.Port, strings.Join(where, " and ")))
	}
	if len(hits) == 0 {
		return "", ""
	}
	return fmt.Sprintf("%s (%s): Cilium resolves an egress port name over every pod of the cluster, and a name with several numbers to none",
			count(len(hits), "egress rule names a port", "egress rules name ports"), listSome(hits)),
		"give those egress rules port numbers, or give the containers' ports distinct names"
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
