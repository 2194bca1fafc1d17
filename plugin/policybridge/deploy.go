package policybridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
)

// Names of what Deploy writes, all in Cilium's namespace but the cluster
// role and its binding.
const (
	BridgeName    = "cni-migrate-policy-bridge"
	NodeRulesName = "cni-migrate-node-rules"
	// ComponentLabel tells the bridge's objects from the rest of the
	// plugin's (app.kubernetes.io/component).
	ComponentLabel = "app.kubernetes.io/component"
	Component      = "policy-bridge"
)

// BinaryPath is the plugin's path in its image (hack/image builds the
// published one with it there, and the lab's image has it there too).
const BinaryPath = "/usr/local/bin/kubectl-cni_migrate"

// Deployment is the bridge in the cluster, so that it keeps working when
// the plugin is not running: a Deployment running `kubectl-cni_migrate
// policy-bridge` in the plugin's image, and a DaemonSet keeping the node
// rules on every node, in the Cilium agent's image.
type Deployment struct {
	// Namespace is Cilium's.
	Namespace string
	// Image is the plugin's image; AgentImage the Cilium agent's.
	Image, AgentImage string
	// Interval is the bridge's time between rounds, in seconds.
	Interval int
	Rules    NodeRules
}

func labels(extra ...string) map[string]any {
	l := map[string]any{ManagedByLabel: ManagedBy, ComponentLabel: Component}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func obj(apiVersion, kind, ns, name string, rest map[string]any) *unstructured.Unstructured {
	meta := map[string]any{"name": name, "labels": labels()}
	if ns != "" {
		meta["namespace"] = ns
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	for k, v := range rest {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

func rule(groups []any, resources []any, verbs ...string) map[string]any {
	vs := make([]any, len(verbs))
	for i, v := range verbs {
		vs[i] = v
	}
	return map[string]any{"apiGroups": groups, "resources": resources, "verbs": vs}
}

// tolerateAll lets a pod run on every node, tainted or not, like Cilium's
// agents.
var tolerateAll = []any{map[string]any{"operator": "Exists"}}

// Objects are what Deploy applies, in order.
func (d Deployment) Objects() []*unstructured.Unstructured {
	interval := d.Interval
	if interval <= 0 {
		interval = 2
	}
	sa := obj("v1", "ServiceAccount", d.Namespace, BridgeName, nil)
	role := obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", BridgeName, map[string]any{
		"rules": []any{
			rule([]any{""}, []any{"pods", "namespaces"}, "list", "watch"),
			rule([]any{""}, []any{"configmaps"}, "get", "list", "watch"),
			rule([]any{"cilium.io"}, []any{"ciliumendpoints"}, "list", "watch", "create", "patch", "delete"),
			rule([]any{"cilium.io"}, []any{"ciliumidentities"}, "list", "watch", "create"),
			rule([]any{"authorization.k8s.io"}, []any{"selfsubjectaccessreviews"}, "create"),
		},
	})
	binding := obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", BridgeName, map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": BridgeName},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": BridgeName, "namespace": d.Namespace}},
	})
	selector := map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": BridgeName}}
	bridge := obj("apps/v1", "Deployment", d.Namespace, BridgeName, map[string]any{
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": selector,
			// Never two bridges at once.
			"strategy": map[string]any{"type": "Recreate"},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels("app.kubernetes.io/name", BridgeName)},
				"spec": map[string]any{
					"serviceAccountName": BridgeName,
					// Host network: the bridge must run before and
					// whatever the state of either CNI on its node.
					"hostNetwork":       true,
					"priorityClassName": "system-cluster-critical",
					"tolerations":       tolerateAll,
					"containers": []any{map[string]any{
						"name":      "bridge",
						"image":     d.Image,
						"command":   []any{BinaryPath, "policy-bridge", "-n", d.Namespace, "--interval", strconv.Itoa(interval) + "s"},
						"env":       []any{map[string]any{"name": "NO_COLOR", "value": "1"}},
						"resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}},
						"securityContext": map[string]any{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
							"runAsNonRoot": true, "runAsUser": int64(65532), "capabilities": map[string]any{"drop": []any{"ALL"}}},
					}},
				},
			},
		},
	})
	script := obj("v1", "ConfigMap", d.Namespace, NodeRulesName, map[string]any{
		"data": map[string]any{"rules.sh": d.Rules.Script()},
	})
	nodeSelector := map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": NodeRulesName}}
	rules := obj("apps/v1", "DaemonSet", d.Namespace, NodeRulesName, map[string]any{
		"spec": map[string]any{
			"selector": nodeSelector,
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels("app.kubernetes.io/name", NodeRulesName)},
				"spec": map[string]any{
					"hostNetwork":                   true,
					"priorityClassName":             "system-node-critical",
					"tolerations":                   tolerateAll,
					"terminationGracePeriodSeconds": int64(15),
					// On every node: a node being migrated keeps its old
					// pods (DaemonSets') until it reboots, and they keep
					// needing the rules after the node is labelled. On a
					// migrated node the rules match nothing (no old pod
					// there) but felix's jump, which felix keeps first on
					// its own; finalize removes them before Calico.
					"containers": []any{map[string]any{
						"name":            "rules",
						"image":           d.AgentImage,
						"command":         []any{"bash", "/rules/rules.sh"},
						"resources":       map[string]any{"requests": map[string]any{"cpu": "5m", "memory": "16Mi"}},
						"securityContext": map[string]any{"capabilities": map[string]any{"add": []any{"NET_ADMIN", "NET_RAW"}}},
						"volumeMounts": []any{
							map[string]any{"name": "rules", "mountPath": "/rules", "readOnly": true},
							map[string]any{"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
						},
					}},
					"volumes": []any{
						map[string]any{"name": "rules", "configMap": map[string]any{"name": NodeRulesName}},
						map[string]any{"name": "xtables-lock", "hostPath": map[string]any{"path": "/run/xtables.lock", "type": "FileOrCreate"}},
					},
				},
			},
		},
	})
	return []*unstructured.Unstructured{sa, role, binding, bridge, script, rules}
}

// GVR is the resource of one of Objects' kinds.
func GVR(u *unstructured.Unstructured) schema.GroupVersionResource {
	gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
	resource := map[string]string{
		"ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
		"Deployment": "deployments", "ConfigMap": "configmaps", "DaemonSet": "daemonsets",
	}[u.GetKind()]
	return gv.WithResource(resource)
}

// Deployed says whether the bridge's Deployment or its node rules'
// DaemonSet is in the cluster (Cilium's namespace ns).
func Deployed(ctx context.Context, dyn dynamic.Interface, ns string) (bool, error) {
	for _, u := range (Deployment{Namespace: ns}).Objects() {
		if u.GetKind() != "Deployment" && u.GetKind() != "DaemonSet" {
			continue
		}
		_, err := dyn.Resource(GVR(u)).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
		if err == nil {
			return true, nil
		}
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("reading %s %s/%s: %w", u.GetKind(), ns, u.GetName(), err)
		}
	}
	return false, nil
}

// Undeploy deletes what Deploy applied, the DaemonSet first (its pods
// remove their rules as they stop), then the bridge's CiliumEndpoints
// (Remove), and returns what it deleted as kubectl names it.
func Undeploy(ctx context.Context, dyn dynamic.Interface, ns string, dryRun bool) ([]string, error) {
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var gone []string
	objs := (Deployment{Namespace: ns}).Objects()
	for i := len(objs) - 1; i >= 0; i-- {
		u := objs[i]
		// Namespace("") is the cluster-scoped path.
		err := dyn.Resource(GVR(u)).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return gone, fmt.Errorf("deleting %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		gone = append(gone, strings.ToLower(u.GetKind())+"/"+u.GetName())
	}
	eps, err := Remove(ctx, dyn, dryRun)
	return append(gone, eps...), err
}

// UndeployNeeds are the permissions of Undeploy in Cilium's namespace ns:
// deleting each of Objects, and listing and deleting the bridge's
// CiliumEndpoints. why says what for.
func UndeployNeeds(ns, why string) []access.Need {
	var out []access.Need
	for _, u := range (Deployment{Namespace: ns}).Objects() {
		gvr := GVR(u)
		out = append(out, access.Need{Group: gvr.Group, Resource: gvr.Resource, Verb: "delete", Namespace: u.GetNamespace(), Why: why})
	}
	for _, v := range []string{"list", "delete"} {
		out = append(out, access.Need{Group: endpointsGVR.Group, Resource: endpointsGVR.Resource, Verb: v, Why: why + ": its CiliumEndpoints"})
	}
	return out
}
