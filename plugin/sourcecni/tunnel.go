package sourcecni

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// Calico's node annotations (Kubernetes datastore) that hold its tunnel
// interfaces' addresses.
const (
	CalicoVXLANTunnelAddr = "projectcalico.org/IPv4VXLANTunnelAddr"
	CalicoIPIPTunnelAddr  = "projectcalico.org/IPv4IPIPTunnelAddr"
)

// Tunnel is an old CNI's tunnel interface on a node, which a migrated
// node's pods reach only through the old CNI's overlay on their own node.
type Tunnel struct {
	// Addr is the interface's IPv4 address; Link its name.
	Addr, Link string
}

// flannelTunnel is flannel.1 of a node whose flanneld runs the vxlan
// backend with the Kubernetes subnet manager: flanneld gives it the
// network address of the node's lease, its spec.podCIDR (10.244.2.0 for
// 10.244.2.0/24).
func flannelTunnel(cni *detect.CNI, n *corev1.Node) (Tunnel, bool) {
	if cni == nil || cni.Backend.Type != "vxlan" || cni.IPAM != "kubernetes" {
		return Tunnel{}, false
	}
	p, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil || !p.Addr().Is4() {
		return Tunnel{}, false
	}
	return Tunnel{Addr: p.Masked().Addr().String(), Link: "flannel.1"}, true
}

// calicoTunnel is vxlan.calico or tunl0 of a node, from the addresses
// calico-node records on its Node object.
func calicoTunnel(_ *detect.CNI, n *corev1.Node) (Tunnel, bool) {
	for _, t := range []struct{ ann, link string }{{CalicoVXLANTunnelAddr, "vxlan.calico"}, {CalicoIPIPTunnelAddr, "tunl0"}} {
		if a, err := netip.ParseAddr(n.Annotations[t.ann]); err == nil && a.Is4() {
			return Tunnel{Addr: a.String(), Link: t.link}, true
		}
	}
	return Tunnel{}, false
}
