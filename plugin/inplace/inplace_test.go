package inplace

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/finalize"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

func ptr[T any](v T) *T { return &v }

// world is a fake cluster with two nodes, Cilium owning both (in-place
// setup), and pods on flannel's 10.244.0.0/16 and Cilium's 10.245.0.0/16.
// An eviction deletes the pod and its "controller" starts a replacement on
// the same node with the next address of replacementNet.
type world struct {
	kube           *fake.Clientset
	mu             sync.Mutex
	n              int
	replacementNet string // "10.245.9." (Cilium) unless a test wants another
	evictions      []string
	refuse         map[string]bool // pod names whose eviction a PDB refuses
}

func pod(ns, name, node, ip, ownerKind string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	if ownerKind != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: name[:strings.LastIndex(name, "-")], UID: types.UID(ns + "-" + ownerKind + "-" + name[:strings.LastIndex(name, "-")]), Controller: ptr(true)}}
	}
	return p
}

func agent(node string, ready bool) *corev1.Pod {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-" + node, UID: types.UID("cilium-" + node), Labels: map[string]string{"k8s-app": "cilium"}},
		Spec:       corev1.PodSpec{NodeName: node, HostNetwork: true},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "192.168.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

func newWorld(t *testing.T, extra ...runtime.Object) *world {
	w := &world{replacementNet: "10.245.9.", refuse: map[string]bool{}}
	objs := []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-2"}},
		agent("w-1", true), agent("w-2", true),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"unmanaged-pod-watcher-interval": "0"}},
		pod("kube-system", "coredns-a", "w-1", "10.244.1.2", "ReplicaSet"),
		pod("demo", "web-a", "w-1", "10.244.1.3", "ReplicaSet"),
		pod("demo", "web-b", "w-2", "10.244.2.3", "ReplicaSet"),
		pod("demo", "exporter-a", "w-2", "10.244.2.4", "DaemonSet"),
		pod("demo", "new-a", "w-2", "10.245.1.7", "ReplicaSet"), // already on Cilium
		pod("apps", "db-0", "w-2", "10.244.2.5", "StatefulSet"),
	}
	hostNet := pod("demo", "hostnet-a", "w-1", "192.168.0.1", "DaemonSet")
	hostNet.Spec.HostNetwork = true
	done := pod("demo", "job-a", "w-1", "10.244.1.9", "Job")
	done.Status.Phase = corev1.PodSucceeded
	objs = append(objs, hostNet, done)
	w.kube = fake.NewClientset(append(objs, extra...)...)
	w.kube.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "pods", Kind: "Pod", Namespaced: true},
		{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1", Namespaced: true},
	}}}
	podsGVR := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	w.kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateActionImpl)
		if !ok || a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := ca.Object.(*policyv1.Eviction)
		if w.refuse[ev.Name] {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		}
		if ev.DeleteOptions != nil && len(ev.DeleteOptions.DryRun) > 0 {
			return true, nil, nil
		}
		return true, nil, w.replace(podsGVR, ev.Namespace, ev.Name)
	})
	w.kube.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		da := a.(k8stesting.DeleteActionImpl)
		if len(da.DeleteOptions.DryRun) > 0 {
			return true, nil, nil
		}
		return true, nil, w.replace(podsGVR, da.Namespace, da.Name)
	})
	return w
}

// replace deletes a pod and, when it has a controller, creates its
// replacement on the same node with the next address of replacementNet.
func (w *world) replace(gvr schema.GroupVersionResource, ns, name string) error {
	obj, err := w.kube.Tracker().Get(gvr, ns, name)
	if err != nil {
		return err
	}
	old := obj.(*corev1.Pod)
	w.mu.Lock()
	w.n++
	n := w.n
	w.evictions = append(w.evictions, ns+"/"+name)
	w.mu.Unlock()
	if err := w.kube.Tracker().Delete(gvr, ns, name); err != nil {
		return err
	}
	if metav1.GetControllerOf(old) == nil {
		return nil
	}
	np := old.DeepCopy()
	np.Name = fmt.Sprintf("%s-r%d", name, n)
	np.UID = types.UID(fmt.Sprintf("uid-r%d", n))
	np.CreationTimestamp = metav1.Now()
	np.Status.PodIP = fmt.Sprintf("%s%d", w.replacementNet, n)
	return w.kube.Tracker().Create(gvr, np, ns)
}

func cluster(migrationMode bool) *detect.Cluster {
	return &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium", Version: "1.18.11",
		MigrationMode: migrationMode, PodCIDRs: []string{"10.245.0.0/16"}}}
}

func run(t *testing.T, w *world, opts Options) (*Summary, string, error) {
	t.Helper()
	if opts.RestartTimeout == 0 {
		opts.RestartTimeout = 5 * time.Second
	}
	var out bytes.Buffer
	r := New(&kube.Clients{Kube: w.kube, Server: "https://fake"}, opts, migrate.NewProgress(&out, false, output.Style{}, nil))
	plan, err := r.Preflight(context.Background(), cluster(false), []string{"w-1", "w-2"})
	if err != nil {
		return nil, out.String(), err
	}
	s, err := r.Run(context.Background(), plan)
	return s, out.String(), err
}

func TestRestart(t *testing.T) {
	w := newWorld(t)
	s, out, err := run(t, w, Options{ResumeCommand: "kubectl cni-migrate rollout --strategy in-place"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// kube-system first, then by name; hostNetwork, finished and Cilium pods left alone.
	var order []string
	for _, n := range s.Namespaces {
		order = append(order, n.Name+":"+n.Result+":"+strings.Join(n.Pods, ","))
	}
	want := "kube-system:restarted:kube-system/coredns-a apps:restarted:apps/db-0 demo:restarted:demo/exporter-a,demo/web-a,demo/web-b"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("namespaces\n got %s\nwant %s", got, want)
	}
	if len(w.evictions) != 5 {
		t.Errorf("evictions %v", w.evictions)
	}
	for _, line := range []string{"5 pods on the old network in 3 namespaces: kube-system (1), apps (1), demo (3)",
		"kube-system: restart", "evicted 1 pod; their replacements run on 10.245.0.0/16", "recorded phase done on nodes w-1, w-2"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	cm, err := w.kube.CoreV1().ConfigMaps("kube-system").Get(context.Background(), ProgressConfigMap, metav1.GetOptions{})
	if err != nil || !strings.HasPrefix(cm.Data["demo"], "restarted 3 pods at ") || len(cm.Data) != 3 {
		t.Errorf("progress %v %v", cm, err)
	}
	for _, n := range []string{"w-1", "w-2"} {
		node, _ := w.kube.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
		if node.Annotations[migrate.AnnotationPhase] != "done" || node.Annotations[migrate.AnnotationPhaseTime] == "" {
			t.Errorf("node %s annotations %v", n, node.Annotations)
		}
	}
	if s.Result != "ok" || len(s.Nodes) != 2 || s.Nodes[0].PhaseAfter != migrate.PhaseDone || s.Nodes[0].PhaseBefore != migrate.PhaseNone {
		t.Errorf("summary %+v", s)
	}

	// A second run finds nothing to do and writes nothing.
	w.kube.ClearActions()
	s, out, err = run(t, w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range w.kube.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("the re-run wrote: %s %s %s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
		}
	}
	if !strings.Contains(out, "every pod on the 2 nodes is on Cilium's pod CIDR 10.245.0.0/16; nothing to restart") {
		t.Errorf("re-run output:\n%s", out)
	}
	if len(s.Namespaces) != 3 || s.Namespaces[0].Result != ResultAlreadyDone || s.Nodes[1].PhaseBefore != migrate.PhaseDone {
		t.Errorf("re-run summary %+v", s)
	}
	var b bytes.Buffer
	PrintSummary(&b, s, output.Style{})
	if !strings.Contains(b.String(), "namespace demo                 already-done  0 pods (restarted 3 pods at") {
		t.Errorf("summary:\n%s", b.String())
	}
}

func TestRestartRefusals(t *testing.T) {
	t.Run("a pod without a controller stops its namespace before anything is evicted there", func(t *testing.T) {
		bare := pod("demo", "bare-a", "w-1", "10.244.1.8", "")
		w := newWorld(t, bare)
		s, _, err := run(t, w, Options{ResumeCommand: "resume"})
		if errs.Code(err) != errs.DrainBlocked || !strings.Contains(err.Error(), "demo/bare-a has no controller and would not come back (pass --force") {
			t.Fatalf("err %v", err)
		}
		for _, e := range w.evictions {
			if strings.HasPrefix(e, "demo/") {
				t.Errorf("evicted %s", e)
			}
		}
		if s.Result != "drain-blocked" || s.ExitCode != 10 || s.Resume != "resume" || s.Namespaces[2].Result != ResultFailed {
			t.Errorf("summary %+v", s)
		}
		// With --force it is deleted (and not recreated).
		if _, _, err := run(t, w, Options{Force: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.kube.CoreV1().Pods("demo").Get(context.Background(), "bare-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("bare pod still there: %v", err)
		}
	})
	t.Run("emptyDir and static pods", func(t *testing.T) {
		ed := pod("demo", "cache-a", "w-1", "10.244.1.8", "ReplicaSet")
		ed.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		static := pod("demo", "static-a", "w-1", "10.244.1.10", "")
		static.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		_, _, err := run(t, newWorld(t, ed, static), Options{Force: true})
		if errs.Code(err) != errs.DrainBlocked || !strings.Contains(err.Error(), "cache-a uses emptyDir volumes") || !strings.Contains(err.Error(), "static-a is a static pod") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a replacement on the old network fails verification", func(t *testing.T) {
		w := newWorld(t)
		w.replacementNet = "10.244.7."
		_, _, err := run(t, w, Options{})
		if errs.Code(err) != errs.VerificationFailed || !strings.Contains(err.Error(), "got address 10.244.7.1 outside Cilium's pod CIDR 10.245.0.0/16") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a PodDisruptionBudget that allows nothing stops at --timeout", func(t *testing.T) {
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "db"},
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{}}}
		w := newWorld(t, pdb)
		w.refuse["db-0"] = true
		start := time.Now()
		s, _, err := run(t, w, Options{Timeout: time.Second})
		if errs.Code(err) != errs.DrainBlocked || !strings.Contains(err.Error(), "restarting the pods of namespace apps did not finish within 1s: 1 pod left on the old network (apps/db-0); PodDisruptionBudget apps/db (0 disruptions allowed) holds apps/db-0") ||
			!strings.Contains(err.Error(), "kubectl -n apps edit pdb db") {
			t.Fatalf("err %v", err)
		}
		if s.Namespaces[0].Result != ResultRestarted || s.Namespaces[2].Result != ResultNotStarted {
			t.Errorf("summary %+v after %v", s, time.Since(start))
		}
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		w := newWorld(t)
		s, out, err := run(t, w, Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(w.evictions) != 0 || s.DryRun != "server" || s.Namespaces[2].Result != ResultDryRun || !strings.Contains(out, "(server dry run)") {
			t.Errorf("evictions %v, summary %+v\n%s", w.evictions, s, out)
		}
		node, _ := w.kube.CoreV1().Nodes().Get(context.Background(), "w-1", metav1.GetOptions{})
		if node.Annotations[migrate.AnnotationPhase] != "" {
			t.Errorf("dry run recorded a phase")
		}
	})
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name string
		c    *detect.Cluster
		w    *world
		opts Options
		has  string
	}{
		{name: "not installed", c: &detect.Cluster{}, has: "Cilium is not installed"},
		{name: "migration mode", c: cluster(true), has: "runs in migration mode (cilium-config custom-cni-conf \"true\"), the dual-overlay setup"},
		{name: "other namespace", c: cluster(false), opts: Options{Namespace: "cilium"}, has: "Cilium runs in namespace kube-system"},
		{name: "no pool", c: func() *detect.Cluster { c := cluster(false); c.Cilium.PodCIDRs = nil; return c }(), has: "has no cluster-pool-ipv4-cidr"},
		{name: "agent not ready", c: cluster(false), w: func() *world {
			w := newWorld(t)
			_ = w.kube.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, agent("w-2", false), "kube-system")
			return w
		}(), has: "no Ready Cilium agent on node w-2: pods restarted there would get no network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			if w == nil {
				w = newWorld(t)
			}
			r := New(&kube.Clients{Kube: w.kube}, tt.opts, migrate.NewProgress(&bytes.Buffer{}, false, output.Style{}, nil))
			_, err := r.Preflight(context.Background(), tt.c, []string{"w-1", "w-2"})
			if errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), tt.has) {
				t.Fatalf("err %v, want a precondition error with %q", err, tt.has)
			}
		})
	}
	// The operator's unmanaged-pod watcher is worth a warning.
	w := newWorld(t)
	cm, _ := w.kube.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "cilium-config", metav1.GetOptions{})
	cm.Data["unmanaged-pod-watcher-interval"] = "15s"
	_, _ = w.kube.CoreV1().ConfigMaps("kube-system").Update(context.Background(), cm, metav1.UpdateOptions{})
	r := New(&kube.Clients{Kube: w.kube}, Options{}, migrate.NewProgress(&bytes.Buffer{}, false, output.Style{}, nil))
	plan, err := r.Preflight(context.Background(), cluster(false), []string{"w-1"})
	if err != nil || len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "unmanaged-pod watcher is on (unmanaged-pod-watcher-interval 15s)") {
		t.Errorf("plan %+v, err %v", plan, err)
	}
	if err := (Options{RestartTimeout: 0}).Validate(); errs.Code(err) != errs.Usage {
		t.Errorf("validate: %v", err)
	}
	if ProgressConfigMap != finalize.InPlaceProgress {
		t.Errorf("finalize deletes %s, the rollout writes %s", finalize.InPlaceProgress, ProgressConfigMap)
	}
}
