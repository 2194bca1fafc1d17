package lab

import (
	"context"
	"net/netip"
	"regexp"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// canalSource: Canal from Calico v3.31.0's canal.yaml (flannel's vxlan on
// UDP 8472 run by the lab's flanneld, Calico's felix enforcing policy, the
// calico CNI plugin with host-local IPAM), unchanged but for its images:
// its net-conf.json Network is the cluster's pod CIDR already.
func canalSource() Source {
	lo := calicoLeftovers(`flannel\.\d+|cali[0-9a-f]{11}`)
	return Source{
		Name:       "canal",
		Title:      "Canal (Calico " + CalicoVersion + " canal.yaml: flannel vxlan, Calico policy)",
		Nodes:      TwoNodes,
		Calico:     true,
		OldNetwork: netip.MustParsePrefix("10.244.0.0/16"),
		Namespace:  "kube-system",
		DaemonSet:  "canal",
		Conflist:   "10-canal.conflist",
		Policies:   Policies{Kubernetes: true, Calico: true},
		Enforces:   true,
		Leftovers:  Leftovers{Links: lo.Links, Chains: regexp.MustCompile(`^(cali-|FLANNEL-)`), IPSets: lo.IPSets, Files: lo.Files},
		install: func(ctx context.Context, c *cluster.Cluster) error {
			return applyManifest(ctx, c, "canal.yaml", nil)
		},
	}
}
