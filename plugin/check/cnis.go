package check

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// Check IDs of the checks only some source CNIs get.
const (
	// IDNodeAddress: how calico-node picks each node's address once Cilium
	// adds its cilium_host interface (Calico only).
	IDNodeAddress = "node-address-autodetection"
	// IDCalicoPolicies: Calico's own policy resources (Calico and Canal).
	IDCalicoPolicies = "calico-policies"
	// IDServiceProxy: the old CNI proxies Services itself (kube-router).
	IDServiceProxy = "service-proxy"
)

// ciliumHost is the interface Cilium's agent creates on every node, with an
// address from Cilium's pod CIDR: the one Calico's first-found address
// autodetection can pick (cilium/cilium#31273).
const ciliumHost = "cilium_host"

// cniCheck says which provider the migration starts from.
func cniCheck(c *detect.Cluster) Result {
	if c.Problem != nil {
		return fromErr(IDCNI, c.Problem)
	}
	cni := c.CNI
	v := ""
	if cni.Version != "" {
		v = " " + cni.Version
	}
	var others []string
	for _, s := range c.CNIsSeen {
		if s.Name != cni.Name && s.Name != "cilium" {
			others = append(others, s.Name+" ("+s.Object+")")
		}
	}
	also := ""
	if len(others) > 0 {
		also = "; also seen, left alone: " + strings.Join(others, ", ")
	}
	switch {
	case cni.DaemonSet == "" && cni.Installation == "":
		return warn(IDCNI, fmt.Sprintf("%s named by %s, not found under its usual names: network %s%s", cni.Name, cni.Override, cni.Network, also),
			"make sure --old-pod-cidr lists every pod network the old CNI uses; finalize --remove-old-cni will not know its objects")
	case cni.Install == "operator":
		return pass(IDCNI, fmt.Sprintf("%s%s found (Tigera operator, Installation %s; calico-node in %s), network %s%s", cni.Name, v, cni.Installation, cni.Namespace, cni.Network, also))
	}
	msg := fmt.Sprintf("%s%s found (DaemonSet %s/%s), network %s", cni.Name, v, cni.Namespace, cni.DaemonSet, cni.Network)
	if cni.Override != "" {
		msg += " (" + cni.Override + ")"
	}
	return pass(IDCNI, msg+also)
}

// backendCheck judges the old CNI's encapsulation against the guide's
// tested path: a VXLAN overlay on a UDP port of its own.
func backendCheck(cni *detect.CNI) Result {
	if cni.DaemonSet == "" && cni.Installation == "" {
		return warn(IDBackend, cni.Name+"'s backend was not read (named by "+cni.Override+")",
			fmt.Sprintf("make sure Cilium's tunnel port is not one %s uses (defaults: %s), else pass --tunnel-port", cni.Name, portList(cni.UDPPorts)))
	}
	switch cni.Name {
	case "calico":
		return calicoBackendCheck(cni)
	case "weave":
		return weaveBackendCheck(cni)
	case "kube-router":
		return kubeRouterBackendCheck(cni)
	}
	return flannelBackendCheck(cni)
}

// flannelBackendCheck covers flannel and Canal's flannel.
func flannelBackendCheck(cni *detect.CNI) Result {
	who := "flannel's"
	if cni.Name == "canal" {
		who = "canal's flannel"
	}
	b := cni.Backend
	switch b.Type {
	case "vxlan":
		return pass(IDBackend, fmt.Sprintf("%s uses the vxlan backend (port %d, VNI %d), the guide's tested path", cni.Name, b.Port, b.VNI))
	case "host-gw":
		return warn(IDBackend, who+" host-gw backend is outside the guide's tested path (no tunnel: old pods rely on per-node routes while Cilium tunnels)",
			"rehearse on a staging cluster with the same backend first, or switch flannel to vxlan before migrating")
	case "wireguard":
		return warn(IDBackend, fmt.Sprintf("%s wireguard backend (port %d) encrypts old-pod traffic only; traffic between old and new pods leaves the tunnel", who, b.Port),
			"keep Cilium's own encryption off until finalize, and expect old-to-new pod traffic to be unencrypted during the migration")
	case "":
		return warn(IDBackend, who+" backend could not be read (no net-conf.json and no node annotation)",
			"check flannel's ConfigMap and make sure it has a net-conf.json key")
	default:
		return fail(IDBackend, fmt.Sprintf("%s %s backend is not supported by the dual-overlay method", who, b.Type),
			"switch flannel to the vxlan backend (net-conf.json Backend.Type) and restart flannel first")
	}
}

func calicoBackendCheck(cni *detect.CNI) Result {
	switch {
	case strings.HasPrefix(cni.Backend.Type, "policy-only"):
		return fail(IDBackend, fmt.Sprintf("Calico only enforces policy here: the pod network is %s's (Installation %s spec.cni.type)", strings.TrimSuffix(strings.TrimPrefix(cni.Backend.Type, "policy-only ("), ")"), cni.Installation),
			"this plugin migrates the pod network of flannel, canal, calico, weave or kube-router; follow your platform's own path to Cilium")
	case cni.Dataplane == "bpf" || cni.Dataplane == "vpp":
		fix := "switch Calico to its iptables dataplane first (FelixConfiguration default spec.bpfEnabled: false, and kube-proxy back)"
		if cni.Install == "operator" {
			fix = fmt.Sprintf(`switch Calico to its iptables dataplane first: kubectl patch installation %s --type=merge -p '{"spec":{"calicoNetwork":{"linuxDataplane":"Iptables"}}}' (and kube-proxy back)`, cni.Installation)
		}
		return fail(IDBackend, fmt.Sprintf("Calico runs its %s dataplane, whose programs on the host interfaces and Service handling collide with Cilium's; the dual-overlay method needs the iptables dataplane", cni.Dataplane), fix)
	}
	var enabled []detect.IPPool
	for _, p := range cni.Pools {
		if !p.Disabled {
			enabled = append(enabled, p)
		}
	}
	if len(enabled) == 0 {
		return warn(IDBackend, "Calico has no enabled IPv4 pool that could be read",
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
	toVXLAN := "switch the pools to VXLAN first (kubectl patch ippools.crd.projectcalico.org NAME --type=merge -p '{\"spec\":{\"ipipMode\":\"Never\",\"vxlanMode\":\"Always\"}}'"
	if cni.Install == "manifest" {
		toVXLAN += ", and calico_backend: vxlan in calico-config)"
	} else {
		toVXLAN += ", or encapsulation: VXLAN in the Installation's ipPools)"
	}
	bgp := ""
	if cni.Routing == "bgp" {
		bgp = " with BGP (BIRD)"
	}
	switch {
	case len(native) > 0:
		return warn(IDBackend, fmt.Sprintf("Calico routes pods natively%s, without encapsulation (pool %s): outside the guide's tested path (not tested with BGP routing); Cilium's pod CIDR is not advertised, so whatever reaches pods by their address from outside the cluster will not reach migrated pods", bgp, strings.Join(native, ", ")),
			"rehearse on a staging cluster first and plan routes to Cilium's pod CIDR (or Cilium's BGP control plane), or "+toVXLAN)
	case len(ipip) > 0:
		return warn(IDBackend, fmt.Sprintf("Calico tunnels pods with IP-in-IP%s (pool %s): outside the guide's tested path (VXLAN); Cilium's VXLAN runs beside it, but traffic between old and new pods crosses both", bgp, strings.Join(ipip, ", ")),
			"rehearse on a staging cluster first, or "+toVXLAN)
	case len(crossSubnet) > 0:
		return warn(IDBackend, fmt.Sprintf("Calico encapsulates with VXLAN only between subnets (pool %s, VXLANCrossSubnet): within a subnet old pods are routed natively%s, outside the guide's tested path", strings.Join(crossSubnet, ", "), bgp),
			"rehearse on a staging cluster first, or set the pools' vxlanMode to Always")
	case cni.Routing == "bgp":
		return warn(IDBackend, fmt.Sprintf("Calico's pools use VXLAN (UDP port %d) but BIRD (BGP) runs too: the guide was not tested with BGP routing", cni.Backend.Port),
			"if nothing peers with the nodes, turn BGP off first (calico_backend: vxlan, or bgp: Disabled in the Installation)")
	}
	return pass(IDBackend, fmt.Sprintf("Calico uses VXLAN (pool %s, UDP port %d, VNI %d), the guide's tested path", strings.Join(vxlan, ", "), cni.Backend.Port, cni.Backend.VNI))
}

func weaveBackendCheck(cni *detect.CNI) Result {
	b := cni.Backend
	switch {
	case b.Encryption != "":
		return warn(IDBackend, "Weave Net encrypts old-pod traffic ("+b.Encryption+"); traffic between old and new pods leaves its tunnel unencrypted",
			"keep Cilium's own encryption off until finalize, and expect old-to-new pod traffic to be unencrypted during the migration")
	case b.Type == "sleeve":
		return warn(IDBackend, fmt.Sprintf("Weave Net runs sleeve only (WEAVE_NO_FASTDP, userspace encapsulation on UDP %d): outside the guide's tested path and slow", b.Port),
			"rehearse on a staging cluster first; Cilium's tunnel does not clash with it")
	}
	return pass(IDBackend, fmt.Sprintf("Weave Net fastdp (VXLAN in the kernel on UDP %d, sleeve fallback on UDP %d): an overlay on ports of its own, like flannel's vxlan", detect.WeaveFastDPPort, detect.WeaveSleevePort))
}

func kubeRouterBackendCheck(cni *detect.CNI) Result {
	b := cni.Backend
	if cni.Routing != "bgp" {
		return warn(IDBackend, "kube-router runs without --run-router: something else routes pods between nodes, which this plugin cannot see",
			"make sure that routing keeps working for the old pod network until finalize, and rehearse on a staging cluster first")
	}
	overlay := "no overlay (--enable-overlay=false): every node must reach the others' pod CIDRs by routing"
	switch {
	case strings.HasSuffix(b.Type, "-cross-subnet"):
		overlay = strings.TrimSuffix(b.Type, "-cross-subnet") + " between subnets (--overlay-type=subnet), native routing within a subnet"
	case b.Type != "none":
		overlay = b.Type + " between all nodes (--overlay-type=full)"
	}
	if b.Port != 0 {
		overlay += fmt.Sprintf(", UDP port %d", b.Port)
	}
	return warn(IDBackend, "kube-router routes pods with BGP (--run-router), "+overlay+": outside the guide's tested path (not tested with BGP routing); Cilium's tunnel runs beside it",
		"rehearse on a staging cluster first; if kube-router peers with routers outside the cluster (--peer-router-ips), plan routes to Cilium's pod CIDR too")
}

// cniChecks are the checks that only some source CNIs need.
func cniChecks(c *detect.Cluster, p *proposal.Proposal) []Result {
	cni := c.CNI
	if cni == nil || cni.DaemonSet == "" && cni.Installation == "" {
		return nil
	}
	var out []Result
	if cni.Name == "calico" {
		out = append(out, nodeAddressCheck(cni, p))
	}
	if cni.Name == "calico" || cni.Name == "canal" {
		out = append(out, calicoPoliciesCheck(c))
	}
	if cni.ServiceProxy {
		out = append(out, serviceProxyCheck(c, p))
	}
	return out
}

// nodeAddressCheck: with Cilium running, calico-node's first-found address
// autodetection can take cilium_host's address as the node's, and Calico's
// BGP and tunnels break (cilium/cilium#31273).
func nodeAddressCheck(cni *detect.CNI, p *proposal.Proposal) Result {
	m := cni.NodeAddressAutodetection
	risky := func(why string) Result {
		fix := "before installing Cilium: kubectl -n " + cni.Namespace + " set env daemonset/" + cni.DaemonSet + " IP_AUTODETECTION_METHOD=kubernetes-internal-ip"
		if cni.Install == "operator" {
			unset := ""
			if k, _, ok := strings.Cut(m, "="); ok {
				unset = map[string]string{"interface": "interface", "skip-interface": "skipInterface", "can-reach": "canReach", "cidr": "cidrs"}[k]
			} else if m == "first-found" {
				unset = "firstFound"
			}
			patch := `{"kubernetes":"NodeInternalIP"}`
			if unset != "" {
				patch = fmt.Sprintf(`{%q:null,"kubernetes":"NodeInternalIP"}`, unset)
			}
			fix = fmt.Sprintf(`before installing Cilium: kubectl patch installation %s --type=merge -p '{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":%s}}}'`, cni.Installation, patch)
		}
		return warn(IDNodeAddress, "calico-node picks each node's address with "+m+why+" (cilium/cilium#31273)", fix)
	}
	pinned := func(why string) Result {
		return pass(IDNodeAddress, "calico-node picks each node's address with "+m+why)
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

func calicoPoliciesCheck(c *detect.Cluster) Result {
	if len(c.CalicoPolicies) == 0 {
		return pass(IDCalicoPolicies, "no Calico NetworkPolicies or GlobalNetworkPolicies")
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
	return warn(IDCalicoPolicies, fmt.Sprintf("%s (%d global): Cilium does not read Calico's own policy resources; they stop applying to migrated pods and go away with %s (%s)",
		count(len(names), "Calico policy", "Calico policies"), global, c.CNI.Name, listSome(names)),
		"rewrite them as CiliumNetworkPolicies / CiliumClusterwideNetworkPolicies before finalize (policy enforcement is off on migrated pods until then)")
}

func serviceProxyCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	msg := c.CNI.Name + " proxies Services itself (--run-service-proxy, IPVS)"
	if p != nil && p.KubeProxyReplacement {
		msg += fmt.Sprintf(": Cilium replaces it (kubeProxyReplacement, API server %s:%d) for migrated pods while its IPVS rules keep serving the others until finalize", p.K8sServiceHost, p.K8sServicePort)
	} else {
		msg += " beside kube-proxy: outside the guide's tested path"
	}
	return warn(IDServiceProxy, msg,
		"keep "+c.CNI.Name+" running until finalize; afterwards reboot the nodes to clear its IPVS services and kube-dummy-if")
}

func portList(ports []int) string {
	if len(ports) == 0 {
		return "none"
	}
	var s []string
	for _, p := range ports {
		s = append(s, fmt.Sprint(p))
	}
	return strings.Join(s, ", ")
}
