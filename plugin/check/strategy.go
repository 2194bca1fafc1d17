package check

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// Check IDs of the migration method and of pod-to-pod traffic during it
// (documented in docs/plan-schema.md).
const (
	IDStrategy = "strategy"
	IDPodSNAT  = "pod-snat"
)

// migrationChecks are the checks about how the migration runs rather than
// what the cluster is: the strategy and the source NAT between the two pod
// networks while they coexist.
func migrationChecks(c *detect.Cluster, p *proposal.Proposal) []Result {
	if p == nil || c.CNI == nil {
		return nil
	}
	return []Result{strategyCheck(c, p), podSNATCheck(c, p)}
}

// strategyCheck says which strategy the plan uses and when to choose the
// other one: cluster size, PodDisruptionBudgets, and whether a restart of
// every pod (but no drain or reboot) is acceptable.
func strategyCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	nodes := len(c.Nodes)
	pdbs := ""
	if n := len(c.BlockingPDBs); n > 0 {
		pdbs = fmt.Sprintf("; %s %s no disruption now", count(n, "PodDisruptionBudget", "PodDisruptionBudgets"), map[bool]string{true: "allows", false: "allow"}[n == 1])
	}
	src := ""
	if p.StrategySource != "" && p.StrategySource != "default" {
		src = " (" + p.StrategySource + ")"
	}
	switch p.Strategy {
	case proposal.InPlace:
		msg := fmt.Sprintf("in-place%s: Cilium takes the CNI config of all %s at once and each pod still on %s is restarted once (evicted, PDBs honoured), namespace by namespace, without drains or reboots",
			src, count(nodes, "node", "nodes"), c.CNI.Name)
		if len(c.BlockingPDBs) > 0 {
			return warn(IDStrategy, msg+pdbs+" ("+listSome(pdbNames(c))+"): their namespaces stop the rollout until --timeout",
				"scale those workloads up or relax the PDBs before kubectl cni-migrate rollout --strategy in-place")
		}
		return pass(IDStrategy, msg+"; choose dual-overlay to move one node at a time, with a way back, when nodes can be drained and rebooted")
	default:
		msg := fmt.Sprintf("dual-overlay%s: %s move to Cilium one at a time (cordon, drain, reboot)",
			src, count(nodes, "node", "nodes"))
		if nodes == 1 {
			return warn(IDStrategy, msg+", but draining the only node leaves its pods nowhere to run",
				"use --strategy in-place: Cilium takes the node at once and its pods are restarted namespace by namespace, without a drain or reboot")
		}
		return pass(IDStrategy, msg+pdbs+"; --strategy in-place instead restarts each pod once, without drains or reboots, for clusters that accept a short restart per pod")
	}
}

func pdbNames(c *detect.Cluster) []string {
	var names []string
	for _, p := range c.BlockingPDBs {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	return names
}

// podSNATCheck says plainly which traffic between the old and the new pod
// network is source-NATed while both exist, and what can and cannot be done
// about it (docs/snat.md has the rules and their sources):
//   - old pod -> Cilium pod on another node: Cilium's "cilium host->cluster
//     masquerade" iptables rule (tunnel mode) SNATs it to cilium_host's
//     address; only enableIPv4Masquerade=false removes it, which also stops
//     masquerading pod traffic leaving the cluster: no safe setting;
//   - old pod -> Cilium pod: the old CNI's own masquerading (flannel
//     --ip-masq: no setting excludes a destination; Calico natOutgoing:
//     excluded when an IPPool, even a disabled one, covers Cilium's pod
//     CIDR);
//   - Cilium pod -> old pod on the same node: Cilium's "cilium masquerade
//     non-cluster" rule, unless ipv4NativeRoutingCIDR covers both networks
//     (proposal.SNATExclusion); to other nodes Cilium tunnels it unchanged.
func podSNATCheck(c *detect.Cluster, p *proposal.Proposal) Result {
	name := c.CNI.Name
	src, err := sourcecni.For(c.CNI)
	if err != nil {
		return fromErr(IDPodSNAT, err)
	}
	var by []string
	fix := "if a workload checks client addresses (allow-lists, ipBlock policies, logs), move it with its clients; the NAT ends with the migration (docs/snat.md)"
	own, before := src.SNAT.OldToNew(c, p)
	if own != "" {
		by = append(by, own)
	}
	fix = before + fix
	by = append(by, "across nodes Cilium's \"cilium host->cluster masquerade\" rule SNATs to cilium_host (only enableIPv4Masquerade=false, which also stops masquerading traffic leaving the cluster, removes it)")
	msg := fmt.Sprintf("while both pod networks exist, connections from %s pods to Cilium pods arrive source-NATed: %s", name, strings.Join(by, ", and "))
	if p.IPv4NativeRoutingCIDR != "" {
		msg += fmt.Sprintf("; Cilium pods keep their address towards %s pods (ipv4NativeRoutingCIDR %s)", name, p.IPv4NativeRoutingCIDR)
	} else if p.SNATNote != "" {
		msg += fmt.Sprintf("; Cilium pods reaching %s pods on the same node are masqueraded too: %s", name, p.SNATNote)
	}
	return warn(IDPodSNAT, msg, fix)
}

// inPlaceCiliumCheck is the cilium check where the strategy decides it: a
// Cilium that owns every node's CNI config while the old CNI is still there
// is the in-place method under way, not a finished migration. ok is false
// when ciliumCheck's own rules apply.
func inPlaceCiliumCheck(c *detect.Cluster, p *proposal.Proposal) (Result, bool) {
	cl := c.Cilium
	if p == nil || !cl.Installed || c.CNI == nil {
		return Result{}, false
	}
	switch {
	case !cl.MigrationMode && p.Strategy == proposal.InPlace:
		return pass(IDCilium, fmt.Sprintf("Cilium %s owns every node's CNI config (custom-cni-conf off) while %s is still there: the in-place migration is under way (%d/%d agents ready)",
			cl.Version, c.CNI.Name, cl.AgentsReady, cl.AgentsDesired)), true
	case !cl.MigrationMode && p.Strategy == proposal.DualOverlay && p.StrategySource == "--strategy":
		return fail(IDCilium, fmt.Sprintf("Cilium %s owns every node's CNI config (custom-cni-conf off), the in-place setup, but the plan is for dual-overlay", cl.Version),
			"plan with --strategy in-place (or without --strategy), or reinstall Cilium with values-initial.yaml from kubectl cni-migrate values --strategy dual-overlay"), true
	case cl.MigrationMode && p.Strategy == proposal.InPlace:
		return fail(IDCilium, fmt.Sprintf("Cilium %s runs in migration mode (custom-cni-conf true), the dual-overlay setup, but the plan is for in-place", cl.Version),
			"plan with --strategy dual-overlay (or without --strategy), or helm upgrade Cilium with values-initial.yaml from kubectl cni-migrate values --strategy in-place"), true
	}
	return Result{}, false
}
