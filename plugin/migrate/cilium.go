package migrate

import (
	"net/netip"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// The checks of the installed Cilium that the dual-overlay steps and the
// in-place restart both make before anything changes.

// CiliumNamespace is the namespace flag (-n) when given, else Cilium's; a
// flag naming another namespace than Cilium's is a Precondition error.
func CiliumNamespace(c detect.Cilium, flag string) (string, error) {
	ns := flag
	if ns == "" {
		ns = c.Namespace
	}
	if ns != c.Namespace {
		return ns, errs.Newf(errs.Precondition, "pass -n "+c.Namespace+" or drop -n",
			"Cilium runs in namespace %s (DaemonSet %s), not %s", c.Namespace, c.DaemonSet, ns)
	}
	return ns, nil
}

// CiliumPool is Cilium's cluster-pool pod CIDRs; none is a Precondition
// error whose message ends with why they are needed.
func CiliumPool(c detect.Cilium, why string) ([]netip.Prefix, error) {
	pool, err := ParsePool(c.PodCIDRs)
	if err != nil {
		return nil, err
	}
	if len(pool) == 0 {
		return nil, errs.Newf(errs.Precondition, "install Cilium with ipam.mode=cluster-pool and ipam.operator.clusterPoolIPv4PodCIDRList (values-initial.yaml does)",
			"the cilium-config ConfigMap in %s has no cluster-pool-ipv4-cidr: %s", c.Namespace, why)
	}
	return pool, nil
}
