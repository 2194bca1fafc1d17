package sourcecni

import (
	"fmt"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// flannelCNIConf is the file flannel's install-cni init container writes
// (kube-flannel.yml: cp -f /etc/kube-flannel/cni-conf.json
// /etc/cni/net.d/10-flannel.conflist).
const flannelCNIConf = "10-flannel.conflist"

// flannel: the kube-flannel DaemonSet and its net-conf.json.
func flannel() Source {
	return Source{
		ID:     Flannel,
		Name:   detect.Flannel().Name,
		Detect: detect.Flannel(),
		Checks: Checks{Backend: flannelBackend("flannel's")},
		SNAT:   SNAT{OldToNew: flannelSNAT},
		Finalize: Finalize{Owned: func(cni *detect.CNI) Owned {
			return Owned{ConfigMaps: nonEmpty(cni.ConfigMap), EmptyNamespace: true}
		}},
		Node: Node{
			Tunnel:      flannelTunnel,
			Leftovers:   "the old CNI's interfaces (for flannel: flannel.1, cni0), its iptables rules (FLANNEL-POSTRTG, FLANNEL-FWD), routes to the old pod CIDR",
			ByHand:      "ip link delete flannel.1; ip link delete cni0; iptables-save | grep -v FLANNEL | iptables-restore",
			CNIConf:     flannelCNIConf,
			CNIConfNote: fmt.Sprintf("(flannel's install-cni init container also rewrites %s when its pod on the node restarts; see docs/rollback.md)", flannelCNIConf),
			Sweep: &Sweep{
				Processes: []string{"flanneld"},
				Links:     []string{"flannel.1", "cni0"}, Chains: "FLANNEL-",
				Files: []string{flannelCNIConf, flannelCNIConf + ".cilium_bak"}, Dirs: []string{"/run/flannel"},
			},
		},
		Plan: Plan{BackendOnly: true},
	}
}

// flannelBackend judges flannel's backend (flannel's own, and Canal's
// flannel); who names it in messages.
func flannelBackend(who string) func(cni *detect.CNI) Finding {
	return func(cni *detect.CNI) Finding {
		const id = ""
		b := cni.Backend
		switch b.Type {
		case "vxlan":
			return pass(id, fmt.Sprintf("%s uses the vxlan backend (port %d, VNI %d), the guide's tested path", cni.Name, b.Port, b.VNI))
		case "host-gw":
			return warn(id, who+" host-gw backend is outside the guide's tested path (no tunnel: old pods rely on per-node routes while Cilium tunnels)",
				"rehearse on a staging cluster with the same backend first, or switch flannel to vxlan before migrating")
		case "wireguard":
			return warn(id, fmt.Sprintf("%s wireguard backend (port %d) encrypts old-pod traffic only; traffic between old and new pods leaves the tunnel", who, b.Port),
				"keep Cilium's own encryption off until finalize, and expect old-to-new pod traffic to be unencrypted during the migration")
		case "":
			return warn(id, who+" backend could not be read (no net-conf.json and no node annotation)",
				"check flannel's ConfigMap and make sure it has a net-conf.json key")
		default:
			return fail(id, fmt.Sprintf("%s %s backend is not supported by the dual-overlay method", who, b.Type),
				"switch flannel to the vxlan backend (net-conf.json Backend.Type) and restart flannel first")
		}
	}
}

// flannelSNAT: flanneld with --ip-masq masquerades everything from its
// network that leaves it, Cilium's pods included; no setting excludes a
// destination. Without --ip-masq it masquerades nothing.
func flannelSNAT(c *detect.Cluster, _ *proposal.Proposal) (string, string) {
	if c.CNI.IPMasq != nil && !*c.CNI.IPMasq {
		return "", "no Cilium setting removes it safely; "
	}
	return fmt.Sprintf("flanneld --ip-masq masquerades everything from %s leaving it", networkText(c)), "no flannel or Cilium setting removes it safely; "
}
