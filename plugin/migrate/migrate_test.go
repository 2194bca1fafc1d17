package migrate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// world is a fake cluster with one worker and a control-plane node, Cilium
// in migration mode, and a goroutine that plays the DaemonSet controller
// (a deleted agent is replaced by a Ready one) and the Job controller plus
// kubelet (a probe Job gets a pod that succeeds with probeIP).
type world struct {
	t       *testing.T
	kube    *fake.Clientset
	dyn     *dynamicfake.FakeDynamicClient
	cluster *detect.Cluster
	probeIP atomic.Value
	uid     atomic.Int64
	boots   atomic.Int64
	stderr  *bytes.Buffer
	mu      sync.Mutex
	// denied are the permissions the user lacks ("patch pods/status").
	denied map[string]bool
	// staleAgent keeps the agent pods' status as it was before a reboot
	// (the kubelet has not reported on them yet).
	staleAgent bool
}

func readyNode(name string, cp bool, ann map[string]string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("node-" + name), Labels: map[string]string{"kubernetes.io/hostname": name}, Annotations: ann},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}},
			NodeInfo:   corev1.NodeSystemInfo{BootID: "boot-1"},
		},
	}
	if cp {
		n.Labels[detect.LabelControlPlane] = ""
	}
	return n
}

func agentPod(name, uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, UID: types.UID(uid), Labels: map[string]string{"k8s-app": "cilium"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "cilium", UID: "ds", Controller: ptr(true)}}},
		Spec: corev1.PodSpec{NodeName: "worker-1", HostNetwork: true},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: AgentContainerName, Ready: true, ContainerID: "containerd://" + uid}}},
	}
}

func newWorld(t *testing.T, workerAnn map[string]string, extra ...runtime.Object) *world {
	w := &world{t: t, stderr: &bytes.Buffer{}}
	w.probeIP.Store("10.245.1.9")
	objs := []runtime.Object{
		readyNode("worker-1", false, workerAnn),
		readyNode("control-plane", true, nil),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium", UID: "ds"}},
		agentPod("cilium-old", "agent-old"),
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web-1", UID: "web-1",
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr(true)}}},
			Spec:   corev1.PodSpec{NodeName: "worker-1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.5"},
		},
	}
	w.kube = fake.NewClientset(append(objs, extra...)...)
	// SelfSubjectAccessReviews: allowed unless listed in w.denied.
	w.kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview).DeepCopy()
		ra := r.Spec.ResourceAttributes
		res := ra.Resource
		if ra.Subresource != "" {
			res += "/" + ra.Subresource
		}
		w.mu.Lock()
		r.Status.Allowed = !w.denied[ra.Verb+" "+res]
		w.mu.Unlock()
		return true, r, nil
	})
	// The fake assigns no UIDs; the migration tells pods apart by UID.
	w.kube.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if ca, ok := a.(k8stesting.CreateAction); ok {
			if m, err := meta.Accessor(ca.GetObject()); err == nil && m.GetUID() == "" {
				m.SetUID(types.UID(fmt.Sprintf("uid-%d", w.uid.Add(1))))
			}
		}
		return false, nil, nil
	})
	// Serve the eviction API; an eviction deletes the pod (PDBs are not simulated).
	w.kube.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "pods", Kind: "Pod", Namespaced: true},
		{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1", Namespaced: true},
	}}, {GroupVersion: "cilium.io/v2", APIResources: []metav1.APIResource{
		{Name: "ciliumnodeconfigs", Kind: "CiliumNodeConfig", Namespaced: true},
	}}}
	w.kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateActionImpl)
		if !ok || a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := ca.Object.(*policyv1.Eviction)
		if ev.DeleteOptions != nil && len(ev.DeleteOptions.DryRun) > 0 {
			return true, nil, nil
		}
		return true, nil, w.kube.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, ev.Namespace, ev.Name)
	})
	ncfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNodeConfig",
		"metadata": map[string]any{"namespace": "kube-system", "name": "cilium-default"},
		"spec": map[string]any{"nodeSelector": map[string]any{"matchLabels": map[string]any{"io.cilium.migration/cilium-default": "true"}},
			"defaults": map[string]any{"custom-cni-conf": "false"}},
	}}
	gvrs := map[schema.GroupVersionResource]string{
		nodeconfig.GVR("cilium.io/v2"):       "CiliumNodeConfigList",
		nodeconfig.GVR("cilium.io/v2alpha1"): "CiliumNodeConfigList",
	}
	w.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), gvrs, ncfg)
	w.cluster = &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium", Version: "1.18.11",
		MigrationMode: true, PodCIDRs: []string{"10.245.0.0/16"}}}
	return w
}

// controllers plays the DaemonSet and Job controllers and the kubelet.
func (w *world) controllers(ctx context.Context) {
	pw, err := w.kube.CoreV1().Pods("kube-system").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Error(err)
		return
	}
	jw, err := w.kube.BatchV1().Jobs("kube-system").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Error(err)
		return
	}
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-pw.ResultChan():
			p, ok := e.Object.(*corev1.Pod)
			if e.Type == watch.Deleted && ok && p.Labels["k8s-app"] == "cilium" {
				n++
				_, _ = w.kube.CoreV1().Pods("kube-system").Create(ctx, agentPod(fmt.Sprintf("cilium-new-%d", n), fmt.Sprintf("agent-new-%d", n)), metav1.CreateOptions{})
			}
		case e := <-jw.ResultChan():
			j, ok := e.Object.(*batchv1.Job)
			if e.Type != watch.Added || !ok {
				continue
			}
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: j.Namespace, Name: j.Name + "-" + string(j.UID), Labels: map[string]string{JobNameLabel: j.Name},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: ptr(true)}}},
				Spec:   j.Spec.Template.Spec,
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, PodIP: w.probeIP.Load().(string)},
			}
			_, _ = w.kube.CoreV1().Pods(j.Namespace).Create(ctx, p, metav1.CreateOptions{})
		}
	}
}

func (w *world) migrator(opts Options, run CommandRunner) *Migrator {
	cl := &kube.Clients{Kube: w.kube, Dynamic: w.dyn, Server: "https://fake"}
	return New(cl, opts, NewProgress(w.stderr, false, output.Style{}, nil), run)
}

// reboots returns a CommandRunner that changes the node's bootID (to
// boot-2, then boot-3, ...).
func (w *world) reboots(calls *[][]string) CommandRunner {
	return func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
		w.mu.Lock()
		*calls = append(*calls, argv)
		w.mu.Unlock()
		node := argv[len(argv)-1]
		boot := w.boots.Add(1) + 1
		patch := []byte(fmt.Sprintf(`{"status":{"nodeInfo":{"bootID":"boot-%d"}}}`, boot))
		if _, err := w.kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			return err
		}
		if w.staleAgent {
			return nil
		}
		// The kubelet of the new boot runs the agent in a new container.
		pods, err := w.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium", FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: AgentContainerName, Ready: true, ContainerID: fmt.Sprintf("containerd://%s-boot-%d", p.UID, boot)}}
			if _, err := w.kube.CoreV1().Pods("kube-system").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		return nil
	}
}

func (w *world) node(name string) *corev1.Node {
	n, err := w.kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) run(ctx context.Context, opts Options, run CommandRunner, names ...string) (*Summary, error) {
	m := w.migrator(opts, run)
	plan, err := m.Preflight(ctx, w.cluster, names)
	if err != nil {
		return nil, err
	}
	return m.Run(ctx, plan)
}

func commandOptions(t *testing.T) Options {
	o := testOptions()
	o.Reboot = RebootCommand
	o.RebootCommand = mustTemplate(t, "reboot-node {{.Node}}")
	o.AgentTimeout, o.ProbeTimeout, o.RebootTimeout, o.DrainTimeout = 10*time.Second, 10*time.Second, 10*time.Second, 10*time.Second
	return o
}

func startControllers(t *testing.T, w *world) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	go w.controllers(ctx)
	time.Sleep(50 * time.Millisecond) // let the fake watches start
	return ctx
}

func TestMigrateNodeEndToEndFake(t *testing.T) {
	w := newWorld(t, nil)
	ctx := startControllers(t, w)
	var calls [][]string
	s, err := w.run(ctx, commandOptions(t), w.reboots(&calls), "worker-1")
	if err != nil {
		t.Fatalf("%v\n%s", err, w.stderr)
	}
	n := w.node("worker-1")
	a := n.Annotations
	if a[AnnotationPhase] != "done" || a[AnnotationWasUnschedulable] != "false" || a[AnnotationBootID] != "boot-1" || a[AnnotationReboot] != "command" {
		t.Errorf("annotations %v", a)
	}
	if _, err := time.Parse(time.RFC3339, a[AnnotationPhaseTime]); err != nil {
		t.Errorf("phase-time: %v", err)
	}
	if n.Labels["io.cilium.migration/cilium-default"] != "true" || n.Spec.Unschedulable {
		t.Errorf("labels %v unschedulable %v", n.Labels, n.Spec.Unschedulable)
	}
	if len(calls) != 1 || strings.Join(calls[0], " ") != "reboot-node worker-1" {
		t.Errorf("reboot calls %q", calls)
	}
	if _, err := w.kube.CoreV1().Pods("demo").Get(ctx, "web-1", metav1.GetOptions{}); err == nil {
		t.Error("web-1 was not drained")
	}
	if jobs, _ := w.kube.BatchV1().Jobs("kube-system").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Error("probe Job left behind")
	}
	if len(s.Nodes) != 1 || s.Nodes[0].Result != ResultMigrated || s.Nodes[0].PhaseBefore != PhaseNone || s.Nodes[0].PhaseAfter != PhaseDone || len(s.Nodes[0].Steps) != 7 || s.Nodes[0].Seconds <= 0 {
		t.Errorf("summary %+v", s)
	}
	out := w.stderr.String()
	for _, want := range []string{"worker-1: cordon", "worker-1: drain", "evicted 1 pod", "cilium-new-1 replaced cilium-old", "bootID boot-1 -> boot-2", "probe pod got 10.245.1.9 (in 10.245.0.0/16)", "worker-1: uncordon"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}

	// A second run changes nothing.
	w.kube.ClearActions()
	w.stderr.Reset()
	s, err = w.run(ctx, commandOptions(t), w.reboots(&calls), "worker-1")
	if err != nil || s.Nodes[0].Result != ResultAlreadyDone {
		t.Fatalf("second run: %v %+v", err, s)
	}
	for _, a := range w.kube.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "get" && a.GetVerb() != "watch" {
			t.Errorf("second run wrote: %v", a)
		}
	}
	if !strings.Contains(w.stderr.String(), "already migrated") {
		t.Errorf("stderr %s", w.stderr)
	}
}

func TestMigrateVerificationFailsOutsidePool(t *testing.T) {
	w := newWorld(t, nil)
	w.probeIP.Store("10.244.1.77")
	ctx := startControllers(t, w)
	var calls [][]string
	_, err := w.run(ctx, commandOptions(t), w.reboots(&calls), "worker-1")
	if errs.Code(err) != errs.VerificationFailed || !strings.Contains(err.Error(), "10.244.1.77, outside Cilium's pod CIDR 10.245.0.0/16") {
		t.Fatalf("err %v", err)
	}
	n := w.node("worker-1")
	if !n.Spec.Unschedulable || n.Annotations[AnnotationPhase] != string(PhaseRebooted) {
		t.Errorf("node unschedulable=%v phase=%q", n.Spec.Unschedulable, n.Annotations[AnnotationPhase])
	}
	// The probe Job is kept for its logs.
	if _, err := w.kube.BatchV1().Jobs("kube-system").Get(ctx, ProbeName("worker-1"), metav1.GetOptions{}); err != nil {
		t.Errorf("probe Job: %v", err)
	}
	// Resuming re-runs only the verification (replacing the old Job).
	w.probeIP.Store("10.245.1.10")
	s, err := w.run(ctx, commandOptions(t), w.reboots(&calls), "worker-1")
	if err != nil || s.Nodes[0].PhaseBefore != PhaseRebooted || len(s.Nodes[0].Steps) != 2 {
		t.Fatalf("resume: %v %+v", err, s)
	}
	if len(calls) != 1 {
		t.Errorf("rebooted %d times", len(calls))
	}
}

func TestMigrateManualRebootAndWasCordoned(t *testing.T) {
	w := newWorld(t, nil)
	n := w.node("worker-1")
	n.Spec.Unschedulable = true
	if _, err := w.kube.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := startControllers(t, w)
	opts := commandOptions(t)
	opts.Reboot, opts.RebootCommand = RebootManual, nil
	opts.ResumeCommand = "kubectl cni-migrate node worker-1"
	s, err := w.run(ctx, opts, nil, "worker-1")
	if errs.Code(err) != errs.WaitingForReboot || !strings.Contains(err.Error(), "run kubectl cni-migrate node worker-1 to continue") {
		t.Fatalf("err %v", err)
	}
	if s.Nodes[0].Result != ResultWaitingForReboot || s.Nodes[0].PhaseAfter != PhaseAgentRestarted || s.Resume == "" {
		t.Errorf("summary %+v", s)
	}
	n = w.node("worker-1")
	if n.Annotations[AnnotationBootID] != "boot-1" || n.Annotations[AnnotationWasUnschedulable] != "true" {
		t.Errorf("annotations %v", n.Annotations)
	}
	// Not rebooted yet: the same answer.
	if _, err := w.run(ctx, opts, nil, "worker-1"); errs.Code(err) != errs.WaitingForReboot {
		t.Fatalf("second run: %v", err)
	}
	var calls [][]string
	if err := w.reboots(&calls)(ctx, []string{"worker-1"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.run(ctx, opts, nil, "worker-1"); err != nil {
		t.Fatalf("after reboot: %v\n%s", err, w.stderr)
	}
	n = w.node("worker-1")
	if n.Annotations[AnnotationPhase] != "done" || !n.Spec.Unschedulable {
		t.Errorf("a node cordoned before the migration must stay cordoned: %v %v", n.Annotations, n.Spec.Unschedulable)
	}
	if !strings.Contains(w.stderr.String(), "left cordoned") {
		t.Errorf("stderr %s", w.stderr)
	}
}

func TestMigrateInterrupted(t *testing.T) {
	w := newWorld(t, nil)
	ctx := startControllers(t, w)
	rctx, cancel := context.WithCancel(ctx)
	opts := commandOptions(t)
	opts.ResumeCommand = "kubectl cni-migrate node worker-1 --reboot-command 'reboot-node {{.Node}}'"
	// Ctrl-C while the reboot command runs.
	run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	s, err := w.run(rctx, opts, run, "worker-1")
	if errs.Code(err) != errs.Interrupted || !strings.Contains(err.Error(), "step reboot of node worker-1; its phase agent-restarted is recorded") ||
		!strings.Contains(err.Error(), opts.ResumeCommand) {
		t.Fatalf("err %v", err)
	}
	if s.Nodes[0].Result != ResultInterrupted || s.ExitCode != errs.Interrupted || s.Result != "interrupted" {
		t.Errorf("summary %+v", s)
	}
	if p := w.node("worker-1").Annotations[AnnotationPhase]; p != string(PhaseAgentRestarted) {
		t.Errorf("phase %q", p)
	}
	var calls [][]string
	if _, err := w.run(ctx, opts, w.reboots(&calls), "worker-1"); err != nil {
		t.Fatalf("resume: %v", err)
	}
}

func TestMigrateServerDryRun(t *testing.T) {
	w := newWorld(t, nil)
	// No controllers: a dry run waits for nothing. (The fake applies dry-run
	// writes anyway; only the options sent are checked.)
	ctx := context.Background()
	opts := commandOptions(t)
	opts.DryRun = true
	var calls [][]string
	s, err := w.run(ctx, opts, w.reboots(&calls), "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if s.DryRun != "server" || s.Nodes[0].Result != ResultDryRun || s.Nodes[0].PhaseAfter != PhaseNone || len(calls) != 0 {
		t.Errorf("summary %+v calls %v", s, calls)
	}
	for _, a := range w.kube.Actions() {
		var dry []string
		switch a := a.(type) {
		case k8stesting.PatchActionImpl:
			dry = a.PatchOptions.DryRun
		case k8stesting.CreateActionImpl:
			if a.GetResource().Resource == "selfsubjectaccessreviews" {
				continue // a question, not a change
			}
			dry = a.CreateOptions.DryRun
			if ev, ok := a.Object.(*policyv1.Eviction); ok {
				dry = ev.DeleteOptions.DryRun
			}
		case k8stesting.DeleteActionImpl:
			dry = a.DeleteOptions.DryRun
		case k8stesting.UpdateActionImpl:
			dry = a.UpdateOptions.DryRun
		default:
			continue
		}
		if len(dry) != 1 || dry[0] != metav1.DryRunAll {
			t.Errorf("%s %s sent without dry run", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestPreflight(t *testing.T) {
	done := map[string]string{AnnotationPhase: "done"}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		change  func(*world, *Options)
		nodes   []string
		code    int
		wantMsg string
		order   []string
	}{
		{name: "ok", nodes: []string{"worker-1"}, order: []string{"worker-1"}},
		{name: "missing node", nodes: []string{"worker-9"}, code: errs.Precondition, wantMsg: "node worker-9 not found"},
		{name: "bad phase", ann: map[string]string{AnnotationPhase: "x"}, nodes: []string{"worker-1"}, code: errs.Precondition, wantMsg: "not a phase"},
		{name: "control plane before workers", nodes: []string{"control-plane"}, code: errs.Precondition,
			wantMsg: "node control-plane is a control-plane node and 1 worker is not migrated yet (worker-1)"},
		{name: "control plane after workers in the same run", nodes: []string{"control-plane", "worker-1"}, order: []string{"worker-1", "control-plane"}},
		{name: "control plane when workers are done", ann: done, nodes: []string{"control-plane"}, order: []string{"control-plane"}},
		{name: "control plane allowed", nodes: []string{"control-plane"}, change: func(_ *world, o *Options) { o.AllowControlPlane = true }, order: []string{"control-plane"}},
		{name: "not in migration mode", nodes: []string{"worker-1"}, change: func(w *world, _ *Options) { w.cluster.Cilium.MigrationMode = false },
			code: errs.Precondition, wantMsg: "not in migration mode"},
		{name: "done needs nothing", ann: done, nodes: []string{"worker-1", "worker-1"}, change: func(w *world, _ *Options) { w.cluster.Cilium = detect.Cilium{} }, order: []string{"worker-1"}},
		{name: "no cilium", nodes: []string{"worker-1"}, change: func(w *world, _ *Options) { w.cluster.Cilium = detect.Cilium{} }, code: errs.Precondition, wantMsg: "Cilium is not installed"},
		{name: "wrong namespace", nodes: []string{"worker-1"}, change: func(_ *world, o *Options) { o.Namespace = "cilium" }, code: errs.Precondition, wantMsg: "not cilium"},
		{name: "no pool", nodes: []string{"worker-1"}, change: func(w *world, _ *Options) { w.cluster.Cilium.PodCIDRs = nil }, code: errs.Precondition, wantMsg: "cluster-pool"},
		{name: "nodeconfig missing", nodes: []string{"worker-1"}, change: func(_ *world, o *Options) { o.NodeConfigName = "other" }, code: errs.Precondition,
			wantMsg: "CiliumNodeConfig kube-system/other not found (served as cilium.io/v2)"},
		{name: "label not selected", nodes: []string{"worker-1"}, change: func(_ *world, o *Options) { o.NodeLabel = "example.com/x=true" }, code: errs.Precondition,
			wantMsg: `CiliumNodeConfig cilium.io/v2 kube-system/cilium-default selects "io.cilium.migration/cilium-default=true", which node worker-1 does not match even with the label example.com/x=true`},
		{name: "no eviction permission", nodes: []string{"worker-1"}, change: func(w *world, _ *Options) { w.denied = map[string]bool{"create pods/eviction": true} },
			code: errs.Forbidden, wantMsg: "kubectl cni-migrate node needs permission to create pods/eviction (drain nodes with PDB-aware eviction)"},
		{name: "no eviction permission, none needed", nodes: []string{"worker-1"}, order: []string{"worker-1"},
			change: func(w *world, o *Options) {
				w.denied = map[string]bool{"create pods/eviction": true}
				o.DisableEviction = true
			}},
		{name: "several permissions missing", nodes: []string{"worker-1"}, change: func(w *world, _ *Options) {
			w.denied = map[string]bool{"patch nodes": true, "patch pods/status": true, "update leases": true}
		}, code: errs.Forbidden, wantMsg: "permission to patch nodes (cordon, label and watch nodes) and 2 more (patch pods/status, update leases.coordination.k8s.io -n kube-system)"},
		{name: "permissions not checked when all is done", ann: done, nodes: []string{"worker-1"}, order: []string{"worker-1"},
			change: func(w *world, _ *Options) { w.denied = map[string]bool{"patch nodes": true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.ann)
			opts := testOptions()
			if tc.change != nil {
				tc.change(w, &opts)
			}
			m := w.migrator(opts, nil)
			plan, err := m.Preflight(context.Background(), w.cluster, tc.nodes)
			if tc.code != 0 {
				if errs.Code(err) != tc.code || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err %v, want code %d with %q", err, tc.code, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, x := range plan.Targets {
				order = append(order, x.Name)
			}
			if strings.Join(order, ",") != strings.Join(tc.order, ",") {
				t.Errorf("order %v, want %v", order, tc.order)
			}
			for _, a := range w.kube.Actions() {
				if a.GetVerb() != "list" && a.GetVerb() != "get" && a.GetResource().Resource != "selfsubjectaccessreviews" {
					t.Errorf("preflight wrote: %v", a)
				}
			}
		})
	}
}

// TestVerifyWaitsForTheAgentOfThisBoot: after the reboot the agent pod
// shows its Ready from before the reboot until the kubelet reports on it
// again, and verify must not start the probe until then (on the real
// datapath the probe otherwise waited a minute in cilium-cni: the agent of
// the new boot was still starting). The reboot step recorded the agent's
// container, so a Ready agent in another container is this boot's, whether
// or not the node went NotReady over its reboot (on the lab it did not).
// Without that record (the reboot step of an older plugin), a node that
// went NotReady waits for an agent Ready since the node's transition, and
// goes on after freshAgentWait when the agent's status never refreshes.
func TestVerifyWaitsForTheAgentOfThisBoot(t *testing.T) {
	for _, tc := range []struct {
		name              string
		recorded, refresh bool
		notReady          bool
	}{
		{name: "recorded", recorded: true, refresh: true},
		{name: "recorded, node went NotReady", recorded: true, refresh: true, notReady: true},
		{name: "not recorded, refresh", refresh: true, notReady: true},
		{name: "not recorded, no refresh", notReady: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refresh := tc.refresh
			w := newWorld(t, nil)
			w.staleAgent = true
			ctx := startControllers(t, w)
			var refreshed, early atomic.Bool
			w.kube.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
				if refresh && !refreshed.Load() {
					early.Store(true)
				}
				return false, nil, nil
			})
			var calls [][]string
			reboot := w.reboots(&calls)
			run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
				if a := w.node("worker-1").Annotations[AnnotationAgentContainer]; a != "containerd://agent-new-1" {
					t.Errorf("the reboot step recorded agent container %q, want the restarted agent's", a)
				}
				if !tc.recorded {
					patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, AnnotationAgentContainer)
					if _, err := w.kube.CoreV1().Nodes().Patch(ctx, "worker-1", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
						return err
					}
				}
				if err := reboot(ctx, argv, stdout, stderr); err != nil {
					return err
				}
				now := metav1.Now()
				if tc.notReady {
					// The node went NotReady and is Ready again now.
					patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":%q}]}}`, now.UTC().Format(time.RFC3339))
					if _, err := w.kube.CoreV1().Nodes().Patch(ctx, "worker-1", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
						return err
					}
				}
				if refresh {
					go func() {
						time.Sleep(300 * time.Millisecond)
						pods, _ := w.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=cilium"})
						for _, p := range pods.Items {
							p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
								LastTransitionTime: metav1.NewTime(now.Add(2 * time.Second))}}
							p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: AgentContainerName, Ready: true, ContainerID: "containerd://after-reboot"}}
							refreshed.Store(true)
							_, _ = w.kube.CoreV1().Pods("kube-system").UpdateStatus(ctx, &p, metav1.UpdateOptions{})
						}
					}()
				}
				return nil
			}
			m := w.migrator(commandOptions(t), run)
			m.freshAgentWait = 300 * time.Millisecond
			if refresh {
				m.freshAgentWait = 30 * time.Second // the refresh comes long before
			}
			plan, err := m.Preflight(ctx, w.cluster, []string{"worker-1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Run(ctx, plan); err != nil {
				t.Fatalf("%v\n%s", err, w.stderr)
			}
			if early.Load() {
				t.Error("the probe Job was created before the agent was Ready again after the reboot")
			}
			if p := w.node("worker-1").Annotations[AnnotationPhase]; p != "done" {
				t.Errorf("phase %q", p)
			}
		})
	}
}
