package proposal

import "github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"

// OldCNIUsesPort reports whether the old CNI's datapath uses a UDP port:
// its tunnel port, or any other it binds (detect.CNI.UDPPorts: Weave's
// sleeve and fastdp ports, Calico's VXLAN port whatever its pools use now,
// its WireGuard port).
func OldCNIUsesPort(c *detect.Cluster, port int) bool {
	if c.CNI == nil || port == 0 {
		return false
	}
	if c.CNI.Backend.Port == port {
		return true
	}
	for _, p := range c.CNI.UDPPorts {
		if p == port {
			return true
		}
	}
	return false
}
