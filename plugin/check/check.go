// Package check decides whether a migration is safe: each check gives PASS,
// WARN or FAIL with a one-line reason and, unless it passed, the fix.
package check

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cidr"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// Status of a check.
type Status string

// The statuses, in increasing severity.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Check IDs: stable names scripts can match on (documented in
// docs/plan-schema.md).
const (
	IDCNI            = "cni"
	IDBackend        = "cni-backend"
	IDPodCIDR        = "pod-cidr"
	IDPoolCapacity   = "pod-cidr-capacity"
	IDServiceCIDR    = "service-cidr"
	IDTunnelPort     = "tunnel-port"
	IDNetworkPolicy  = "network-policies"
	IDKubeProxy      = "kube-proxy-cluster-cidr"
	IDPDB            = "pod-disruption-budgets"
	IDCilium         = "cilium"
	IDNodesReady     = "nodes-ready"
	IDPermissions    = "permissions"
	maxListedObjects = 5
)

// Result is the outcome of one check.
type Result struct {
	ID      string `json:"id"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Commands are the fix's shell commands, in order, when it is exactly
	// those (they are in Fix too): for scripts that follow the advice.
	Commands []string `json:"commands,omitempty"`
}

// Input is everything the checks look at.
type Input struct {
	Cluster  *detect.Cluster
	Proposal *proposal.Proposal
	// Access is nil when permissions were not checked; AccessErr is set
	// when asking failed.
	Access    *access.Result
	AccessErr error
	// IgnoreUnsupportedDistribution turns the distribution check's FAIL for
	// a distribution that does not support changing its CNI (RKE2) into a
	// WARN (--ignore-unsupported-distribution).
	IgnoreUnsupportedDistribution bool
}

// Run runs every check. A cluster without a supported CNI gets the cni
// check and the checks that do not depend on the CNI.
func Run(in Input) []Result {
	c, p := in.Cluster, in.Proposal
	out := []Result{cniCheck(c)}
	if c.CNI != nil {
		out = append(out, backendCheck(c.CNI))
		out = append(out, cniChecks(c, p)...)
	}
	if r, ok := distributionCheck(c, p, in.IgnoreUnsupportedDistribution); ok {
		out = append(out, r)
	}
	if p != nil {
		out = append(out, podCIDRCheck(c, p), capacityCheck(c, p), serviceCIDRCheck(c), tunnelPortCheck(c, p))
	}
	out = append(out, networkPolicyCheck(c, p))
	if r, ok := policyCompatCheck(c, p); ok {
		out = append(out, r)
	}
	if p != nil {
		out = append(out, kubeProxyCheck(c, p))
	}
	out = append(out, pdbCheck(c), ciliumCheck(c, p), nodesReadyCheck(c))
	out = append(out, migrationChecks(c, p)...)
	out = append(out, permissionsCheck(in))
	return out
}

// Failed reports whether any result FAILed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Count returns the number of results of each status.
func Count(rs []Result) (pass, warn, fail int) {
	for _, r := range rs {
		switch r.Status {
		case Pass:
			pass++
		case Warn:
			warn++
		case Fail:
			fail++
		}
	}
	return
}

func pass(id, msg string) Result      { return Result{ID: id, Status: Pass, Message: msg} }
func warn(id, msg, fix string) Result { return Result{ID: id, Status: Warn, Message: msg, Fix: fix} }
func fail(id, msg, fix string) Result { return Result{ID: id, Status: Fail, Message: msg, Fix: fix} }

func fromErr(id string, err error) Result {
	if e, ok := err.(*errs.Error); ok {
		return fail(id, e.Msg, e.Fix)
	}
	return fail(id, err.Error(), "")
}

func podCIDRCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	conflicts := cidr.Conflicts(p.Prefix(), proposal.Reserved(c))
	if len(conflicts) == 0 {
		msg := fmt.Sprintf("%s (%s) overlaps no pod network, service network or node address", p.PodCIDR, p.PodCIDRSource)
		if len(p.PodCIDRSkipped) > 0 {
			msg += "; skipped " + strings.Join(p.PodCIDRSkipped, ", ")
		}
		return pass(IDPodCIDR, msg)
	}
	for _, err := range proposal.Safety(c, p) {
		if strings.Contains(err.Error(), "overlaps") {
			return fromErr(IDPodCIDR, err)
		}
	}
	return fail(IDPodCIDR, p.PodCIDR+" overlaps a network the cluster uses", "pass a free network with --pod-cidr")
}

func capacityCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	if err := cidr.CheckMaskSize(p.Prefix(), p.MaskSize, len(c.Nodes)); err != nil {
		return fromErr(IDPoolCapacity, err)
	}
	blocks := cidr.Capacity(p.Prefix(), p.MaskSize)
	msg := fmt.Sprintf("%s in /%d blocks gives %d node blocks for %d nodes", p.PodCIDR, p.MaskSize, blocks, len(c.Nodes))
	if blocks < 2*len(c.Nodes) {
		return warn(IDPoolCapacity, msg+": little room to add nodes", "use a larger --pod-cidr or --cluster-pool-mask-size if the cluster will grow")
	}
	return pass(IDPoolCapacity, msg)
}

func serviceCIDRCheck(c *detect.Cluster) Result {
	if len(c.ServiceCIDRs) == 0 {
		return warn(IDServiceCIDR, "the service network was not found (no ServiceCIDR objects, kube-apiserver flags, kubeadm-config or kubernetes Service)",
			"make sure --pod-cidr lies outside the API server's --service-cluster-ip-range")
	}
	var cidrs []string
	for _, s := range c.ServiceCIDRs {
		cidrs = append(cidrs, s.CIDR)
	}
	if c.ServiceCIDRs[0].Guessed {
		return warn(IDServiceCIDR, fmt.Sprintf("service network assumed to be %s (%s)", strings.Join(cidrs, ","), c.ServiceCIDRs[0].Source),
			"check the API server's --service-cluster-ip-range and keep --pod-cidr outside it")
	}
	return pass(IDServiceCIDR, fmt.Sprintf("service network %s (from %s)", strings.Join(cidrs, ","), c.ServiceCIDRs[0].Source))
}

func tunnelPortCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	if c.CNI == nil || c.CNI.Backend.Port == 0 && len(c.CNI.UDPPorts) == 0 {
		return pass(IDTunnelPort, fmt.Sprintf("Cilium %s on UDP port %d; the old network uses no tunnel port", p.TunnelProtocol, p.TunnelPort))
	}
	for _, err := range proposal.Safety(c, p) {
		if strings.Contains(err.Error(), "tunnel port") {
			return fromErr(IDTunnelPort, err)
		}
	}
	if c.CNI.Backend.Port == 0 {
		return pass(IDTunnelPort, fmt.Sprintf("Cilium %s on UDP port %d differs from the UDP ports %s uses (%s)", p.TunnelProtocol, p.TunnelPort, c.CNI.Name, portList(c.CNI.UDPPorts)))
	}
	return pass(IDTunnelPort, fmt.Sprintf("Cilium %s on UDP port %d differs from %s's %s port %d", p.TunnelProtocol, p.TunnelPort, c.CNI.Name, c.CNI.Backend.Type, c.CNI.Backend.Port))
}

func networkPolicyCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	if len(c.NetworkPolicies) == 0 {
		return pass(IDNetworkPolicy, "no NetworkPolicies")
	}
	nsCount := map[string]int{}
	for _, np := range c.NetworkPolicies {
		nsCount[np.Namespace]++
	}
	namespaces := make([]string, 0, len(nsCount))
	for ns := range nsCount {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	where := fmt.Sprintf("%s in %s (%s)", count(len(c.NetworkPolicies), "NetworkPolicy", "NetworkPolicies"),
		count(len(namespaces), "namespace", "namespaces"), listSome(namespaces))
	if c.CNI != nil && !c.CNI.EnforcesPolicy {
		if p != nil && p.PolicyAudit {
			return warn(IDNetworkPolicy, where+": "+c.CNI.Name+" does not enforce them today, Cilium will after finalize (during the migration it audits them on migrated pods: it drops nothing and reports what they deny)",
				"before finalize, run kubectl cni-migrate policy-report: it names the flows of today that they will deny")
		}
		return warn(IDNetworkPolicy, where+": "+c.CNI.Name+" does not enforce them today, Cilium will after finalize (policy enforcement is off during the migration)",
			"review them before finalize: traffic they deny but that works today will stop")
	}
	if c.CNI != nil && p != nil && p.PolicyBridge {
		return pass(IDNetworkPolicy, where+": "+c.CNI.Name+" enforces them today, and Cilium from the install on, with the policy bridge carrying the pods still on "+c.CNI.Name+"'s network (policy-bridge --deploy before the first node; "+p.PolicyBridgeSource+")")
	}
	if c.CNI != nil {
		msg := where + ": " + c.CNI.Name + " enforces them today; on migrated pods they are not enforced until finalize (policyEnforcementMode=never)"
		if p != nil && p.Strategy == proposal.DualOverlay {
			msg += "; " + p.PolicyBridgeSource
		}
		return warn(IDNetworkPolicy, msg, "accept the window, or keep sensitive workloads on unmigrated nodes until finalize")
	}
	return warn(IDNetworkPolicy, where+" are not enforced on migrated pods while the migration runs (policyEnforcementMode=never)",
		"accept the window, or keep sensitive workloads on unmigrated nodes until finalize")
}

func kubeProxyCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	kp := c.KubeProxy
	if !kp.Present {
		return pass(IDKubeProxy, fmt.Sprintf("no kube-proxy: Cilium replaces it (kubeProxyReplacement, API server %s:%d)", p.K8sServiceHost, p.K8sServicePort))
	}
	if kp.ClusterCIDR == "" {
		return pass(IDKubeProxy, fmt.Sprintf("kube-proxy (%s, mode %s) has no clusterCIDR, so it does not masquerade by source", kp.Kind, kp.Mode))
	}
	for _, s := range strings.Split(kp.ClusterCIDR, ",") {
		if q, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && q.Bits() <= p.Prefix().Bits() && q.Contains(p.Prefix().Addr()) {
			return pass(IDKubeProxy, fmt.Sprintf("kube-proxy clusterCIDR %s covers %s", kp.ClusterCIDR, p.PodCIDR))
		}
	}
	if kp.Kind == detect.KubeProxyEmbeddedK3s {
		return warn(IDKubeProxy, fmt.Sprintf("k3s's kube-proxy clusterCIDR %s does not cover %s: service traffic from migrated pods will be masqueraded", kp.ClusterCIDR, p.PodCIDR),
			fmt.Sprintf("k3s gives its kube-proxy --cluster-cidr: add kube-proxy-arg: [\"cluster-cidr=%s,%s\"] to /etc/rancher/k3s/config.yaml on every node and restart k3s, or accept the SNAT until finalize", kp.ClusterCIDR, p.PodCIDR))
	}
	return warn(IDKubeProxy, fmt.Sprintf("kube-proxy clusterCIDR %s does not cover %s: service traffic from migrated pods will be masqueraded", kp.ClusterCIDR, p.PodCIDR),
		fmt.Sprintf("add %s to clusterCIDR (kube-system/kube-proxy config.conf, comma-separated) and restart kube-proxy, or accept the SNAT until finalize", p.PodCIDR))
}

func pdbCheck(c *detect.Cluster) Result {
	if len(c.BlockingPDBs) == 0 {
		return pass(IDPDB, "no PodDisruptionBudget blocks evictions right now")
	}
	var names []string
	for _, p := range c.BlockingPDBs {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	verb := "allow"
	if len(names) == 1 {
		verb = "allows"
	}
	return warn(IDPDB, fmt.Sprintf("%s %s no disruption (%s): draining a node with their pods waits until --timeout",
		count(len(names), "PodDisruptionBudget", "PodDisruptionBudgets"), verb, listSome(names)),
		"scale those workloads up or relax the PDBs before migrating the nodes they run on")
}

func ciliumCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	cl := c.Cilium
	if r, ok := inPlaceCiliumCheck(c, p); ok {
		return r
	}
	switch {
	case !cl.Installed:
		return pass(IDCilium, "Cilium is not installed yet: install it with values-initial.yaml")
	case !cl.MigrationMode:
		return fail(IDCilium, fmt.Sprintf("Cilium %s is installed and owns the CNI configuration (custom-cni-conf off)", cl.Version),
			"if the migration was finalized there is nothing to migrate (remove the old CNI with kubectl cni-migrate finalize --remove-old-cni); otherwise reinstall Cilium with values-initial.yaml")
	case p != nil && cl.Version != "" && !strings.HasPrefix(cl.Version, p.Version.MinorString()+"."):
		return warn(IDCilium, fmt.Sprintf("Cilium %s is installed in migration mode but the plan is for %s", cl.Version, p.CiliumVersion),
			"plan with --cilium-version "+cl.Version+" or upgrade Cilium first")
	default:
		return pass(IDCilium, fmt.Sprintf("Cilium %s is installed in migration mode (%d/%d agents ready)", cl.Version, cl.AgentsReady, cl.AgentsDesired))
	}
}

func nodesReadyCheck(c *detect.Cluster) Result {
	var notReady []string
	for _, n := range c.Nodes {
		if !n.Ready {
			notReady = append(notReady, n.Name)
		}
	}
	if len(notReady) > 0 {
		return warn(IDNodesReady, fmt.Sprintf("%d of %d nodes not Ready (%s)", len(notReady), len(c.Nodes), listSome(notReady)),
			"fix or remove them first: a node that is not Ready cannot be verified after its migration")
	}
	cp := len(c.ControlPlaneNodes())
	return pass(IDNodesReady, fmt.Sprintf("all %d nodes are Ready (%d control-plane, migrated last)", len(c.Nodes), cp))
}

func permissionsCheck(in Input) Result {
	switch {
	case in.AccessErr != nil:
		return warn(IDPermissions, "could not check permissions: "+in.AccessErr.Error(),
			"check with `kubectl auth can-i --list` that you may cordon, drain and label nodes")
	case in.Access == nil:
		return warn(IDPermissions, "permissions were not checked", "run plan without --skip-access-check")
	}
	var required, optional []access.Need
	for _, n := range in.Access.Missing {
		if n.Optional {
			optional = append(optional, n)
		} else {
			required = append(required, n)
		}
	}
	switch {
	case len(required) > 0:
		return fail(IDPermissions, fmt.Sprintf("you may not: %s", access.Summary(required)),
			"use a cluster-admin context, or apply docs/rbac.yaml and bind it to your user")
	case len(optional) > 0:
		return warn(IDPermissions, fmt.Sprintf("finalize --remove-old-cni will need: %s", access.Summary(optional)),
			"grant them before finalizing, or remove the old CNI by hand")
	}
	return pass(IDPermissions, fmt.Sprintf("all %d permissions the migration needs are granted", in.Access.Checked))
}

// listSome lists up to maxListedObjects names and says how many more.
func listSome(names []string) string {
	if len(names) <= maxListedObjects {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListedObjects], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListedObjects)
}

// count renders "1 thing" or "3 things".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
