package values

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cidr"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// AllowUnsafeFlag is the flag that writes values Guard refuses.
const AllowUnsafeFlag = "--allow-unsafe-values"

// OldNetwork is what Guard needs to know about the old CNI and the
// cluster's networks.
type OldNetwork struct {
	// CNI names the old provider ("flannel"), Backend its encapsulation
	// ("vxlan") and BackendPort the backend's UDP port (0 if none).
	CNI         string
	Backend     string
	BackendPort int
	// UDPPorts are every other UDP port the old CNI's datapath uses.
	UDPPorts []int
	// Reserved are the networks the cluster uses (pod, service, node).
	Reserved []cidr.Reserved
	// NetworkPolicies is the number of NetworkPolicy objects.
	NetworkPolicies int
}

// Unsafe is one value from the user's file that would break the migration.
type Unsafe struct {
	// Key is the dotted values key, e.g. "ipam.mode".
	Key string
	// Msg says what the value does, Fix what to write instead; neither
	// ends with a period.
	Msg string
	Fix string
}

// chart defaults of the keys Guard looks at, used when the user's file
// removes the migration's value (null) and the chart's default applies.
var guardDefaults = map[string]any{
	"ipam.mode":                                "cluster-pool",
	"cni.customConf":                           false,
	"routingMode":                              "tunnel", // "" in the chart means tunnel
	"tunnelProtocol":                           "vxlan",
	"tunnelPort":                               0.0, // the protocol's: 8472 vxlan, 6081 geneve
	"policyEnforcementMode":                    "default",
	"bpf.hostLegacyRouting":                    false, // unset: eBPF host routing where the kernel has it
	"operator.unmanagedPodWatcher.restart":     true,
	"cni.chainingMode":                         "none",
	"ipam.operator.clusterPoolIPv4PodCIDRList": []any{"10.0.0.0/8"},
}

// Guard checks the merged values-initial.yaml against what the migration
// method needs, and returns the values from the user's --values file that
// would break it (nil without a user file). Generate's warnings say what
// the user changed; Guard says which of those changes the migration cannot
// survive, so that `values` refuses them unless AllowUnsafeFlag is given.
//
// The rules follow the dual-overlay guide's initial values (see
// docs/values-guard.md): Cilium's own IPAM pool apart from every network in
// use, its own tunnel port, tunnel routing through the host's stack, no
// CNI config and no pod restarts until a node is moved, policies off. The
// in-place method (one shot) gets the rules that matter while pods live on
// two networks at once; it needs cni.customConf off instead of on.
func Guard(in Input, initial *Doc, old OldNetwork) []Unsafe {
	if initial == nil || len(initial.user) == 0 {
		return nil
	}
	g := &guard{in: in, doc: initial, old: old, flag: fromFlag(in.UserFile)}
	g.ipam()
	g.customConf()
	g.tunnel()
	g.policy()
	g.hostRouting()
	g.podWatcher()
	g.chaining()
	return g.out
}

type guard struct {
	in   Input
	doc  *Doc
	old  OldNetwork
	flag string
	out  []Unsafe
}

func (g *guard) inPlace() bool { return g.in.Strategy == InPlace }

func (g *guard) method() string {
	if g.inPlace() {
		return "the in-place migration"
	}
	return "the dual-overlay migration"
}

// value is the effective value of key in values-initial.yaml, whether the
// user's file touched it, and a description of it for a message.
func (g *guard) value(key string) (v any, user bool, desc string) {
	p := strings.Split(key, ".")
	for n := 1; n <= len(p); n++ {
		user = user || g.doc.user[pathKey(p[:n])]
	}
	got, ok := lookup(g.doc.values, p)
	if !ok || got == nil {
		desc = "removes " + key
		if ok {
			desc = "sets " + key + " to null"
		}
		return guardDefaults[key], user, fmt.Sprintf("%s (the chart default is %s)", desc, show(guardDefaults[key]))
	}
	return got, user, fmt.Sprintf("sets %s to %s", key, show(got))
}

func (g *guard) add(key, desc, why, fix string) {
	g.out = append(g.out, Unsafe{
		Key: key,
		Msg: fmt.Sprintf("%s %s in %s: %s", g.flag, desc, InitialFile, why),
		Fix: fix,
	})
}

func (g *guard) oldCNI() string {
	if g.old.CNI == "" {
		return "the old CNI"
	}
	return g.old.CNI
}

func (g *guard) ipam() {
	v, user, desc := g.value("ipam.mode")
	if !user {
		v = "cluster-pool"
	}
	switch mode := helmString(v); mode {
	case "cluster-pool":
	case "kubernetes":
		g.add("ipam.mode", desc,
			fmt.Sprintf("Cilium would hand out pod addresses from the nodes' podCIDRs, the pod network %s uses, so pods on both networks could get the same address and no route tells them apart", g.oldCNI()),
			"set ipam.mode to cluster-pool (the migration's) or remove it from the file")
		return
	default:
		g.add("ipam.mode", desc,
			fmt.Sprintf("%s needs Cilium's own address pool (cluster-pool) apart from %s's pod network; %q IPAM gives addresses the migration cannot check", g.method(), g.oldCNI(), mode),
			"set ipam.mode to cluster-pool (the migration's) or remove it from the file")
		return
	}
	list, user, desc := g.value("ipam.operator.clusterPoolIPv4PodCIDRList")
	if !user {
		return
	}
	items, ok := list.([]any)
	if !ok || len(items) == 0 {
		g.add("ipam.operator.clusterPoolIPv4PodCIDRList", desc,
			"Cilium would have no pod CIDR of the migration's choosing, and may take one the cluster already uses",
			"give a free network, e.g. "+g.in.PodCIDR+", or remove the key from the file")
		return
	}
	for _, item := range items {
		s, _ := item.(string)
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			g.add("ipam.operator.clusterPoolIPv4PodCIDRList", desc,
				fmt.Sprintf("%s is not a CIDR", show(item)),
				"give CIDRs such as "+g.in.PodCIDR)
			return
		}
		if conflicts := cidr.Conflicts(p.Masked(), g.old.Reserved); len(conflicts) > 0 {
			var what []string
			for _, r := range conflicts {
				what = append(what, r.What)
			}
			fix := "give a free network, e.g. " + g.in.PodCIDR + " (the migration's), or remove the key from the file"
			if free, err := cidr.Choose(g.old.Reserved); err == nil && free.String() != g.in.PodCIDR {
				fix = fmt.Sprintf("give a free network, e.g. %s, or remove the key from the file", free)
			}
			g.add("ipam.operator.clusterPoolIPv4PodCIDRList", desc,
				fmt.Sprintf("Cilium's pod CIDR %s overlaps %s: pods on the two networks could get the same address", p.Masked(), strings.Join(what, "; ")),
				fix)
			return
		}
	}
}

func (g *guard) customConf() {
	v, user, desc := g.value("cni.customConf")
	if !user {
		return
	}
	on := truthy(v)
	if s, ok := v.(string); ok {
		on = s == "true"
	}
	if g.inPlace() && on {
		g.add("cni.customConf", desc,
			"the in-place migration needs Cilium to write its CNI config on every node, or restarted pods stay on the old network",
			"set cni.customConf to false or remove it from the file")
	}
	if !g.inPlace() && !on {
		g.add("cni.customConf", desc,
			"Cilium would write its CNI config on every node as soon as its agent starts, moving new pods of nodes not yet drained onto Cilium instead of node by node",
			"set cni.customConf to true or remove it from the file")
	}
}

// tunnelDefaultPort is Cilium's port for a protocol when tunnelPort is 0.
func tunnelDefaultPort(protocol string) int {
	if protocol == "geneve" {
		return 6081
	}
	return 8472
}

func (g *guard) tunnel() {
	rm, user, desc := g.value("routingMode")
	if user {
		if s := helmString(rm); s != "tunnel" && s != "" {
			g.add("routingMode", desc,
				fmt.Sprintf("%s needs Cilium's own overlay, so that pods on Cilium reach pods still on %s through the node", g.method(), g.oldCNI()),
				"set routingMode to tunnel or remove it from the file")
		}
	}
	proto, protoUser, protoDesc := g.value("tunnelProtocol")
	protocol := helmString(proto)
	if protocol == "" {
		protocol = "vxlan"
	}
	if protocol != "vxlan" && protocol != "geneve" {
		if protoUser {
			g.add("tunnelProtocol", protoDesc, "Cilium's overlay is vxlan or geneve",
				"set tunnelProtocol to vxlan or geneve or remove it from the file")
		}
		return
	}
	pv, portUser, portDesc := g.value("tunnelPort")
	if !protoUser && !portUser {
		return
	}
	port, ok := number(pv)
	if !ok {
		if portUser {
			g.add("tunnelPort", portDesc, "it is not a UDP port",
				fmt.Sprintf("set tunnelPort to a free port, e.g. %d, or remove it from the file", g.in.TunnelPort))
		}
		return
	}
	key, desc := "tunnelPort", portDesc
	if !portUser {
		key, desc = "tunnelProtocol", protoDesc
	}
	effective := port
	if port == 0 {
		effective = tunnelDefaultPort(protocol)
		desc += fmt.Sprintf(", so Cilium's %s port is %d", protocol, effective)
	}
	if !g.oldUses(effective) {
		return
	}
	what := g.oldCNI()
	if effective == g.old.BackendPort && g.old.Backend != "" {
		what = fmt.Sprintf("%s's %s backend", g.oldCNI(), g.old.Backend)
	}
	g.add(key, desc,
		fmt.Sprintf("UDP port %d is the one %s uses; both overlays would bind it (\"address already in use\") and one of them stops carrying traffic", effective, what),
		fmt.Sprintf("set tunnelPort to a port %s does not use, e.g. %d (the migration's), or remove it from the file", g.oldCNI(), g.in.TunnelPort))
}

func (g *guard) oldUses(port int) bool {
	if port == 0 {
		return false
	}
	if port == g.old.BackendPort {
		return true
	}
	for _, p := range g.old.UDPPorts {
		if p == port {
			return true
		}
	}
	return false
}

func (g *guard) policy() {
	g.audit()
	v, user, desc := g.value("policyEnforcementMode")
	if !user {
		return
	}
	switch mode := helmString(v); mode {
	case "never":
	case "default":
		if g.old.NetworkPolicies == 0 || (g.in.PolicyBridge || g.in.PolicyAudit) {
			return
		}
		g.add("policyEnforcementMode", desc,
			fmt.Sprintf("Cilium would enforce the cluster's %d NetworkPolicies on migrated nodes while pods still on %s have no Cilium identity, so traffic between the two networks may be dropped", g.old.NetworkPolicies, g.oldCNI()),
			"set policyEnforcementMode to never (the guide's; finalize turns it back to default) or remove it from the file")
	default:
		g.add("policyEnforcementMode", desc,
			fmt.Sprintf("Cilium would drop traffic no policy allows, and pods still on %s have no Cilium identity to allow", g.oldCNI()),
			"set policyEnforcementMode to never (the guide's; finalize turns it back to default) or remove it from the file")
	}
}

// audit: with audit mode (no policy bridge), Cilium enforces policies as
// soon as a user's file turns audit mode off.
func (g *guard) audit() {
	v, user, desc := g.value("policyAuditMode")
	if !user || !g.in.PolicyAudit || g.in.PolicyBridge || g.old.NetworkPolicies == 0 {
		return
	}
	if b, ok := v.(bool); (ok && b) || helmString(v) == "true" {
		return
	}
	g.add("policyAuditMode", desc,
		fmt.Sprintf("Cilium would enforce the cluster's %d NetworkPolicies on migrated nodes while pods still on %s have no Cilium identity, so traffic between the two networks may be dropped", g.old.NetworkPolicies, g.oldCNI()),
		"remove policyAuditMode from the file (finalize turns it off), or pass --policy-audit=false to keep enforcement off until finalize")
}

func (g *guard) hostRouting() {
	v, user, desc := g.value("bpf.hostLegacyRouting")
	if !user {
		return
	}
	if b, ok := v.(bool); (ok && b) || helmString(v) == "true" {
		return
	}
	g.add("bpf.hostLegacyRouting", desc,
		fmt.Sprintf("eBPF host routing bypasses the host's routing table, which carries the traffic to pods still on %s", g.oldCNI()),
		"set bpf.hostLegacyRouting to true (finalize turns it off) or remove it from the file")
}

func (g *guard) podWatcher() {
	if g.inPlace() {
		return // the in-place method moves every pod; Generate warns about the watcher's manners
	}
	v, user, desc := g.value("operator.unmanagedPodWatcher.restart")
	if !user {
		return
	}
	if b, ok := v.(bool); ok && !b {
		return
	}
	g.add("operator.unmanagedPodWatcher.restart", desc,
		"the operator would restart pods on nodes not yet migrated, over and over, since they come back on the old CNI",
		"set operator.unmanagedPodWatcher.restart to false (finalize turns it on) or remove it from the file")
}

func (g *guard) chaining() {
	v, user, desc := g.value("cni.chainingMode")
	if !user {
		return
	}
	if s := helmString(v); s == "none" || s == "" || s == "portmap" {
		// portmap chains the portmap plugin after Cilium's own (hostPorts
		// without kube-proxy replacement): Cilium stays the pods' CNI.
		return
	}
	g.add("cni.chainingMode", desc,
		fmt.Sprintf("%s replaces %s; chaining Cilium onto another CNI is outside what it supports", g.method(), g.oldCNI()),
		"remove cni.chainingMode from the file")
}

// number reads a port the way the chart does (a number, or a string of one).
func number(v any) (int, bool) {
	switch v := v.(type) {
	case float64:
		if v != float64(int(v)) || v < 0 || v > 65535 {
			return 0, false
		}
		return int(v), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 65535 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Refuse turns Guard's findings into the values command's outcome: without
// allow, an errs.Unsafe error naming the first one (and how many more);
// with allow, one warning each.
func Refuse(unsafe []Unsafe, allow bool) (warnings []string, err error) {
	if len(unsafe) == 0 {
		return nil, nil
	}
	if allow {
		for _, u := range unsafe {
			warnings = append(warnings, fmt.Sprintf("%s: writing it anyway: %s", AllowUnsafeFlag, u.Msg))
		}
		return warnings, nil
	}
	u := unsafe[0]
	msg := u.Msg
	if n := len(unsafe) - 1; n > 0 {
		keys := make([]string, 0, n)
		for _, o := range unsafe[1:] {
			keys = append(keys, o.Key)
		}
		msg += fmt.Sprintf(" (and %d more unsafe: %s)", n, strings.Join(keys, ", "))
	}
	return nil, errs.New(errs.Unsafe, msg, u.Fix+", or pass "+AllowUnsafeFlag+" to write the values anyway")
}
