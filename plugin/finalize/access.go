package finalize

import (
	"os"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
)

// Work is what one finalize run is going to change, as found before its
// first change.
type Work struct {
	// Lock: the run takes the migration lock (a Lease in kube-system).
	Lock bool
	// Helm: the run starts the helm upgrade itself (--yes).
	Helm bool
	// Restart: the Cilium agents are restarted (DaemonSet patch and watch).
	Restart bool
	// DeleteNodeConfig and DeleteProgress: the CiliumNodeConfig and the
	// in-place rollout's progress ConfigMap are deleted.
	DeleteNodeConfig, DeleteProgress bool
	// Remove are the old CNI's objects --remove-old-cni deletes.
	Remove []Object
	// CleanNodes: node labels and annotations are removed.
	CleanNodes bool
	// Sweep: a Job on every node removes what the old CNI left there.
	Sweep bool
	// Bridge: the policy bridge is deployed, and is removed.
	Bridge bool
}

// resources maps the kinds of Removal objects to their API group and
// resource.
var resources = map[string][2]string{
	"DaemonSet":           {"apps", "daemonsets"},
	"Deployment":          {"apps", "deployments"},
	"PodDisruptionBudget": {"policy", "poddisruptionbudgets"},
	"Service":             {"", "services"},
	"ConfigMap":           {"", "configmaps"},
	"ServiceAccount":      {"", "serviceaccounts"},
	"RoleBinding":         {"rbac.authorization.k8s.io", "rolebindings"},
	"Role":                {"rbac.authorization.k8s.io", "roles"},
	"ClusterRoleBinding":  {"rbac.authorization.k8s.io", "clusterrolebindings"},
	"ClusterRole":         {"rbac.authorization.k8s.io", "clusterroles"},
	"Namespace":           {"", "namespaces"},
}

// needSet collects needs once each.
type needSet struct {
	out  []access.Need
	seen map[string]bool
}

func (s *needSet) add(group, resource, ns, why string, verbs ...string) {
	for _, v := range verbs {
		n := access.Need{Group: group, Resource: resource, Verb: v, Namespace: ns, Why: why}
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		if !s.seen[n.String()] {
			s.seen[n.String()] = true
			s.out = append(s.out, n)
		}
	}
}

// HelmNeeds lists what the helm upgrade needs first when the run starts
// it: keep Cilium's release in Secrets of ns (helm's default storage
// driver; nothing for another HELM_DRIVER). The chart's objects are helm's
// to check.
func (w Work) HelmNeeds(ns string) []access.Need {
	var s needSet
	if d := strings.ToLower(os.Getenv("HELM_DRIVER")); w.Helm && (d == "" || d == "secret" || d == "secrets") {
		s.add("", "secrets", ns, "helm upgrade keeps Cilium's release in Secrets", "list", "get", "create", "update")
	}
	return s.out
}

// Needs lists the permissions of the plugin's own changes in w, in
// Cilium's namespace ns; lockNS is the Lease's namespace.
func (w Work) Needs(ns, lockNS string) []access.Need {
	var s needSet
	add := s.add
	if w.Lock {
		add("coordination.k8s.io", "leases", lockNS, "hold the migration lock, so that no node, rollout or rollback runs meanwhile", "get", "watch", "create", "update")
	}
	if w.Restart {
		add("apps", "daemonsets", ns, "restart the Cilium agents and wait for them", "patch", "watch")
	}
	if w.DeleteNodeConfig {
		add("cilium.io", "ciliumnodeconfigs", ns, "delete the CiliumNodeConfig", "delete")
	}
	if w.DeleteProgress {
		add("", "configmaps", ns, "delete the in-place rollout's progress ConfigMap", "delete")
	}
	for _, o := range w.Remove {
		r, ok := resources[o.Kind]
		if !ok {
			continue // Delete refuses it with its own error
		}
		add(r[0], r[1], o.Namespace, "--remove-old-cni deletes the old CNI's objects", "delete")
	}
	if w.CleanNodes {
		add("", "nodes", "", "remove the migration label and annotations from the nodes", "patch")
	}
	if w.Bridge {
		for _, n := range policybridge.UndeployNeeds(ns, "remove the policy bridge (policy-bridge --undeploy)") {
			add(n.Group, n.Resource, n.Namespace, n.Why, n.Verb)
		}
	}
	if w.Sweep {
		why := "--remove-old-cni removes what the old CNI left on each node with a Job (--keep-node-leftovers skips it)"
		add("apps", "daemonsets", ns, why+": the Cilium agent's image", "get")
		add("batch", "jobs", ns, why, "get", "create", "delete")
		add("", "pods", "", why+": the old CNI's pods gone, the Jobs' pods", "list")
	}
	return s.out
}
