package migrate

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// setReady sets the node's Ready condition.
func (w *world) setReady(ctx context.Context, name string, st corev1.ConditionStatus, reason string) {
	n := w.node(name)
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status, n.Status.Conditions[i].Reason = st, reason
			n.Status.Conditions[i].LastTransitionTime = metav1.NewTime(time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC))
		}
	}
	if _, err := w.kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// TestReadyFlips: verify waits for a node whose Ready went away since the
// steps before, up to the reboot timeout, and does not pass a node that is
// not Ready once its probe ran.
func TestReadyFlips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("Ready again within the timeout", func(t *testing.T) {
		w := newWorld(t, nil)
		w.setReady(ctx, "worker-1", corev1.ConditionFalse, "KubeletNotReady")
		go func() {
			time.Sleep(300 * time.Millisecond)
			w.setReady(ctx, "worker-1", corev1.ConditionTrue, "KubeletReady")
		}()
		m := w.migrator(commandOptions(t), nil)
		if _, err := m.waitNodeReady(ctx, "worker-1", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		out := w.stderr.String()
		for _, want := range []string{"node worker-1 is not Ready (Ready=False since 03:00:00 (KubeletNotReady)): waiting up to 10s for it before verifying", "node worker-1 is Ready again after"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
	t.Run("not Ready within the timeout", func(t *testing.T) {
		w := newWorld(t, nil)
		w.setReady(ctx, "worker-1", corev1.ConditionUnknown, "NodeStatusUnknown")
		m := w.migrator(commandOptions(t), nil)
		_, err := m.waitNodeReady(ctx, "worker-1", 200*time.Millisecond)
		if errs.Code(err) != errs.VerificationFailed || !strings.Contains(err.Error(), "node worker-1 is not Ready after 200ms (Ready=Unknown since 03:00:00 (NodeStatusUnknown)): not verifying it; check the node's kubelet (kubectl describe node worker-1), then run the same command again; the node stays cordoned") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a Ready node is not waited for", func(t *testing.T) {
		w := newWorld(t, nil)
		m := w.migrator(commandOptions(t), nil)
		if _, err := m.waitNodeReady(ctx, "worker-1", time.Nanosecond); err != nil {
			t.Fatal(err)
		}
		if err := m.stillReady(ctx, "worker-1"); err != nil {
			t.Fatal(err)
		}
		if w.stderr.Len() != 0 {
			t.Errorf("said %q", w.stderr.String())
		}
	})
	t.Run("NotReady once the probe ran", func(t *testing.T) {
		w := newWorld(t, nil)
		w.setReady(ctx, "worker-1", corev1.ConditionFalse, "KubeletNotReady")
		m := w.migrator(commandOptions(t), nil)
		if err := m.stillReady(ctx, "worker-1"); errs.Code(err) != errs.VerificationFailed || !strings.Contains(err.Error(), "node worker-1 went NotReady while it was verified (Ready=False since 03:00:00") {
			t.Fatalf("err %v", err)
		}
	})
}
