// Package ciliumsim is a small controller that makes a cluster of kwok fake
// nodes look, through the Kubernetes API, like one whose nodes are being
// migrated from Flannel to Cilium with the dual-overlay method. The Cilium
// datapath cannot run here; this package reproduces what the agent and the
// operator publish and what the CNI plugins decide:
//
//   - It is the pod network of the cluster: kwok starts a non-hostNetwork
//     pod only once the pod carries cluster.PodNetworkAnnotation (see
//     test/e2e/cluster). On a node that is not migrated the sim writes
//     "flannel" and kwok allocates the address from the node's podCIDR, as
//     flannel with the Kubernetes subnet manager would. On a migrated node it
//     writes "cilium" and an address from the node's CiliumNode podCIDR
//     (cluster-pool IPAM) in cluster.PodIPsAnnotation.
//   - A node is migrated when it carries the migration label and its Cilium
//     agent pod was created after the label was set and is Ready (the agent
//     reads its CiliumNodeConfig when it starts and writes its CNI
//     configuration when ready). When cilium-config itself says what the
//     CiliumNodeConfig says (custom-cni-conf "false" and
//     write-cni-conf-when-ready set: the in-place method, or after
//     finalize), every node running an agent is migrated.
//   - For such a node it creates the CiliumNode (cilium.io/v2) with
//     spec.ipam.podCIDRs allocated from cilium-config's
//     cluster-pool-ipv4-cidr / cluster-pool-ipv4-mask-size, as the operator
//     does, and a CiliumEndpoint for every running pod with a Cilium address.
//
// The order of "label set" and "agent created" is decided with the etcd
// revisions (resourceVersions) of the events, so it does not depend on how
// fast the sim sees them.
package ciliumsim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// Defaults of Options.
const (
	DefaultMigrationLabel = "io.cilium.migration/cilium-default"
	DefaultNamespace      = "kube-system"
	DefaultAgentSelector  = "k8s-app=cilium"
	DefaultNetwork        = "flannel"

	// NetworkCilium is the PodNetworkAnnotation value of pods whose
	// address Cilium assigned.
	NetworkCilium = "cilium"
)

// Annotations the sim keeps on nodes so that a restarted sim knows when the
// migration label was set and removed (etcd revisions).
const (
	LabelRevisionAnnotation   = "e2e.cni-migrate.io/ciliumsim-label-revision"
	UnlabelRevisionAnnotation = "e2e.cni-migrate.io/ciliumsim-unlabel-revision"
)

// CiliumNode and CiliumEndpoint resources (cilium.io/v2 in every supported
// Cilium version).
var (
	CiliumNodes     = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnodes"}
	CiliumEndpoints = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumendpoints"}
)

// Options configure the simulation. The zero value uses the defaults.
type Options struct {
	// MigrationLabel (default io.cilium.migration/cilium-default) and
	// MigrationLabelValue (default "true") select migrated nodes.
	MigrationLabel      string
	MigrationLabelValue string
	// Namespace of the Cilium agent pods and of cilium-config (kube-system).
	Namespace string
	// AgentSelector selects the agent pods (k8s-app=cilium).
	AgentSelector string
	// Network is the PodNetworkAnnotation value for pods on nodes that are
	// not migrated (default "flannel").
	Network string
	// CiliumNodesForAllAgents also creates CiliumNodes (with podCIDRs) for
	// nodes that run an agent but are not migrated, as real Cilium does for
	// every node its agent runs on. Off by default: only migrated nodes get one.
	CiliumNodesForAllAgents bool
	// Logf receives one line per decision (default: discarded).
	Logf func(format string, args ...any)
}

// Sim is a running simulation.
type Sim struct {
	opts     Options
	client   kubernetes.Interface
	dyn      dynamic.Interface
	agentSel labels.Selector

	factory informers.SharedInformerFactory
	nodes   cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	queue   workqueue.TypedRateLimitingInterface[string]

	// cmFactory watches cilium-config alone.
	cmFactory informers.SharedInformerFactory
	configs   cache.SharedIndexInformer

	mu sync.Mutex
	// createdRV records the resourceVersion of each pod's ADD event, which
	// is the revision that created it when seen through the watch.
	createdRV map[types.UID]uint64
	// transitions holds the revisions of the migration label transitions.
	transitions map[string]transitions
	// recent holds addresses handed out and not yet visible in the cache.
	recent map[string]time.Time
	epID   uint64

	done chan struct{}
}

type transitions struct{ label, unlabel uint64 }

const podNodeIndex = "nodeName"

// Start starts the simulation against the cluster at cfg and returns once
// its caches are synced. It runs until ctx ends; Wait waits for that.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Sim, error) {
	if opts.MigrationLabel == "" {
		opts.MigrationLabel = DefaultMigrationLabel
	}
	if opts.MigrationLabelValue == "" {
		opts.MigrationLabelValue = "true"
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.AgentSelector == "" {
		opts.AgentSelector = DefaultAgentSelector
	}
	if opts.Network == "" {
		opts.Network = DefaultNetwork
	}
	sel, err := labels.Parse(opts.AgentSelector)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return outageWaiter{rt} })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		opts:        opts,
		client:      client,
		dyn:         dyn,
		agentSel:    sel,
		createdRV:   map[types.UID]uint64{},
		transitions: map[string]transitions{},
		recent:      map[string]time.Time{},
		done:        make(chan struct{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ciliumsim"}),
	}
	s.factory = informers.NewSharedInformerFactory(client, 0)
	s.nodes = s.factory.Core().V1().Nodes().Informer()
	s.pods = s.factory.Core().V1().Pods().Informer()
	if err := s.pods.AddIndexers(cache.Indexers{podNodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	if _, err := s.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				s.observeNode(nil, n)
			}
		},
		UpdateFunc: func(old, obj any) {
			o, _ := old.(*corev1.Node)
			if n, ok := obj.(*corev1.Node); ok {
				s.observeNode(o, n)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := s.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				s.recordCreated(p)
				s.enqueuePod(p)
			}
		},
		UpdateFunc: func(_, obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				s.enqueuePod(p)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				s.mu.Lock()
				delete(s.createdRV, p.UID)
				s.mu.Unlock()
				if s.isAgent(p) {
					s.queue.Add("node/" + p.Spec.NodeName)
				}
				if p.Annotations[cluster.PodNetworkAnnotation] == NetworkCilium {
					s.queue.Add("cep-delete/" + p.Namespace + "/" + p.Name + "/" + string(p.UID))
				}
			}
		},
	}); err != nil {
		return nil, err
	}
	s.cmFactory = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=cilium-config" }))
	s.configs = s.cmFactory.Core().V1().ConfigMaps().Informer()
	if _, err := s.configs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.enqueueAllNodes() },
		UpdateFunc: func(any, any) { s.enqueueAllNodes() },
		DeleteFunc: func(any) { s.enqueueAllNodes() },
	}); err != nil {
		return nil, err
	}
	s.factory.Start(ctx.Done())
	s.cmFactory.Start(ctx.Done())
	for _, f := range []informers.SharedInformerFactory{s.factory, s.cmFactory} {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				s.queue.ShutDown()
				return nil, fmt.Errorf("ciliumsim: cache of %v not synced", typ)
			}
		}
	}
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	go func() {
		defer close(s.done)
		for s.processNext(ctx) {
		}
		s.factory.Shutdown()
		s.cmFactory.Shutdown()
	}()
	s.logf("ciliumsim: started (label %s=%s, agents %s/%s)", opts.MigrationLabel, opts.MigrationLabelValue, opts.Namespace, opts.AgentSelector)
	return s, nil
}

// Wait blocks until the simulation stopped (its context ended).
func (s *Sim) Wait() { <-s.done }

func (s *Sim) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Sim) isAgent(p *corev1.Pod) bool {
	return p.Namespace == s.opts.Namespace && s.agentSel.Matches(labels.Set(p.Labels))
}

func (s *Sim) labelled(n *corev1.Node) bool {
	return n != nil && n.Labels[s.opts.MigrationLabel] == s.opts.MigrationLabelValue
}

// observeNode records migration label transitions at the revision of the
// watch event that shows them; that is exact however late the sim handles
// the event. For a node first seen already labelled (list at start) the
// revision is an upper bound unless an annotation recorded it earlier.
func (s *Sim) observeNode(old, n *corev1.Node) {
	rv, _ := strconv.ParseUint(n.ResourceVersion, 10, 64)
	s.mu.Lock()
	t := s.transitions[n.Name]
	if old == nil {
		t.label, _ = strconv.ParseUint(n.Annotations[LabelRevisionAnnotation], 10, 64)
		t.unlabel, _ = strconv.ParseUint(n.Annotations[UnlabelRevisionAnnotation], 10, 64)
		if s.labelled(n) && (t.label == 0 || t.unlabel > t.label) {
			t.label = rv
		}
		if !s.labelled(n) && t.label > t.unlabel {
			t.unlabel = rv
		}
	} else {
		switch was, is := s.labelled(old), s.labelled(n); {
		case is && !was:
			t.label = rv
		case was && !is:
			t.unlabel = rv
		}
	}
	s.transitions[n.Name] = t
	s.mu.Unlock()
	s.queue.Add("node/" + n.Name)
}

func (s *Sim) enqueuePod(p *corev1.Pod) {
	if p.Spec.NodeName == "" {
		return
	}
	if s.isAgent(p) {
		s.queue.Add("node/" + p.Spec.NodeName)
		return
	}
	if p.Spec.HostNetwork {
		return
	}
	net := p.Annotations[cluster.PodNetworkAnnotation]
	if net == "" || (net == NetworkCilium && p.Status.PodIP != "" && p.DeletionTimestamp == nil) {
		s.queue.Add("pod/" + p.Namespace + "/" + p.Name)
	}
}

func (s *Sim) recordCreated(p *corev1.Pod) {
	if !s.isAgent(p) {
		return
	}
	rv, err := strconv.ParseUint(p.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.createdRV[p.UID]; !ok {
		s.createdRV[p.UID] = rv
	}
}

func (s *Sim) processNext(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	kind, rest, _ := strings.Cut(key, "/")
	var err error
	var retry time.Duration
	switch kind {
	case "node":
		retry, err = s.syncNode(ctx, rest)
	case "pod":
		retry, err = s.syncPod(ctx, rest)
	case "cep-delete":
		err = s.deleteEndpoint(ctx, rest)
	}
	switch {
	case err != nil && ctx.Err() == nil:
		s.logf("ciliumsim: %s: %v (retrying)", key, err)
		s.queue.AddRateLimited(key)
	case retry > 0:
		s.queue.Forget(key)
		s.queue.AddAfter(key, retry)
	default:
		s.queue.Forget(key)
	}
	return true
}

// nodeState is what the sim knows about one node.
type nodeState struct {
	node     *corev1.Node
	labelled bool
	labelRV  uint64 // revision at which the label was (last) added
	agent    *corev1.Pod
	agentRV  uint64 // revision that created the newest agent pod
	migrated bool   // agent created while labelled
	ready    bool   // and Ready: the node's pods get Cilium addresses
}

func (s *Sim) state(name string) (*nodeState, error) {
	obj, ok, err := s.nodes.GetStore().GetByKey(name)
	if err != nil || !ok {
		return nil, err
	}
	n := obj.(*corev1.Node)
	st := &nodeState{node: n}
	st.labelled = s.labelled(n)

	pods, err := s.pods.GetIndexer().ByIndex(podNodeIndex, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	t := s.transitions[name]
	st.labelRV = t.label
	unlabelRV := t.unlabel
	for _, o := range pods {
		p := o.(*corev1.Pod)
		if !s.isAgent(p) || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		rv, ok := s.createdRV[p.UID]
		if !ok {
			rv, _ = strconv.ParseUint(p.ResourceVersion, 10, 64)
		}
		if st.agent == nil || rv > st.agentRV {
			st.agent, st.agentRV = p, rv
		}
	}
	s.mu.Unlock()
	// The agent runs with the CiliumNodeConfig when it was created while the
	// node carried the label.
	if st.agent != nil && st.labelRV > 0 && st.agentRV > st.labelRV && (unlabelRV < st.labelRV || st.agentRV < unlabelRV) {
		st.migrated = true
		st.ready = podReady(st.agent)
	}
	// cilium-config gives every agent what the CiliumNodeConfig gives the
	// labelled nodes' (the in-place method, or after finalize).
	if st.agent != nil && !st.migrated && s.ownsEveryNode() {
		st.migrated = true
		st.ready = podReady(st.agent)
	}
	return st, nil
}

// ownsEveryNode reports whether cilium-config makes every agent write its
// CNI configuration: custom-cni-conf "false" and write-cni-conf-when-ready
// set (what the chart renders for cni.customConf false, and what the
// CiliumNodeConfig sets per node during a dual-overlay migration).
func (s *Sim) ownsEveryNode() bool {
	obj, ok, err := s.configs.GetStore().GetByKey(s.opts.Namespace + "/cilium-config")
	if err != nil || !ok {
		return false
	}
	cm := obj.(*corev1.ConfigMap)
	return cm.Data["custom-cni-conf"] == "false" && cm.Data["write-cni-conf-when-ready"] != ""
}

func (s *Sim) enqueueAllNodes() {
	for _, name := range s.nodes.GetStore().ListKeys() {
		s.queue.Add("node/" + name)
	}
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// syncNode records label transitions and creates the CiliumNode of a
// migrated node.
func (s *Sim) syncNode(ctx context.Context, name string) (time.Duration, error) {
	obj, ok, err := s.nodes.GetStore().GetByKey(name)
	if err != nil || !ok {
		return 0, err
	}
	n := obj.(*corev1.Node)
	// Persist the label transitions for a restarted sim.
	s.mu.Lock()
	t := s.transitions[name]
	s.mu.Unlock()
	patch := map[string]any{}
	for ann, rv := range map[string]uint64{LabelRevisionAnnotation: t.label, UnlabelRevisionAnnotation: t.unlabel} {
		if v := strconv.FormatUint(rv, 10); rv > 0 && n.Annotations[ann] != v {
			patch[ann] = v
		}
	}
	if len(patch) > 0 {
		s.logf("ciliumsim: node %s: migration label %v at revision %d (unlabel %d)", name, s.labelled(n), t.label, t.unlabel)
		if err := s.patchMeta(ctx, s.client.CoreV1().RESTClient(), "nodes", "", name, patch); err != nil {
			return 0, ignoreGone(err)
		}
	}

	st, err := s.state(name)
	if err != nil || st == nil {
		return 0, err
	}
	if st.migrated || (s.opts.CiliumNodesForAllAgents && st.agent != nil) {
		if _, err := s.ensureCiliumNode(ctx, st.node); err != nil {
			return 0, err
		}
	}
	if st.ready {
		// Pods that were waiting for the agent.
		s.enqueueUndecided(name)
	}
	return 0, nil
}

func (s *Sim) enqueueUndecided(node string) {
	pods, _ := s.pods.GetIndexer().ByIndex(podNodeIndex, node)
	for _, o := range pods {
		p := o.(*corev1.Pod)
		if !p.Spec.HostNetwork && p.Annotations[cluster.PodNetworkAnnotation] == "" {
			s.queue.Add("pod/" + p.Namespace + "/" + p.Name)
		}
	}
}

// patchMeta merge-patches annotations of a core object.
func (s *Sim) patchMeta(ctx context.Context, rc rest.Interface, resource, namespace, name string, annotations map[string]any) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	req := rc.Patch(types.MergePatchType).Resource(resource).Name(name).Param("fieldManager", "ciliumsim").Body(body)
	if namespace != "" {
		req = req.Namespace(namespace)
	}
	return req.Do(ctx).Error()
}

// syncPod decides the network of a pod waiting for one, and creates the
// CiliumEndpoint of a running pod with a Cilium address.
func (s *Sim) syncPod(ctx context.Context, key string) (time.Duration, error) {
	obj, ok, err := s.pods.GetIndexer().GetByKey(key)
	if err != nil || !ok {
		return 0, err
	}
	p := obj.(*corev1.Pod)
	if p.Spec.HostNetwork || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
		return 0, nil
	}
	switch p.Annotations[cluster.PodNetworkAnnotation] {
	case "":
		return s.assignNetwork(ctx, p)
	case NetworkCilium:
		if p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
			return 0, s.ensureEndpoint(ctx, p)
		}
	}
	return 0, nil
}

func (s *Sim) assignNetwork(ctx context.Context, p *corev1.Pod) (time.Duration, error) {
	st, err := s.state(p.Spec.NodeName)
	if err != nil {
		return 0, err
	}
	if st == nil {
		return time.Second, nil // node not in the cache yet
	}
	var ann map[string]any
	if st.ready {
		cn, err := s.ensureCiliumNode(ctx, st.node)
		if err != nil {
			return 0, err
		}
		// Cilium keeps the first host address for cilium_host.
		ip, err := s.allocateIP(p.Spec.NodeName, cn, 2)
		if err != nil {
			return 0, err
		}
		ann = map[string]any{cluster.PodNetworkAnnotation: NetworkCilium, cluster.PodIPsAnnotation: ip}
	} else {
		// flannel: host-local IPAM on the node's podCIDR; the first host
		// address belongs to the cni0 bridge.
		cidrs, err := parsePrefixes(st.node.Spec.PodCIDRs)
		if err != nil || len(cidrs) == 0 {
			return time.Second, err // no podCIDR yet
		}
		ip, err := s.allocateIP(p.Spec.NodeName, cidrs[:1], 2)
		if err != nil {
			return 0, err
		}
		ann = map[string]any{cluster.PodNetworkAnnotation: s.opts.Network, cluster.PodIPsAnnotation: ip}
	}
	if err := s.patchMeta(ctx, s.client.CoreV1().RESTClient(), "pods", p.Namespace, p.Name, ann); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	s.logf("ciliumsim: pod %s/%s on %s: %v", p.Namespace, p.Name, p.Spec.NodeName, ann)
	return 0, nil
}

// ciliumPool reads cluster-pool settings from cilium-config.
func (s *Sim) ciliumPool(ctx context.Context) ([]netip.Prefix, int, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.opts.Namespace).Get(ctx, "cilium-config", metav1.GetOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("cilium-config: %w", err)
	}
	if mode := cm.Data["ipam"]; mode != "" && mode != "cluster-pool" {
		return nil, 0, fmt.Errorf("cilium-config ipam mode %q is not simulated (only cluster-pool)", mode)
	}
	var pools []netip.Prefix
	for _, f := range strings.FieldsFunc(cm.Data["cluster-pool-ipv4-cidr"], func(r rune) bool { return r == ' ' || r == ',' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster-pool-ipv4-cidr: %w", err)
		}
		pools = append(pools, p.Masked())
	}
	if len(pools) == 0 {
		return nil, 0, errors.New("cilium-config has no cluster-pool-ipv4-cidr")
	}
	mask := 24
	if v := cm.Data["cluster-pool-ipv4-mask-size"]; v != "" {
		if mask, err = strconv.Atoi(v); err != nil {
			return nil, 0, fmt.Errorf("cluster-pool-ipv4-mask-size: %w", err)
		}
	}
	return pools, mask, nil
}

// ensureCiliumNode returns the node's CiliumNode podCIDRs, creating the
// CiliumNode or allocating its CIDR as the operator would.
func (s *Sim) ensureCiliumNode(ctx context.Context, node *corev1.Node) ([]netip.Prefix, error) {
	ri := s.dyn.Resource(CiliumNodes)
	existing, err := ri.Get(ctx, node.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return nil, fmt.Errorf("get CiliumNode %s (is the CRD installed?): %w", node.Name, err)
	default:
		cidrs, _, _ := unstructured.NestedStringSlice(existing.Object, "spec", "ipam", "podCIDRs")
		if len(cidrs) > 0 {
			return parsePrefixes(cidrs)
		}
	}
	pools, mask, err := s.ciliumPool(ctx)
	if err != nil {
		return nil, err
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	used := map[netip.Prefix]bool{}
	for _, item := range list.Items {
		cidrs, _, _ := unstructured.NestedStringSlice(item.Object, "spec", "ipam", "podCIDRs")
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil {
				used[p.Masked()] = true
			}
		}
	}
	cidr, err := nextFreeSubnet(pools, mask, used)
	if err != nil {
		return nil, err
	}
	nodeIP := ""
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			nodeIP = a.Address
		}
	}
	router := cidr.Addr().Next()
	spec := map[string]any{
		"addresses": []any{
			map[string]any{"type": "InternalIP", "ip": nodeIP},
			map[string]any{"type": "CiliumInternalIP", "ip": router.String()},
		},
		"health": map[string]any{"ipv4": router.Next().String()},
		"ipam":   map[string]any{"podCIDRs": []any{cidr.String()}},
	}
	if existing != nil {
		existing.Object["spec"] = mergeMaps(existingSpec(existing), spec)
		if _, err := ri.Update(ctx, existing, metav1.UpdateOptions{FieldManager: "ciliumsim"}); err != nil {
			return nil, err
		}
	} else {
		cn := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cilium.io/v2",
			"kind":       "CiliumNode",
			"metadata": map[string]any{
				"name":   node.Name,
				"labels": copyLabels(node.Labels),
				"ownerReferences": []any{map[string]any{
					"apiVersion": "v1", "kind": "Node", "name": node.Name, "uid": string(node.UID),
				}},
			},
			"spec": spec,
		}}
		if _, err := ri.Create(ctx, cn, metav1.CreateOptions{FieldManager: "ciliumsim"}); err != nil {
			return nil, err
		}
	}
	s.logf("ciliumsim: CiliumNode %s podCIDRs [%s]", node.Name, cidr)
	return []netip.Prefix{cidr}, nil
}

func existingSpec(u *unstructured.Unstructured) map[string]any {
	m, _, _ := unstructured.NestedMap(u.Object, "spec")
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func mergeMaps(dst, src map[string]any) map[string]any {
	maps.Copy(dst, src)
	return dst
}

func copyLabels(l map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range l {
		out[k] = v
	}
	return out
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// nextFreeSubnet returns the first /mask subnet of the pools not in used.
func nextFreeSubnet(pools []netip.Prefix, mask int, used map[netip.Prefix]bool) (netip.Prefix, error) {
	for _, pool := range pools {
		if !pool.Addr().Is4() || mask < pool.Bits() || mask > 30 {
			continue
		}
		base := binary.BigEndian.Uint32(pool.Addr().AsSlice())
		step := uint32(1) << (32 - mask)
		count := uint64(1) << (mask - pool.Bits())
		for i := uint64(0); i < count; i++ {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], base+uint32(i)*step)
			p := netip.PrefixFrom(netip.AddrFrom4(b), mask)
			if !used[p] {
				return p, nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("cluster pool %v exhausted for /%d", pools, mask)
}

// allocateIP returns the lowest free address of cidrs for a pod on node,
// starting at offset first from the network address and never the last
// (broadcast) address.
func (s *Sim) allocateIP(node string, cidrs []netip.Prefix, first int) (string, error) {
	used := map[string]bool{}
	pods, err := s.pods.GetIndexer().ByIndex(podNodeIndex, node)
	if err != nil {
		return "", err
	}
	for _, o := range pods {
		p := o.(*corev1.Pod)
		for _, ip := range strings.Split(p.Annotations[cluster.PodIPsAnnotation], ",") {
			used[ip] = true
		}
		used[p.Status.PodIP] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for ip, t := range s.recent {
		if now.Sub(t) > time.Minute {
			delete(s.recent, ip)
		} else {
			used[ip] = true
		}
	}
	for _, c := range cidrs {
		a := c.Addr()
		for range first {
			a = a.Next()
		}
		for ; c.Contains(a); a = a.Next() {
			if !c.Contains(a.Next()) {
				break // broadcast address
			}
			if !used[a.String()] {
				s.recent[a.String()] = now
				return a.String(), nil
			}
		}
	}
	return "", fmt.Errorf("no free address in %v on %s", cidrs, node)
}

// ensureEndpoint creates the CiliumEndpoint of a running pod.
func (s *Sim) ensureEndpoint(ctx context.Context, p *corev1.Pod) error {
	ri := s.dyn.Resource(CiliumEndpoints).Namespace(p.Namespace)
	if _, err := ri.Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	var addressing []any
	for _, ip := range p.Status.PodIPs {
		addressing = append(addressing, map[string]any{"ipv4": ip.IP})
	}
	idLabels := []string{"k8s:io.kubernetes.pod.namespace=" + p.Namespace}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		if k == "pod-template-hash" || k == "controller-revision-hash" || k == "pod-template-generation" || k == "apps.kubernetes.io/pod-index" || k == "statefulset.kubernetes.io/pod-name" {
			continue
		}
		idLabels = append(idLabels, "k8s:"+k+"="+p.Labels[k])
	}
	if sa := p.Spec.ServiceAccountName; sa != "" {
		idLabels = append(idLabels, "k8s:io.cilium.k8s.policy.serviceaccount="+sa)
	}
	sort.Strings(idLabels)
	h := fnv.New32a()
	for _, l := range idLabels {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	identity := int64(h.Sum32()%(65535-256) + 256)
	s.mu.Lock()
	s.epID++
	epID := int64(s.epID%4000) + 1
	s.mu.Unlock()
	labelsAny := make([]any, len(idLabels))
	for i, l := range idLabels {
		labelsAny[i] = l
	}
	cep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2",
		"kind":       "CiliumEndpoint",
		"metadata": map[string]any{
			"name":      p.Name,
			"namespace": p.Namespace,
			"labels":    copyLabels(p.Labels),
			"ownerReferences": []any{map[string]any{
				"apiVersion": "v1", "kind": "Pod", "name": p.Name, "uid": string(p.UID),
			}},
		},
		"status": map[string]any{
			"id":         epID,
			"state":      "ready",
			"encryption": map[string]any{},
			"identity":   map[string]any{"id": identity, "labels": labelsAny},
			"networking": map[string]any{"addressing": addressing, "node": p.Status.HostIP},
			"external-identifiers": map[string]any{
				"k8s-namespace": p.Namespace,
				"k8s-pod-name":  p.Name,
				"pod-name":      p.Namespace + "/" + p.Name,
			},
		},
	}}
	if _, err := ri.Create(ctx, cep, metav1.CreateOptions{FieldManager: "ciliumsim"}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	s.logf("ciliumsim: CiliumEndpoint %s/%s %v", p.Namespace, p.Name, addressing)
	return nil
}

// deleteEndpoint deletes the CiliumEndpoint of a deleted pod (key
// ns/name/uid), as the agent does; garbage collection would too, later.
func (s *Sim) deleteEndpoint(ctx context.Context, key string) error {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return nil
	}
	ri := s.dyn.Resource(CiliumEndpoints).Namespace(parts[0])
	cep, err := ri.Get(ctx, parts[1], metav1.GetOptions{})
	if err != nil {
		return ignoreGone(err)
	}
	for _, o := range cep.GetOwnerReferences() {
		if string(o.UID) == parts[2] {
			uid := cep.GetUID()
			return ignoreGone(ri.Delete(ctx, parts[1], metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}))
		}
	}
	return nil
}

func ignoreGone(err error) error {
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) || meta.IsNoMatchError(err) {
		return nil
	}
	return err
}

// NodeStatus describes a node as the sim sees it.
type NodeStatus struct {
	Labelled bool // carries the migration label
	Migrated bool // its agent was created after the label was set
	Ready    bool // and is Ready: new pods get Cilium addresses
	Agent    string
}

// Node returns the sim's view of a node.
func (s *Sim) Node(name string) (NodeStatus, error) {
	st, err := s.state(name)
	if err != nil || st == nil {
		return NodeStatus{}, err
	}
	ns := NodeStatus{Labelled: st.labelled, Migrated: st.migrated, Ready: st.ready}
	if st.agent != nil {
		ns.Agent = st.agent.Name
	}
	return ns, nil
}

// outageWaiter retries a request the API server refused to connect (it
// is down, as in TestFaultAPIServerOutage) every 200 ms for up to three
// minutes. Without it the informers' watches fail and client-go's back-off
// keeps them stale for up to a minute after the API server is back, while
// the plugin and kwok go on at once; the simulation would hand out
// addresses from that stale view (a migrated node's pods on the old
// network).
type outageWaiter struct{ rt http.RoundTripper }

func (o outageWaiter) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r := req
		if req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := o.rt.RoundTrip(r)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-req.Context().Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
