package detect

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// CalicoInstallationGVR is the Tigera operator's Installation.
func CalicoInstallationGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}
}

// CalicoGVR is a crd.projectcalico.org/v1 resource ("ippools",
// "felixconfigurations", "networkpolicies", "globalnetworkpolicies").
func CalicoGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: resource}
}

// FetchCalico reads the Calico objects detection uses into s: the
// operator's Installations always (one list, answered 404 when the operator
// was never installed), and, when s shows Calico or Canal (a DaemonSet or
// an Installation), its IPPools, the default FelixConfiguration and the
// number of Calico policies. Missing CRDs and forbidden reads leave the
// fields empty.
func FetchCalico(ctx context.Context, dyn dynamic.Interface, s *Snapshot) error {
	inst, err := listAll(ctx, dyn.Resource(CalicoInstallationGVR()))
	if err != nil {
		return err
	}
	s.CalicoInstallations = inst
	calico := len(inst) > 0
	for i := range s.DaemonSets {
		if calicoResources(&s.DaemonSets[i]) {
			calico = true
		}
	}
	if !calico {
		return nil
	}
	if s.CalicoIPPools, err = listAll(ctx, dyn.Resource(CalicoGVR("ippools"))); err != nil {
		return err
	}
	fc, err := dyn.Resource(CalicoGVR("felixconfigurations")).Get(ctx, "default", metav1.GetOptions{})
	switch {
	case err == nil:
		s.CalicoFelixConfig = fc
	case !ignorable(err):
		return err
	}
	for _, r := range []string{"networkpolicies", "globalnetworkpolicies"} {
		items, err := listAll(ctx, dyn.Resource(CalicoGVR(r)))
		if err != nil {
			return err
		}
		for _, it := range items {
			s.CalicoPolicies = append(s.CalicoPolicies, NamespacedName{it.GetNamespace(), it.GetName()})
		}
	}
	return nil
}

// listAll lists every object of a resource, 500 a page; a resource that is
// not served (or may not be listed) gives nothing.
func listAll(ctx context.Context, ri dynamic.NamespaceableResourceInterface) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := ri.List(ctx, opts)
		if err != nil {
			if ignorable(err) {
				return out, nil
			}
			return nil, err
		}
		out = append(out, l.Items...)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}

// referencedConfigMaps names the ConfigMaps a DaemonSet's pods use: mounted
// as volumes, or read by environment variables of any container.
func referencedConfigMaps(ds *appsv1.DaemonSet) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	spec := &ds.Spec.Template.Spec
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			add(v.ConfigMap.Name)
		}
	}
	for _, ctrs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range ctrs {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					add(e.ValueFrom.ConfigMapKeyRef.Name)
				}
			}
		}
	}
	return out
}
