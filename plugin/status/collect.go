package status

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/connectivity"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
)

// DefaultPageSize is the limit of every LIST.
const DefaultPageSize = 500

// EndpointsGVR is cilium.io/v2 ciliumendpoints (in every supported Cilium).
func EndpointsGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumendpoints"}
}

const (
	ciliumGroupV2       = "cilium.io/v2"
	ciliumGroupV2alpha1 = "cilium.io/v2alpha1"
	agentLabelKey       = "k8s-app"
	agentLabelValue     = "cilium"
	flannelConfigMap    = "kube-flannel-cfg"
	ciliumConfigMap     = "cilium-config"
	defaultNamespace    = "kube-system"
	// podFieldSelector leaves out the pods that never count: finished ones.
	podFieldSelector = "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)
)

// Clients are the API clients status reads with. Kube should ask for
// protobuf (kube.New does); Metadata does so by itself.
type Clients struct {
	Kube     kubernetes.Interface
	Metadata metadata.Interface
	Dynamic  dynamic.Interface
}

// Options configure Collect and Watch.
type Options struct {
	// Namespace is Cilium's namespace; "" means the cilium DaemonSet's,
	// else kube-system.
	Namespace string
	// PageSize is the limit of each LIST (default DefaultPageSize).
	PageSize int64
	// KubeconfigCluster and APIServer are passed on to detection.
	KubeconfigCluster string
	APIServer         string
}

func (o Options) pageSize() int64 {
	if o.PageSize > 0 {
		return o.PageSize
	}
	return DefaultPageSize
}

// Collect reads the cluster once and returns the report. It makes a
// number of requests that does not depend on the number of nodes or pods,
// except that every LIST is paginated: nodes, DaemonSets, pods (finished
// ones filtered out by the server), CiliumEndpoints (metadata only),
// CiliumNodeConfigs, two ConfigMaps and one or two discovery requests.
// Errors come from client-go, wrapped with what was being read.
func Collect(ctx context.Context, cl Clients, opts Options) (*Report, error) {
	cfg, err := readConfig(ctx, cl, opts)
	if err != nil {
		return nil, err
	}
	tally := NewTally(cfg.networks)
	endpoints, bridged := 0, 0
	ncs, _, err := readWorkloads(ctx, cl, cfg,
		func(p *corev1.Pod) { tally.Add(PodFrom(p, cfg.isAgent(p))) },
		func(m *metav1.PartialObjectMetadata) {
			if bridgedEndpoint(m) {
				bridged++
			} else {
				endpoints++
			}
		})
	if err != nil {
		return nil, err
	}
	in := cfg.input(tally, endpoints, ncs)
	in.BridgedEndpoints = bridged
	return Assemble(in), nil
}

// bridgedEndpoint says whether a CiliumEndpoint is the policy bridge's,
// for a pod still on the old network: it does not count as Cilium's.
func bridgedEndpoint(m metav1.Object) bool {
	return m.GetLabels()[policybridge.ManagedByLabel] == policybridge.ManagedBy
}

// workloadRVs are the resourceVersions of the lists of readWorkloads.
type workloadRVs struct{ pods, endpoints, nodeConfigs string }

// readWorkloads lists, at the same time, the pods, the CiliumEndpoints
// (when served) and the CiliumNodeConfigs of Cilium's namespace. onPod is
// called for each pod and onEndpoint for each CiliumEndpoint, each from one
// goroutine. CiliumEndpoints or CiliumNodeConfigs that may not be listed
// are treated as not served.
func readWorkloads(ctx context.Context, cl Clients, cfg *config, onPod func(*corev1.Pod), onEndpoint func(*metav1.PartialObjectMetadata)) ([]NodeConfig, workloadRVs, error) {
	var rvs workloadRVs
	var ncs []NodeConfig
	var endpointsForbidden, nodeConfigsForbidden bool
	err := parallel(ctx,
		func(ctx context.Context) error {
			var err error
			rvs.pods, cfg.podSelector, err = listPods(ctx, cl.Kube, cfg.opts.pageSize(), onPod)
			return err
		},
		func(ctx context.Context) error {
			if !cfg.endpointsServed {
				return nil
			}
			var err error
			rvs.endpoints, err = listEndpoints(ctx, cl.Metadata, cfg.opts.pageSize(), onEndpoint)
			if apierrors.IsForbidden(err) {
				endpointsForbidden = true
				return nil
			}
			return err
		},
		func(ctx context.Context) error {
			var err error
			ncs, rvs.nodeConfigs, err = listNodeConfigs(ctx, cl.Dynamic, cfg.nodeConfigGVR, cfg.ciliumNS, cfg.opts.pageSize())
			if apierrors.IsForbidden(err) {
				nodeConfigsForbidden = true
				return nil
			}
			return err
		},
	)
	if err != nil {
		return nil, rvs, err
	}
	if endpointsForbidden {
		cfg.endpointsServed = false
	}
	if nodeConfigsForbidden {
		cfg.nodeConfigGVR = schema.GroupVersionResource{}
		cfg.readWarnings = append(cfg.readWarnings, fmt.Sprintf("listing CiliumNodeConfigs in %s is forbidden: SELECTED shows whether a node carries the default label %s",
			cfg.ciliumNS, nodeconfig.DefaultLabel))
		cfg.analyze()
	}
	return ncs, rvs, nil
}

// config is what is read before the pods: nodes, the old CNI and Cilium.
type config struct {
	nodes      []corev1.Node
	daemonSets []appsv1.DaemonSet
	configMaps map[string]*corev1.ConfigMap
	cluster    *detect.Cluster
	networks   Networks
	ciliumNS   string
	// endpointsServed: cilium.io/v2 ciliumendpoints is served.
	endpointsServed bool
	// nodeConfigGVR is the CiliumNodeConfig resource to read, the zero
	// value when none is served.
	nodeConfigGVR schema.GroupVersionResource
	warnings      []string
	// readWarnings are the warnings of reading, kept across analyses.
	readWarnings []string
	// configMapsRead are the ConfigMaps the pod networks were read from
	// (some may not exist).
	configMapsRead []detect.NamespacedName
	// podSelector is the field selector the pods were listed with.
	podSelector string
	// resourceVersions of the node and DaemonSet lists, for watches.
	nodesRV, daemonSetsRV string
	opts                  Options
	// connectivity is the latest connectivity matrix kept, if any.
	connectivity *connectivity.Matrix
}

func (c *config) isAgent(p *corev1.Pod) bool {
	return p.Namespace == c.ciliumNS && p.Labels[agentLabelKey] == agentLabelValue
}

func (c *config) input(t *Tally, endpoints int, ncs []NodeConfig) Input {
	var rules *NodeRules
	for _, ds := range c.daemonSets {
		if ds.Namespace == c.ciliumNS && ds.Name == policybridge.NodeRulesName {
			rules = &NodeRules{Desired: int(ds.Status.DesiredNumberScheduled), Ready: int(ds.Status.NumberReady)}
		}
	}
	return Input{
		NodeRules: rules,
		Cluster:   c.cluster, Nodes: c.nodes, Tally: t, CiliumNamespace: c.ciliumNS,
		Endpoints: endpoints, EndpointsServed: c.endpointsServed,
		NodeConfigs: ncs, NodeConfigsServed: !c.nodeConfigGVR.Empty(),
		Warnings: c.warnings, Connectivity: c.connectivity,
	}
}

// analyze runs detection on what was read.
func (c *config) analyze() {
	snap := &detect.Snapshot{
		Nodes: c.nodes, DaemonSets: c.daemonSets, ConfigMaps: c.configMaps,
		KubeconfigCluster: c.opts.KubeconfigCluster, APIServerURL: c.opts.APIServer,
	}
	c.cluster = detect.Analyze(snap)
	c.ciliumNS = c.opts.Namespace
	if c.ciliumNS == "" {
		c.ciliumNS = c.cluster.Cilium.Namespace
	}
	if c.ciliumNS == "" {
		c.ciliumNS = defaultNamespace
	}
	var warnings []string
	c.networks, warnings = NetworksOf(c.cluster)
	c.warnings = append(append([]string{}, c.readWarnings...), warnings...)
}

// readConfig lists nodes and DaemonSets and asks discovery about Cilium's
// resources (at the same time), then reads the ConfigMaps of the old CNI
// and of Cilium.
func readConfig(ctx context.Context, cl Clients, opts Options) (*config, error) {
	c := &config{configMaps: map[string]*corev1.ConfigMap{}, opts: opts}
	var connWarning string
	err := parallel(ctx,
		func(ctx context.Context) error {
			var err error
			c.nodesRV, err = listNodes(ctx, cl.Kube, opts.pageSize(), func(n *corev1.Node) { c.nodes = append(c.nodes, SlimNode(n)) })
			return err
		},
		func(ctx context.Context) error {
			var err error
			c.daemonSetsRV, err = listPages(ctx, opts.pageSize(), cl.Kube.AppsV1().DaemonSets("").List,
				func(l *appsv1.DaemonSetList) { c.daemonSets = append(c.daemonSets, l.Items...) })
			if err != nil {
				return fmt.Errorf("listing DaemonSets: %w", err)
			}
			return nil
		},
		func(ctx context.Context) error {
			var err error
			c.endpointsServed, c.nodeConfigGVR, err = ciliumResources(cl.Kube)
			return err
		},
		func(ctx context.Context) error {
			// The latest connectivity matrix, when one was kept: none, or
			// no right to read it, is not an error of status.
			m, err := connectivity.Latest(ctx, cl.Kube, connectivity.DefaultNamespace)
			if err == nil {
				c.connectivity = m
			} else if !apierrors.IsForbidden(err) {
				connWarning = "cannot read the latest connectivity matrix: " + err.Error()
			}
			return nil
		},
	)
	if err != nil {
		return nil, err
	}
	if connWarning != "" {
		c.readWarnings = append(c.readWarnings, connWarning)
	}
	// A first analysis finds the DaemonSets of the old CNI and of Cilium,
	// whose ConfigMaps are read for the second.
	c.analyze()
	var want []detect.NamespacedName
	if cni := c.cluster.CNI; cni != nil {
		if ds := findDaemonSet(c.daemonSets, cni.Namespace, cni.DaemonSet); ds != nil {
			for _, v := range ds.Spec.Template.Spec.Volumes {
				if v.ConfigMap != nil {
					want = append(want, detect.NamespacedName{Namespace: ds.Namespace, Name: v.ConfigMap.Name})
				}
			}
		}
		want = append(want, detect.NamespacedName{Namespace: cni.Namespace, Name: flannelConfigMap})
	}
	if ci := c.cluster.Cilium; ci.Installed {
		want = append(want, detect.NamespacedName{Namespace: ci.Namespace, Name: ciliumConfigMap})
	}
	for _, w := range want {
		key := w.Namespace + "/" + w.Name
		if _, seen := c.configMaps[key]; seen {
			continue
		}
		c.configMapsRead = append(c.configMapsRead, w)
		cm, err := cl.Kube.CoreV1().ConfigMaps(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			c.configMaps[key] = cm
		case apierrors.IsNotFound(err):
			c.configMaps[key] = nil
		case apierrors.IsForbidden(err):
			c.configMaps[key] = nil
			c.readWarnings = append(c.readWarnings, fmt.Sprintf("cannot read ConfigMap %s (forbidden): the pod networks may be incomplete", key))
		default:
			return nil, fmt.Errorf("reading ConfigMap %s: %w", key, err)
		}
	}
	for k, v := range c.configMaps {
		if v == nil {
			delete(c.configMaps, k)
		}
	}
	c.analyze()
	return c, nil
}

func findDaemonSet(dss []appsv1.DaemonSet, ns, name string) *appsv1.DaemonSet {
	for i := range dss {
		if dss[i].Namespace == ns && dss[i].Name == name {
			return &dss[i]
		}
	}
	return nil
}

// ciliumResources asks discovery whether CiliumEndpoints are served, and
// through which version CiliumNodeConfigs are read (v2, else v2alpha1 for
// Cilium < 1.16), without going through a deprecated version.
func ciliumResources(kc kubernetes.Interface) (endpoints bool, nodeConfigs schema.GroupVersionResource, err error) {
	d := kc.Discovery()
	served := func(gv string) ([]metav1.APIResource, error) {
		l, err := d.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("asking the API server for %s: %w", gv, err)
		}
		return l.APIResources, nil
	}
	has := func(rs []metav1.APIResource, name string) bool {
		for _, r := range rs {
			if r.Name == name {
				return true
			}
		}
		return false
	}
	v2, err := served(ciliumGroupV2)
	if err != nil || v2 == nil {
		// Every Cilium this plugin knows serves cilium.io/v2: without it
		// there is no Cilium CRD at all.
		return false, schema.GroupVersionResource{}, err
	}
	endpoints = has(v2, EndpointsGVR().Resource)
	if has(v2, "ciliumnodeconfigs") {
		return endpoints, nodeconfig.GVR(ciliumGroupV2), nil
	}
	v2alpha1, err := served(ciliumGroupV2alpha1)
	if err != nil {
		return false, schema.GroupVersionResource{}, err
	}
	if has(v2alpha1, "ciliumnodeconfigs") {
		return endpoints, nodeconfig.GVR(ciliumGroupV2alpha1), nil
	}
	return endpoints, schema.GroupVersionResource{}, nil
}

// SlimNode keeps of a node what status and detection read: name, labels,
// the plugin's and flannel's annotations, podCIDRs, unschedulable, the
// InternalIP and the Ready condition. Real nodes carry image lists and
// many conditions; a thousand of them slimmed take little memory.
func SlimNode(n *corev1.Node) corev1.Node {
	out := corev1.Node{}
	out.Name = n.Name
	out.ResourceVersion = n.ResourceVersion
	out.Labels = n.Labels
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, migrate.AnnotationPrefix) || strings.HasPrefix(k, "flannel.alpha.coreos.com/") {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	out.Spec.PodCIDR, out.Spec.PodCIDRs, out.Spec.Unschedulable = n.Spec.PodCIDR, n.Spec.PodCIDRs, n.Spec.Unschedulable
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			out.Status.Addresses = append(out.Status.Addresses, corev1.NodeAddress{Type: a.Type, Address: a.Address})
			break
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out
}

// listPages pages through a LIST, handing each page to each, and returns
// the resourceVersion of the last page.
func listPages[L interface {
	GetContinue() string
	GetResourceVersion() string
}](ctx context.Context, limit int64, list func(context.Context, metav1.ListOptions) (L, error), each func(L)) (string, error) {
	return listPagesWith(ctx, metav1.ListOptions{Limit: limit}, list, each)
}

func listPagesWith[L interface {
	GetContinue() string
	GetResourceVersion() string
}](ctx context.Context, opts metav1.ListOptions, list func(context.Context, metav1.ListOptions) (L, error), each func(L)) (string, error) {
	for {
		l, err := list(ctx, opts)
		if err != nil {
			return "", err
		}
		each(l)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return l.GetResourceVersion(), nil
		}
	}
}

func listNodes(ctx context.Context, kc kubernetes.Interface, limit int64, each func(*corev1.Node)) (string, error) {
	rv, err := listPages(ctx, limit, kc.CoreV1().Nodes().List, func(l *corev1.NodeList) {
		for i := range l.Items {
			each(&l.Items[i])
		}
	})
	if err != nil {
		return "", fmt.Errorf("listing nodes: %w", err)
	}
	return rv, nil
}

// listPods lists the pods of every namespace, but the finished ones, a
// page at a time. A server that refuses the field selector gets the list
// without it (the counting rules leave finished pods out anyway).
func listPods(ctx context.Context, kc kubernetes.Interface, limit int64, each func(*corev1.Pod)) (rv, selector string, err error) {
	pages := 0
	page := func(l *corev1.PodList) {
		pages++
		for i := range l.Items {
			each(&l.Items[i])
		}
	}
	selector = podFieldSelector
	rv, err = listPagesWith(ctx, metav1.ListOptions{Limit: limit, FieldSelector: selector}, kc.CoreV1().Pods("").List, page)
	if apierrors.IsBadRequest(err) && pages == 0 {
		selector = ""
		rv, err = listPages(ctx, limit, kc.CoreV1().Pods("").List, page)
	}
	if err != nil {
		return "", "", fmt.Errorf("listing pods: %w", err)
	}
	return rv, selector, nil
}

// listEndpoints lists CiliumEndpoints as metadata only.
func listEndpoints(ctx context.Context, mc metadata.Interface, limit int64, each func(*metav1.PartialObjectMetadata)) (string, error) {
	rv, err := listPages(ctx, limit, mc.Resource(EndpointsGVR()).Namespace("").List, func(l *metav1.PartialObjectMetadataList) {
		for i := range l.Items {
			each(&l.Items[i])
		}
	})
	if err != nil {
		return "", fmt.Errorf("listing CiliumEndpoints: %w", err)
	}
	return rv, nil
}

// listNodeConfigs lists the CiliumNodeConfigs of a namespace with their
// node selectors; nothing when gvr is empty (the CRD is not served).
func listNodeConfigs(ctx context.Context, dc dynamic.Interface, gvr schema.GroupVersionResource, ns string, limit int64) ([]NodeConfig, string, error) {
	if gvr.Empty() {
		return nil, "", nil
	}
	var out []NodeConfig
	rv, err := listPages(ctx, limit, dc.Resource(gvr).Namespace(ns).List, func(l *unstructured.UnstructuredList) {
		for i := range l.Items {
			out = append(out, nodeConfigOf(&l.Items[i]))
		}
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing CiliumNodeConfigs in %s: %w", ns, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, rv, nil
}

// nodeConfigOf reads a CiliumNodeConfig's spec.nodeSelector. A selector
// that does not parse selects nothing.
func nodeConfigOf(u *unstructured.Unstructured) NodeConfig {
	nc := NodeConfig{Name: u.GetName()}
	raw, found, err := unstructured.NestedMap(u.Object, "spec", "nodeSelector")
	if err != nil || !found {
		return nc
	}
	var ls metav1.LabelSelector
	if runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls) != nil {
		return nc
	}
	if sel, err := metav1.LabelSelectorAsSelector(&ls); err == nil {
		nc.Selector = sel
	}
	return nc
}

// parallel runs fns at once and returns the first error; the first to
// fail cancels the others.
func parallel(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	var once sync.Once
	first := -1
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = f(ctx); errs[i] != nil {
				once.Do(func() { first = i; cancel() })
			}
		}()
	}
	wg.Wait()
	if first >= 0 {
		return errs[first]
	}
	return nil
}

// relistError asks Watch to list everything again: a watch expired, or
// what the pod networks are read from changed.
type relistError struct{ why string }

func (e relistError) Error() string { return "list again: " + e.why }

func isRelist(err error) bool {
	var r relistError
	return errors.As(err, &r)
}
