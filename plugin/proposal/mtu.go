package proposal

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// CiliumTunnelOverhead is what Cilium's VXLAN or Geneve encapsulation over
// IPv4 takes from the underlying MTU (pkg/mtu TunnelOverheadIPv4: outer IP
// 20, UDP 8, VXLAN/Geneve 8, inner Ethernet 14). Geneve's DSR option adds 12
// more, but only with kube-proxy replacement in DSR/geneve mode, which the
// migration does not turn on.
const CiliumTunnelOverhead = 50

// WeaveDefaultMTU is Weave Net's MTU when WEAVE_MTU is not set.
const WeaveDefaultMTU = 1376

// MTUStatus is how the two overlays' MTUs compare.
type MTUStatus string

// The outcomes of CheckMTU.
const (
	MTUEqual   MTUStatus = "equal"
	MTUDiffer  MTUStatus = "differ"
	MTUUnknown MTUStatus = "unknown"
	MTUBad     MTUStatus = "bad"
)

// MTU is what is known about the pod MTUs of the old overlay and Cilium's.
// The node's interface MTU is in no Kubernetes object, so it is inferred
// (the old overlay's explicit MTU plus its overhead is a lower bound, since
// the old overlay works) or left unknown.
type MTU struct {
	// Old describes the old overlay, e.g. "flannel vxlan".
	Old string
	// OldMTU is its pod MTU when set in its configuration (0: derived by
	// the old CNI from the node's interface, OldOverhead bytes less).
	OldMTU int
	// OldSource says where OldMTU was read, or how the CNI derives it.
	OldSource string
	// OldOverhead is what the old overlay takes from the node's MTU (-1:
	// not known).
	OldOverhead int
	// CiliumMTU is the values' MTU (the underlying MTU Cilium assumes; 0:
	// auto-detected from the node's interface). Cilium's pods get
	// CiliumMTU-CiliumTunnelOverhead.
	CiliumMTU int
	// Protocol is Cilium's tunnel protocol.
	Protocol string
	// Suggest is the values MTU that makes both pod MTUs equal, when it can
	// be told without the node's MTU (0 otherwise).
	Suggest int

	Status MTUStatus
	// Message says what was found and how they compare; Fix what to do.
	Message string
	Fix     string
}

// oldOverhead is the overhead of an old backend, -1 when not known.
func oldOverhead(cniName, backend string) int {
	worst := -1
	for _, b := range strings.Split(backend, ",") {
		var o int
		switch strings.TrimSuffix(strings.TrimSpace(b), "-cross-subnet") {
		case "vxlan", "geneve", "fastdp":
			o = 50
		case "ipip":
			o = 20
		case "fou", "udp":
			o = 28
		case "wireguard":
			o = 80
			if cniName == "calico" {
				o = 60
			}
		case "host-gw", "none":
			o = 0
		case "sleeve":
			o = 50 // UDP encapsulation; Weave sets its own MTU anyway
		default:
			return -1
		}
		worst = max(worst, o)
	}
	return worst
}

// CheckMTU compares the old overlay's pod MTU with Cilium's for the
// cluster: with userMTU 0 Cilium auto-detects, else it is the MTU from the
// user's values.
func CheckMTU(c *detect.Cluster, protocol string, userMTU int) MTU {
	m := MTU{Protocol: protocol, CiliumMTU: userMTU, OldOverhead: -1}
	if protocol == "" {
		m.Protocol = "vxlan"
	}
	if c == nil || c.CNI == nil {
		m.Status, m.Message = MTUUnknown, "no old CNI detected, so its MTU is unknown"
		m.Fix = "check the pod MTU of the old network on a node (ip link) against Cilium's: the node's MTU minus 50"
		return m
	}
	b := c.CNI.Backend
	m.Old = strings.TrimSpace(c.CNI.Name + " " + b.Type)
	m.OldMTU, m.OldOverhead = b.MTU, oldOverhead(c.CNI.Name, b.Type)
	switch {
	case m.OldMTU > 0:
		m.OldSource = "configured"
	case c.CNI.Name == "weave":
		m.OldMTU, m.OldSource = WeaveDefaultMTU, "Weave's default, WEAVE_MTU unset"
	case m.OldOverhead >= 0:
		m.OldSource = "derived from the node's interface"
	}

	oldDesc := func() string {
		switch {
		case m.OldMTU > 0:
			return fmt.Sprintf("old overlay MTU %d (%s, %s)", m.OldMTU, m.Old, m.OldSource)
		case m.OldOverhead == 0:
			return fmt.Sprintf("old overlay MTU node MTU (%s, auto)", m.Old)
		case m.OldOverhead > 0:
			return fmt.Sprintf("old overlay MTU node MTU - %d (%s, auto)", m.OldOverhead, m.Old)
		}
		return fmt.Sprintf("old overlay MTU unknown (%s)", m.Old)
	}
	cilDesc := fmt.Sprintf("Cilium %s MTU node MTU - %d (auto)", m.Protocol, CiliumTunnelOverhead)
	if userMTU > 0 {
		cilDesc = fmt.Sprintf("Cilium %s MTU %d (MTU %d from --values)", m.Protocol, userMTU-CiliumTunnelOverhead, userMTU)
	}
	const unknownNode = "the nodes' interface MTU is in no Kubernetes object"
	say := func(st MTUStatus, how, fix string) MTU {
		m.Status, m.Message, m.Fix = st, oldDesc()+", "+cilDesc+": "+how, fix
		return m
	}
	pmtu := "packets above the smaller MTU between old and Cilium pods are fragmented or, with DF set, need path MTU discovery (ICMP \"fragmentation needed\" must not be filtered)"

	if userMTU > 0 {
		pod := userMTU - CiliumTunnelOverhead
		if pod < 576 || userMTU > 65535 {
			return say(MTUBad, fmt.Sprintf("MTU %d leaves Cilium's pods %d bytes", userMTU, pod),
				"set MTU in --values to the nodes' interface MTU (e.g. 1500), or remove it to auto-detect")
		}
		switch {
		case m.OldMTU > 0 && pod == m.OldMTU:
			if m.OldOverhead >= 0 && userMTU > m.OldMTU+m.OldOverhead {
				return say(MTUDiffer, fmt.Sprintf("equal, but MTU %d needs a node interface MTU of at least %d; %s, and the old overlay shows only %d", userMTU, userMTU, unknownNode, m.OldMTU+m.OldOverhead),
					fmt.Sprintf("check the nodes' MTU (ip link) is at least %d; if not, Cilium's encapsulated packets are dropped", userMTU))
			}
			return say(MTUEqual, "equal", "")
		case m.OldMTU > 0:
			return say(MTUDiffer, fmt.Sprintf("Cilium's is %d bytes %s; %s", abs(pod-m.OldMTU), smallerLarger(pod, m.OldMTU), pmtu),
				fmt.Sprintf("set MTU to %d in --values so both are %d, if the nodes' MTU (ip link) is at least that", m.OldMTU+CiliumTunnelOverhead, m.OldMTU))
		default:
			return say(MTUUnknown, "cannot compare: "+unknownNode,
				fmt.Sprintf("check the nodes' MTU on a node (ip link): the old pods get it minus %s, Cilium's pods %d", overheadText(m.OldOverhead), pod))
		}
	}

	// Cilium auto-detects: its pods get the node's MTU - 50.
	switch {
	case m.OldMTU > 0 && m.OldOverhead >= CiliumTunnelOverhead:
		// The old overlay works, so the nodes carry at least OldMTU+overhead:
		// MTU OldMTU+50 fits them and makes both equal.
		m.Suggest = m.OldMTU + CiliumTunnelOverhead
		return say(MTUDiffer, fmt.Sprintf("equal only if the nodes' MTU is %d (%s)", m.Suggest, unknownNode),
			fmt.Sprintf("set MTU: %d in a --values file, so Cilium's pods get %d like the old ones (the old overlay needs nodes of at least %d, so it fits)", m.Suggest, m.OldMTU, m.OldMTU+m.OldOverhead))
	case m.OldMTU > 0:
		return say(MTUDiffer, fmt.Sprintf("equal only if the nodes' MTU is %d; %s (the old overlay shows at least %d)", m.OldMTU+CiliumTunnelOverhead, unknownNode, m.OldMTU+max(m.OldOverhead, 0)),
			fmt.Sprintf("check the nodes' MTU (ip link): if it is at least %d set MTU: %d in --values; if smaller, Cilium's pods get less than %d and %s", m.OldMTU+CiliumTunnelOverhead, m.OldMTU+CiliumTunnelOverhead, m.OldMTU, pmtu))
	case m.OldOverhead == CiliumTunnelOverhead:
		return say(MTUEqual, "equal when both use the same interface", "")
	case m.OldOverhead >= 0:
		return say(MTUDiffer, fmt.Sprintf("Cilium's is %d bytes %s; %s", abs(m.OldOverhead-CiliumTunnelOverhead), smallerLarger(-CiliumTunnelOverhead, -m.OldOverhead), pmtu),
			"nothing to set (a larger Cilium MTU would not fit the nodes); keep ICMP \"fragmentation needed\" flowing between nodes while the migration runs")
	}
	return say(MTUUnknown, "cannot compare",
		fmt.Sprintf("check the old pods' MTU on a node (ip link) against Cilium's: the nodes' MTU minus %d", CiliumTunnelOverhead))
}

func overheadText(o int) string {
	if o < 0 {
		return "its overhead"
	}
	return fmt.Sprint(o)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func smallerLarger(cilium, old int) string {
	if cilium < old {
		return "smaller"
	}
	return "larger"
}
