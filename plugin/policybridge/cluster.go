package policybridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

// The Cilium resources the bridge reads and writes.
var (
	endpointsGVR  = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumendpoints"}
	identitiesGVR = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumidentities"}
)

// keyAnnotation keeps, on each endpoint the bridge writes, what it wrote
// (Endpoint.Key), so that an unchanged endpoint is not written again.
const keyAnnotation = "cni-migrate.io/bridge-key"

// Read gathers Reconcile's input with one request of each: pods,
// namespaces, Cilium's endpoints and identities, and from cilium-config
// (in ciliumNS) Cilium's pool, cluster name and cluster ID. A bridge that
// keeps running reads them from a Cache instead.
func Read(ctx context.Context, kc kubernetes.Interface, dyn dynamic.Interface, ciliumNS string) (Input, error) {
	cm, err := kc.CoreV1().ConfigMaps(ciliumNS).Get(ctx, "cilium-config", metav1.GetOptions{})
	if err != nil {
		return Input{}, fmt.Errorf("reading ConfigMap %s/cilium-config: %w", ciliumNS, err)
	}
	pods, err := kc.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Input{}, fmt.Errorf("listing pods: %w", err)
	}
	nss, err := kc.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Input{}, fmt.Errorf("listing namespaces: %w", err)
	}
	ids, err := dyn.Resource(identitiesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Input{}, fmt.Errorf("listing CiliumIdentities: %w", err)
	}
	eps, err := dyn.Resource(endpointsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Input{}, fmt.Errorf("listing CiliumEndpoints: %w", err)
	}
	return inputOf(cm, pods.Items, nss.Items, ids.Items, eps.Items)
}

// inputOf makes Reconcile's input of the objects read.
func inputOf(cm *corev1.ConfigMap, pods []corev1.Pod, nss []corev1.Namespace, ids, eps []unstructured.Unstructured) (Input, error) {
	in := Input{Pods: pods, Namespaces: nss}
	var err error
	pool := strings.Fields(strings.ReplaceAll(cm.Data["cluster-pool-ipv4-cidr"]+" "+cm.Data["cluster-pool-ipv6-cidr"], ",", " "))
	if in.Pool, err = migrate.ParsePool(pool); err != nil {
		return in, err
	}
	if len(in.Pool) == 0 {
		return in, fmt.Errorf("cilium-config has no cluster-pool-ipv4-cidr: the bridge needs Cilium's cluster-pool IPAM to tell its pods from the old network's")
	}
	in.Cluster = cm.Data["cluster-name"]
	if in.Cluster == "" {
		in.Cluster = "default"
	}
	if s := cm.Data["cluster-id"]; s != "" {
		if in.ClusterID, err = strconv.ParseInt(s, 10, 64); err != nil {
			return in, fmt.Errorf("cilium-config: cluster-id %q is not a number", s)
		}
	}
	for _, it := range ids {
		id, err := strconv.ParseInt(it.GetName(), 10, 64)
		if err != nil {
			continue
		}
		labels, _, _ := unstructured.NestedStringMap(it.Object, "security-labels")
		in.Identities = append(in.Identities, Identity{ID: id, Labels: labels, Namespace: it.GetLabels()[labelNamespace]})
	}
	for _, it := range eps {
		ours := it.GetLabels()[ManagedByLabel] == ManagedBy
		e := Existing{Namespace: it.GetNamespace(), Name: it.GetName(), Ours: ours}
		if ours {
			e.Key = it.GetAnnotations()[keyAnnotation]
		}
		in.Endpoints = append(in.Endpoints, e)
	}
	return in, nil
}

// identityObject is the CiliumIdentity of an identity, as Cilium's agents
// write them.
func identityObject(id Identity) *unstructured.Unstructured {
	labels := map[string]any{}
	for k, v := range id.Labels {
		labels[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2",
		"kind":       "CiliumIdentity",
		"metadata": map[string]any{
			"name":   id.Name(),
			"labels": map[string]any{labelNamespace: id.Namespace, ManagedByLabel: ManagedBy},
		},
		"security-labels": labels,
	}}
}

// endpointObject is the CiliumEndpoint of a pod on the old network.
func endpointObject(e Endpoint) *unstructured.Unstructured {
	var addressing []any
	for _, a := range e.Addresses {
		k := "ipv4"
		if a.Is6() {
			k = "ipv6"
		}
		addressing = append(addressing, map[string]any{k: a.String()})
	}
	labels := make([]any, 0, len(e.Labels))
	for _, l := range e.Labels {
		labels = append(labels, l)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2",
		"kind":       "CiliumEndpoint",
		"metadata": map[string]any{
			"name":        e.Name,
			"namespace":   e.Namespace,
			"labels":      map[string]any{ManagedByLabel: ManagedBy},
			"annotations": map[string]any{keyAnnotation: e.Key()},
			"ownerReferences": []any{map[string]any{
				"apiVersion": "v1", "kind": "Pod", "name": e.Name, "uid": e.PodUID,
			}},
		},
		"status": map[string]any{
			"id":       int64(0),
			"identity": map[string]any{"id": e.Identity, "labels": labels},
			// No service-account: the CRD schema of Cilium 1.18 has none.
			"networking": map[string]any{"addressing": addressing, "node": e.Node},
			"state":      "ready",
		},
	}}
}

// FieldManager is the bridge's field manager for server-side apply.
const FieldManager = "cni-migrate-policy-bridge"

// Apply carries out a plan: identities first (an endpoint names one), then
// the endpoints, then the deletions. say is told each change. It stops at
// the first error.
func Apply(ctx context.Context, dyn dynamic.Interface, plan Plan, say func(string)) error {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	for _, id := range plan.CreateIdentities {
		if id.ID == 0 {
			return fmt.Errorf("no free identity left for the labels of a pod in %s", id.Namespace)
		}
		_, err := dyn.Resource(identitiesGVR).Create(ctx, identityObject(id), metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("CiliumIdentity %s was created meanwhile (by a Cilium agent?); the next round reads it and picks another", id.Name())
		}
		if err != nil {
			return fmt.Errorf("creating CiliumIdentity %s: %w", id.Name(), err)
		}
		say(fmt.Sprintf("ciliumidentity.cilium.io/%s created (%s)", id.Name(), strings.Join(labelList(id.Labels), " ")))
	}
	for _, e := range plan.Write {
		_, err := dyn.Resource(endpointsGVR).Namespace(e.Namespace).Apply(ctx, e.Name, endpointObject(e), opts)
		if err != nil {
			return fmt.Errorf("writing CiliumEndpoint %s/%s: %w", e.Namespace, e.Name, err)
		}
		say(fmt.Sprintf("ciliumendpoint.cilium.io/%s -n %s written: %v on %s, identity %d", e.Name, e.Namespace, e.Addresses, e.Node, e.Identity))
	}
	for _, e := range plan.Delete {
		err := dyn.Resource(endpointsGVR).Namespace(e.Namespace).Delete(ctx, e.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting CiliumEndpoint %s/%s: %w", e.Namespace, e.Name, err)
		}
		say(fmt.Sprintf("ciliumendpoint.cilium.io/%s -n %s deleted", e.Name, e.Namespace))
	}
	return nil
}

// Remove deletes every CiliumEndpoint the bridge wrote (finalize,
// rollback) and returns their names as kubectl writes them. The identities
// it created stay: Cilium's agents reuse an identity by its labels, so a
// pod that moved to Cilium may carry it now; Cilium's operator deletes
// those no endpoint uses (identity garbage collection).
func Remove(ctx context.Context, dyn dynamic.Interface, dryRun bool) ([]string, error) {
	var gone []string
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	sel := metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy}
	for _, r := range []struct {
		gvr  schema.GroupVersionResource
		kind string
	}{{endpointsGVR, "ciliumendpoint"}} {
		l, err := dyn.Resource(r.gvr).List(ctx, sel)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return gone, fmt.Errorf("listing %ss: %w", r.kind, err)
		}
		for _, it := range l.Items {
			err := dyn.Resource(r.gvr).Namespace(it.GetNamespace()).Delete(ctx, it.GetName(), opts)
			if err != nil && !apierrors.IsNotFound(err) {
				return gone, fmt.Errorf("deleting %s %s: %w", r.kind, it.GetName(), err)
			}
			n := r.kind + ".cilium.io/" + it.GetName()
			if it.GetNamespace() != "" {
				n += " -n " + it.GetNamespace()
			}
			gone = append(gone, n)
		}
	}
	return gone, nil
}
