package finalize

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

func node(name, phase string, labels map[string]string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: map[string]string{}}}
	if phase != "" {
		n.Annotations[migrate.AnnotationPhase] = phase
		n.Annotations[migrate.AnnotationPhaseTime] = "2026-11-21T10:00:00Z"
		n.Annotations[migrate.AnnotationWasUnschedulable] = "false"
	}
	return n
}

func TestNotDone(t *testing.T) {
	nodes := []corev1.Node{node("w-2", "drained", nil), node("w-1", "done", nil), node("cp", "", nil)}
	got := NotDone(nodes)
	if strings.Join(got, ",") != "cp,w-2" {
		t.Fatalf("got %v", got)
	}
	// A node being rolled back is not done, whatever its migration phase says.
	back := node("w-3", "done", nil)
	back.Annotations[migrate.AnnotationRollbackPhase] = "drained"
	begun := node("w-4", "done", nil)
	begun.Annotations[migrate.AnnotationRollbackWasUnschedulable] = "false"
	if got := NotDone(append(nodes, back, begun)); strings.Join(got, ",") != "cp,w-2,w-3,w-4" {
		t.Fatalf("with rollbacks: %v", got)
	}
	err := NotDoneError(got)
	if errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), "2 nodes are not migrated yet: cp, w-2") ||
		!strings.Contains(err.Error(), "kubectl cni-migrate node cp w-2") {
		t.Fatalf("got %v", err)
	}
	var many []string
	for i := 0; i < 12; i++ {
		many = append(many, "n"+string(rune('a'+i)))
	}
	if err := NotDoneError(many); !strings.Contains(err.Error(), "and 4 more") {
		t.Fatalf("got %v", err)
	}
}

func TestStatePatch(t *testing.T) {
	key := "io.cilium.migration/cilium-default"
	tests := []struct {
		name string
		n    corev1.Node
		want string
	}{
		{"untouched node", node("a", "", nil), ""},
		{"label only", node("a", "", map[string]string{key: "true"}), `{"metadata":{"labels":{"io.cilium.migration/cilium-default":null}}}`},
		{"annotations and label", node("a", "done", map[string]string{key: "true", "other": "x"}),
			`{"metadata":{"annotations":{"cni-migrate.io/phase":null,"cni-migrate.io/phase-time":null,"cni-migrate.io/was-unschedulable":null},"labels":{"io.cilium.migration/cilium-default":null}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(StatePatch(&tt.n, key)); got != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRolledOut(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Status: appsv1.DaemonSetStatus{
			ObservedGeneration: observed, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}}
	}
	for _, tt := range []struct {
		d    *appsv1.DaemonSet
		want bool
	}{
		{ds(2, 2, 3, 3, 3), true},
		{ds(2, 1, 3, 3, 3), false},
		{ds(2, 2, 3, 2, 3), false},
		{ds(2, 2, 3, 3, 2), false},
	} {
		if RolledOut(tt.d) != tt.want {
			t.Errorf("%+v: want %v", tt.d.Status, tt.want)
		}
	}
}

func TestHelmUpgradeArgs(t *testing.T) {
	got := strings.Join(HelmUpgradeArgs("cilium", "cilium/cilium", "1.18.11", "kube-system", "out/values-final.yaml"), " ")
	if got != "helm upgrade cilium cilium/cilium --version 1.18.11 --namespace kube-system --values out/values-final.yaml --wait" {
		t.Fatal(got)
	}
}

func TestObjectString(t *testing.T) {
	if s := (Object{"DaemonSet", "kube-flannel", "kube-flannel-ds"}).String(); s != "daemonset/kube-flannel-ds -n kube-flannel" {
		t.Fatal(s)
	}
	if s := (Object{"ClusterRole", "", "flannel"}).String(); s != "clusterrole/flannel" {
		t.Fatal(s)
	}
}

func TestNodeConfigAPIVersion(t *testing.T) {
	for _, tt := range []struct {
		served []string
		want   string
	}{
		{[]string{"cilium.io/v2alpha1", "cilium.io/v2"}, "cilium.io/v2"},
		{[]string{"cilium.io/v2alpha1"}, "cilium.io/v2alpha1"},
		{nil, ""},
	} {
		if got := NodeConfigAPIVersion(tt.served); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.served, got, tt.want)
		}
	}
}
