package lab

import (
	"net/netip"
	"regexp"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// flannelSource: the upstream kube-flannel.yml v0.28.4 (vxlan, UDP 8472),
// unchanged but for its images. Flannel enforces no NetworkPolicy; the
// lab's workloads carry the Kubernetes ones anyway, as a cluster does that
// means to enforce them once on Cilium.
func flannelSource() Source {
	return Source{
		Name:       "flannel",
		Title:      "Flannel v0.28.4 (kube-flannel.yml, vxlan)",
		OldNetwork: netip.MustParsePrefix("10.244.0.0/16"),
		Namespace:  "kube-flannel",
		DaemonSet:  "kube-flannel-ds",
		Conflist:   "10-flannel.conflist",
		Policies:   Policies{Kubernetes: true},
		Leftovers: Leftovers{
			Links:  regexp.MustCompile(`^(flannel\.\d+|cni0)$`),
			Chains: regexp.MustCompile(`^FLANNEL-`),
			Files:  regexp.MustCompile(`flannel`),
		},
		install: fixture.Flannel,
	}
}
