package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func podWith(name string, phase corev1.PodPhase, ready corev1.ConditionStatus, reason string, host, deleting bool) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       corev1.PodSpec{NodeName: "worker-1", HostNetwork: host},
		Status:     corev1.PodStatus{Phase: phase},
	}
	if ready != "" {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, Reason: reason}}
	}
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func names(pods []corev1.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, p.Name)
	}
	return strings.Join(s, ",")
}

func TestReadyPodsOn(t *testing.T) {
	pods := []corev1.Pod{
		podWith("z-ready", corev1.PodRunning, corev1.ConditionTrue, "", false, false),
		podWith("a-ready", corev1.PodRunning, corev1.ConditionTrue, "", false, false),
		podWith("host-network", corev1.PodRunning, corev1.ConditionTrue, "", true, false),
		podWith("deleting", corev1.PodRunning, corev1.ConditionTrue, "", false, true),
		podWith("not-ready", corev1.PodRunning, corev1.ConditionFalse, "", false, false),
		podWith("no-condition", corev1.PodRunning, "", "", false, false),
		podWith("pending", corev1.PodPending, corev1.ConditionTrue, "", false, false),
		podWith("succeeded", corev1.PodSucceeded, corev1.ConditionTrue, "", false, false),
		podWith("marked", corev1.PodRunning, corev1.ConditionFalse, ReasonRebooting, false, false),
	}
	if got := names(readyPodsOn(pods)); got != "a-ready,z-ready" {
		t.Errorf("readyPodsOn = %s", got)
	}
	if got := names(markedPodsOn(pods)); got != "marked" {
		t.Errorf("markedPodsOn = %s", got)
	}
}

func TestReadyPatch(t *testing.T) {
	now := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status      corev1.ConditionStatus
		reason, msg string
		want        string
	}{
		{corev1.ConditionFalse, ReasonRebooting, "kubectl cni-migrate reboots node w",
			`{"status":{"conditions":[{"lastTransitionTime":"2026-12-03T19:00:00Z","message":"kubectl cni-migrate reboots node w","reason":"CNIMigrateReboot","status":"False","type":"Ready"}]}}`},
		// Back to Ready: the reason and message are removed, not kept.
		{corev1.ConditionTrue, "", "",
			`{"status":{"conditions":[{"lastTransitionTime":"2026-12-03T19:00:00Z","message":null,"reason":null,"status":"True","type":"Ready"}]}}`},
	} {
		b, err := readyPatch(tc.status, tc.reason, tc.msg, now)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("readyPatch(%s) =\n%s\nwant\n%s", tc.status, b, tc.want)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Error(err)
		}
	}
}

// monitorPod is a DaemonSet pod with its own address, Ready on worker-1:
// a drain leaves it, and a Service sends it connections.
func monitorPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "monitor-1", UID: "monitor-1",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "monitor", UID: "ds-monitor", Controller: ptr(true)}}},
		Spec: corev1.PodSpec{NodeName: "worker-1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.7",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func readyCondition(t *testing.T, w *world, ns, name string) corev1.PodCondition {
	t.Helper()
	p, err := w.kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c
		}
	}
	return corev1.PodCondition{}
}

// TestRebootMarksPodsNotReady: when the reboot command runs, the pods the
// drain left on the node are NotReady (so their Services no longer send
// them connections), host-network pods are left alone, and the kubelet's
// status after the reboot is not overwritten.
func TestRebootMarksPodsNotReady(t *testing.T) {
	w := newWorld(t, nil, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "monitor", UID: "ds-monitor"}}, monitorPod())
	ctx := startControllers(t, w)
	var calls [][]string
	reboot := w.reboots(&calls)
	var during corev1.PodCondition
	run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
		during = readyCondition(t, w, "demo", "monitor-1")
		if c := readyCondition(t, w, "kube-system", "cilium-new-1"); c.Status != corev1.ConditionTrue {
			t.Errorf("the host-network agent was marked: %+v", c)
		}
		if err := reboot(ctx, argv, stdout, stderr); err != nil {
			return err
		}
		// The kubelet back on the node reports the pod Ready again.
		patch := `{"status":{"conditions":[{"type":"Ready","status":"True","reason":null,"message":null}]}}`
		_, err := w.kube.CoreV1().Pods("demo").Patch(ctx, "monitor-1", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
		return err
	}
	if _, err := w.run(ctx, commandOptions(t), run, "worker-1"); err != nil {
		t.Fatalf("%v\n%s", err, w.stderr)
	}
	if during.Status != corev1.ConditionFalse || during.Reason != ReasonRebooting || !strings.Contains(during.Message, "worker-1") {
		t.Errorf("Ready condition while the reboot command ran: %+v", during)
	}
	if c := readyCondition(t, w, "demo", "monitor-1"); c.Status != corev1.ConditionTrue {
		t.Errorf("the pod's status after the reboot was overwritten: %+v", c)
	}
	if !strings.Contains(w.stderr.String(), "marked 1 pod NotReady on worker-1") {
		t.Errorf("progress does not say so:\n%s", w.stderr)
	}
}

// TestRebootCommandNotRunnableUnmarks: a reboot command that cannot run
// reboots nothing, so the pods it marked are Ready again.
func TestRebootCommandNotRunnableUnmarks(t *testing.T) {
	w := newWorld(t, nil, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "monitor", UID: "ds-monitor"}}, monitorPod())
	ctx := startControllers(t, w)
	var during corev1.PodCondition
	run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
		during = readyCondition(t, w, "demo", "monitor-1")
		return &exec.Error{Name: argv[0], Err: exec.ErrNotFound}
	}
	_, err := w.run(ctx, commandOptions(t), run, "worker-1")
	if errs.Code(err) != errs.RebootFailed {
		t.Fatalf("err %v (code %d)", err, errs.Code(err))
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		t.Errorf("unclassified: %v", err)
	}
	if during.Status != corev1.ConditionFalse {
		t.Errorf("not marked while the command ran: %+v", during)
	}
	if c := readyCondition(t, w, "demo", "monitor-1"); c.Status != corev1.ConditionTrue || c.Reason != "" {
		t.Errorf("left NotReady: %+v", c)
	}
}

// TestNodeVanishesDuringReboot: a node deleted while its reboot command
// runs, or deleted and registered again (a replaced machine: another UID,
// none of the migration's state), stops the run with a precondition error
// that says so, instead of waiting for a bootID that never comes or
// recording phases on a node that was never cordoned or labelled.
func TestNodeVanishesDuringReboot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace bool
		want    []string
	}{
		{"deleted", false, []string{"node worker-1 was deleted while it was being migrated"}},
		// The watch sees the deletion first; a node back by then is named
		// as replaced.
		{"replaced", true, []string{"node worker-1 was deleted while it was being migrated", "node worker-1 was replaced while it was being migrated"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			ctx := startControllers(t, w)
			run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
				n, err := w.kube.CoreV1().Nodes().Get(ctx, "worker-1", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if err := w.kube.CoreV1().Nodes().Delete(ctx, "worker-1", metav1.DeleteOptions{}); err != nil {
					return err
				}
				if tc.replace {
					fresh := readyNode("worker-1", false, nil)
					fresh.UID = "a-new-machine"
					fresh.Status.NodeInfo.BootID = n.Status.NodeInfo.BootID + "-new"
					if _, err := w.kube.CoreV1().Nodes().Create(ctx, fresh, metav1.CreateOptions{}); err != nil {
						return err
					}
				}
				return nil
			}
			_, err := w.run(ctx, commandOptions(t), run, "worker-1")
			if errs.Code(err) != errs.Precondition {
				t.Fatalf("err %v (code %d), want a precondition error", err, errs.Code(err))
			}
			ok := false
			for _, want := range tc.want {
				ok = ok || strings.Contains(err.Error(), want)
			}
			if !ok {
				t.Fatalf("err %v, want one of %q", err, tc.want)
			}
			if tc.replace {
				n, err := w.kube.CoreV1().Nodes().Get(ctx, "worker-1", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(n.Annotations) != 0 {
					t.Errorf("the run wrote on the new node: %v", n.Annotations)
				}
			}
		})
	}
}
