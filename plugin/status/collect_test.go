package status

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	discoveryfake "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeCluster is a Flannel cluster with Cilium in migration mode: nodes
// worker-1..worker-(n-1) and cp, one agent pod per node, podsPerNode pods
// per node (worker-1 migrated, its pods on Cilium's pool), plus a
// hostNetwork pod and a finished pod per node.
type fakeCluster struct {
	kube *fake.Clientset
	meta *metadatafake.FakeMetadataClient
	dyn  *dynamicfake.FakeDynamicClient
}

func (f *fakeCluster) clients() Clients {
	return Clients{Kube: f.kube, Metadata: f.meta, Dynamic: f.dyn}
}

func (f *fakeCluster) actions() []k8stesting.Action {
	out := append([]k8stesting.Action{}, f.kube.Actions()...)
	out = append(out, f.meta.Actions()...)
	return append(out, f.dyn.Actions()...)
}

func newFakeCluster(t *testing.T, nodes, podsPerNode int, withCilium bool) *fakeCluster {
	t.Helper()
	var objs []runtime.Object
	var endpoints []runtime.Object
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("worker-%d", i)
		n := node(name, false, "", false, false)
		if i == 0 {
			n = node("cp", true, "", false, false)
			name = "cp"
		}
		migrated := i == 1
		if migrated {
			n = node(name, false, "done", false, true)
		}
		n.Spec.PodCIDRs = []string{fmt.Sprintf("10.244.%d.0/24", i)}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big-image:1"}, SizeBytes: 1 << 30}}
		objs = append(objs, &n)
		for j := 0; j < podsPerNode; j++ {
			ip := fmt.Sprintf("10.244.%d.%d", i, j+2)
			if migrated {
				ip = fmt.Sprintf("10.245.%d.%d", i, j+2)
			}
			p := pod(name, ip, corev1.PodRunning, false)
			p.Namespace, p.Name = "app", fmt.Sprintf("p-%d-%d", i, j)
			objs = append(objs, p)
			if migrated {
				endpoints = append(endpoints, &metav1.PartialObjectMetadata{
					TypeMeta:   metav1.TypeMeta{APIVersion: "cilium.io/v2", Kind: "CiliumEndpoint"},
					ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: p.Name},
				})
			}
		}
		hn := pod(name, "127.1.0."+strconv.Itoa(i+1), corev1.PodRunning, true)
		hn.Namespace, hn.Name = "kube-system", "kube-proxy-"+name
		done := pod(name, fmt.Sprintf("10.244.%d.250", i), corev1.PodSucceeded, false)
		done.Namespace, done.Name = "app", "job-"+name
		objs = append(objs, hn, done)
		if withCilium {
			a := pod(name, "127.1.0."+strconv.Itoa(i+1), corev1.PodRunning, true)
			a.Namespace, a.Name, a.Labels = "kube-system", "cilium-"+name, map[string]string{"k8s-app": "cilium"}
			a.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			objs = append(objs, a)
		}
	}
	flannel := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds", Labels: map[string]string{"app": "flannel"}}}
	flannel.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "flannel-cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "kube-flannel-cfg"}}}}}
	flannel.Spec.Template.Spec.Containers = []corev1.Container{{Name: "kube-flannel", Image: "ghcr.io/flannel-io/flannel:v0.28.4"}}
	objs = append(objs, flannel, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-cfg"},
		Data:       map[string]string{"net-conf.json": `{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`},
	})
	var ncs []runtime.Object
	if withCilium {
		cilium := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium", Labels: map[string]string{"k8s-app": "cilium"}}}
		cilium.Spec.Template.Spec.Containers = []corev1.Container{{Name: "cilium-agent", Image: "quay.io/cilium/cilium:v1.18.11"}}
		cilium.Status.NumberReady, cilium.Status.DesiredNumberScheduled = int32(nodes), int32(nodes)
		objs = append(objs, cilium, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"},
			Data:       map[string]string{"custom-cni-conf": "true", "cluster-pool-ipv4-cidr": "10.245.0.0/16"},
		})
		nc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cilium.io/v2", "kind": "CiliumNodeConfig",
			"metadata": map[string]any{"namespace": "kube-system", "name": "cilium-default"},
			"spec":     map[string]any{"nodeSelector": map[string]any{"matchLabels": map[string]any{migrationLabel: "true"}}},
		}}
		ncs = append(ncs, nc)
	}
	kube := fake.NewClientset(objs...)
	if withCilium {
		kube.Discovery().(*discoveryfake.FakeDiscovery).Resources = []*metav1.APIResourceList{{
			GroupVersion: "cilium.io/v2",
			APIResources: []metav1.APIResource{{Name: "ciliumendpoints", Namespaced: true}, {Name: "ciliumnodeconfigs", Namespaced: true}},
		}}
	}
	paginate(kube, "pods")
	paginate(kube, "nodes")
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, endpoints...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "cilium.io", Version: "v2", Resource: "ciliumnodeconfigs"}: "CiliumNodeConfigList"}, ncs...)
	return &fakeCluster{kube: kube, meta: md, dyn: dyn}
}

// paginate makes the fake clientset honour limit and continue for a
// resource, as the API server does. The fake ignores field selectors, so
// the finished pods come back and must be left out by status itself.
func paginate(c *fake.Clientset, resource string) {
	c.PrependReactor("list", resource, func(action k8stesting.Action) (bool, runtime.Object, error) {
		la := action.(k8stesting.ListActionImpl)
		gvr := la.GetResource()
		gvk := gvr.GroupVersion().WithKind(map[string]string{"pods": "Pod", "nodes": "Node"}[resource])
		obj, err := c.Tracker().List(gvr, gvk, la.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		items, err := meta.ExtractList(obj)
		if err != nil {
			return true, nil, err
		}
		sort.Slice(items, func(i, j int) bool {
			a, _ := meta.Accessor(items[i])
			b, _ := meta.Accessor(items[j])
			return a.GetNamespace()+"/"+a.GetName() < b.GetNamespace()+"/"+b.GetName()
		})
		start := 0
		if la.ListOptions.Continue != "" {
			if start, err = strconv.Atoi(la.ListOptions.Continue); err != nil {
				return true, nil, apierrors.NewBadRequest("bad continue token")
			}
		}
		end := len(items)
		if l := int(la.ListOptions.Limit); l > 0 && start+l < end {
			end = start + l
		}
		if err := meta.SetList(obj, items[start:end]); err != nil {
			return true, nil, err
		}
		lm, _ := meta.ListAccessor(obj)
		lm.SetResourceVersion("42")
		if end < len(items) {
			lm.SetContinue(strconv.Itoa(end))
		}
		return true, obj, nil
	})
}

func TestCollect(t *testing.T) {
	f := newFakeCluster(t, 6, 7, true)
	r, err := Collect(context.Background(), f.clients(), Options{PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	// 6 nodes x 7 pods; the hostNetwork, agent and finished pods do not count.
	if want := (Pods{Total: 42, ManagedByCilium: 7, ManagedMethod: MethodEndpoints, OldCIDR: 35, NewCIDR: 7}); r.Pods != want {
		t.Errorf("pods %+v, want %+v", r.Pods, want)
	}
	if r.Cluster.OldCNI != "flannel" || len(r.Cluster.OldPodCIDRs) != 1 || r.Cluster.OldPodCIDRs[0] != "10.244.0.0/16" {
		t.Errorf("cluster %+v", r.Cluster)
	}
	if c := r.Cluster.Cilium; !c.Installed || !c.MigrationMode || c.Namespace != "kube-system" || c.Version != "1.18.11" || len(c.NodeConfigs) != 1 {
		t.Errorf("cilium %+v", c)
	}
	if r.Nodes[0].Name != "worker-1" || r.Nodes[0].Migration != MigrationDone || !r.Nodes[0].Selected ||
		r.Nodes[0].Pods != (NodePods{NewCIDR: 7}) || r.Nodes[0].CiliumAgent != (Agent{Pod: "cilium-worker-1", Ready: true}) {
		t.Errorf("worker-1 %+v", r.Nodes[0])
	}
	if last := r.Nodes[len(r.Nodes)-1]; last.Name != "cp" || !last.ControlPlane || last.Pods.OldCIDR != 7 {
		t.Errorf("last node %+v", last)
	}
	if r.Next.Command != "kubectl cni-migrate node worker-2" {
		t.Errorf("next %+v", r.Next)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q", r.Warnings)
	}

	// Every list is paginated, pods are asked without the finished ones.
	// (The metadata and dynamic fakes do not record list options.)
	for _, a := range f.kube.Actions() {
		if la, ok := a.(k8stesting.ListActionImpl); ok {
			if la.ListOptions.Limit != 5 {
				t.Errorf("%s %s without limit 5: %+v", a.GetVerb(), a.GetResource().Resource, la.ListOptions)
			}
			if a.GetResource().Resource == "pods" && la.ListOptions.FieldSelector != "status.phase!=Succeeded,status.phase!=Failed" {
				t.Errorf("pods listed with field selector %q", la.ListOptions.FieldSelector)
			}
		}
		if a.GetVerb() == "get" && a.GetResource().Resource != "configmaps" && a.GetResource().Resource != "resource" {
			t.Errorf("a get of %s: status reads objects by listing them", a.GetResource().Resource)
		}
	}
}

// TestCollectRequestsDoNotGrowWithNodes: the number of requests depends on
// the number of pages, not on the number of nodes or pods.
func TestCollectRequestsDoNotGrowWithNodes(t *testing.T) {
	count := func(nodes, podsPerNode int, pageSize int64) map[string]int {
		f := newFakeCluster(t, nodes, podsPerNode, true)
		if _, err := Collect(context.Background(), f.clients(), Options{PageSize: pageSize}); err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, a := range f.actions() {
			m[a.GetVerb()+" "+a.GetResource().Resource]++
		}
		return m
	}
	small, big := count(3, 2, 10000), count(40, 10, 10000)
	if fmt.Sprint(small) != fmt.Sprint(big) {
		t.Errorf("requests grow with the cluster: 3 nodes %v, 40 nodes %v", small, big)
	}
	// get configmaps: the old CNI's, Cilium's and the latest connectivity matrix.
	if small["list pods"] != 1 || small["list nodes"] != 1 || small["get configmaps"] != 3 {
		t.Errorf("requests %v", small)
	}
	// 40 nodes x (10 pods + kube-proxy + finished + agent) = 520 pods:
	// 11 pages of 50; 40 nodes: 1 page.
	if paged := count(40, 10, 50); paged["list pods"] != 11 || paged["list nodes"] != 1 {
		t.Errorf("paged requests %v", paged)
	}
}

func TestCollectBeforeCilium(t *testing.T) {
	f := newFakeCluster(t, 3, 2, false)
	r, err := Collect(context.Background(), f.clients(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// worker-1 is annotated done but has pods on 10.245 (no pool known):
	// they are "other"; the rest are on the old CIDR.
	if r.Pods.ManagedMethod != MethodNone || r.Pods.ManagedByCilium != 0 || r.Pods.OldCIDR != 4 || r.Pods.Other != 2 || r.Pods.Total != 6 {
		t.Errorf("pods %+v", r.Pods)
	}
	if r.Cluster.Cilium.Installed || r.Next.Stage != StageInstallCilium {
		t.Errorf("cilium %+v next %+v", r.Cluster.Cilium, r.Next)
	}
	for _, a := range f.actions() {
		if r := a.GetResource(); r.Group == "cilium.io" {
			t.Errorf("asked for %v without the cilium.io API", r)
		}
	}
}

func TestCollectForbiddenEndpoints(t *testing.T) {
	f := newFakeCluster(t, 3, 2, true)
	f.meta.PrependReactor("list", "ciliumendpoints", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "cilium.io", Resource: "ciliumendpoints"}, "", fmt.Errorf("no"))
	})
	r, err := Collect(context.Background(), f.clients(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pods.ManagedMethod != MethodPodIPs || r.Pods.ManagedByCilium != 2 {
		t.Errorf("pods %+v", r.Pods)
	}
}

func TestCollectError(t *testing.T) {
	f := newFakeCluster(t, 3, 2, true)
	f.kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", fmt.Errorf("no"))
	})
	_, err := Collect(context.Background(), f.clients(), Options{})
	if !apierrors.IsForbidden(err) || err.Error()[:12] != "listing pods" {
		t.Errorf("err %v", err)
	}
}

func TestWatch(t *testing.T) {
	f := newFakeCluster(t, 3, 1, true)
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan *Report, 10)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, f.clients(), Options{}, func(r *Report) error { reports <- r; return nil })
	}()
	next := func() *Report {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case err := <-done:
			t.Fatalf("Watch returned %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no report")
		}
		return nil
	}
	if r := next(); r.Pods.Total != 3 || r.Rollout.Done != 1 {
		t.Fatalf("first report: pods %+v rollout %+v", r.Pods, r.Rollout)
	}

	// A new pod on Cilium's pool and its endpoint, then worker-2 done.
	p := pod("worker-2", "10.245.2.9", corev1.PodRunning, false)
	p.Namespace, p.Name = "app", "new"
	if _, err := f.kube.CoreV1().Pods("app").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "cilium.io/v2", Kind: "CiliumEndpoint"}, ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "new"}}
	if err := f.meta.Tracker().Create(EndpointsGVR(), ep, "app"); err != nil {
		t.Fatal(err)
	}
	n, err := f.kube.CoreV1().Nodes().Get(ctx, "worker-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Annotations = map[string]string{"cni-migrate.io/phase": "done"}
	n.Labels[migrationLabel] = "true"
	if _, err := f.kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		var r *Report
		select {
		case r = <-reports:
		case <-deadline:
			t.Fatal("the changes never showed")
		}
		if r.Pods.Total == 4 && r.Pods.NewCIDR == 2 && r.Pods.ManagedByCilium == 2 && r.Rollout.Done == 2 {
			if r.Next.Command != "kubectl cni-migrate node cp" {
				t.Errorf("next %+v", r.Next)
			}
			break
		}
	}
	// A finished pod leaves the count (the server sends it as deleted
	// through the field selector; the fake sends the update).
	p.Status.Phase = corev1.PodSucceeded
	if _, err := f.kube.CoreV1().Pods("app").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.After(10 * time.Second)
	for r := range reports {
		if r.Pods.Total == 3 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the finished pod is still counted")
		default:
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not stop")
	}
}
