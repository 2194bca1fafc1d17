package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIsControlPlane(t *testing.T) {
	for labels, want := range map[string]bool{LabelControlPlane: true, LabelMaster: true, "node-role.kubernetes.io/worker": false} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{labels: ""}}}
		if IsControlPlane(n) != want {
			t.Errorf("%s: want %v", labels, want)
		}
	}
}

func TestPodReady(t *testing.T) {
	ready := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	for _, tc := range []struct {
		phase corev1.PodPhase
		conds []corev1.PodCondition
		want  bool
	}{
		{corev1.PodRunning, ready, true},
		{corev1.PodPending, ready, false},
		{corev1.PodRunning, []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}, false},
		{corev1.PodRunning, nil, false},
	} {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: tc.phase, Conditions: tc.conds}}
		if got := PodReady(p); got != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.phase, tc.conds, got, tc.want)
		}
	}
}
