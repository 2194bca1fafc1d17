package status

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Throttling of Watch: a report at most every minInterval; the first
// change after a quiet period waits settle so that a burst (a drain, an
// agent restart) gives one report rather than many.
const (
	minInterval = time.Second
	settle      = 200 * time.Millisecond
	// watchTimeout asks the server to end each watch; it is then resumed
	// from the last resourceVersion seen.
	watchTimeout = 5 * time.Minute
	maxBackoff   = 30 * time.Second
)

// Watch emits the report, then a new one whenever nodes, pods,
// CiliumEndpoints or Cilium's and the old CNI's DaemonSets change. It lists
// once (as Collect does) and then follows WATCHes from the lists'
// resourceVersions; it lists again only when a watch expires or the
// configuration the pod networks come from changes (the ConfigMaps, the
// CiliumNodeConfigs, a CNI DaemonSet appearing or going). It returns nil
// when ctx ends, or the first error of the API or of emit.
func Watch(ctx context.Context, cl Clients, opts Options, emit func(*Report) error) error {
	for {
		err := watchSession(ctx, cl, opts, emit)
		switch {
		case ctx.Err() != nil:
			return nil
		case isRelist(err):
			continue
		default:
			return err
		}
	}
}

// live is the state Watch keeps: a slim record per node and pod, the
// names of the CiliumEndpoints, the DaemonSets.
type live struct {
	mu       sync.Mutex
	cfg      *config
	identity string
	nodes    map[string]corev1.Node
	pods     map[string]Pod
	// endpoints says of each CiliumEndpoint whether it is the policy
	// bridge's.
	endpoints   map[string]bool
	daemonSets  map[string]appsv1.DaemonSet
	nodeConfigs []NodeConfig
	changed     chan struct{}
}

func key(namespace, name string) string { return namespace + "/" + name }

// identityOf names the DaemonSets of the old CNI and of Cilium, and
// Cilium's namespace: when they change, everything is read again.
func identityOf(c *config) string {
	s := c.ciliumNS + "|" + c.cluster.Cilium.Namespace + "/" + c.cluster.Cilium.DaemonSet
	if c.cluster.CNI != nil {
		s += "|" + c.cluster.CNI.Namespace + "/" + c.cluster.CNI.DaemonSet
	}
	return s
}

func (l *live) markChanged() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// report assembles the current report, or asks for a relist when the
// CNI DaemonSets changed.
func (l *live) report() (*Report, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cfg
	c.nodes = c.nodes[:0]
	for _, n := range l.nodes {
		c.nodes = append(c.nodes, n)
	}
	sort.Slice(c.nodes, func(i, j int) bool { return c.nodes[i].Name < c.nodes[j].Name })
	c.daemonSets = c.daemonSets[:0]
	for _, ds := range l.daemonSets {
		c.daemonSets = append(c.daemonSets, ds)
	}
	sort.Slice(c.daemonSets, func(i, j int) bool {
		return key(c.daemonSets[i].Namespace, c.daemonSets[i].Name) < key(c.daemonSets[j].Namespace, c.daemonSets[j].Name)
	})
	c.analyze()
	if id := identityOf(c); id != l.identity {
		return nil, relistError{why: "the DaemonSets of the CNIs changed"}
	}
	tally := NewTally(c.networks)
	for _, p := range l.pods {
		tally.Add(p)
	}
	in := c.input(tally, 0, l.nodeConfigs)
	for _, bridged := range l.endpoints {
		if bridged {
			in.BridgedEndpoints++
		} else {
			in.Endpoints++
		}
	}
	return Assemble(in), nil
}

// watchSpec is one followed resource.
type watchSpec struct {
	what  string
	rv    string
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)
	// apply handles an event under l.mu; an error ends the session.
	apply func(watch.Event) error
}

func watchSession(ctx context.Context, cl Clients, opts Options, emit func(*Report) error) error {
	cfg, err := readConfig(ctx, cl, opts)
	if err != nil {
		return err
	}
	l := &live{
		cfg: cfg, identity: identityOf(cfg),
		nodes: map[string]corev1.Node{}, pods: map[string]Pod{}, endpoints: map[string]bool{},
		daemonSets: map[string]appsv1.DaemonSet{}, changed: make(chan struct{}, 1),
	}
	for _, n := range cfg.nodes {
		l.nodes[n.Name] = n
	}
	for _, ds := range cfg.daemonSets {
		l.daemonSets[key(ds.Namespace, ds.Name)] = ds
	}
	ncs, rvs, err := readWorkloads(ctx, cl, cfg,
		func(p *corev1.Pod) { l.pods[key(p.Namespace, p.Name)] = PodFrom(p, cfg.isAgent(p)) },
		func(m *metav1.PartialObjectMetadata) { l.endpoints[key(m.Namespace, m.Name)] = bridgedEndpoint(m) })
	if err != nil {
		return err
	}
	l.nodeConfigs = ncs

	kc := cl.Kube
	specs := []watchSpec{
		{what: "nodes", rv: cfg.nodesRV, watch: kc.CoreV1().Nodes().Watch, apply: func(e watch.Event) error {
			n, ok := e.Object.(*corev1.Node)
			if !ok {
				return nil
			}
			if e.Type == watch.Deleted {
				delete(l.nodes, n.Name)
			} else {
				l.nodes[n.Name] = SlimNode(n)
			}
			return nil
		}},
		{what: "pods", rv: rvs.pods, watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = cfg.podSelector
			return kc.CoreV1().Pods("").Watch(ctx, o)
		}, apply: func(e watch.Event) error {
			p, ok := e.Object.(*corev1.Pod)
			if !ok {
				return nil
			}
			if e.Type == watch.Deleted {
				delete(l.pods, key(p.Namespace, p.Name))
			} else {
				l.pods[key(p.Namespace, p.Name)] = PodFrom(p, cfg.isAgent(p))
			}
			return nil
		}},
		{what: "DaemonSets", rv: cfg.daemonSetsRV, watch: kc.AppsV1().DaemonSets("").Watch, apply: func(e watch.Event) error {
			ds, ok := e.Object.(*appsv1.DaemonSet)
			if !ok {
				return nil
			}
			if e.Type == watch.Deleted {
				delete(l.daemonSets, key(ds.Namespace, ds.Name))
			} else {
				l.daemonSets[key(ds.Namespace, ds.Name)] = *ds
			}
			return nil
		}},
	}
	if cfg.endpointsServed {
		specs = append(specs, watchSpec{what: "CiliumEndpoints", rv: rvs.endpoints,
			watch: cl.Metadata.Resource(EndpointsGVR()).Namespace("").Watch,
			apply: func(e watch.Event) error {
				m, err := meta.Accessor(e.Object)
				if err != nil {
					return nil
				}
				if e.Type == watch.Deleted {
					delete(l.endpoints, key(m.GetNamespace(), m.GetName()))
				} else {
					l.endpoints[key(m.GetNamespace(), m.GetName())] = bridgedEndpoint(m)
				}
				return nil
			}})
	}
	if !cfg.nodeConfigGVR.Empty() {
		specs = append(specs, watchSpec{what: "CiliumNodeConfigs", rv: rvs.nodeConfigs,
			watch: cl.Dynamic.Resource(cfg.nodeConfigGVR).Namespace(cfg.ciliumNS).Watch,
			apply: func(watch.Event) error { return relistError{why: "a CiliumNodeConfig changed"} }})
	}
	// The ConfigMaps the pod networks come from: any change means reading
	// everything again. They are watched from the DaemonSet list's
	// resourceVersion, which was read before them.
	for _, w := range cfg.configMapsRead {
		specs = append(specs, watchSpec{what: "ConfigMap " + key(w.Namespace, w.Name), rv: cfg.daemonSetsRV,
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.Name).String()
				return kc.CoreV1().ConfigMaps(w.Namespace).Watch(ctx, o)
			},
			apply: func(watch.Event) error { return relistError{why: "ConfigMap " + key(w.Namespace, w.Name) + " changed"} }})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Open every watch before the first report so nothing is missed after it.
	watchers := make([]watch.Interface, len(specs))
	defer func() {
		for _, w := range watchers {
			if w != nil {
				w.Stop()
			}
		}
	}()
	for i := range specs {
		if watchers[i], err = openWatch(ctx, &specs[i]); err != nil {
			return err
		}
	}
	errc := make(chan error, len(specs))
	for i := range specs {
		go func() { errc <- l.follow(ctx, &specs[i], watchers[i]) }()
	}

	render := func() error {
		r, err := l.report()
		if err != nil {
			return err
		}
		return emit(r)
	}
	if err := render(); err != nil {
		return err
	}
	last := time.Now()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-l.changed:
			if fire == nil {
				wait := max(settle, minInterval-time.Since(last))
				timer = time.NewTimer(wait)
				fire = timer.C
			}
		case <-fire:
			fire = nil
			timer.Stop()
			if err := render(); err != nil {
				return err
			}
			last = time.Now()
		}
	}
}

// openWatch starts a watch from spec.rv, retrying transient errors. An
// expired resourceVersion asks for a relist.
func openWatch(ctx context.Context, spec *watchSpec) (watch.Interface, error) {
	backoff := time.Second
	for {
		timeout := int64(watchTimeout / time.Second)
		w, err := spec.watch(ctx, metav1.ListOptions{ResourceVersion: spec.rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
		switch {
		case err == nil:
			return w, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			return nil, relistError{why: "the watch of " + spec.what + " expired"}
		case !transient(err):
			return nil, fmt.Errorf("watching %s: %w", spec.what, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// transient errors are retried: the server is busy, restarting, or the
// connection broke.
func transient(err error) bool {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsInvalid(err) {
		return false
	}
	return true
}

// follow applies the events of a watch, resuming it from the last
// resourceVersion when the server ends it.
func (l *live) follow(ctx context.Context, spec *watchSpec, w watch.Interface) error {
	for {
		for e := range w.ResultChan() {
			switch e.Type {
			case watch.Error:
				w.Stop()
				err := apierrors.FromObject(e.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return relistError{why: "the watch of " + spec.what + " expired"}
				}
				return fmt.Errorf("watching %s: %w", spec.what, err)
			case watch.Bookmark:
				spec.rv = resourceVersion(e.Object, spec.rv)
			case watch.Added, watch.Modified, watch.Deleted:
				spec.rv = resourceVersion(e.Object, spec.rv)
				l.mu.Lock()
				err := spec.apply(e)
				l.mu.Unlock()
				if err != nil {
					w.Stop()
					return err
				}
				l.markChanged()
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var err error
		if w, err = openWatch(ctx, spec); err != nil {
			return err
		}
	}
}

func resourceVersion(obj runtime.Object, old string) string {
	if m, err := meta.Accessor(obj); err == nil && m.GetResourceVersion() != "" {
		return m.GetResourceVersion()
	}
	return old
}
