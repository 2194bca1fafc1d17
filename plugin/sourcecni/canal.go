package sourcecni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// canal: flannel's networking with Calico's Felix enforcing policy, from
// canal.yaml (the canal DaemonSet, canal-config, calico-kube-controllers).
func canal() Source {
	return Source{
		ID:     Canal,
		Name:   detect.Canal().Name,
		Detect: detect.Canal(),
		Checks: Checks{
			Backend: flannelBackend("canal's flannel"),
			Extra:   []func(*detect.Cluster, *proposal.Proposal) Finding{calicoPoliciesCheck, canalMasqueradeCheck},
		},
		SNAT:     SNAT{OldToNew: flannelSNAT},
		Finalize: Finalize{Owned: calicoManifestObjects},
		Node: Node{
			Tunnel:    flannelTunnel,
			Leftovers: "canal's interfaces (flannel.1, cali* veths), its iptables rules (FLANNEL-POSTRTG, FLANNEL-FWD, cali-*) and ipsets (cali40*), routes to the old pod CIDR, 10-canal.conflist and calico-kubeconfig in the CNI directory, /var/lib/calico, /run/calico and /run/flannel",
			ByHand:    "ip link delete flannel.1; iptables-save | grep -v -e FLANNEL -e cali | iptables-restore; ipset list -n | grep ^cali | xargs -rn1 ipset destroy",
			Sweep: &Sweep{
				Processes: []string{"calico-node", "flanneld"},
				Links:     []string{"flannel.1"}, LinkPattern: calicoVeths, Chains: "cali-|FLANNEL-", IPSets: "cali",
				Files: []string{"10-canal.conflist", "10-canal.conflist.cilium_bak", calicoKubeconfig},
				Dirs:  []string{"/var/lib/calico", "/run/calico", "/run/flannel"},
			},
		},
		Plan: Plan{},
	}
}

// canalMasqueradeCheck: canal's flanneld runs with --ip-masq, whose rule
// "! -s NETWORK -d NETWORK -j MASQUERADE" rewrites everything that enters
// flannel's network from outside it: on a migrated node, a Cilium pod's
// connection to a pod still on Canal leaves through flannel.1 as the
// node's flannel address. Felix, enforcing the policies on the Canal pod,
// then sees the node, not the client it knows by its pod IP (Calico takes
// every pod's addresses from its status, Cilium's pods included), and
// drops flows the policies allow. Measured on the real-datapath lab: every
// allowed flow from a migrated client to a Canal pod failed until
// flanneld's --ip-masq was off; Calico's natOutgoing pool then masquerades
// what leaves the cluster, as flannel did.
func canalMasqueradeCheck(c *detect.Cluster, p *proposal.Proposal) Finding {
	const id = CheckCanalMasquerade
	cni := c.CNI
	if cni.IPMasq == nil || !*cni.IPMasq {
		return pass(id, "canal's flanneld does not masquerade (no --ip-masq): migrated pods reach Canal's pods with their own addresses, which Calico's policies match")
	}
	pods := "Cilium's pods"
	if p != nil {
		pods = "Cilium's pods (" + p.PodCIDR + ")"
	}
	policies := len(c.NetworkPolicies) + len(c.CalicoPolicies)
	what := fmt.Sprintf("canal's flanneld --ip-masq masquerades connections from %s to pods still on Canal as the node's flannel address", pods)
	if policies == 0 {
		return pass(id, what+"; no NetworkPolicy or Calico policy exists to see the difference today")
	}
	fix, cmds := canalNoMasq(c)
	if chart := detect.RKE2Chart(cni); chart != "" {
		// RKE2's helm-controller re-applies the DaemonSet from its chart.
		fix, cmds = fmt.Sprintf("before the rollout, turn flanneld's masquerading off through RKE2's HelmChartConfig kube-system/%s (a change to the DaemonSet is undone by RKE2's helm-controller), keeping a Calico IPPool with natOutgoing for %s so that traffic leaving the cluster stays masqueraded", chart, cni.Network), nil
	}
	return Finding{ID: id, Level: Fail, Commands: cmds,
		Message: what + fmt.Sprintf(": Calico's policies on those pods (%s) then see the node, not the migrated client, and drop the flows they allow (seen on real nodes)",
			count(policies, "policy", "policies")),
		Fix: fix}
}

// canalNoMasq is the advice that turns flanneld's masquerading off in the
// canal DaemonSet, and its commands: Calico's pool with natOutgoing (one
// is created when none covers flannel's network) masquerades what leaves
// the cluster instead; each node drops flanneld's rules when it reboots.
func canalNoMasq(c *detect.Cluster) (string, []string) {
	cni := c.CNI
	ns, ds, ctr, idx, cmd, args := cni.Namespace, cni.DaemonSet, "kube-flannel", -1, []string(nil), []string(nil)
	if f := cni.FlannelContainer; f != nil {
		ctr, idx, cmd, args = f.Name, f.Index, f.Command, f.Args
	}
	var cmds []string
	pool := natPoolCovering(cni)
	if pool == "" {
		pool = "flannel-nat-outgoing"
		spec, _ := json.Marshal(map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": map[string]any{"name": pool},
			"spec": map[string]any{"cidr": cni.Network, "natOutgoing": true, "ipipMode": "Never", "vxlanMode": "Never", "nodeSelector": "!all()"}})
		cmds = append(cmds, "echo "+shell.Quote(string(spec))+" | kubectl apply -f -")
	}
	cmds = append(cmds, fmt.Sprintf("kubectl -n %s set env daemonset/%s -c %s FLANNELD_IP_MASQ=false", ns, ds, ctr))
	var ops []map[string]any
	for _, f := range []struct {
		field string
		list  []string
	}{{"command", cmd}, {"args", args}} {
		if idx < 0 || !slices.ContainsFunc(f.list, isIPMasqFlag) {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(f.list), isIPMasqFlag)
		ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/spec/template/spec/containers/%d/%s", idx, f.field), "value": kept})
	}
	if len(ops) > 0 {
		b, _ := json.Marshal(ops)
		cmds = append(cmds, fmt.Sprintf("kubectl -n %s patch daemonset %s --type json -p %s", ns, ds, shell.Quote(string(b))))
	}
	cmds = append(cmds, fmt.Sprintf("kubectl -n %s rollout status daemonset/%s", ns, ds))
	nat := fmt.Sprintf("Calico's IPPool %s (natOutgoing) masquerades traffic leaving the cluster instead", pool)
	if natPoolCovering(cni) == "" {
		nat = fmt.Sprintf("first an IPPool %s for %s with natOutgoing (no Calico pool covers it: felix then masquerades traffic leaving the cluster, as flanneld did; nodeSelector !all() keeps Calico's IPAM off it)", pool, cni.Network)
	}
	return fmt.Sprintf("before the rollout, turn flanneld's masquerading off (%s; each node drops flanneld's rules when it reboots): %s",
		nat, strings.Join(cmds, " && ")), cmds
}

// isIPMasqFlag matches flanneld's --ip-masq flag in any of its forms.
func isIPMasqFlag(a string) bool {
	return a == "--ip-masq" || a == "-ip-masq" || strings.HasPrefix(a, "--ip-masq=") || strings.HasPrefix(a, "-ip-masq=")
}

// natPoolCovering names an enabled Calico IPPool with natOutgoing whose CIDR
// covers the CNI's network ("" when none does).
func natPoolCovering(cni *detect.CNI) string {
	net, err := netip.ParsePrefix(cni.Network)
	if err != nil {
		return ""
	}
	for _, pl := range cni.Pools {
		if q, err := netip.ParsePrefix(pl.CIDR); err == nil && pl.NATOutgoing && !pl.Disabled && q.Bits() <= net.Bits() && q.Contains(net.Addr()) {
			return pl.Name
		}
	}
	return ""
}
