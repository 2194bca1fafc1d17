package migrate

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

func flannelCNI() *detect.CNI {
	return &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", IPAM: "kubernetes",
		Network: "10.244.0.0/16", Backend: detect.Backend{Type: "vxlan", Port: 8472}}
}

func podCIDRNode(name, cidr string, ready bool, ann map[string]string) corev1.Node {
	n := readyNode(name, false, ann)
	n.Spec.PodCIDR = cidr
	if !ready {
		n.Status.Conditions[0].Status = corev1.ConditionFalse
	}
	return *n
}

func TestOldNetworkTarget(t *testing.T) {
	calico := &detect.CNI{Name: "calico", Namespace: "kube-system", DaemonSet: "calico-node", Install: "manifest", IPAM: "calico", Backend: detect.Backend{Type: "vxlan"}}
	hostGW := flannelCNI()
	hostGW.Backend = detect.Backend{Type: "host-gw"}
	weave := &detect.CNI{Name: "weave", Namespace: "kube-system", DaemonSet: "weave-net", IPAM: "weave"}
	nodes := []corev1.Node{
		podCIDRNode("worker-2", "10.244.2.0/24", true, map[string]string{sourcecni.CalicoIPIPTunnelAddr: "192.168.9.1"}),
		podCIDRNode("worker-1", "10.244.1.0/24", true, map[string]string{sourcecni.CalicoVXLANTunnelAddr: "192.168.1.64"}),
		podCIDRNode("control-plane", "10.244.0.0/24", false, map[string]string{sourcecni.CalicoVXLANTunnelAddr: "192.168.0.64"}),
	}
	for _, tc := range []struct {
		name string
		cni  *detect.CNI
		node string
		want string
	}{
		{"flannel: the first other Ready node's flannel.1", flannelCNI(), "worker-2", "node worker-1's flannel.1 10.244.1.0"},
		{"flannel: not the node itself", flannelCNI(), "worker-1", "node worker-2's flannel.1 10.244.2.0"},
		{"flannel host-gw has no tunnel", hostGW, "worker-1", ""},
		{"calico: VXLAN address", calico, "worker-2", "node worker-1's vxlan.calico 192.168.1.64"},
		{"calico: IPIP address", calico, "worker-1", "node worker-2's tunl0 192.168.9.1"},
		{"weave: none the plugin can name", weave, "worker-1", ""},
		{"no CNI", nil, "worker-1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := OldNetworkTarget(tc.cni, tc.node, nodes)
			if s := map[bool]string{true: got.String(), false: ""}[ok]; s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
	if _, ok := OldNetworkTarget(flannelCNI(), "worker-1", nodes[1:]); ok {
		t.Error("a target on a node that is not Ready")
	}
}

// oldCNIWorld is a world migrating from flannel, whose pod on worker-1 is
// not Ready until ready is called.
func oldCNIWorld(t *testing.T) (*world, func(context.Context)) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds", UID: "flannel-ds"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "flannel"}}}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds-abcde", UID: "flannel-1", Labels: map[string]string{"app": "flannel"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr(true)}}},
		Spec:   corev1.PodSpec{NodeName: "worker-1", HostNetwork: true},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}},
	}
	w := newWorld(t, nil, ds, pod)
	w.cluster.CNI = flannelCNI()
	for name, cidr := range map[string]string{"worker-1": "10.244.1.0/24", "control-plane": "10.244.0.0/24"} {
		n := w.node(name)
		n.Spec.PodCIDR = cidr
		if _, err := w.kube.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return w, func(ctx context.Context) {
		p := pod.DeepCopy()
		p.Status.Conditions[0].Status = corev1.ConditionTrue
		if _, err := w.kube.CoreV1().Pods("kube-flannel").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}
}

func TestVerifyWaitsForTheOldCNI(t *testing.T) {
	w, ready := oldCNIWorld(t)
	ctx := startControllers(t, w)
	var readied, early atomic.Bool
	var env atomic.Value
	w.kube.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if !readied.Load() {
			early.Store(true)
		}
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		env.Store(j.Spec.Template.Spec.Containers[0].Env)
		return false, nil, nil
	})
	var calls [][]string
	reboot := w.reboots(&calls)
	run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
		if err := reboot(ctx, argv, stdout, stderr); err != nil {
			return err
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			readied.Store(true)
			ready(ctx)
		}()
		return nil
	}
	sum, err := w.run(ctx, commandOptions(t), run, "worker-1")
	if err != nil {
		t.Fatalf("%v\n%s", err, w.stderr)
	}
	if early.Load() {
		t.Error("the probe Job was created before the old CNI's pod on the node was Ready")
	}
	got, _ := env.Load().([]corev1.EnvVar)
	if len(got) != 1 || got[0].Name != OldNetworkEnv || got[0].Value != "10.244.0.0" {
		t.Errorf("probe env %v, want %s=10.244.0.0 (control-plane's flannel.1)", got, OldNetworkEnv)
	}
	var detail string
	for _, s := range sum.Nodes[0].Steps {
		if s.Name == StepVerify {
			detail = s.Detail
		}
	}
	for _, want := range []string{"old CNI's pod kube-flannel-ds-abcde Ready", "the old network (node control-plane's flannel.1 10.244.0.0)"} {
		if !strings.Contains(detail, want) {
			t.Errorf("verify's detail %q does not say %q", detail, want)
		}
	}
}

func TestVerifyFailsWhenTheOldCNIStaysNotReady(t *testing.T) {
	w, _ := oldCNIWorld(t)
	ctx := startControllers(t, w)
	var calls [][]string
	opts := commandOptions(t)
	opts.AgentTimeout = time.Second
	_, err := w.run(ctx, opts, w.reboots(&calls), "worker-1")
	var e *errs.Error
	if !errors.As(err, &e) || e.Code != errs.VerificationFailed {
		t.Fatalf("error %v, want a VerificationFailed", err)
	}
	for _, want := range []string{"old CNI (flannel) on node worker-1 is not Ready", "kube-flannel-ds-abcde", "ContainersNotReady", "stays cordoned"} {
		if !strings.Contains(err.Error()+" "+e.Fix, want) {
			t.Errorf("error %q (fix %q) does not say %q", err, e.Fix, want)
		}
	}
	if p := w.node("worker-1").Annotations[AnnotationPhase]; p != string(PhaseRebooted) {
		t.Errorf("phase %q, want %s recorded so that a re-run verifies again", p, PhaseRebooted)
	}
}
