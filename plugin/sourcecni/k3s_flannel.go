package sourcecni

import (
	"fmt"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// CheckK3sConfig: what the user changes in k3s's configuration, and when
// (k3s's flannel only).
const CheckK3sConfig = "k3s-config"

// k3sConfigFile is where k3s reads its configuration (docs.k3s.io).
const k3sConfigFile = "/etc/rancher/k3s/config.yaml"

// k3sSwitchOff is what turns k3s's own networking off: Cilium's k3s
// installation guide starts k3s with both (docs.cilium.io, Installation
// Using K3s).
const k3sSwitchOff = "flannel-backend: none and disable-network-policy: true"

// k3sFlannel: the flannel built into the k3s binary (and k3s's network
// policy controller beside it), which no Kubernetes object owns.
func k3sFlannel() Source {
	return Source{
		ID:     K3sFlannel,
		Name:   detect.K3sFlannel().Name,
		Detect: detect.K3sFlannel(),
		Checks: Checks{
			Backend: k3sFlannelBackend,
			Extra:   []func(*detect.Cluster, *proposal.Proposal) Finding{k3sConfigCheck},
		},
		SNAT:     SNAT{OldToNew: flannelSNAT},
		Finalize: Finalize{Manual: k3sFlannelManual},
		Node: Node{
			Tunnel:    flannelTunnel,
			Leftovers: "k3s flannel's interfaces (flannel.1, cni0), its iptables rules (FLANNEL-POSTRTG, FLANNEL-FWD; KUBE-ROUTER-* of k3s's network policy controller), routes to the old pod CIDR",
			ByHand:    "ip link delete flannel.1; ip link delete cni0; iptables-save | grep -v -e FLANNEL -e KUBE-ROUTER | iptables-restore",
			CNIConf:   "10-flannel.conflist",
			CNIConfNote: fmt.Sprintf("(on k3s the CNI directory is %s, not /etc/cni/net.d, and k3s rewrites 10-flannel.conflist each time it starts with its flannel on)",
				detect.K3sCNIConfDir),
		},
		Plan: Plan{BackendOnly: true},
	}
}

// k3sFlannelBackend judges k3s's --flannel-backend: vxlan is the guide's
// path, host-gw and wireguard as flannel's own; the rest is changed with
// --flannel-backend in k3s's configuration, not in a net-conf.json.
func k3sFlannelBackend(cni *detect.CNI) Finding {
	b := cni.Backend
	switch b.Type {
	case "vxlan", "host-gw":
		return flannelBackend("k3s's flannel")(cni)
	case "wireguard-native", "wireguard":
		return warn("", fmt.Sprintf("k3s's flannel %s backend (port %d) encrypts old-pod traffic only; traffic between old and new pods leaves the tunnel", b.Type, b.Port),
			"keep Cilium's own encryption off until finalize, and expect old-to-new pod traffic to be unencrypted during the migration")
	}
	return fail("", fmt.Sprintf("k3s's flannel %s backend is not supported by the dual-overlay method", b.Type),
		fmt.Sprintf("set flannel-backend: vxlan in %s on every server and restart k3s on every node first", k3sConfigFile))
}

// k3sConfigCheck says what must change in k3s's configuration and when:
// k3s's flannel and network policy controller keep running on every node
// until the k3s configuration turns them off, so they stay until every
// node is on Cilium and go at finalize.
func k3sConfigCheck(c *detect.Cluster, _ *proposal.Proposal) Finding {
	policy := "k3s's network policy controller is off (--disable-network-policy)"
	if c.CNI.EnforcesPolicy {
		policy = "k3s's network policy controller enforces NetworkPolicies on the old pods meanwhile"
	}
	return warn(CheckK3sConfig,
		fmt.Sprintf("k3s runs flannel inside its own process on every node (%s); nothing in the cluster can remove it, and it stays on until k3s's configuration turns it off", policy),
		fmt.Sprintf("leave k3s's configuration alone while nodes migrate; once every node is on Cilium (before finalize --remove-old-cni), set %s in %s on every server, then restart k3s on each node (servers first, drained one at a time) and clear flannel's leftovers (see finalize)", k3sSwitchOff, k3sConfigFile))
}

// k3sFlannelManual: k3s's flannel has no objects to delete.
func k3sFlannelManual(*detect.CNI) string {
	return fmt.Sprintf("k3s's flannel is built into the k3s binary: there is no DaemonSet or ConfigMap to delete. "+
		"Set %s in %s on every server node, then restart k3s node by node (systemctl restart k3s on servers, k3s-agent on agents; drain each first), "+
		"servers first; k3s then runs neither flannel nor its network policy controller, and Cilium, already on every node, stays the only CNI", k3sSwitchOff, k3sConfigFile)
}
