// Package access asks the API server whether the current user may do what a
// migration needs, one SelfSubjectAccessReview per verb and resource.
package access

import (
	"context"
	"fmt"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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

// Needs lists the permissions of a dual-overlay migration. ciliumNS is where
// Cilium runs; cniNS where the old CNI runs ("" when unknown).
func Needs(ciliumNS, cniNS string) []Need {
	var out []Need
	add := func(group, resource, sub, ns string, optional bool, why string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, Need{Group: group, Resource: resource, Subresource: sub, Verb: v, Namespace: ns, Optional: optional, Why: why})
		}
	}
	add("", "nodes", "", "", false, "cordon, label and watch nodes", "get", "list", "watch", "patch")
	add("", "pods", "", "", false, "drain nodes, restart Cilium agents, run probe pods", "get", "list", "watch", "create", "delete")
	add("", "pods", "eviction", "", false, "drain nodes with PDB-aware eviction", "create")
	add("", "pods", "status", "", false, "mark the pods left on a node NotReady before it reboots, so Services stop sending to them", "patch")
	add("apps", "daemonsets", "", "", false, "find the CNI and Cilium DaemonSets, restart Cilium, follow them (status --watch)", "get", "list", "watch", "patch")
	add("cilium.io", "ciliumendpoints", "", "", false, "count the pods Cilium manages (status)", "list", "watch")
	add("", "configmaps", "", "", false, "read the CNI, kube-proxy and kubeadm configuration", "get")
	add("cilium.io", "ciliumnodeconfigs", "", ciliumNS, false, "apply, list and delete the CiliumNodeConfig", "get", "list", "watch", "create", "patch", "delete")
	add("", "configmaps", "", ciliumNS, false, "follow cilium-config (status --watch)", "list", "watch")
	add("batch", "jobs", "", ciliumNS, false, "run the probe Job that verifies a migrated node", "list", "watch", "create", "delete")
	add("", "configmaps", "", ciliumNS, false, "record the in-place rollout's progress (ConfigMap cni-migrate-in-place), which finalize deletes", "create", "update", "delete")
	add("policy", "poddisruptionbudgets", "", "", false, "find PDBs that block a drain", "list")
	add("networking.k8s.io", "networkpolicies", "", "", false, "count NetworkPolicies not enforced during the migration", "list")
	add("coordination.k8s.io", "leases", "", "kube-system", false, "keep two rollouts from running at once", "get", "create", "update")
	if cniNS != "" {
		add("apps", "daemonsets", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI", "delete")
		add("apps", "deployments", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's controllers (calico-kube-controllers, calico-typha)", "delete")
		add("policy", "poddisruptionbudgets", "", cniNS, true, "finalize --remove-old-cni deletes the PDBs of the old CNI's controllers", "delete")
		add("", "services", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's Service (calico-typha)", "delete")
		add("", "configmaps", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's configuration", "delete")
		add("", "serviceaccounts", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's ServiceAccount", "delete")
		add("rbac.authorization.k8s.io", "roles", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's RBAC (weave-net)", "delete")
		add("rbac.authorization.k8s.io", "rolebindings", "", cniNS, true, "finalize --remove-old-cni deletes the old CNI's RBAC (weave-net)", "delete")
		add("rbac.authorization.k8s.io", "rolebindings", "", "", true, "finalize --remove-old-cni keeps roles other bindings use", "list")
		add("rbac.authorization.k8s.io", "clusterrolebindings", "", "", true, "finalize --remove-old-cni finds the old CNI's bindings", "list")
		add("rbac.authorization.k8s.io", "clusterroles", "", "", true, "finalize --remove-old-cni deletes the old CNI's RBAC", "delete")
		add("rbac.authorization.k8s.io", "clusterrolebindings", "", "", true, "finalize --remove-old-cni deletes the old CNI's RBAC", "delete")
	}
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

// Check asks one SelfSubjectAccessReview per need.
func Check(ctx context.Context, c kubernetes.Interface, needs []Need) (Result, error) {
	res := Result{Missing: []Need{}}
	for _, n := range needs {
		r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Group: n.Group, Resource: n.Resource, Subresource: n.Subresource, Verb: n.Verb, Namespace: n.Namespace,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return res, fmt.Errorf("asking whether you may %s: %w", n, err)
		}
		res.Checked++
		if !r.Status.Allowed {
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
