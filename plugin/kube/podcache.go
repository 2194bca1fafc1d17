package kube

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
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
// a pod still there costs nothing; a pod the watch no longer holds is asked
// of the API server, so a gone pod is always confirmed by the API server
// and a lagging watch can only make the helper wait longer, never stop
// early. The first Get of each pod goes to the API server too: it comes
// right after the eviction, before the watch can have seen the pod go, and
// a pod that went at once is then seen gone at once, as without the watch. If the first list does not finish within PodCacheSync (or fails),
// the clientset passes everything through.
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
	return &podClientset{Interface: c, core: &podCore{CoreV1Interface: c.CoreV1(), store: inf.GetStore(), asked: map[string]bool{}}}, stop
}

type podClientset struct {
	kubernetes.Interface
	core typedcorev1.CoreV1Interface
}

func (c *podClientset) CoreV1() typedcorev1.CoreV1Interface { return c.core }

type podCore struct {
	typedcorev1.CoreV1Interface
	store cache.Store
	mu    sync.Mutex
	asked map[string]bool // pods whose first Get went to the API server
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

type cachedPods struct {
	typedcorev1.PodInterface
	namespace string
	core      *podCore
}

// Get answers from the watch while it holds the pod, else asks the API
// server; so do the first Get of each pod and a Get for a given
// resourceVersion.
func (p *cachedPods) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error) {
	key := p.namespace + "/" + name
	if opts.ResourceVersion == "" && p.namespace != "" && !p.core.firstGet(key) {
		if obj, ok, err := p.core.store.GetByKey(key); err == nil && ok {
			if pod, ok := obj.(*corev1.Pod); ok {
				return pod.DeepCopy(), nil
			}
		}
	}
	return p.PodInterface.Get(ctx, name, opts)
}
