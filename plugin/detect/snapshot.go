// Package detect reads a cluster and describes its current network: the CNI
// and its settings, pod and service networks, kube-proxy, nodes, Cilium, and
// the objects that matter for a migration (NetworkPolicies, blocking PDBs).
//
// Fetch makes a bounded number of API requests (lists, not per-object gets)
// into a Snapshot; Analyze is pure and turns a Snapshot into a Cluster, so
// detection logic is tested with fixtures and no API server.
package detect

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Snapshot is the raw material detection works from.
type Snapshot struct {
	ServerVersion string
	Nodes         []corev1.Node
	// DaemonSets in every namespace.
	DaemonSets []appsv1.DaemonSet
	// ConfigMaps that were looked up, keyed "namespace/name". A missing key
	// means the ConfigMap does not exist.
	ConfigMaps map[string]*corev1.ConfigMap
	// SystemPods are the pods in kube-system (static control-plane pods,
	// static kube-proxy pods).
	SystemPods []corev1.Pod
	// ServiceCIDRs from networking.k8s.io ServiceCIDR objects, nil when the
	// API is not served.
	ServiceCIDRs []string
	// KubernetesServiceIP is the ClusterIP of default/kubernetes.
	KubernetesServiceIP string
	NetworkPolicies     []NamespacedName
	PolicyIPBlocks      []PolicyIPBlock
	PolicyPorts         []PolicyPort
	// NamedPorts are read from every pod when an egress rule names a port.
	NamedPorts []NamedPort
	PDBs       []policyv1.PodDisruptionBudget
	// From the kubeconfig.
	KubeconfigCluster string
	APIServerURL      string

	// Calico's objects, read with the dynamic client (see FetchCalico);
	// empty when its CRDs are not installed.
	//
	// CalicoInstallations are operator.tigera.io/v1 Installations (an
	// operator install).
	CalicoInstallations []unstructured.Unstructured
	// CalicoIPPools are crd.projectcalico.org/v1 IPPools.
	CalicoIPPools []unstructured.Unstructured
	// CalicoFelixConfig is the FelixConfiguration named default, or nil.
	CalicoFelixConfig *unstructured.Unstructured
	// CalicoPolicies are crd.projectcalico.org/v1 NetworkPolicies and
	// GlobalNetworkPolicies (namespace "").
	CalicoPolicies []NamespacedName
}

// NamespacedName names a namespaced object.
type NamespacedName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// cmKey is the Snapshot.ConfigMaps key.
func cmKey(ns, name string) string { return ns + "/" + name }

// ConfigMap returns the named ConfigMap from the snapshot, or nil.
func (s *Snapshot) ConfigMap(ns, name string) *corev1.ConfigMap {
	return s.ConfigMaps[cmKey(ns, name)]
}

// Fetch reads everything detection needs. Errors are returned as they come
// from client-go; callers classify them (see kube.Classify). dyn reads
// Calico's custom resources; with a nil dyn they are left out.
func Fetch(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface) (*Snapshot, error) {
	s := &Snapshot{ConfigMaps: map[string]*corev1.ConfigMap{}}

	v, err := c.Discovery().ServerVersion()
	if err != nil {
		return nil, err
	}
	s.ServerVersion = v.GitVersion

	if err := listPages(ctx, c.CoreV1().Nodes().List,
		func(l *corev1.NodeList) { s.Nodes = append(s.Nodes, l.Items...) }); err != nil {
		return nil, err
	}
	if err := listPages(ctx, c.AppsV1().DaemonSets("").List,
		func(l *appsv1.DaemonSetList) { s.DaemonSets = append(s.DaemonSets, l.Items...) }); err != nil {
		return nil, err
	}
	if err := listPages(ctx, c.CoreV1().Pods("kube-system").List,
		func(l *corev1.PodList) { s.SystemPods = append(s.SystemPods, l.Items...) }); err != nil {
		return nil, err
	}
	if err := listPages(ctx, c.NetworkingV1().NetworkPolicies("").List, func(l *networkingv1.NetworkPolicyList) {
		for _, np := range l.Items {
			s.NetworkPolicies = append(s.NetworkPolicies, NamespacedName{np.Namespace, np.Name})
			s.PolicyIPBlocks = append(s.PolicyIPBlocks, ipBlocksOf(&np)...)
			s.PolicyPorts = append(s.PolicyPorts, policyPortsOf(&np)...)
		}
	}); err != nil {
		return nil, err
	}
	// Cilium resolves an egress rule's port name over every pod of the
	// cluster: only then are they all read.
	if names := egressPortNames(s.PolicyPorts); len(names) > 0 {
		var pods []corev1.Pod
		if err := listPages(ctx, c.CoreV1().Pods("").List,
			func(l *corev1.PodList) { pods = append(pods, l.Items...) }); err != nil {
			return nil, err
		}
		s.NamedPorts = namedPortsOf(pods, names)
	}
	if err := listPages(ctx, c.PolicyV1().PodDisruptionBudgets("").List,
		func(l *policyv1.PodDisruptionBudgetList) { s.PDBs = append(s.PDBs, l.Items...) }); err != nil {
		return nil, err
	}

	// ServiceCIDR objects: GA networking.k8s.io/v1 from Kubernetes 1.33,
	// v1beta1 from 1.31. Older servers answer 404 and we fall back.
	if l, err := c.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{}); err == nil {
		for _, sc := range l.Items {
			s.ServiceCIDRs = append(s.ServiceCIDRs, sc.Spec.CIDRs...)
		}
	} else if apierrors.IsNotFound(err) {
		if l, err := c.NetworkingV1beta1().ServiceCIDRs().List(ctx, metav1.ListOptions{}); err == nil {
			for _, sc := range l.Items {
				s.ServiceCIDRs = append(s.ServiceCIDRs, sc.Spec.CIDRs...)
			}
		} else if !ignorable(err) {
			return nil, err
		}
	} else if !ignorable(err) {
		return nil, err
	}

	if svc, err := c.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err == nil {
		s.KubernetesServiceIP = svc.Spec.ClusterIP
	} else if !ignorable(err) {
		return nil, err
	}

	// ConfigMaps: the fixed ones, then those the CNI DaemonSets mount or
	// take environment variables from.
	want := []NamespacedName{
		{"kube-system", "kube-proxy"},
		{"kube-system", "kubeadm-config"},
	}
	for _, ds := range s.DaemonSets {
		if sourceCNIOf(&ds) != "" || isCiliumDS(&ds) || foreignCNI(&ds) != "" {
			for _, name := range referencedConfigMaps(&ds) {
				want = append(want, NamespacedName{ds.Namespace, name})
			}
		}
		if isCiliumDS(&ds) {
			want = append(want, NamespacedName{ds.Namespace, "cilium-config"})
		}
	}
	asked := map[NamespacedName]bool{}
	for _, w := range want {
		if _, seen := s.ConfigMaps[cmKey(w.Namespace, w.Name)]; seen || asked[w] {
			continue
		}
		asked[w] = true
		// Only a missing ConfigMap is "not there": one that cannot be read
		// (Forbidden) would be taken for absent, and an absent
		// cilium-config or CNI configuration changes what the plugin
		// decides (migration mode, the strategy, the CIDRs).
		cm, err := c.CoreV1().ConfigMaps(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			s.ConfigMaps[cmKey(w.Namespace, w.Name)] = cm
		case apierrors.IsNotFound(err):
		default:
			return nil, err
		}
	}
	if dyn != nil {
		if err := FetchCalico(ctx, dyn, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ignorable reports errors that mean "not there" rather than "broken":
// missing objects, unserved APIs and permission to read a single optional
// object. Permission problems on the main lists are not ignored.
func ignorable(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err)
}

// listPages pages through a list, 500 items a page, handing each page to
// each, so memory stays bounded by what callers keep rather than by the size
// of one response.
func listPages[L interface{ GetContinue() string }](ctx context.Context, list func(context.Context, metav1.ListOptions) (L, error), each func(L)) error {
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := list(ctx, opts)
		if err != nil {
			return err
		}
		each(l)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}
