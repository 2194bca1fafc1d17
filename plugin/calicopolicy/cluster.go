package calicopolicy

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
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

// Translated lists the Cilium policies the translation wrote (its label),
// named as kubectl writes them ("ciliumnetworkpolicy.cilium.io/NAME -n
// NAMESPACE"). Without Cilium's CRDs there are none.
func Translated(ctx context.Context, dyn dynamic.Interface) ([]string, error) {
	var names []string
	err := eachTranslated(ctx, dyn, func(_ dynamic.NamespaceableResourceInterface, _ *unstructured.Unstructured, n string) error {
		names = append(names, n)
		return nil
	})
	return names, err
}

// Delete deletes every Cilium policy the translation wrote (its label) and
// returns their names as Translated does.
func Delete(ctx context.Context, dyn dynamic.Interface, dryRun bool) ([]string, error) {
	var gone []string
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err := eachTranslated(ctx, dyn, func(ri dynamic.NamespaceableResourceInterface, it *unstructured.Unstructured, n string) error {
		err := ri.Namespace(it.GetNamespace()).Delete(ctx, it.GetName(), opts)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s: %w", it.GetKind(), name(it.GetNamespace(), it.GetName()), err)
		}
		gone = append(gone, n)
		return nil
	})
	return gone, err
}

func eachTranslated(ctx context.Context, dyn dynamic.Interface, fn func(dynamic.NamespaceableResourceInterface, *unstructured.Unstructured, string) error) error {
	for _, kind := range []string{"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"} {
		ri := dyn.Resource(CiliumGVR(kind))
		l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: TranslatedLabel + "=calico"})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", kind, err)
		}
		for i := range l.Items {
			it := &l.Items[i]
			n := strings.ToLower(kind) + ".cilium.io/" + it.GetName()
			if it.GetNamespace() != "" {
				n += " -n " + it.GetNamespace()
			}
			if err := fn(ri, it, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func name(ns, n string) string {
	if ns == "" {
		return n
	}
	return ns + "/" + n
}

// Served says whether the cluster serves Calico's CRDs
// (crd.projectcalico.org/v1): without them there is no Calico policy.
func Served(disc discovery.DiscoveryInterface) (bool, error) {
	_, err := disc.ServerResourcesForGroupVersion("crd.projectcalico.org/v1")
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, err
}

// Coverage says how much of Calico's policies the cluster's Cilium
// policies carry: what finalize checks before Cilium enforces policies
// and Calico stops.
type Coverage struct {
	// Policies is the number of Calico policies.
	Policies int
	// Missing names the Cilium policies of today's translation that are
	// not in the cluster, or differ from it (the Calico policy changed
	// since the translation was applied), each with its Calico source.
	Missing []string
	// Inexact names the Calico policies whose translation has notes
	// (something not translated, or translated with another meaning).
	Inexact []string
}

// Check translates the cluster's Calico policies and compares the result
// with the Cilium policies in the cluster. Without Calico's CRDs it finds
// nothing.
func Check(ctx context.Context, dyn dynamic.Interface) (Coverage, error) {
	var c Coverage
	policies, sets, err := Read(ctx, dyn)
	if err != nil {
		return c, err
	}
	c.Policies = len(policies)
	if len(policies) == 0 {
		return c, nil
	}
	// The cluster's Cilium policies, one list of each kind, by name.
	specs := map[string]any{}
	for _, kind := range []string{"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"} {
		items, err := list(ctx, dyn.Resource(CiliumGVR(kind)))
		if err != nil {
			return c, fmt.Errorf("listing %s: %w", kind, err)
		}
		for _, it := range items {
			specs[kind+" "+name(it.GetNamespace(), it.GetName())] = it.Object["spec"]
		}
	}
	for _, p := range policies {
		r := Translate(p, sets)
		if len(r.Notes) > 0 {
			c.Inexact = append(c.Inexact, r.Source)
		}
		for _, want := range r.Policies {
			state, err := applied(want, specs)
			if err != nil {
				return c, err
			}
			if state != "" {
				c.Missing = append(c.Missing, fmt.Sprintf("%s.cilium.io/%s %s (from %s)",
					strings.ToLower(want.Kind), name(want.Metadata.Namespace, want.Metadata.Name), state, r.Source))
			}
		}
	}
	return c, nil
}

// applied says "" when specs (the cluster's Cilium policies, by kind and
// name) hold the policy as translated, "missing" when it is not there and
// "out of date" when its spec differs.
func applied(want CiliumPolicy, specs map[string]any) (string, error) {
	got, ok := specs[want.Kind+" "+name(want.Metadata.Namespace, want.Metadata.Name)]
	if !ok {
		return "missing", nil
	}
	u, err := want.Unstructured()
	if err != nil {
		return "", err
	}
	if !equality.Semantic.DeepEqual(u.Object["spec"], got) {
		return "out of date", nil
	}
	return "", nil
}
