package sourcecni

import (
	"fmt"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// calicoOperator: Calico installed by the Tigera operator, configured
// through its Installation; the operator owns calico-node, calico-typha,
// calico-kube-controllers and their namespace.
func calicoOperator() Source {
	in := calicoInstall{
		iptablesFix: func(cni *detect.CNI) string {
			return fmt.Sprintf(`switch Calico to its iptables dataplane first: kubectl patch installation %s --type=merge -p '{"spec":{"calicoNetwork":{"linuxDataplane":"Iptables"}}}' (and kube-proxy back)`, cni.Installation)
		},
		toVXLAN: ", or encapsulation: VXLAN in the Installation's ipPools)",
		internalIPFix: func(cni *detect.CNI, m string) []string {
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
			return []string{fmt.Sprintf(`kubectl patch installation %s --type=merge -p '{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":%s}}}'`, cni.Installation, patch)}
		},
	}
	return Source{
		ID:     CalicoOperator,
		Name:   detect.Calico().Name,
		Is:     func(cni *detect.CNI) bool { return cni.Install == "operator" },
		Detect: detect.Calico(),
		Checks: Checks{
			Backend: calicoBackend(in),
			Extra:   []func(*detect.Cluster, *proposal.Proposal) Finding{nodeAddressCheck(in), calicoPoliciesCheck},
		},
		SNAT: SNAT{OldToNew: calicoSNAT},
		Finalize: Finalize{Manual: func(cni *detect.CNI) string {
			return fmt.Sprintf("Calico was installed by the Tigera operator, which owns calico-node, calico-typha, calico-kube-controllers and the %s namespace and would recreate them: "+
				"uninstall through the operator instead: kubectl delete installation %s (then, once the %s namespace is gone, remove the operator the way it was installed, e.g. kubectl delete -f tigera-operator.yaml or helm uninstall calico -n tigera-operator); %s",
				cni.Namespace, cni.Installation, cni.Namespace, calicoCRDsKept())
		}},
		Node: calicoNode(),
		Plan: Plan{BGP: "BIRD"},
	}
}
