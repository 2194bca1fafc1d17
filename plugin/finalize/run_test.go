package finalize

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

func TestRunPreconditions(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	cl := &kube.Clients{Kube: fake.NewClientset()}
	if err := Run(ctx, cl, &detect.Cluster{}, Options{Out: &out}); errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), "Cilium is not installed") {
		t.Fatalf("no Cilium: %v", err)
	}
	cl = &kube.Clients{Kube: fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"custom-cni-conf": "true"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-1"}},
	)}
	c := &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"}}
	err := Run(ctx, cl, c, Options{Out: &out, NodeConfigName: "cilium-default"})
	if err == nil || !strings.Contains(err.Error(), "w-1") {
		t.Fatalf("a node not migrated: %v", err)
	}
	if out.String() != "" {
		t.Errorf("said %q", out.String())
	}
}

// TestRunFinished is finalize run again once Cilium runs its final values
// and the CiliumNodeConfig is gone: only the clean-up steps are left.
func TestRunFinished(t *testing.T) {
	ctx := context.Background()
	cl := &kube.Clients{Kube: fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"custom-cni-conf": "false"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-1", Annotations: map[string]string{migrate.AnnotationPhase: "done"}}},
	)}
	c := &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"}}
	var out bytes.Buffer
	err := Run(ctx, cl, c, Options{Out: &out, NodeConfigName: "cilium-default", Label: "io.cilium.migration/cilium-default=true", KeepState: true, DryRun: true, ServerDryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `Cilium runs with its final values (custom-cni-conf off): helm upgrade done
CiliumNodeConfig kube-system/cilium-default is gone
no objects of the old CNI are left
(dry run) Migration finalized: Cilium owns the network on every node.
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestRunClientDryRunWritesNothing: with the helm upgrade done, a client
// dry run says every remaining step (agents' restart, the in-place
// progress, the old CNI's objects, the nodes' state) and sends no write.
func TestRunClientDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"custom-cni-conf": "false"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: InPlaceProgress}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-cfg"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-1",
			Labels:      map[string]string{"io.cilium.migration/cilium-default": "true"},
			Annotations: map[string]string{migrate.AnnotationPhase: "done"}}},
	)
	cl := &kube.Clients{Kube: kc}
	c := &detect.Cluster{
		Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"},
		CNI:    &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", ConfigMap: "kube-flannel-cfg"},
	}
	var out bytes.Buffer
	err := Run(ctx, cl, c, Options{Out: &out, NodeConfigName: "cilium-default", Label: "io.cilium.migration/cilium-default=true",
		RemoveOldCNI: true, DryRun: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, a := range kc.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			t.Errorf("a client dry run sent %s %s", v, a.GetResource().Resource)
		}
	}
	for _, want := range []string{
		"(dry run) restarting the Cilium agents (DaemonSet kube-system/cilium)",
		"(dry run) deleted ConfigMap kube-system/" + InPlaceProgress,
		"(dry run) deleting the old CNI's objects:",
		"(dry run) removed the migration label and annotations from 1 nodes",
		"(dry run) Migration finalized",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
