package status

import (
	"net/netip"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	corev1 "k8s.io/api/core/v1"
)

// Network says which pod network an address belongs to.
type Network int

// The networks a pod address is classified into.
const (
	// NoAddress: the pod has no address yet (Pending, or not scheduled).
	NoAddress Network = iota
	// OldNetwork: the address is in the old CNI's pod CIDR.
	OldNetwork
	// NewNetwork: the address is in Cilium's cluster pool.
	NewNetwork
	// OtherNetwork: the address is in neither.
	OtherNetwork
)

func (n Network) String() string {
	switch n {
	case NoAddress:
		return "none"
	case OldNetwork:
		return "old"
	case NewNetwork:
		return "new"
	}
	return "other"
}

// Networks are the pod CIDRs of the old CNI and of Cilium.
type Networks struct {
	Old []netip.Prefix
	New []netip.Prefix
}

// Classify places an address. Cilium's pool wins over the old CIDR: an
// address in both (a misconfiguration that plan refuses) counts as Cilium's.
func (n Networks) Classify(ip netip.Addr) Network {
	if !ip.IsValid() {
		return NoAddress
	}
	ip = ip.Unmap()
	for _, p := range n.New {
		if p.Contains(ip) {
			return NewNetwork
		}
	}
	for _, p := range n.Old {
		if p.Contains(ip) {
			return OldNetwork
		}
	}
	return OtherNetwork
}

// ParsePrefixes parses CIDRs, returning the ones that parse and those that
// do not.
func ParsePrefixes(cidrs []string) (ok []netip.Prefix, bad []string) {
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			bad = append(bad, c)
			continue
		}
		ok = append(ok, p.Masked())
	}
	return ok, bad
}

// Pod is all status keeps of a pod: a few dozen bytes instead of the
// object, so that memory grows with the number of pods, not their size.
type Pod struct {
	// Node is spec.nodeName ("" while unscheduled).
	Node string
	// IP is the pod's first IPv4 address, else its first address; the
	// zero Addr when it has none.
	IP          netip.Addr
	Phase       corev1.PodPhase
	HostNetwork bool
	// Agent is set for Cilium agent pods only.
	Agent AgentState
	// Name is kept for Cilium agent pods only.
	Name string
}

// AgentState says whether a pod is a Cilium agent, and whether it is Ready.
type AgentState uint8

// Agent states.
const (
	NotAgent AgentState = iota
	AgentNotReady
	AgentReady
)

// Counted reports whether a pod counts in "Cluster Pods X/Y managed by
// Cilium" (the Y of `cilium status`): a pod with its own network namespace
// (not hostNetwork) that is Running or Pending. Succeeded, Failed and
// Unknown pods do not count.
func Counted(hostNetwork bool, phase corev1.PodPhase) bool {
	return !hostNetwork && (phase == corev1.PodRunning || phase == corev1.PodPending)
}

// PodFrom extracts what status keeps from a pod. isAgent says whether the
// pod is a Cilium agent pod (k8s-app=cilium in Cilium's namespace).
func PodFrom(p *corev1.Pod, isAgent bool) Pod {
	out := Pod{Node: p.Spec.NodeName, Phase: p.Status.Phase, HostNetwork: p.Spec.HostNetwork, IP: podIP(p)}
	if isAgent {
		out.Name = p.Name
		out.Agent = AgentNotReady
		if p.DeletionTimestamp == nil && kube.PodReady(p) {
			out.Agent = AgentReady
		}
	}
	return out
}

func podIP(p *corev1.Pod) netip.Addr {
	var first netip.Addr
	n := len(p.Status.PodIPs)
	for i := 0; i <= n; i++ {
		s := p.Status.PodIP
		if i < n {
			s = p.Status.PodIPs[i].IP
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if a.Is4() {
			return a
		}
		if !first.IsValid() {
			first = a
		}
	}
	return first
}

// NodeTally counts the pods of one node.
type NodeTally struct {
	// OldCIDR, NewCIDR, Other and NoIP count the pods that Counted, by the
	// network of their address.
	OldCIDR, NewCIDR, Other, NoIP int
	// AgentPod is the node's Cilium agent pod (a Ready one when there are
	// several, as during a restart); AgentReady says whether it is Ready.
	AgentPod   string
	AgentReady bool
}

// Tally aggregates pods as they stream by; it keeps no pod.
type Tally struct {
	Networks Networks
	// Nodes holds the counts by node name.
	Nodes map[string]*NodeTally
	// Counted is the Y of `cilium status`; OldCIDR, NewCIDR, Other and
	// NoIP split it by address.
	Counted, OldCIDR, NewCIDR, Other, NoIP int
}

// NewTally returns an empty tally that classifies addresses with n.
func NewTally(n Networks) *Tally {
	return &Tally{Networks: n, Nodes: map[string]*NodeTally{}}
}

func (t *Tally) node(name string) *NodeTally {
	nt := t.Nodes[name]
	if nt == nil {
		nt = &NodeTally{}
		t.Nodes[name] = nt
	}
	return nt
}

// Add counts one pod.
func (t *Tally) Add(p Pod) {
	if p.Agent != NotAgent && p.Node != "" {
		nt := t.node(p.Node)
		ready := p.Agent == AgentReady
		// Prefer a Ready agent; among equals, the first name in order so
		// the result does not depend on the order pods arrive in.
		if nt.AgentPod == "" || ready && !nt.AgentReady || ready == nt.AgentReady && p.Name < nt.AgentPod {
			nt.AgentPod, nt.AgentReady = p.Name, ready
		}
	}
	if !Counted(p.HostNetwork, p.Phase) {
		return
	}
	t.Counted++
	var nt *NodeTally
	if p.Node != "" {
		nt = t.node(p.Node)
	} else {
		nt = &NodeTally{} // unscheduled: counted in the totals only
	}
	switch t.Networks.Classify(p.IP) {
	case NoAddress:
		t.NoIP++
		nt.NoIP++
	case OldNetwork:
		t.OldCIDR++
		nt.OldCIDR++
	case NewNetwork:
		t.NewCIDR++
		nt.NewCIDR++
	default:
		t.Other++
		nt.Other++
	}
}
