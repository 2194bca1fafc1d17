package kube

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
)

// PodCacheSync is how long WatchedPods waits for its first list before it
// gives up on the cache and passes every request through.
const PodCacheSync = 20 * time.Second

// WatchedPods returns a clientset that answers Get of the pods in namespace
// (all namespaces if "") that match fieldSelector from one watch, and
// passes every other request to c; stop ends the watch.
//
// kubectl's drain helper polls each evicted pod with a GET every second
// until it is gone, so its requests grow with the time a pod takes to go,
// which grows with the cluster (make bench-rollout). Served from the watch,
// those polls cost nothing: a pod the watch holds is answered with the
// watch's copy, a pod the watch saw deleted with NotFound (the API server's
// own word, as a delete event or a relist without it), and any other pod is
// asked of the API server. A lagging watch can only make the helper wait
// longer, never stop early. The first Get of a pod, right after its
// eviction, waits up to firstGetWait for the watch to see it go, so that a
// pod that goes at once is seen gone at once, as without the watch. If the
// first list does not finish within PodCacheSync (or fails), the clientset
// passes everything through.
func WatchedPods(ctx context.Context, c kubernetes.Interface, namespace, fieldSelector string) (cs kubernetes.Interface, stop func()) {
	pods := c.CoreV1().Pods(namespace)
	syncCtx, syncCancel := context.WithTimeout(ctx, PodCacheSync)
	defer syncCancel()
	var inf cache.SharedIndexInformer
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			l, err := pods.List(ctx, o)
			if err != nil && !inf.HasSynced() {
				syncCancel() // a first list that fails: pass everything through
			}
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return pods.Watch(ctx, o)
		},
	}
	inf = cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	// A broken watch is retried by the informer; the user hears of an
	// unreachable API server from Outage, not from client-go's log.
	_ = inf.SetWatchErrorHandler(func(*cache.Reflector, error) {})
	core := &podCore{CoreV1Interface: c.CoreV1(), store: inf.GetStore(), asked: map[string]bool{}, deleted: map[string]bool{}}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { core.seen(obj, false) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				core.gone(t.Key)
				return
			}
			core.seen(obj, true)
		},
	}); err != nil {
		return c, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.RunWithContext(ctx)
	}()
	stop = func() { cancel(); <-done }
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		stop()
		return c, func() {}
	}
	return &podClientset{Interface: c, core: core}, stop
}

// firstGetWait bounds how long the first Get of a pod waits for the watch
// to see the pod go.
const firstGetWait = 250 * time.Millisecond

type podClientset struct {
	kubernetes.Interface
	core typedcorev1.CoreV1Interface
}

func (c *podClientset) CoreV1() typedcorev1.CoreV1Interface { return c.core }

type podCore struct {
	typedcorev1.CoreV1Interface
	store   cache.Store
	mu      sync.Mutex
	asked   map[string]bool // pods asked for before
	deleted map[string]bool // pods the watch saw deleted (and not back)
}

func (c *podCore) seen(obj any, deleted bool) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.mu.Lock()
		c.deleted[key] = deleted
		c.mu.Unlock()
	}
}

func (c *podCore) gone(key string) {
	c.mu.Lock()
	c.deleted[key] = true
	c.mu.Unlock()
}

func (c *podCore) Pods(namespace string) typedcorev1.PodInterface {
	return &cachedPods{PodInterface: c.CoreV1Interface.Pods(namespace), namespace: namespace, core: c}
}

// firstGet reports whether key is asked for the first time.
func (c *podCore) firstGet(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asked[key] {
		return false
	}
	c.asked[key] = true
	return true
}

// lookup answers key from the watch: the pod it holds, or whether the
// watch saw it deleted.
func (c *podCore) lookup(key string) (pod *corev1.Pod, deleted bool) {
	if obj, ok, err := c.store.GetByKey(key); err == nil && ok {
		if p, ok := obj.(*corev1.Pod); ok {
			return p, false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return nil, c.deleted[key]
}

type cachedPods struct {
	typedcorev1.PodInterface
	namespace string
	core      *podCore
}

// Get answers from the watch (see WatchedPods); a pod the watch knows
// nothing of, and a Get for a given resourceVersion, go to the API server.
func (p *cachedPods) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error) {
	if opts.ResourceVersion != "" || p.namespace == "" {
		return p.PodInterface.Get(ctx, name, opts)
	}
	key := p.namespace + "/" + name
	pod, deleted := p.core.lookup(key)
	if pod != nil && p.core.firstGet(key) {
		deadline := time.Now().Add(firstGetWait)
		for pod != nil && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			pod, deleted = p.core.lookup(key)
		}
	}
	switch {
	case pod != nil:
		return pod.DeepCopy(), nil
	case deleted:
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return p.PodInterface.Get(ctx, name, opts)
}
