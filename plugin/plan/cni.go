package plan

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// cniRows are the table rows describing the old CNI, as its registry
// entry says to show it.
func cniRows(row func(k, v string), cni *detect.CNI) error {
	src, err := sourcecni.For(cni)
	if err != nil {
		return err
	}
	where := ""
	switch {
	case cni.Installation != "":
		where = fmt.Sprintf("Tigera operator, Installation %s; %s in %s", cni.Installation, cni.DaemonSet, cni.Namespace)
	case cni.DaemonSet != "":
		where = fmt.Sprintf("DaemonSet %s/%s, ConfigMap %s", cni.Namespace, cni.DaemonSet, orNone(cni.ConfigMap))
	case cni.Embedded != "":
		where = "built into " + cni.Embedded + ", no DaemonSet"
	}
	if cni.Override != "" {
		if where != "" {
			where += ", "
		}
		where += "named by " + cni.Override
	}
	name := cni.Name
	if cni.Version != "" {
		name += " " + cni.Version
	}
	row("  cni", fmt.Sprintf("%s (%s)", name, where))

	b := cni.Backend
	backend := orNone(b.Type)
	if b.Port != 0 {
		backend += fmt.Sprintf(", port %d", b.Port)
		if b.PortDefaulted {
			backend += " (default)"
		}
	}
	if b.VNI != 0 {
		backend += fmt.Sprintf(", VNI %d", b.VNI)
	}
	if src.Plan.BackendOnly {
		row("  backend", backend)
		return nil
	}
	if b.MTU != 0 {
		backend += fmt.Sprintf(", MTU %d", b.MTU)
	}
	if b.Encryption != "" {
		backend += ", encrypted: " + b.Encryption
	}
	if cni.Dataplane != "" {
		backend += ", " + cni.Dataplane + " dataplane"
	}
	row("  backend", backend)
	for i, p := range cni.Pools {
		v := fmt.Sprintf("%s %s, %s, /%d blocks", p.Name, p.CIDR, p.Encapsulation, p.BlockSize)
		if p.NATOutgoing {
			v += ", natOutgoing"
		}
		if p.Disabled {
			v += ", disabled"
		}
		row(label(i, "  ip pools"), v)
	}
	if cni.Routing == "bgp" {
		row("  routing", "BGP ("+src.Plan.BGP+")")
	}
	if len(cni.UDPPorts) > 0 && !(len(cni.UDPPorts) == 1 && cni.UDPPorts[0] == b.Port) {
		var ports []string
		for _, p := range cni.UDPPorts {
			ports = append(ports, fmt.Sprint(p))
		}
		row("  udp ports", strings.Join(ports, ", ")+" (kept free of Cilium's tunnel)")
	}
	ipam := map[string]string{
		"kubernetes": "kubernetes (the nodes' podCIDRs)",
		"calico":     "calico (IPAM blocks from the IP pools)",
		"weave":      "weave (its own, from IPALLOC_RANGE)",
	}[cni.IPAM]
	if ipam == "" {
		ipam = orNone(cni.IPAM)
	}
	row("  ipam", ipam)
	if cni.NodeAddressAutodetection != "" {
		row("  node address", cni.NodeAddressAutodetection+" (calico-node IPv4 autodetection)")
	}
	policy := "not enforced"
	if cni.EnforcesPolicy {
		policy = "enforced by " + cni.Name
	}
	row("  policy", policy)
	if cni.ServiceProxy {
		row("  services", "proxied by "+cni.Name+" (--run-service-proxy)")
	}
	return nil
}
