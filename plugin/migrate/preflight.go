package migrate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Preflight checks, before anything changes, that the named nodes can be
// migrated, and orders them (workers first, control-plane nodes last).
// Nodes already done need nothing, so when all are done nothing else is
// checked. In DirectionRollback it checks that they can be rolled back
// instead (the migration not finalized: Cilium in migration mode, the
// CiliumNodeConfig there) and keeps the order given; nodes never migrated
// need nothing.
func (m *Migrator) Preflight(ctx context.Context, cluster *detect.Cluster, names []string) (*Plan, error) {
	nodes, err := m.cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, m.cl.Classify(err, "listing nodes")
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	key, value, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
	plan := &Plan{OldCNI: cluster.CNI}
	seen := map[string]bool{}
	allDone := true
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		n := byName[name]
		if n == nil {
			return nil, errs.Newf(errs.Precondition, "check the name with kubectl get nodes (and --context)", "node %s not found", name)
		}
		st, err := StateOf(n)
		if err != nil {
			return nil, err
		}
		_, labelled := n.Labels[key]
		if m.rollback() {
			allDone = allDone && RollbackPlan(st, labelled) == nil
		} else {
			if st.RollingBack() {
				return nil, errs.Newf(errs.Precondition, "finish it first: kubectl cni-migrate rollback "+name+" (then migrate the node again)",
					"node %s is being rolled back (rollback phase %s recorded in %s)", name, st.Rollback, AnnotationRollbackPhase)
			}
			allDone = allDone && st.Phase.Done()
		}
		plan.Targets = append(plan.Targets, Target{Name: name, UID: n.UID, ControlPlane: kube.IsControlPlane(n), InternalIP: internalIP(n), State: st, Labelled: labelled})
	}
	if !m.rollback() {
		// Workers first, control-plane nodes last, each group in the order given.
		sort.SliceStable(plan.Targets, func(i, j int) bool {
			return !plan.Targets[i].ControlPlane && plan.Targets[j].ControlPlane
		})
	}
	if allDone {
		return plan, nil
	}

	c := cluster.Cilium
	if !c.Installed {
		if m.rollback() {
			return nil, errs.New(errs.Precondition, "Cilium is not installed, so no node runs on it",
				"nothing to roll back with this command; remove the node labels and cni-migrate.io/ annotations by hand if they are left over")
		}
		return nil, errs.New(errs.Precondition, "Cilium is not installed",
			"install it beside the old CNI first: kubectl cni-migrate values --output-dir . && helm install cilium cilium/cilium --namespace kube-system --values values-initial.yaml")
	}
	if plan.Namespace, err = CiliumNamespace(c, m.opts.Namespace); err != nil {
		return nil, err
	}
	if !c.MigrationMode {
		if m.rollback() {
			return nil, errs.Newf(errs.Precondition, "a rollback node by node works only between node and finalize; see docs/rollback.md (After finalize)",
				"Cilium %s in %s is not in migration mode (cilium-config custom-cni-conf is not \"true\"): the migration was finalized, so Cilium's agents own the CNI config of every node and removing a node's label changes nothing", c.Version, c.Namespace)
		}
		return nil, errs.Newf(errs.Precondition, "install or upgrade Cilium with values-initial.yaml (cni.customConf=true) from kubectl cni-migrate values",
			"Cilium %s in %s is not in migration mode (cilium-config custom-cni-conf is not \"true\"): restarting its agent would take over the node's network at once", c.Version, c.Namespace)
	}
	if plan.Pool, err = CiliumPool(c, "the dual-overlay migration needs Cilium's cluster-pool IPAM"); err != nil {
		return nil, err
	}

	cfg, err := m.nodeConfig(ctx, plan.Namespace)
	if err != nil {
		return nil, err
	}
	sel := cfg.selector
	plan.NodeConfig, plan.CNIConfFile = cfg.ref, HostCNIConfFile(cfg.cniConfFile, cluster.Distribution)
	for _, t := range plan.Targets {
		with := labels.Set{}
		for k, v := range byName[t.Name].Labels {
			with[k] = v
		}
		without := labels.Set{}
		for k, v := range with {
			if k != key {
				without[k] = v
			}
		}
		with[key] = value
		if m.rollback() {
			if len(RollbackPlan(t.State, t.Labelled)) <= 1 {
				continue // nothing to roll back, or only the uncordon of a node never labelled
			}
			if sel.Matches(without) {
				return nil, errs.Newf(errs.Precondition, "pass the label it selects with --node-label (and its name with --nodeconfig-name)",
					"CiliumNodeConfig %s selects node %s even without the label %s (selector %q): removing that label would not hand the node back to the old CNI", plan.NodeConfig, t.Name, m.opts.NodeLabel, sel.String())
			}
		} else if t.State.Phase.Done() {
			continue
		}
		if !sel.Matches(with) {
			return nil, errs.Newf(errs.Precondition,
				"pass the label it selects with --node-label, or re-apply it with kubectl cni-migrate nodeconfig --apply --node-label "+m.opts.NodeLabel,
				"CiliumNodeConfig %s selects %q, which node %s does not match even with the label %s", plan.NodeConfig, sel.String(), t.Name, m.opts.NodeLabel)
		}
	}

	if !m.opts.AllowControlPlane && !m.rollback() {
		before := map[string]bool{}
		for _, t := range plan.Targets {
			if t.ControlPlane && !t.State.Phase.Done() {
				var pending []string
				for i := range nodes.Items {
					n := &nodes.Items[i]
					st, _ := StateOf(n)
					if !kube.IsControlPlane(n) && !st.Phase.Done() && !before[n.Name] {
						pending = append(pending, n.Name)
					}
				}
				if len(pending) > 0 {
					sort.Strings(pending)
					return nil, errs.Newf(errs.Precondition, "migrate the workers first (name them before it, or run them first), or pass --allow-control-plane",
						"node %s is a control-plane node and %d %s not migrated yet (%s): the guide migrates the control plane last",
						t.Name, len(pending), output.Plural(len(pending), "worker is", "workers are"), list(pending))
				}
			}
			before[t.Name] = true
		}
	}
	// Every permission of the steps, before the first change: a run
	// without one stops here rather than halfway through a node.
	if err := access.Require(ctx, m.cl.Kube, access.StepNeeds(plan.Namespace, !m.opts.DisableEviction), m.command(),
		"apply docs/rbac.yaml and bind it to your user (kubectl cni-migrate plan lists every missing permission)"); err != nil {
		return nil, m.cl.Classify(err, "checking permissions")
	}
	return plan, nil
}

// command names the command in messages: "node" or "rollback".
func (m *Migrator) command() string {
	if m.rollback() {
		return "kubectl cni-migrate rollback"
	}
	return "kubectl cni-migrate node"
}

// nodeConfigInfo is what the migration reads from the CiliumNodeConfig.
type nodeConfigInfo struct {
	selector labels.Selector
	// ref is "apiVersion ns/name".
	ref string
	// cniConfFile is write-cni-conf-when-ready without the agent's /host
	// prefix: a path in the agent's view of the node, which HostCNIConfFile
	// turns into the node's.
	cniConfFile string
}

// nodeConfig finds the CiliumNodeConfig (through cilium.io/v2 when served,
// else v2alpha1, so a deprecated version is not asked for when a newer one
// serves the same object) and returns its node selector, its
// "apiVersion ns/name" and the CNI configuration file it has agents write.
func (m *Migrator) nodeConfig(ctx context.Context, ns string) (nodeConfigInfo, error) {
	name := m.opts.NodeConfigName
	served, err := nodeconfig.Served(m.cl.Kube.Discovery())
	if err != nil {
		return nodeConfigInfo{}, m.cl.Classify(err, "reading the cilium.io API versions")
	}
	if len(served) == 0 {
		return nodeConfigInfo{}, errs.New(errs.Precondition, "this cluster has no CiliumNodeConfig CRD",
			"install Cilium with values-initial.yaml first (kubectl cni-migrate values), then kubectl cni-migrate nodeconfig --apply")
	}
	for _, v := range []string{"cilium.io/v2", "cilium.io/v2alpha1"} {
		if !contains(served, v) {
			continue
		}
		u, err := m.cl.Dynamic.Resource(nodeconfig.GVR(v)).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			return nodeConfigInfo{}, m.cl.Classify(err, fmt.Sprintf("reading CiliumNodeConfig %s/%s", ns, name))
		}
		info := nodeConfigInfo{ref: fmt.Sprintf("%s %s/%s", v, ns, name), cniConfFile: DefaultCNIConfFile}
		spec, _ := u.Object["spec"].(map[string]any)
		raw, found := spec["nodeSelector"]
		if !found || raw == nil {
			return nodeConfigInfo{}, errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has no spec.nodeSelector", info.ref)
		}
		var ls metav1.LabelSelector
		rawMap, isMap := raw.(map[string]any)
		if !isMap {
			err = fmt.Errorf("not an object")
		} else {
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(rawMap, &ls)
		}
		if err != nil {
			return nodeConfigInfo{}, errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has an unreadable spec.nodeSelector: %v", info.ref, err)
		}
		if info.selector, err = metav1.LabelSelectorAsSelector(&ls); err != nil {
			return nodeConfigInfo{}, errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has an invalid spec.nodeSelector: %v", info.ref, err)
		}
		if defaults, ok := spec["defaults"].(map[string]any); ok {
			if f, ok := defaults["write-cni-conf-when-ready"].(string); ok && strings.HasPrefix(f, "/host/") {
				info.cniConfFile = strings.TrimPrefix(f, "/host")
			}
		}
		return info, nil
	}
	if m.rollback() {
		return nodeConfigInfo{}, errs.Newf(errs.Precondition,
			"a rollback node by node works only between node and finalize (finalize deletes it); if it was deleted by hand, re-create it first: kubectl cni-migrate nodeconfig --apply --name "+name+" --node-label "+m.opts.NodeLabel,
			"CiliumNodeConfig %s/%s not found (served as %s)", ns, name, strings.Join(served, ", "))
	}
	return nodeConfigInfo{}, errs.Newf(errs.Precondition,
		fmt.Sprintf("create it with kubectl cni-migrate nodeconfig --apply --name %s --node-label %s", name, m.opts.NodeLabel),
		"CiliumNodeConfig %s/%s not found (served as %s)", ns, name, strings.Join(served, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}
