package sourcecni

import (
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// calicoManifest: Calico installed from calico.yaml (the calico-node
// DaemonSet, calico-config, calico-kube-controllers); configured through
// calico-node's environment and Calico's resources.
func calicoManifest() Source {
	in := calicoInstall{
		iptablesFix: func(*detect.CNI) string {
			return "switch Calico to its iptables dataplane first (FelixConfiguration default spec.bpfEnabled: false, and kube-proxy back)"
		},
		toVXLAN: ", and calico_backend: vxlan in calico-config)",
		internalIPFix: func(cni *detect.CNI, _ string) []string {
			return []string{
				"kubectl -n " + cni.Namespace + " set env daemonset/" + cni.DaemonSet + " IP_AUTODETECTION_METHOD=kubernetes-internal-ip",
				"kubectl -n " + cni.Namespace + " rollout status daemonset/" + cni.DaemonSet,
			}
		},
	}
	return Source{
		ID:     CalicoManifest,
		Name:   detect.Calico().Name,
		Is:     func(cni *detect.CNI) bool { return cni.Install != "operator" },
		Detect: detect.Calico(),
		Checks: Checks{
			Backend: calicoBackend(in),
			Extra:   []func(*detect.Cluster, *proposal.Proposal) Finding{nodeAddressCheck(in), calicoPoliciesCheck},
		},
		SNAT:     SNAT{OldToNew: calicoSNAT},
		Finalize: Finalize{Owned: calicoManifestObjects},
		Node:     calicoNode(),
		Plan:     Plan{BGP: "BIRD"},
	}
}
