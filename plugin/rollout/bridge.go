package rollout

import (
	"context"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
)

// requireBridge refuses to migrate nodes while Cilium enforces policies
// and the policy bridge does not run in its namespace ns: the pods still
// on the old network would reach the migrated pods with an identity no
// policy allows (docs/policy-continuity.md). Nothing is required while
// Cilium's enforcement is off or in audit mode (it drops nothing), or when
// no old CNI is left. inPlace is the one-shot method, whose Cilium owns
// every node's CNI config (no migration mode) while the old network's pods
// wait for their restart.
func requireBridge(ctx context.Context, cl *kube.Clients, cluster *detect.Cluster, ns string, inPlace bool) error {
	c := cluster.Cilium
	if cluster.CNI == nil || !c.Installed || (!c.MigrationMode && !inPlace) || !policybridge.Enforces(c.PolicyEnforcement) || c.PolicyAudit {
		return nil
	}
	st, err := policybridge.ReadState(ctx, cl.Kube, ns)
	if err != nil {
		return cl.Classify(err, "reading the policy bridge")
	}
	if st.Ready() {
		return nil
	}
	mode := c.PolicyEnforcement
	if mode == "" {
		mode = "default"
	}
	return errs.Newf(errs.Precondition,
		"deploy it and wait for it: kubectl cni-migrate policy-bridge --deploy (docs/policy-continuity.md); or install Cilium with the values of kubectl cni-migrate values --policy-bridge=false, which keep its enforcement off until finalize",
		"Cilium enforces network policies (cilium-config enable-policy %q) and the policy bridge in %s is %s: the pods still on %s's network would reach the migrated pods with no identity a policy allows",
		mode, ns, st, cluster.CNI.Name)
}
