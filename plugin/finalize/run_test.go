package finalize

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
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

// upgradedCluster is a flannel cluster after the helm upgrade: Cilium's
// final values, the in-place progress ConfigMap, the old CNI's objects and a
// migrated node.
func upgradedCluster() []runtime.Object {
	return []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"custom-cni-conf": "false"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: InPlaceProgress}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-cfg"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-1",
			Labels:      map[string]string{"io.cilium.migration/cilium-default": "true"},
			Annotations: map[string]string{migrate.AnnotationPhase: "done"}}},
	}
}

// TestRunClientDryRunWritesNothing: with the helm upgrade done, a client
// dry run says every remaining step (agents' restart, the in-place
// progress, the old CNI's objects, the nodes' state) and sends no write.
func TestRunClientDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(upgradedCluster()...)
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

// TestRunPermissions: a user without one of finalize's own writes is
// stopped before the first change, with the permission named (exit 8).
func TestRunPermissions(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(upgradedCluster()...)
	denied := map[string]bool{"delete configmaps -n kube-flannel": true, "patch nodes": true}
	var asked []string
	kc.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		n := access.Need{Group: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource, Verb: ra.Verb, Namespace: ra.Namespace}
		asked = append(asked, n.String())
		r.Status.Allowed = !denied[n.String()]
		return true, r, nil
	})
	c := &detect.Cluster{
		Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"},
		CNI:    &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", ConfigMap: "kube-flannel-cfg"},
	}
	var out bytes.Buffer
	opts := Options{Out: &out, NodeConfigName: "cilium-default", Label: "io.cilium.migration/cilium-default=true", RemoveOldCNI: true, Timeout: time.Second}
	err := Run(ctx, &kube.Clients{Kube: kc}, c, opts)
	want := "kubectl cni-migrate finalize needs permission to delete configmaps -n kube-flannel (--remove-old-cni deletes the old CNI's objects) and 1 more (patch nodes)"
	if errs.Code(err) != errs.Forbidden || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want exit 8 and %q", err, want)
	}
	for _, a := range kc.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" && a.GetResource().Resource != "selfsubjectaccessreviews" {
			t.Errorf("wrote %s %s before the permission check stopped it", v, a.GetResource().Resource)
		}
	}
	if out.String() != "" {
		t.Errorf("said %q", out.String())
	}
	sort.Strings(asked)
	if got := strings.Join(asked, ", "); got != "create jobs.batch -n kube-system, delete configmaps -n kube-flannel, delete configmaps -n kube-system, delete daemonsets.apps -n kube-flannel, delete jobs.batch -n kube-system, delete namespaces, get daemonsets.apps -n kube-system, get jobs.batch -n kube-system, list pods, patch daemonsets.apps -n kube-system, patch nodes, watch daemonsets.apps -n kube-system" {
		t.Errorf("checked %s", got)
	}

	// Without --remove-old-cni and with --keep-state, neither is needed.
	kc.ClearActions()
	opts.RemoveOldCNI, opts.KeepState, opts.DryRun, opts.ServerDryRun = false, true, true, true
	if err := Run(ctx, &kube.Clients{Kube: kc}, c, opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}

	// finalize --yes before the helm upgrade: helm's release Secrets are
	// checked too, with a fix of their own.
	cm, _ := kc.CoreV1().ConfigMaps("kube-system").Get(ctx, "cilium-config", metav1.GetOptions{})
	cm.Data["custom-cni-conf"] = "true"
	if _, err := kc.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	denied = map[string]bool{"get secrets -n kube-system": true}
	opts.DryRun, opts.ServerDryRun, opts.Yes = false, false, true
	err = Run(ctx, &kube.Clients{Kube: kc}, c, opts)
	want = "the helm upgrade of finalize --yes needs permission to get secrets -n kube-system (helm upgrade keeps Cilium's release in Secrets)"
	if errs.Code(err) != errs.Forbidden || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "or run finalize without --yes") {
		t.Fatalf("err %v, want exit 8 and %q", err, want)
	}
}

func TestWorkNeeds(t *testing.T) {
	t.Setenv("HELM_DRIVER", "")
	for _, tc := range []struct {
		name string
		w    Work
		want string
	}{
		{"nothing", Work{}, ""},
		{"lock and helm", Work{Lock: true, Helm: true},
			"get leases.coordination.k8s.io -n kube-system, watch leases.coordination.k8s.io -n kube-system, create leases.coordination.k8s.io -n kube-system, update leases.coordination.k8s.io -n kube-system"},
		{"dual overlay", Work{Restart: true, DeleteNodeConfig: true, CleanNodes: true},
			"patch daemonsets.apps -n cilium, watch daemonsets.apps -n cilium, delete ciliumnodeconfigs.cilium.io -n cilium, patch nodes"},
		{"old CNI, one need per resource and namespace", Work{Remove: []Object{
			{Kind: "DaemonSet", Namespace: "kube-system", Name: "canal"}, {Kind: "DaemonSet", Namespace: "kube-system", Name: "other"},
			{Kind: "ClusterRole", Name: "calico"}, {Kind: "Namespace", Name: "kube-flannel"}, {Kind: "Widget", Name: "x"}}},
			"delete daemonsets.apps -n kube-system, delete clusterroles.rbac.authorization.k8s.io, delete namespaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := access.Summary(tc.w.Needs("cilium", "kube-system")); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if got, want := access.Summary(Work{Helm: true}.HelmNeeds("cilium")), "list secrets -n cilium, get secrets -n cilium, create secrets -n cilium, update secrets -n cilium"; got != want {
		t.Errorf("helm: got %s, want %s", got, want)
	}
	if got := access.Summary(Work{}.HelmNeeds("cilium")); got != "" {
		t.Errorf("helm without --yes: %s", got)
	}
	t.Setenv("HELM_DRIVER", "configmap")
	if got := access.Summary(Work{Helm: true}.HelmNeeds("cilium")); got != "" {
		t.Errorf("with HELM_DRIVER=configmap: %s", got)
	}
}

// TestRunResumesNotedRemoval: a finalize --remove-old-cni interrupted
// after the old CNI's DaemonSet went (so the CNI is no longer detected)
// leaves its plan in the lock's note; the next run deletes what is left.
func TestRunResumesNotedRemoval(t *testing.T) {
	ctx := context.Background()
	left := []Object{{Kind: "DaemonSet", Namespace: "kube-flannel", Name: "kube-flannel-ds"}, {Kind: "ClusterRoleBinding", Name: "flannel"},
		{Kind: "ClusterRole", Name: "flannel"}, {Kind: "Namespace", Name: "kube-flannel"}}
	b, _ := json.Marshal(left)
	notes := memNotes{RemovalNote: string(b)}
	kc := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"custom-cni-conf": "false"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w-1", Annotations: map[string]string{migrate.AnnotationPhase: "done"}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "flannel"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel"}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cni-migrate-rollout", Annotations: map[string]string{RemovalNote: string(b)}}},
	)
	kc.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	c := &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium"}}
	var out bytes.Buffer
	err := Run(ctx, &kube.Clients{Kube: kc}, c, Options{Out: &out, NodeConfigName: "cilium-default", Label: "io.cilium.migration/cilium-default=true",
		RemoveOldCNI: true, KeepState: true, Timeout: time.Second,
		Lock: func(ctx context.Context) (context.Context, Notes, func(), error) { return ctx, notes, func() {}, nil }})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if _, err := kc.RbacV1().ClusterRoles().Get(ctx, "flannel", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("clusterrole flannel left: %v\n%s", err, out.String())
	}
	if _, err := kc.CoreV1().Namespaces().Get(ctx, "kube-flannel", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace kube-flannel left: %v", err)
	}
	if notes[RemovalNote] != "" {
		t.Error("the note is still there after the removal")
	}
	if !strings.Contains(out.String(), "deleting the old CNI's objects:\n  daemonset/kube-flannel-ds -n kube-flannel\n  clusterrolebinding/flannel\n  clusterrole/flannel\n  namespace/kube-flannel\n") {
		t.Errorf("said:\n%s", out.String())
	}
}

func TestAddNoted(t *testing.T) {
	ds := Object{Kind: "DaemonSet", Namespace: "kube-flannel", Name: "kube-flannel-ds"}
	cm := Object{Kind: "ConfigMap", Namespace: "kube-flannel", Name: "kube-flannel-cfg"}
	cr := Object{Kind: "ClusterRole", Name: "flannel"}
	ns := Object{Kind: "Namespace", Name: "kube-flannel"}
	note := func(objs ...Object) string { b, _ := json.Marshal(objs); return string(b) }
	for _, tc := range []struct {
		name string
		have []Object
		note string
		want []Object
	}{
		{"no note", []Object{ds, ns}, "", []Object{ds, ns}},
		{"the CNI no longer detected", nil, note(ds, cm, cr, ns), []Object{ds, cm, cr, ns}},
		{"both, the namespace last", []Object{cm, ns}, note(ds, ns, cr), []Object{ds, cr, cm, ns}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Removal{Objects: tc.have, Manual: "by hand"}
			if err := r.addNoted(tc.note); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(r.Objects) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", r.Objects, tc.want)
			}
		})
	}
	r := &Removal{}
	if err := r.addNoted("{"); errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), "delete the annotation "+RemovalNote) {
		t.Errorf("a bad note: %v", err)
	}
}
