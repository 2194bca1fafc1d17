package inplace

import (
	"context"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Preflight checks, before anything changes, that Cilium owns the CNI
// configuration of every node (custom-cni-conf false) and runs a Ready
// agent on each of the nodes, and reads its pod CIDR.
func (r *Restarter) Preflight(ctx context.Context, cluster *detect.Cluster, nodes []string) (*Plan, error) {
	c := cluster.Cilium
	if !c.Installed {
		return nil, errs.New(errs.Precondition, "Cilium is not installed",
			"install it first: kubectl cni-migrate values --strategy in-place --output-dir . && helm install cilium cilium/cilium --namespace kube-system --values values-initial.yaml")
	}
	plan := &Plan{}
	var err error
	if plan.Namespace, err = migrate.CiliumNamespace(c, r.opts.Namespace); err != nil {
		return nil, err
	}
	if c.MigrationMode {
		return nil, errs.Newf(errs.Precondition,
			"migrate node by node without --strategy in-place (kubectl cni-migrate rollout), or helm upgrade Cilium with values-initial.yaml from kubectl cni-migrate values --strategy in-place",
			"Cilium %s in %s runs in migration mode (cilium-config custom-cni-conf \"true\"), the dual-overlay setup: pods restarted now would get the old CNI's addresses again on nodes not migrated", c.Version, c.Namespace)
	}
	if plan.Pool, err = migrate.CiliumPool(c, "the in-place migration tells old pods from new ones by Cilium's cluster-pool pod CIDR"); err != nil {
		return nil, err
	}
	plan.Nodes = append([]string(nil), nodes...)
	sort.Strings(plan.Nodes)

	// Every node whose pods are restarted needs a Ready agent, which has
	// written Cilium's CNI configuration: without one a restarted pod gets
	// no network (the old CNI's configuration is renamed away).
	agents, err := r.cl.Kube.CoreV1().Pods(plan.Namespace).List(ctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel})
	if err != nil {
		return nil, r.cl.Classify(err, "listing the Cilium agents")
	}
	ready := map[string]bool{}
	for i := range agents.Items {
		p := &agents.Items[i]
		if p.DeletionTimestamp == nil && kube.PodReady(p) {
			ready[p.Spec.NodeName] = true
		}
	}
	var notReady []string
	for _, n := range plan.Nodes {
		if !ready[n] {
			notReady = append(notReady, n)
		}
	}
	if len(notReady) > 0 {
		return nil, errs.Newf(errs.Precondition,
			fmt.Sprintf("check kubectl -n %s get pods -l %s -o wide, then run the same command again", plan.Namespace, migrate.AgentLabel),
			"no Ready Cilium agent on %s %s: pods restarted there would get no network", output.Plural(len(notReady), "node", "nodes"), list(notReady))
	}

	if cm, err := r.cl.Kube.CoreV1().ConfigMaps(plan.Namespace).Get(ctx, "cilium-config", metav1.GetOptions{}); err == nil {
		if v := cm.Data["unmanaged-pod-watcher-interval"]; v != "" && v != "0" && v != "0s" {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("the Cilium operator's unmanaged-pod watcher is on (unmanaged-pod-watcher-interval %s): it deletes pods still on the old network one at a time without regard to PodDisruptionBudgets; values --strategy in-place turns it off until values-final.yaml", v))
		}
	}
	return plan, nil
}
