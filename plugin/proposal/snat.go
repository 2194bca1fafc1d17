package proposal

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cidr"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// SNATExclusion decides Cilium's ipv4NativeRoutingCIDR for the migration.
//
// With iptables masquerading (the chart default, bpf.masquerade off) in
// tunnel mode, Cilium's "cilium masquerade non-cluster" rule masquerades
// traffic from the node's pod block to every destination outside
// ipv4-native-routing-cidr, or outside the node's own pod block when that is
// unset (pkg/datapath/iptables, 1.14 to 1.20). A Cilium pod talking to an
// old pod on the same node is then source-NATed to the node's address on the
// old CNI's bridge. Setting ipv4NativeRoutingCIDR to a CIDR that covers both
// pod networks stops that; in tunnel mode with cluster-pool IPAM the option
// changes nothing else (docs/snat.md).
//
// It is only safe when that CIDR holds nothing but the two pod networks: a
// wider one would also stop masquerading towards other networks inside it,
// whose replies could not find the pods. So the CIDR is returned only when
// the pod networks tile it exactly (e.g. 10.244.0.0/16 and 10.245.0.0/16
// make 10.244.0.0/15); otherwise it is "" and the note says why and which
// --pod-cidr would do.
func SNATExclusion(c *detect.Cluster, pool netip.Prefix) (string, string) {
	if !pool.IsValid() || !pool.Addr().Is4() {
		return "", ""
	}
	old := oldPodNetworks(c)
	if len(old) == 0 {
		return "", "the old pod network is not known, so Cilium masquerades its pods' traffic to everything outside the node's own pod block"
	}
	for _, o := range old {
		if o.Overlaps(pool) {
			return "", "" // an unsafe proposal: the pod-cidr check says so
		}
	}
	all := append([]netip.Prefix{pool}, old...)
	super := pool
	for _, n := range all {
		for super.Bits() > 0 && (super.Bits() > n.Bits() || !super.Contains(n.Addr())) {
			super, _ = super.Addr().Prefix(super.Bits() - 1)
		}
	}
	var size uint64
	for _, n := range all {
		size += uint64(1) << (32 - n.Bits())
	}
	names := make([]string, len(old))
	for i, o := range old {
		names[i] = o.String()
	}
	oldText := strings.Join(names, ", ")
	if size == uint64(1)<<(32-super.Bits()) {
		return super.String(), fmt.Sprintf("%s is exactly Cilium's pod CIDR %s and the old pod network %s: Cilium does not masquerade its pods' traffic to old pods",
			super, pool, oldText)
	}
	note := fmt.Sprintf("Cilium's pod CIDR %s and the old pod network %s do not make one CIDR (%s, the smallest covering both, holds other addresses), so Cilium masquerades its pods' traffic to old pods on the same node",
		pool, oldText, super)
	if s, ok := freeSibling(c, old); ok {
		note += fmt.Sprintf("; --pod-cidr %s would avoid that", s)
	}
	return "", note
}

// oldPodNetworks returns the IPv4 pod networks the cluster uses today
// (guesses left out), without networks inside others, sorted.
func oldPodNetworks(c *detect.Cluster) []netip.Prefix {
	var all []netip.Prefix
	add := func(s string) {
		for _, f := range strings.Split(s, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(f)); err == nil && p.Addr().Is4() {
				all = append(all, p.Masked())
			}
		}
	}
	for _, pc := range c.PodCIDRs {
		if !pc.Guessed {
			add(pc.CIDR)
		}
	}
	if len(all) == 0 && c.CNI != nil {
		add(c.CNI.Network)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Bits() != all[j].Bits() {
			return all[i].Bits() < all[j].Bits()
		}
		return all[i].Addr().Less(all[j].Addr())
	})
	var out []netip.Prefix
	for _, p := range all {
		inside := false
		for _, q := range out {
			inside = inside || (q.Bits() <= p.Bits() && q.Contains(p.Addr()))
		}
		if !inside {
			out = append(out, p)
		}
	}
	return out
}

// freeSibling is the other half of the single old pod network's parent
// (10.245.0.0/16 for 10.244.0.0/16), when it overlaps nothing the cluster
// uses.
func freeSibling(c *detect.Cluster, old []netip.Prefix) (netip.Prefix, bool) {
	if len(old) != 1 || old[0].Bits() == 0 {
		return netip.Prefix{}, false
	}
	o := old[0]
	a := o.Addr().As4()
	bit := o.Bits() - 1
	a[bit/8] ^= 0x80 >> (bit % 8)
	s := netip.PrefixFrom(netip.AddrFrom4(a), o.Bits())
	if len(cidr.Conflicts(s, Reserved(c))) > 0 {
		return netip.Prefix{}, false
	}
	return s, true
}
