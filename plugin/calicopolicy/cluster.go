package calicopolicy

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

func calicoGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: resource}
}

// CiliumGVR is the resource of a Cilium policy kind.
func CiliumGVR(kind string) schema.GroupVersionResource {
	r := "ciliumnetworkpolicies"
	if kind == "CiliumClusterwideNetworkPolicy" {
		r = "ciliumclusterwidenetworkpolicies"
	}
	return schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: r}
}

// Read lists the cluster's Calico policies and network sets, as
// crd.projectcalico.org/v1 stores them (also when a Calico API server
// serves projectcalico.org/v3). Without Calico's CRDs there are none; a
// forbidden list is an error.
func Read(ctx context.Context, dyn dynamic.Interface) ([]Policy, []NetworkSet, error) {
	var policies []Policy
	var sets []NetworkSet
	for _, r := range []struct{ resource, kind string }{
		{"networkpolicies", KindNetworkPolicy}, {"globalnetworkpolicies", KindGlobalNetworkPolicy},
		{"networksets", ""}, {"globalnetworksets", ""},
	} {
		items, err := list(ctx, dyn.Resource(calicoGVR(r.resource)))
		if err != nil {
			return nil, nil, fmt.Errorf("listing crd.projectcalico.org/v1 %s: %w", r.resource, err)
		}
		for _, it := range items {
			spec, _, _ := unstructured.NestedMap(it.Object, "spec")
			if r.kind != "" {
				raw, err := json.Marshal(spec)
				if err != nil {
					return nil, nil, err
				}
				policies = append(policies, Policy{Kind: r.kind, Namespace: it.GetNamespace(), Name: it.GetName(), Spec: raw})
				continue
			}
			nets, _, _ := unstructured.NestedStringSlice(it.Object, "spec", "nets")
			sets = append(sets, NetworkSet{Namespace: it.GetNamespace(), Name: it.GetName(), Labels: it.GetLabels(), Nets: nets})
		}
	}
	sort.Slice(policies, func(i, j int) bool {
		a, b := policies[i], policies[j]
		if a.Kind != b.Kind {
			return a.Kind > b.Kind // namespaced first
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return policies, sets, nil
}

func list(ctx context.Context, ri dynamic.NamespaceableResourceInterface) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := ri.List(ctx, opts)
		if apierrors.IsNotFound(err) {
			return out, nil // Calico's CRDs are not installed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}

// Unstructured is the policy as an object to apply.
func (p CiliumPolicy) Unstructured() (*unstructured.Unstructured, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return u, nil
}

// Apply server-side applies a translated policy.
func Apply(ctx context.Context, dyn dynamic.Interface, p CiliumPolicy, dryRun bool) (*unstructured.Unstructured, error) {
	u, err := p.Unstructured()
	if err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: nodeconfig.FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := dyn.Resource(CiliumGVR(p.Kind)).Namespace(p.Metadata.Namespace).Apply(ctx, p.Metadata.Name, u, opts)
	if err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", p.Kind, name(p.Metadata.Namespace, p.Metadata.Name), err)
	}
	return out, nil
}

// Delete deletes every Cilium policy the translation wrote (its label) and
// returns their names as kubectl writes them
// ("ciliumnetworkpolicy.cilium.io/NAME -n NAMESPACE"). Without Cilium's
// CRDs there are none.
func Delete(ctx context.Context, dyn dynamic.Interface, dryRun bool) ([]string, error) {
	var gone []string
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, kind := range []string{"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"} {
		ri := dyn.Resource(CiliumGVR(kind))
		l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: TranslatedLabel + "=calico"})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return gone, fmt.Errorf("listing %s: %w", kind, err)
		}
		for _, it := range l.Items {
			err := ri.Namespace(it.GetNamespace()).Delete(ctx, it.GetName(), opts)
			if err != nil && !apierrors.IsNotFound(err) {
				return gone, fmt.Errorf("deleting %s %s: %w", kind, name(it.GetNamespace(), it.GetName()), err)
			}
			g := strings.ToLower(kind) + ".cilium.io/" + it.GetName()
			if it.GetNamespace() != "" {
				g += " -n " + it.GetNamespace()
			}
			gone = append(gone, g)
		}
	}
	return gone, nil
}

func name(ns, n string) string {
	if ns == "" {
		return n
	}
	return ns + "/" + n
}
