package lab

import (
	"context"
	"net/netip"
	"regexp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// calicoSource: Calico v3.31.0 from its calico-vxlan.yaml (Kubernetes
// datastore, no Typha, VXLAN on UDP 4789, calico-ipam), built from the
// module. Changed as a cluster of that shape has it: its pool is the
// cluster's pod CIDR (CALICO_IPV4POOL_CIDR, the manifest's commented
// setting) and it encapsulates between every node (VXLAN Always: the lab's
// nodes share one L2 network, where CrossSubnet would route natively).
// Node address autodetection stays first-found, the manifest's default:
// the plugin's advice about it is under test.
func calicoSource() Source {
	return Source{
		Name:       "calico",
		Title:      "Calico " + CalicoVersion + " (calico-vxlan.yaml: VXLAN Always, calico-ipam, Kubernetes datastore)",
		Nodes:      TwoNodes,
		Calico:     true,
		OldNetwork: netip.MustParsePrefix("10.244.0.0/16"),
		Namespace:  "kube-system",
		DaemonSet:  "calico-node",
		Conflist:   "10-calico.conflist",
		Policies:   Policies{Kubernetes: true, Calico: true},
		Enforces:   true,
		Leftovers:  calicoLeftovers(`vxlan\.calico|cali[0-9a-f]{11}|tunl0`),
		install: func(ctx context.Context, c *cluster.Cluster) error {
			return applyManifest(ctx, c, "calico-vxlan.yaml", func(o *unstructured.Unstructured) error {
				return setEnv(o, "DaemonSet", "calico-node", "calico-node", map[string]string{
					"CALICO_IPV4POOL_CIDR":  "10.244.0.0/16",
					"CALICO_IPV4POOL_VXLAN": "Always",
				})
			})
		},
	}
}

// calicoLeftovers: Calico's interfaces (links), its cali- chains and
// cali40 ipsets, its CNI config and kubeconfig.
func calicoLeftovers(links string) Leftovers {
	return Leftovers{
		Links:  regexp.MustCompile(`^(` + links + `)$`),
		Chains: regexp.MustCompile(`^cali-`),
		IPSets: regexp.MustCompile(`^cali`),
		Files:  regexp.MustCompile(`calico|canal`),
	}
}
