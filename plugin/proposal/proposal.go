// Package proposal turns what detection found and what the user asked for
// into the settings of the migration: Cilium version, pod CIDR, per-node
// block size, tunnel protocol and port, kube-proxy replacement.
package proposal

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cidr"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Strategy names.
const (
	// DualOverlay is the official node-by-node method: Cilium beside the old
	// CNI, a CiliumNodeConfig hands one node at a time over to it.
	DualOverlay = "dual-overlay"
	// InPlace is the one-shot method of seed 000: Cilium owns the CNI
	// configuration of every node at once, and the pods still on the old
	// network are restarted, namespace by namespace, instead of draining
	// and rebooting nodes.
	InPlace = "in-place"
)

// Strategies lists the strategy names, the default first.
func Strategies() []string { return []string{DualOverlay, InPlace} }

// ValidateStrategy checks a --strategy value ("" means choose).
func ValidateStrategy(s string) error {
	switch s {
	case "", DualOverlay, InPlace:
		return nil
	}
	return errs.Newf(errs.Usage, "use --strategy dual-overlay or --strategy in-place", "--strategy %q is not a migration strategy", s)
}

// DetectStrategy says which strategy an installed Cilium was set up for:
// in-place when it owns the CNI configuration (custom-cni-conf off) while
// the old CNI is still there, dual-overlay when it runs in migration mode,
// "" when Cilium is not installed (or nothing is left to migrate).
func DetectStrategy(c *detect.Cluster) (strategy, reason string) {
	switch {
	case !c.Cilium.Installed:
		return "", ""
	case c.Cilium.MigrationMode:
		return DualOverlay, "the installed Cilium runs in migration mode (custom-cni-conf true)"
	case c.CNI != nil:
		return InPlace, fmt.Sprintf("the installed Cilium owns the CNI configuration (custom-cni-conf false) while %s is still there", c.CNI.Name)
	}
	return "", ""
}

// Options are the user's wishes; zero values mean "choose for me".
type Options struct {
	// Strategy is DualOverlay or InPlace; "" takes the installed Cilium's
	// (DetectStrategy), else DualOverlay.
	Strategy       string
	CiliumVersion  string
	PodCIDR        string
	MaskSize       int
	TunnelProtocol string
	TunnelPort     int
	// PolicyBridge: values-initial keeps policies enforced, for the
	// policy bridge (values.Input.PolicyBridge); nil chooses (BridgeFor).
	PolicyBridge *bool
	// PolicyAudit: values-initial turns Cilium's policy audit mode on
	// (values.Input.PolicyAudit); nil chooses (AuditFor).
	PolicyAudit *bool
}

// DefaultMaskSize is Cilium's default clusterPoolIPv4MaskSize.
const DefaultMaskSize = 24

// Proposal is the resolved migration setup. Its JSON form is part of
// `plan -o json`.
type Proposal struct {
	Strategy string `json:"strategy"`
	// StrategySource says why: --strategy, the installed Cilium, or the default.
	StrategySource       string            `json:"strategySource"`
	CiliumVersion        string            `json:"ciliumVersion"`
	Version              ciliumver.Version `json:"-"`
	NodeConfigAPIVersion string            `json:"nodeConfigAPIVersion"`
	PodCIDR              string            `json:"podCIDR"`
	PodCIDRSource        string            `json:"podCIDRSource"`
	// PodCIDRSkipped are the candidates passed over before PodCIDR, each
	// with what it overlaps (a pod or service network, a node's address:
	// nodes whose network is one of the usual candidates).
	PodCIDRSkipped       []string `json:"podCIDRSkipped,omitempty"`
	MaskSize             int      `json:"clusterPoolMaskSize"`
	TunnelProtocol       string   `json:"tunnelProtocol"`
	TunnelPort           int      `json:"tunnelPort"`
	KubeProxyReplacement bool     `json:"kubeProxyReplacement"`
	// K8sServiceHost and K8sServicePort are the API server address Cilium
	// uses instead of the kubernetes Service: the kubeconfig's without
	// kube-proxy, else the one kube-proxy's own kubeconfig names (when the
	// cluster has it, as kubeadm's do).
	K8sServiceHost string `json:"k8sServiceHost,omitempty"`
	K8sServicePort int    `json:"k8sServicePort,omitempty"`
	// PortMapChaining chains the portmap CNI plugin after Cilium's
	// (cni.chainingMode=portmap): with kube-proxy, Cilium serves pods'
	// hostPorts only that way, and the old CNI's config chains portmap
	// today (so the plugin is on the nodes and hostPorts work).
	PortMapChaining bool   `json:"portMapChaining,omitempty"`
	ClusterName     string `json:"clusterName,omitempty"`
	// OperatorReplicas is 1 on single-node clusters (the operator's
	// anti-affinity would leave a second replica pending), else 0 (chart
	// default).
	OperatorReplicas int `json:"operatorReplicas,omitempty"`
	// IPv4NativeRoutingCIDR is set while the migration runs when Cilium's
	// pod CIDR and the old pod network(s) together make exactly one CIDR:
	// Cilium then does not masquerade its pods' traffic to old pods (see
	// docs/snat.md). Empty otherwise; SNATNote says why.
	IPv4NativeRoutingCIDR string `json:"ipv4NativeRoutingCIDR,omitempty"`
	// SNATNote explains IPv4NativeRoutingCIDR, or why it is not set.
	SNATNote string `json:"snatNote,omitempty"`
	// CNIConfPath and CNIBinPath are the node directories Cilium writes its
	// CNI configuration and binary to (cni.confPath, cni.binPath), set when
	// the distribution's container runtime reads others than the chart's
	// /etc/cni/net.d and /opt/cni/bin (k3s).
	CNIConfPath string `json:"cniConfPath,omitempty"`
	CNIBinPath  string `json:"cniBinPath,omitempty"`
	// PolicyBridge keeps the policies in force through the migration:
	// Cilium enforces them from the install on, and the policy bridge
	// gives the old network's pods their identity
	// (docs/policy-continuity.md). PolicyBridgeSource says why it is on
	// or off.
	PolicyBridge       bool   `json:"policyBridge"`
	PolicyBridgeSource string `json:"policyBridgeSource"`
	// PolicyAudit: without the bridge, Cilium computes policy verdicts
	// from the install on in audit mode, dropping nothing, and
	// policy-report shows the flows the policies will deny at finalize.
	PolicyAudit       bool   `json:"policyAudit"`
	PolicyAuditSource string `json:"policyAuditSource"`

	prefix netip.Prefix
}

// Prefix returns the pod CIDR as a prefix.
func (p *Proposal) Prefix() netip.Prefix { return p.prefix }

// ValidateOptions checks the syntax of the user's options, without a cluster.
func ValidateOptions(o Options) error {
	if err := ValidateStrategy(o.Strategy); err != nil {
		return err
	}
	if o.CiliumVersion != "" {
		if _, err := ciliumver.Parse(o.CiliumVersion); err != nil {
			return err
		}
	}
	if o.PodCIDR != "" {
		if _, err := cidr.ParsePodCIDR(o.PodCIDR); err != nil {
			return err
		}
	}
	switch o.TunnelProtocol {
	case "", "vxlan", "geneve":
	default:
		return errs.Newf(errs.Usage, "use vxlan or geneve", "--tunnel-protocol %q is not supported", o.TunnelProtocol)
	}
	if o.TunnelPort != 0 && (o.TunnelPort < 1 || o.TunnelPort > 65535) {
		return errs.Newf(errs.Usage, "pass a UDP port from 1 to 65535, such as 8473", "--tunnel-port %d is out of range", o.TunnelPort)
	}
	if o.MaskSize != 0 && (o.MaskSize < 1 || o.MaskSize > 30) {
		return errs.Newf(errs.Usage, "pass a prefix length such as 24", "--cluster-pool-mask-size %d is out of range", o.MaskSize)
	}
	return nil
}

// Propose resolves the options against the cluster. It returns Usage errors
// for bad syntax only: whether the result is safe is for Safety and the
// checks to say, so `plan` can show it and `values` can refuse it.
func Propose(c *detect.Cluster, o Options) (*Proposal, error) {
	if err := ValidateOptions(o); err != nil {
		return nil, err
	}
	p := &Proposal{Strategy: DualOverlay, StrategySource: "default"}
	if s, why := DetectStrategy(c); s != "" {
		p.Strategy, p.StrategySource = s, why
	}
	if o.Strategy != "" {
		p.Strategy, p.StrategySource = o.Strategy, "--strategy"
	}

	p.PolicyBridge, p.PolicyBridgeSource = BridgeFor(c, o.PolicyBridge)
	p.PolicyAudit, p.PolicyAuditSource = AuditFor(c, p.PolicyBridge, o.PolicyAudit)

	// Version: the user's, else the installed Cilium's, else the default.
	switch {
	case o.CiliumVersion != "":
		p.Version, _ = ciliumver.Parse(o.CiliumVersion)
	case c.Cilium.Installed && c.Cilium.Version != "":
		v, err := ciliumver.Parse(c.Cilium.Version)
		if err != nil {
			return nil, errs.Newf(errs.Unsupported, "upgrade Cilium first, or pass --cilium-version to plan for another release",
				"the installed Cilium %s is not one this plugin supports", c.Cilium.Version)
		}
		p.Version = v
	default:
		p.Version = ciliumver.Default()
	}
	// A minor alone ("1.18") means the release we pin and test for it, so
	// that install and upgrade use the same chart.
	if pinned, ok := p.Version.Pinned(); ok && !p.Version.HasPatch {
		p.Version = pinned
	}
	p.CiliumVersion = p.Version.String()
	p.NodeConfigAPIVersion = p.Version.NodeConfigAPIVersion()

	// Pod CIDR: the user's, else the one an installed Cilium already uses,
	// else the first candidate that overlaps nothing.
	switch {
	case o.PodCIDR != "":
		p.prefix, _ = cidr.ParsePodCIDR(o.PodCIDR)
		p.PodCIDRSource = "--pod-cidr"
	case c.Cilium.Installed && len(c.Cilium.PodCIDRs) > 0:
		pr, err := netip.ParsePrefix(c.Cilium.PodCIDRs[0])
		if err != nil {
			return nil, errs.Newf(errs.Unsupported, "fix cilium-config or pass --pod-cidr",
				"the installed Cilium's cluster-pool-ipv4-cidr %q is not a CIDR", c.Cilium.PodCIDRs[0])
		}
		p.prefix, p.PodCIDRSource = pr.Masked(), "the installed Cilium's cluster-pool-ipv4-cidr"
	default:
		pr, skipped, err := cidr.ChooseSkipping(Reserved(c))
		if err != nil {
			return nil, err
		}
		p.prefix, p.PodCIDRSource = pr, "first candidate that overlaps nothing"
		for _, sk := range skipped {
			p.PodCIDRSkipped = append(p.PodCIDRSkipped, sk.String())
		}
	}
	p.PodCIDR = p.prefix.String()

	p.MaskSize = o.MaskSize
	if p.MaskSize == 0 && c.Cilium.Installed && c.Cilium.MaskSize != 0 {
		p.MaskSize = c.Cilium.MaskSize
	}
	if p.MaskSize == 0 {
		p.MaskSize = DefaultMaskSize
		if p.prefix.Bits() >= DefaultMaskSize {
			p.MaskSize = min(p.prefix.Bits()+2, 30)
		}
	}
	if p.MaskSize <= p.prefix.Bits() {
		return nil, errs.Newf(errs.Usage, fmt.Sprintf("pass --cluster-pool-mask-size between %d and 30", p.prefix.Bits()+1),
			"--cluster-pool-mask-size %d does not fit the pod CIDR %s", p.MaskSize, p.PodCIDR)
	}

	p.TunnelProtocol = o.TunnelProtocol
	if p.TunnelProtocol == "" && c.Cilium.Installed && (c.Cilium.TunnelProtocol == "vxlan" || c.Cilium.TunnelProtocol == "geneve") {
		p.TunnelProtocol = c.Cilium.TunnelProtocol
	}
	if p.TunnelProtocol == "" {
		p.TunnelProtocol = "vxlan"
	}
	p.TunnelPort = o.TunnelPort
	switch {
	case p.TunnelPort != 0:
	case c.Cilium.Installed && c.Cilium.TunnelPort != 0:
		// Keep the installed Cilium's port: values-final.yaml must not move
		// the overlay of nodes already migrated.
		p.TunnelPort = c.Cilium.TunnelPort
	default:
		p.TunnelPort = DefaultTunnelPort(c, p.TunnelProtocol)
	}

	p.ClusterName = c.Name
	if !c.KubeProxy.Present {
		p.KubeProxyReplacement = true
		host, port, err := hostPort(c.APIServer)
		if err != nil {
			return nil, errs.Newf(errs.Usage, "use a kubeconfig whose server is https://HOST:PORT",
				"kube-proxy is absent, so Cilium must replace it and needs the API server address, but %v", err)
		}
		p.K8sServiceHost, p.K8sServicePort = host, port
	} else if c.KubeProxy.APIServer != "" {
		// kube-proxy provides the kubernetes Service; on a node that just
		// booted, Cilium's agent (and its config init container) would
		// wait for kube-proxy's rules before it reaches the API server
		// through it (docs/datapath.md, the per-node window). kube-proxy's
		// own address needs no Service.
		if host, port, err := hostPort(c.KubeProxy.APIServer); err == nil {
			p.K8sServiceHost, p.K8sServicePort = host, port
		}
	}
	p.PortMapChaining = !p.KubeProxyReplacement && c.CNI != nil && c.CNI.PortMap
	if len(c.Nodes) == 1 {
		p.OperatorReplicas = 1
	}
	p.IPv4NativeRoutingCIDR, p.SNATNote = SNATExclusion(c, p.prefix)
	if d := c.Distribution; d != nil {
		p.CNIConfPath, p.CNIBinPath = d.CNIConfDir, d.CNIBinDir
	}
	return p, nil
}

// DefaultTunnelPort picks a port that differs from the old CNI's: 8473 for
// VXLAN (flannel and Cilium both default to 8472; Calico uses 4789, Weave
// 6783 and 6784), 6081 for Geneve; the next one up when the old CNI
// happens to use it.
func DefaultTunnelPort(c *detect.Cluster, protocol string) int {
	port := 8473
	if protocol == "geneve" {
		port = 6081
	}
	for OldCNIUsesPort(c, port) {
		port++
	}
	return port
}

func hostPort(server string) (string, int, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", 0, fmt.Errorf("the kubeconfig server %q is not a URL", server)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portStr = u.Host, "443"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("the kubeconfig server %q has no usable port", server)
	}
	return strings.Trim(host, "[]"), port, nil
}

// Reserved lists the networks the cluster uses: pod networks, service
// networks and node addresses.
func Reserved(c *detect.Cluster) []cidr.Reserved {
	var out []cidr.Reserved
	add := func(s, what string) {
		if r, err := cidr.ParseReserved(s, what); err == nil {
			out = append(out, r)
		}
	}
	for _, pc := range c.PodCIDRs {
		add(pc.CIDR, "pod network "+pc.CIDR+" ("+pc.Source+")")
	}
	for _, sc := range c.ServiceCIDRs {
		add(sc.CIDR, "service network "+sc.CIDR+" ("+sc.Source+")")
	}
	for _, n := range c.Nodes {
		if n.InternalIP != "" {
			add(n.InternalIP, "node "+n.Name+" InternalIP "+n.InternalIP)
		}
		if n.FlannelPublicIP != "" && n.FlannelPublicIP != n.InternalIP {
			add(n.FlannelPublicIP, "node "+n.Name+" flannel public-ip "+n.FlannelPublicIP)
		}
	}
	return out
}

// Safety returns the reasons the proposal is unsafe for the cluster, as
// errs.Unsafe errors, or nil. `values` refuses an unsafe proposal; `plan`
// shows the same reasons as FAILed checks.
func Safety(c *detect.Cluster, p *Proposal) []error {
	var out []error
	if conflicts := cidr.Conflicts(p.prefix, Reserved(c)); len(conflicts) > 0 {
		var what []string
		for _, r := range conflicts {
			what = append(what, r.What)
		}
		fix := "pass a free network with --pod-cidr"
		if free, err := cidr.Choose(Reserved(c)); err == nil {
			fix = fmt.Sprintf("pass a free network with --pod-cidr, e.g. %s", free)
		}
		out = append(out, errs.Newf(errs.Unsafe, fix, "pod CIDR %s overlaps %s", p.PodCIDR, strings.Join(what, "; ")))
	}
	if err := cidr.CheckMaskSize(p.prefix, p.MaskSize, len(c.Nodes)); err != nil {
		out = append(out, err)
	}
	if OldCNIUsesPort(c, p.TunnelPort) {
		what := fmt.Sprintf("%s's %s backend", c.CNI.Name, c.CNI.Backend.Type)
		if p.TunnelPort != c.CNI.Backend.Port || c.CNI.Backend.Type == "" {
			what = c.CNI.Name
		}
		out = append(out, errs.Newf(errs.Unsafe, fmt.Sprintf("pass another --tunnel-port, e.g. %d", DefaultTunnelPort(c, p.TunnelProtocol)),
			"tunnel port %d is the one %s uses (both would bind it: \"address already in use\")",
			p.TunnelPort, what))
	}
	return out
}

// BridgeFor says whether the migration keeps policies in force with the
// policy bridge, and why: the user's --policy-bridge, else the installed
// Cilium's enforcement while it runs beside the old CNI, else on for the
// sources whose policies the bridge is proven to carry (Calico and Canal,
// on the lab's real nodes: docs/datapath.md), with either method.
func BridgeFor(c *detect.Cluster, user *bool) (bool, string) {
	switch {
	case user != nil && *user:
		return true, "--policy-bridge"
	case user != nil:
		return false, "--policy-bridge=false"
	case c.CNI == nil:
		return false, "no old CNI found"
	case c.Cilium.Installed && c.Cilium.MigrationMode:
		if c.Cilium.PolicyEnforcement == "never" {
			return false, "the installed Cilium enforces no policy (enable-policy never)"
		}
		if c.Cilium.PolicyAudit {
			return false, "the installed Cilium only audits policies (policy-audit-mode)"
		}
		return true, "the installed Cilium enforces policies beside " + c.CNI.Name
	case !c.CNI.EnforcesPolicy:
		return false, c.CNI.Name + " enforces no NetworkPolicy today"
	case c.CNI.Name == "calico" || c.CNI.Name == "canal":
		return true, c.CNI.Name + " enforces NetworkPolicies today"
	}
	return false, c.CNI.Name + " enforces NetworkPolicies today, but the bridge is proven on Calico's and Canal's nodes only: pass --policy-bridge to use it"
}

// AuditFor says whether Cilium audits the policies through the migration
// (policyAuditMode: verdicts computed, nothing dropped), and why: the
// user's --policy-audit, else on whenever the migration runs without the
// policy bridge, so that policy-report can show what the
// policies will deny once finalize enforces them; the installed Cilium's
// setting while it runs beside the old CNI.
func AuditFor(c *detect.Cluster, bridge bool, user *bool) (bool, string) {
	switch {
	case bridge:
		if user != nil && *user {
			return false, "--policy-audit does not apply with the policy bridge, which enforces the policies"
		}
		return false, "the policy bridge keeps the policies enforced"
	case user != nil && *user:
		return true, "--policy-audit"
	case user != nil:
		return false, "--policy-audit=false"
	case c.CNI == nil:
		return false, "no old CNI found"
	case c.Cilium.Installed && c.Cilium.MigrationMode:
		if c.Cilium.PolicyAudit {
			return true, "the installed Cilium audits policies (policy-audit-mode)"
		}
		return false, "the installed Cilium does not audit policies"
	}
	return true, "Cilium enforces no policy until finalize: it audits them meanwhile (kubectl cni-migrate policy-report)"
}
