package policybridge

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Cache keeps what Read reads in informer caches, kept up to date by
// watches: a bridge that runs for the whole migration reads memory each
// round, not every pod of the cluster from the API server.
type Cache struct {
	ns                           string
	configMaps, pods, namespaces cache.SharedIndexInformer
	identities, endpoints        cache.SharedIndexInformer
}

// NewCache prepares the informers; Start runs them.
func NewCache(kc kubernetes.Interface, dyn dynamic.Interface, ciliumNS string) *Cache {
	core := kc.CoreV1().RESTClient()
	typed := func(lw cache.ListerWatcher, obj runtime.Object) cache.SharedIndexInformer {
		inf := cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{})
		// Only what Reconcile reads is kept: no managed fields.
		_ = inf.SetTransform(func(o any) (any, error) {
			if m, ok := o.(metav1.Object); ok {
				m.SetManagedFields(nil)
			}
			return o, nil
		})
		return inf
	}
	crd := func(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
		ri := dyn.Resource(gvr)
		return typed(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return ri.List(ctx, o) },
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return ri.Watch(ctx, o)
			},
		}, &unstructured.Unstructured{})
	}
	return &Cache{
		ns: ciliumNS,
		configMaps: typed(cache.NewListWatchFromClient(core, "configmaps", ciliumNS,
			fields.OneTermEqualSelector("metadata.name", "cilium-config")), &corev1.ConfigMap{}),
		pods:       typed(cache.NewListWatchFromClient(core, "pods", metav1.NamespaceAll, fields.Everything()), &corev1.Pod{}),
		namespaces: typed(cache.NewListWatchFromClient(core, "namespaces", metav1.NamespaceAll, fields.Everything()), &corev1.Namespace{}),
		identities: crd(identitiesGVR),
		endpoints:  crd(endpointsGVR),
	}
}

func (c *Cache) informers() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{c.configMaps, c.pods, c.namespaces, c.identities, c.endpoints}
}

// Start runs the informers until ctx ends and waits for their first lists.
func (c *Cache) Start(ctx context.Context) error {
	var synced []cache.InformerSynced
	for _, inf := range c.informers() {
		go inf.RunWithContext(ctx)
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("the bridge's caches did not fill: %w", ctx.Err())
	}
	return nil
}

// Input is Reconcile's input as the caches hold it now.
func (c *Cache) Input() (Input, error) {
	var cm *corev1.ConfigMap
	for _, o := range c.configMaps.GetStore().List() {
		cm = o.(*corev1.ConfigMap)
	}
	if cm == nil {
		return Input{}, fmt.Errorf("no ConfigMap %s/cilium-config", c.ns)
	}
	var pods []corev1.Pod
	for _, o := range c.pods.GetStore().List() {
		pods = append(pods, *o.(*corev1.Pod))
	}
	var nss []corev1.Namespace
	for _, o := range c.namespaces.GetStore().List() {
		nss = append(nss, *o.(*corev1.Namespace))
	}
	objects := func(inf cache.SharedIndexInformer) []unstructured.Unstructured {
		var out []unstructured.Unstructured
		for _, o := range inf.GetStore().List() {
			out = append(out, *o.(*unstructured.Unstructured))
		}
		return out
	}
	return inputOf(cm, pods, nss, objects(c.identities), objects(c.endpoints))
}
