package sourcecni

// What Calico's two entries (calico_manifest.go, calico_operator.go) share,
// and what Canal borrows from Calico.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// ciliumHost is the interface Cilium's agent creates on every node, with an
// address from Cilium's pod CIDR: the one Calico's first-found address
// autodetection can pick (cilium/cilium#31273).
const ciliumHost = "cilium_host"

// Calico's objects that a manifest install (calico.yaml, canal.yaml)
// creates beside its DaemonSet.
const (
	calicoKubeControllers = "calico-kube-controllers"
	calicoTypha           = "calico-typha"
	calicoCNIPlugin       = "calico-cni-plugin"
)

// calicoVeths matches the host side of the veths the calico CNI plugin
// makes (cali and 11 hex digits of the workload's hash).
const calicoVeths = "cali[0-9a-f]{11}"

// calicoKubeconfig is the kubeconfig calico's CNI installer writes into the
// CNI directory for the plugin.
const calicoKubeconfig = "calico-kubeconfig"

// calicoNode is what Calico's agents leave on a node, however installed.
func calicoNode() Node {
	return Node{
		Tunnel:    calicoTunnel,
		Leftovers: "Calico's interfaces (tunl0, vxlan.calico, cali* veths), its iptables rules (cali-*) and ipsets (cali40*), felix's and BIRD's routes to the old pod CIDR (blackhole routes included), 10-calico.conflist and calico-kubeconfig in the CNI directory, /var/lib/calico and /run/calico, and the node annotations projectcalico.org/*",
		ByHand:    "ip link delete vxlan.calico; ip link delete tunl0; ip route flush proto 80; iptables-save | grep -v cali | iptables-restore; ipset list -n | grep ^cali | xargs -rn1 ipset destroy; kubectl annotate node --all projectcalico.org/IPv4Address- projectcalico.org/IPv4VXLANTunnelAddr- projectcalico.org/IPv4IPIPTunnelAddr-",
		Sweep: &Sweep{
			Processes: []string{"calico-node"},
			Links:     []string{"vxlan.calico"}, LinkPattern: calicoVeths, Chains: "cali-", IPSets: "cali", RouteProtocols: []string{"80"},
			Files: []string{"10-calico.conflist", "10-calico.conflist.cilium_bak", calicoKubeconfig},
			Dirs:  []string{"/var/lib/calico", "/run/calico"},
		},
	}
}

// calicoCRDsKept says why and how Calico's CRDs stay.
func calicoCRDsKept() string {
	return "Calico's CustomResourceDefinitions (*.crd.projectcalico.org) and what they hold (IPPools, IPAM blocks and handles, Calico policies, FelixConfiguration): " +
		"other tools may read them and deleting them loses Calico's IPAM state; once nothing uses Calico, delete them with " +
		"kubectl get crd -o name | grep '\\.crd\\.projectcalico\\.org$' | xargs kubectl delete"
}

// calicoManifestObjects are the objects of a manifest install of Calico or
// Canal besides its DaemonSet: calico-kube-controllers (and calico-typha) with
// their PodDisruptionBudgets and Service, canal-config or calico-config,
// the ServiceAccounts (calico-cni-plugin too); Calico's CRDs are kept.
func calicoManifestObjects(cni *detect.CNI) Owned {
	return Owned{
		Deployments:     []string{calicoKubeControllers, calicoTypha},
		ConfigMaps:      nonEmpty(cni.ConfigMap),
		ServiceAccounts: []string{calicoCNIPlugin},
		PDBs:            []string{calicoKubeControllers, calicoTypha},
		Services:        []string{calicoTypha},
		Kept:            []string{calicoCRDsKept()},
	}
}

// calicoInstall is what differs in the advice by how Calico was installed.
type calicoInstall struct {
	// iptablesFix switches Calico from its eBPF or VPP dataplane to
	// iptables.
	iptablesFix func(cni *detect.CNI) string
	// toVXLAN ends the advice to switch the pools to VXLAN.
	toVXLAN string
	// internalIPFix pins calico-node's address autodetection to the
	// node's InternalIP, given the method it uses now: the commands.
	internalIPFix func(cni *detect.CNI, method string) []string
}

// calicoBackend judges Calico's pools, dataplane and routing.
func calicoBackend(in calicoInstall) func(cni *detect.CNI) Finding {
	return func(cni *detect.CNI) Finding {
		const id = ""
		switch {
		case strings.HasPrefix(cni.Backend.Type, "policy-only"):
			return fail(id, fmt.Sprintf("Calico only enforces policy here: the pod network is %s's (Installation %s spec.cni.type)", strings.TrimSuffix(strings.TrimPrefix(cni.Backend.Type, "policy-only ("), ")"), cni.Installation),
				"this plugin migrates the pod network of "+orList(Names())+"; follow your platform's own path to Cilium")
		case cni.Dataplane == "bpf" || cni.Dataplane == "vpp":
			return fail(id, fmt.Sprintf("Calico runs its %s dataplane, whose programs on the host interfaces and Service handling collide with Cilium's; the dual-overlay method needs the iptables dataplane", cni.Dataplane), in.iptablesFix(cni))
		}
		var enabled []detect.IPPool
		for _, p := range cni.Pools {
			if !p.Disabled {
				enabled = append(enabled, p)
			}
		}
		if len(enabled) == 0 {
			return warn(id, "Calico has no enabled IPv4 pool that could be read",
				"check kubectl get ippools.crd.projectcalico.org -o yaml, and pass the pod networks with --old-pod-cidr")
		}
		var vxlan, crossSubnet, ipip, native []string
		for _, p := range enabled {
			name := p.Name + " " + p.CIDR
			switch p.Encapsulation {
			case "vxlan":
				vxlan = append(vxlan, name)
			case "vxlan-cross-subnet":
				crossSubnet = append(crossSubnet, name)
			case "ipip", "ipip-cross-subnet":
				ipip = append(ipip, name+" "+p.Encapsulation)
			default:
				native = append(native, name)
			}
		}
		toVXLAN := "switch the pools to VXLAN first (kubectl patch ippools.crd.projectcalico.org NAME --type=merge -p '{\"spec\":{\"ipipMode\":\"Never\",\"vxlanMode\":\"Always\"}}'" + in.toVXLAN
		bgp := ""
		if cni.Routing == "bgp" {
			bgp = " with BGP (BIRD)"
		}
		switch {
		case len(native) > 0:
			return warn(id, fmt.Sprintf("Calico routes pods natively%s, without encapsulation (pool %s): outside the guide's tested path (not tested with BGP routing); Cilium's pod CIDR is not advertised, so whatever reaches pods by their address from outside the cluster will not reach migrated pods", bgp, strings.Join(native, ", ")),
				"rehearse on a staging cluster first and plan routes to Cilium's pod CIDR (or Cilium's BGP control plane), or "+toVXLAN)
		case len(ipip) > 0:
			return warn(id, fmt.Sprintf("Calico tunnels pods with IP-in-IP%s (pool %s): outside the guide's tested path (VXLAN); Cilium's VXLAN runs beside it, but traffic between old and new pods crosses both", bgp, strings.Join(ipip, ", ")),
				"rehearse on a staging cluster first, or "+toVXLAN)
		case len(crossSubnet) > 0:
			return warn(id, fmt.Sprintf("Calico encapsulates with VXLAN only between subnets (pool %s, VXLANCrossSubnet): within a subnet old pods are routed natively%s, outside the guide's tested path", strings.Join(crossSubnet, ", "), bgp),
				"rehearse on a staging cluster first, or set the pools' vxlanMode to Always")
		case cni.Routing == "bgp":
			return warn(id, fmt.Sprintf("Calico's pools use VXLAN (UDP port %d) but BIRD (BGP) runs too: the guide was not tested with BGP routing", cni.Backend.Port),
				"if nothing peers with the nodes, turn BGP off first (calico_backend: vxlan, or bgp: Disabled in the Installation)")
		}
		return pass(id, fmt.Sprintf("Calico uses VXLAN (pool %s, UDP port %d, VNI %d), the guide's tested path", strings.Join(vxlan, ", "), cni.Backend.Port, cni.Backend.VNI))
	}
}

// nodeAddressCheck: with Cilium running, calico-node's first-found address
// autodetection can take cilium_host's address as the node's, and Calico's
// BGP and tunnels break (cilium/cilium#31273).
func nodeAddressCheck(in calicoInstall) func(c *detect.Cluster, p *proposal.Proposal) Finding {
	return func(c *detect.Cluster, p *proposal.Proposal) Finding {
		const id = CheckNodeAddress
		cni := c.CNI
		m := cni.NodeAddressAutodetection
		risky := func(why string) Finding {
			cmds := in.internalIPFix(cni, m)
			f := warn(id, "calico-node picks each node's address with "+m+why+" (cilium/cilium#31273)", "before installing Cilium: "+strings.Join(cmds, " && "))
			f.Commands = cmds
			return f
		}
		pinned := func(why string) Finding {
			return pass(id, "calico-node picks each node's address with "+m+why)
		}
		kind, arg, _ := strings.Cut(m, "=")
		switch kind {
		case "kubernetes-internal-ip":
			return pinned(": the node's InternalIP, never Cilium's cilium_host")
		case "none", "IP":
			return pinned(": no autodetection")
		case "interface":
			if matchesAny(arg, ciliumHost) {
				return risky(", which matches cilium_host: once Cilium runs Calico can take its address and turn not-ready")
			}
			return pinned(", which does not match cilium_host")
		case "skip-interface":
			if matchesAny(arg, ciliumHost) {
				return pinned(", which skips cilium_host")
			}
			return risky(", which does not skip cilium_host: once Cilium runs Calico can take its address and turn not-ready")
		case "cidr":
			for _, s := range strings.Split(arg, ",") {
				if q, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p != nil && q.Overlaps(p.Prefix()) {
					return risky(fmt.Sprintf(", which includes Cilium's pod CIDR %s (cilium_host's address)", p.PodCIDR))
				}
			}
			return pinned(", which excludes Cilium's pod CIDR (cilium_host's address)")
		case "can-reach":
			if a, err := netip.ParseAddr(arg); err == nil && p != nil && p.Prefix().Contains(a) {
				return risky(fmt.Sprintf(", an address in Cilium's pod CIDR %s", p.PodCIDR))
			}
			return pinned(": the interface routing to that address")
		}
		return risky(": once Cilium runs it can take cilium_host's address, and Calico's pods turn not-ready")
	}
}

// matchesAny reports whether one of the comma-separated regular
// expressions (Calico's syntax, Go's regexp) matches name.
func matchesAny(list, name string) bool {
	for _, r := range strings.Split(list, ",") {
		re, err := regexp.Compile(strings.TrimSpace(r))
		if err == nil && re.MatchString(name) {
			return true
		}
	}
	return false
}

// calicoPoliciesCheck: Cilium does not read Calico's own policy resources
// (Calico and Canal).
func calicoPoliciesCheck(c *detect.Cluster, _ *proposal.Proposal) Finding {
	const id = CheckCalicoPolicies
	if len(c.CalicoPolicies) == 0 {
		return pass(id, "no Calico NetworkPolicies or GlobalNetworkPolicies")
	}
	var names []string
	global := 0
	for _, p := range c.CalicoPolicies {
		if p.Namespace == "" {
			global++
			names = append(names, "global "+p.Name)
		} else {
			names = append(names, p.Namespace+"/"+p.Name)
		}
	}
	return warn(id, fmt.Sprintf("%s (%d global): Cilium does not read Calico's own policy resources; they stop applying to migrated pods and go away with %s (%s)",
		count(len(names), "Calico policy", "Calico policies"), global, c.CNI.Name, listSome(names)),
		"before finalize, rewrite them as CiliumNetworkPolicies / CiliumClusterwideNetworkPolicies: kubectl cni-migrate calico-policies prints the translation with what it cannot translate; review it, then run it with --apply (policy enforcement is off on migrated pods until finalize)")
}

// calicoSNAT: Calico masquerades traffic from pools with natOutgoing to
// addresses in none of its IPPools (disabled ones included).
func calicoSNAT(c *detect.Cluster, p *proposal.Proposal) (string, string) {
	pools := natPools(c.CNI)
	if len(pools) == 0 {
		return "", ""
	}
	if cover := coveringPool(c.CNI, p.Prefix()); cover != "" {
		return fmt.Sprintf("Calico does not (IPPool %s covers %s)", cover, p.PodCIDR), ""
	}
	return fmt.Sprintf("Calico masquerades traffic from %s to addresses in none of its IPPools, %s included", strings.Join(pools, ", "), p.PodCIDR),
		fmt.Sprintf("a disabled IPPool for %s (disabled: true, natOutgoing: false) stops Calico's NAT towards it (Calico does not NAT to its own pools); the NAT by Cilium across nodes stays; ", p.PodCIDR)
}

// natPools names the Calico IPPools with natOutgoing on.
func natPools(cni *detect.CNI) []string {
	var out []string
	for _, pl := range cni.Pools {
		if pl.NATOutgoing && !pl.Disabled {
			out = append(out, pl.Name+" "+pl.CIDR)
		}
	}
	return out
}

// coveringPool names a Calico IPPool whose CIDR contains prefix: Calico does
// not NAT traffic to addresses in any of its pools, disabled ones included.
func coveringPool(cni *detect.CNI, prefix netip.Prefix) string {
	for _, pl := range cni.Pools {
		if q, err := netip.ParsePrefix(pl.CIDR); err == nil && q.Bits() <= prefix.Bits() && q.Contains(prefix.Addr()) {
			return pl.Name
		}
	}
	return ""
}
