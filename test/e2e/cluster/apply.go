package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the server-side apply field manager of Apply.
const FieldManager = "cni-migrate-e2e"

// ParseYAML splits a multi-document YAML (or JSON) stream into objects,
// skipping empty documents and expanding v1 Lists.
func ParseYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, err
			}
			for i := range list.Items {
				out = append(out, &list.Items[i])
			}
			continue
		}
		out = append(out, u)
	}
}

// ApplyFile applies the objects of a YAML file; see Apply.
func (c *Cluster) ApplyFile(ctx context.Context, path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return c.Apply(ctx, data)
}

// Apply server-side applies (with force) every object of a YAML stream, in
// order, like `kubectl apply --server-side --force-conflicts`. Objects
// without a namespace that need one go to "default". CustomResourceDefinitions
// are waited for until Established before the next object that is not a CRD
// and before Apply returns.
func (c *Cluster) Apply(ctx context.Context, data []byte) ([]*unstructured.Unstructured, error) {
	objs, err := ParseYAML(data)
	if err != nil {
		return nil, err
	}
	return c.ApplyObjects(ctx, objs)
}

// ApplyObjects server-side applies objects; see Apply.
func (c *Cluster) ApplyObjects(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	// CRD schemas draw harmless warnings (unknown formats); keep them out
	// of test output.
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.WarningHandler = rest.NoWarnings{}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	var out []*unstructured.Unstructured
	var pendingCRDs []string
	waitCRDs := func() error {
		for _, name := range pendingCRDs {
			if err := c.WaitCRDEstablished(ctx, name, time.Minute); err != nil {
				return err
			}
		}
		pendingCRDs = pendingCRDs[:0]
		return nil
	}
	for _, obj := range objs {
		c.overrideImages(obj)
		gvk := obj.GroupVersionKind()
		isCRD := gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition"
		if !isCRD {
			if err := waitCRDs(); err != nil {
				return out, err
			}
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			// A CRD applied just before: refresh discovery once.
			cached.Invalidate()
			mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", gvk, obj.GetName(), err)
		}
		body, err := runtime.Encode(unstructured.UnstructuredJSONScheme, obj)
		if err != nil {
			return out, err
		}
		ri := dyn.Resource(mapping.Resource)
		opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTo(true)}
		var res *unstructured.Unstructured
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			res, err = ri.Namespace(ns).Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
		} else {
			res, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
		}
		if err != nil {
			return out, fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		out = append(out, res)
		if isCRD {
			pendingCRDs = append(pendingCRDs, obj.GetName())
		}
	}
	return out, waitCRDs()
}

// WaitCRDEstablished waits for a CustomResourceDefinition's Established condition.
func (c *Cluster) WaitCRDEstablished(ctx context.Context, name string, timeout time.Duration) error {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	return c.poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

func ptrTo[T any](v T) *T { return &v }

// SetImageOverrides makes Apply replace container images: every image
// equal to a key of m becomes its value (for a cluster whose nodes pull
// from no registry). Nothing else in the objects changes.
func (c *Cluster) SetImageOverrides(m map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.images = m
}

func (c *Cluster) overrideImages(obj *unstructured.Unstructured) {
	c.mu.Lock()
	m := c.images
	c.mu.Unlock()
	if len(m) == 0 {
		return
	}
	for _, podSpec := range [][]string{{"spec"}, {"spec", "template", "spec"}, {"spec", "jobTemplate", "spec", "template", "spec"}} {
		for _, field := range []string{"containers", "initContainers"} {
			path := append(append([]string{}, podSpec...), field)
			list, found, err := unstructured.NestedSlice(obj.Object, path...)
			if !found || err != nil {
				continue
			}
			changed := false
			for i, item := range list {
				ctr, ok := item.(map[string]any)
				if !ok {
					continue
				}
				if img, ok := ctr["image"].(string); ok {
					if repl, ok := m[img]; ok {
						ctr["image"] = repl
						list[i] = ctr
						changed = true
					}
				}
			}
			if changed {
				_ = unstructured.SetNestedSlice(obj.Object, list, path...)
			}
		}
	}
}
