// Package access asks the API server whether the current user may do what a
// migration needs, one SelfSubjectAccessReview per verb and resource.
package access

import (
	"context"
	"fmt"
	"strings"
	"sync"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Need is one permission the migration needs.
type Need struct {
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	Verb        string `json:"verb"`
	// Namespace is "" for cluster-wide (or all-namespace) access.
	Namespace string `json:"namespace,omitempty"`
	// Optional needs are for opt-in steps (finalize --remove-old-cni).
	Optional bool   `json:"optional,omitempty"`
	Why      string `json:"why"`
}

// String renders a need the way `kubectl auth can-i` takes it.
func (n Need) String() string {
	r := n.Resource
	if n.Subresource != "" {
		r += "/" + n.Subresource
	}
	if n.Group != "" {
		r += "." + n.Group
	}
	s := n.Verb + " " + r
	if n.Namespace != "" {
		s += " -n " + n.Namespace
	}
	return s
}

// Needs lists the permissions of a dual-overlay migration (what plan
// checks): those of the per-node steps (StepNeeds) and those of status,
// nodeconfig --apply, the in-place rollout and finalize. ciliumNS is where
// Cilium runs; cniNS where the old CNI runs ("" when unknown).
func Needs(ciliumNS, cniNS string) []Need {
	out := StepNeeds(ciliumNS, true)
	add := func(group, resource, sub, ns string, optional bool, why string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, Need{Group: group, Resource: resource, Subresource: sub, Verb: v, Namespace: ns, Optional: optional, Why: why})
		}
	}
	add("apps", "daemonsets", "", "", false, "restart the Cilium agents (finalize)", "patch")
	add("cilium.io", "ciliumendpoints", "", "", false, "count the pods Cilium manages (status)", "list", "watch")
	add("cilium.io", "ciliumnodeconfigs", "", ciliumNS, false, "apply, list and delete the CiliumNodeConfig (nodeconfig --apply, finalize)", "list", "watch", "create", "patch", "delete")
	add("", "configmaps", "", ciliumNS, false, "follow cilium-config (status --watch)", "list", "watch")
	add("", "configmaps", "", ciliumNS, false, "record the in-place rollout's progress (ConfigMap cni-migrate-in-place), which finalize deletes", "create", "update", "delete")
	add("networking.k8s.io", "networkpolicies", "", "", false, "count NetworkPolicies not enforced during the migration", "list")
	if cniNS != "" {
		// finalize lists what is left of the old CNI (and whether anything
		// else lives in its namespace), with or without --remove-old-cni.
		why := "finalize lists what is left of the old CNI"
		add("apps", "deployments", "", cniNS, false, why, "get", "list")
		add("apps", "statefulsets", "", cniNS, false, why, "list")
		add("policy", "poddisruptionbudgets", "", cniNS, false, why, "get")
		add("", "services", "", cniNS, false, why, "get")
		add("", "configmaps", "", cniNS, false, why, "list")
		add("", "serviceaccounts", "", cniNS, false, why, "get", "list")
		add("rbac.authorization.k8s.io", "roles", "", cniNS, false, why, "get")
		add("rbac.authorization.k8s.io", "clusterroles", "", "", false, why, "get")
		add("apps", "daemonsets", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI", "delete")
		add("apps", "deployments", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's controllers (calico-kube-controllers, calico-typha)", "delete")
		add("policy", "poddisruptionbudgets", "", cniNS, true, "finalize --remove-old-cni deletes the PDBs of the old CNI's controllers", "delete")
		add("", "services", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's Service (calico-typha)", "delete")
		add("", "configmaps", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's configuration", "delete")
		add("", "serviceaccounts", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's ServiceAccount", "delete")
		add("", "namespaces", "", "", true, "finalize --remove-old-cni deletes the old CNI's namespace when nothing else lives there (kube-flannel)", "delete")
		add("rbac.authorization.k8s.io", "roles", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's RBAC (weave-net)", "delete")
		add("rbac.authorization.k8s.io", "rolebindings", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's RBAC (weave-net)", "delete")
		add("rbac.authorization.k8s.io", "rolebindings", "", "", true, "finalize --remove-old-cni keeps roles other bindings use", "list")
		add("rbac.authorization.k8s.io", "clusterrolebindings", "", "", true, "finalize --remove-old-cni finds the old CNI's bindings", "list")
		add("rbac.authorization.k8s.io", "clusterroles", "", "", true, "finalize --remove-old-cni deletes the old CNI's RBAC", "delete")
		add("rbac.authorization.k8s.io", "clusterrolebindings", "", "", true, "finalize --remove-old-cni deletes the old CNI's RBAC", "delete")
		add("batch", "jobs", "", ciliumNS, true, "finalize --remove-old-cni removes what the old CNI left on each node with a Job", "get")
		add("", "pods", "log", ciliumNS, true, "finalize --remove-old-cni says what each node's Job removed", "get")
	}
	return out
}

// StepNeeds lists what the per-node steps need: node, rollout and
// rollback check it before they change anything, so a run without one of
// these permissions stops before its first write instead of halfway
// through a node. It covers what they read to find the cluster's network
// and Cilium, the steps' writes, the probe Job of the verify step and the
// migration lock. evict is false with --disable-eviction (the drain deletes
// pods instead of evicting them).
func StepNeeds(ciliumNS string, evict bool) []Need {
	var out []Need
	add := func(group, resource, sub, ns string, why string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, Need{Group: group, Resource: resource, Subresource: sub, Verb: v, Namespace: ns, Why: why})
		}
	}
	add("", "nodes", "", "", "cordon, label and watch nodes", "get", "list", "watch", "patch")
	add("", "pods", "", "", "drain nodes, restart Cilium agents, follow the probe pods", "get", "list", "watch", "delete")
	if evict {
		add("", "pods", "eviction", "", "drain nodes with PDB-aware eviction", "create")
	}
	add("", "pods", "status", "", "mark the pods left on a node NotReady before it reboots, so Services stop sending to them", "patch")
	add("apps", "daemonsets", "", "", "find the CNI and Cilium DaemonSets and follow Cilium's agents", "get", "list", "watch")
	add("", "configmaps", "", "", "read the CNI, kube-proxy, kubeadm and Cilium configuration", "get")
	add("cilium.io", "ciliumnodeconfigs", "", ciliumNS, "read the CiliumNodeConfig that selects migrated nodes", "get")
	add("apps", "deployments", "", ciliumNS, "check that the policy bridge runs while Cilium enforces policies", "get")
	add("batch", "jobs", "", ciliumNS, "run the probe Job that verifies a migrated node", "list", "watch", "create", "delete")
	add("policy", "poddisruptionbudgets", "", "", "find PDBs that block a drain", "list")
	add("coordination.k8s.io", "leases", "", "kube-system", "hold the migration lock, so that two runs never work on the cluster at once", "get", "watch", "create", "update")
	return out
}

// ConnectivityNeeds lists what `connectivity` (and a rollout's or node's
// --gate connectivity) needs beyond Needs: its namespace, DaemonSet and
// Service, the pod proxy to ask the probes, and the ConfigMap of the latest
// matrix. The command checks them before it changes anything.
func ConnectivityNeeds(probeNS string) []Need {
	var out []Need
	add := func(group, resource, sub, ns string, why string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, Need{Group: group, Resource: resource, Subresource: sub, Verb: v, Namespace: ns, Optional: true, Why: why})
		}
	}
	add("", "namespaces", "", "", "create the probes' namespace; connectivity --cleanup deletes it", "get", "create", "delete")
	add("apps", "daemonsets", "", probeNS, "run the probe DaemonSet (connectivity)", "get", "create", "update")
	add("", "services", "", probeNS, "put the probe Service in front of the probes (connectivity)", "get", "create")
	add("", "services", "", "default", "find the API server's Service to check it (connectivity)", "get")
	add("", "pods", "", probeNS, "list the probe pods (connectivity)", "list")
	add("", "pods", "proxy", probeNS, "ask the probe pods to dial their peers, through the API server (connectivity)", "get")
	add("", "configmaps", "", probeNS, "keep the latest connectivity matrix for status", "get", "create", "update")
	return out
}

// Result is the outcome of checking a list of needs.
type Result struct {
	Checked int    `json:"checked"`
	Missing []Need `json:"missing"`
}

// Check asks one SelfSubjectAccessReview per need, a few at a time; the
// missing needs keep the order of needs.
func Check(ctx context.Context, c kubernetes.Interface, needs []Need) (Result, error) {
	allowed := make([]bool, len(needs))
	errors := make([]error, len(needs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, n := range needs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
				Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
					Group: n.Group, Resource: n.Resource, Subresource: n.Subresource, Verb: n.Verb, Namespace: n.Namespace,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				errors[i] = fmt.Errorf("asking whether you may %s: %w", n, err)
				return
			}
			allowed[i] = r.Status.Allowed
		}()
	}
	wg.Wait()
	res := Result{Missing: []Need{}}
	for i, n := range needs {
		if errors[i] != nil {
			return res, errors[i]
		}
		res.Checked++
		if !allowed[i] {
			res.Missing = append(res.Missing, n)
		}
	}
	return res, nil
}

// Summary renders missing needs compactly: "list pods, create pods/eviction".
func Summary(needs []Need) string {
	var parts []string
	for _, n := range needs {
		parts = append(parts, n.String())
	}
	return strings.Join(parts, ", ")
}

// Required returns needs, every one required: for a command that needs the
// optional ones it lists (connectivity).
func Required(needs []Need) []Need {
	out := make([]Need, len(needs))
	for i, n := range needs {
		n.Optional = false
		out[i] = n
	}
	return out
}

// Require checks needs and, when a required one is missing, returns a
// Forbidden error (exit 8) that names it (and how many more are missing)
// with fix as the way out. Optional needs are not required.
func Require(ctx context.Context, c kubernetes.Interface, needs []Need, what, fix string) error {
	var required []Need
	for _, n := range needs {
		if !n.Optional {
			required = append(required, n)
		}
	}
	res, err := Check(ctx, c, required)
	if err != nil {
		return err
	}
	if n := len(res.Missing); n > 0 {
		more := ""
		if n > 1 {
			more = fmt.Sprintf(" and %d more (%s)", n-1, Summary(res.Missing[1:]))
		}
		return errs.Newf(errs.Forbidden, fix, "%s needs permission to %s (%s)%s", what, res.Missing[0], res.Missing[0].Why, more)
	}
	return nil
}
