package finalize

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// Object builders shaped like the upstream manifests' objects.

func ds(ns, name, sa string, cms ...string) *appsv1.DaemonSet {
	d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("ds-" + ns + "-" + name)}}
	d.Spec.Template.Spec.ServiceAccountName = sa
	for _, cm := range cms {
		d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: cm,
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}})
	}
	return d
}

func deploy(ns, name, sa string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	d.Spec.Template.Spec.ServiceAccountName = sa
	return d
}

func cm(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func sa(ns, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func pdb(ns, name string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func cr(name string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func crb(name, role string, subjects ...string) *rbacv1.ClusterRoleBinding {
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: role}}
	for _, s := range subjects {
		ns, n, _ := strings.Cut(s, "/")
		b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: n})
	}
	return b
}

func role(ns, name string) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func rb(ns, name, kind, roleName string, subjects ...string) *rbacv1.RoleBinding {
	b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, RoleRef: rbacv1.RoleRef{Kind: kind, Name: roleName}}
	for _, s := range subjects {
		sns, n, _ := strings.Cut(s, "/")
		b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Namespace: sns, Name: n})
	}
	return b
}

// bystanders are objects of other components that must never be listed.
func bystanders() []runtime.Object {
	return []runtime.Object{
		cm("kube-system", "kube-proxy"), sa("kube-system", "kube-proxy"), sa("kube-system", "default"), cm("kube-system", "kube-root-ca.crt"),
		crb("kubeadm:node-proxier", "system:node-proxier", "kube-system/kube-proxy"), cr("system:node-proxier"),
		deploy("kube-system", "coredns", "coredns"), sa("kube-system", "coredns"), cr("system:coredns"), crb("system:coredns", "system:coredns", "kube-system/coredns"),
	}
}

func objectStrings(objs []Object) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	return strings.Join(out, "\n")
}

func TestPlanRemoval(t *testing.T) {
	tests := []struct {
		name    string
		cluster *detect.Cluster
		objects []runtime.Object
		// forbidRoleBindings answers the cluster-wide RoleBinding list with 403.
		forbidRoleBindings bool
		want               []string // the objects, in order
		kept               []string // substrings of Kept, one each
		manual             string   // substring of Manual
	}{
		{
			name:    "flannel with its namespace",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", ConfigMap: "kube-flannel-cfg"}},
			objects: []runtime.Object{
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel"}},
				ds("kube-flannel", "kube-flannel-ds", "flannel", "kube-flannel-cfg"), cm("kube-flannel", "kube-flannel-cfg"), cm("kube-flannel", "kube-root-ca.crt"),
				sa("kube-flannel", "flannel"), sa("kube-flannel", "default"), cr("flannel"), crb("flannel", "flannel", "kube-flannel/flannel"),
			},
			want: []string{"daemonset/kube-flannel-ds -n kube-flannel", "configmap/kube-flannel-cfg -n kube-flannel", "clusterrolebinding/flannel",
				"clusterrole/flannel", "serviceaccount/flannel -n kube-flannel", "namespace/kube-flannel"},
		},
		{
			name: "old flannel with one DaemonSet per architecture in kube-system",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "flannel", Namespace: "kube-system", DaemonSet: "kube-flannel-ds-amd64", ConfigMap: "kube-flannel-cfg",
				ArchDaemonSets: []string{"kube-flannel-ds-amd64", "kube-flannel-ds-arm", "kube-flannel-ds-arm64"}}},
			objects: []runtime.Object{
				ds("kube-system", "kube-flannel-ds-amd64", "flannel", "kube-flannel-cfg"), ds("kube-system", "kube-flannel-ds-arm64", "flannel", "kube-flannel-cfg"),
				cm("kube-system", "kube-flannel-cfg"), sa("kube-system", "flannel"), cr("flannel"), crb("flannel", "flannel", "kube-system/flannel"),
			},
			want: []string{"daemonset/kube-flannel-ds-amd64 -n kube-system", "daemonset/kube-flannel-ds-arm64 -n kube-system", "configmap/kube-flannel-cfg -n kube-system",
				"clusterrolebinding/flannel", "clusterrole/flannel", "serviceaccount/flannel -n kube-system"},
		},
		{
			name:    "k3s's embedded flannel: nothing to delete, the k3s settings instead",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "k3s-flannel", Embedded: "k3s"}},
			manual:  "flannel-backend: none and disable-network-policy: true in /etc/rancher/k3s/config.yaml",
		},
		{
			name: "RKE2's packaged canal: its HelmChart would re-create it",
			cluster: &detect.Cluster{Distribution: &detect.Distribution{Name: "rke2"},
				CNI: &detect.CNI{Name: "canal", Namespace: "kube-system", DaemonSet: "rke2-canal", ConfigMap: "rke2-canal-config"}},
			objects: []runtime.Object{ds("kube-system", "rke2-canal", "canal", "rke2-canal-config"), cm("kube-system", "rke2-canal-config")},
			manual:  "cni: none in /etc/rancher/rke2/config.yaml",
		},
		{
			name: "RKE2's packaged calico (the Tigera operator)",
			cluster: &detect.Cluster{Distribution: &detect.Distribution{Name: "rke2"},
				CNI: &detect.CNI{Name: "calico", Install: "operator", Installation: "default", Namespace: "calico-system", DaemonSet: "calico-node"}},
			manual: "HelmChart kube-system/rke2-calico",
		},
		{
			name:    "flannel namespace with something else in it stays",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", ConfigMap: "kube-flannel-cfg"}},
			objects: []runtime.Object{
				ds("kube-flannel", "kube-flannel-ds", "flannel"), cm("kube-flannel", "kube-flannel-cfg"), cm("kube-flannel", "mine"),
				sa("kube-flannel", "flannel"), cr("flannel"), crb("flannel", "flannel", "kube-flannel/flannel"),
			},
			want: []string{"daemonset/kube-flannel-ds -n kube-flannel", "configmap/kube-flannel-cfg -n kube-flannel", "clusterrolebinding/flannel",
				"clusterrole/flannel", "serviceaccount/flannel -n kube-flannel"},
		},
		{
			name:    "canal: its DaemonSet, calico-kube-controllers, RBAC; a ClusterRole someone else binds stays; CRDs kept",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "canal", Namespace: "kube-system", DaemonSet: "canal", ConfigMap: "canal-config"}},
			objects: []runtime.Object{
				ds("kube-system", "canal", "canal", "canal-config"), cm("kube-system", "canal-config"),
				deploy("kube-system", "calico-kube-controllers", "calico-kube-controllers"), pdb("kube-system", "calico-kube-controllers"),
				sa("kube-system", "canal"), sa("kube-system", "calico-kube-controllers"), sa("kube-system", "calico-cni-plugin"),
				cr("flannel"), cr("calico-node"), cr("calico-kube-controllers"), cr("calico-cni-plugin"),
				crb("canal-flannel", "flannel", "kube-system/canal"), crb("canal-calico", "calico-node", "kube-system/canal"),
				crb("calico-kube-controllers", "calico-kube-controllers", "kube-system/calico-kube-controllers"),
				crb("calico-cni-plugin", "calico-cni-plugin", "kube-system/calico-cni-plugin"),
				// Someone else binds the flannel ClusterRole too.
				rb("monitoring", "borrowed", "ClusterRole", "flannel", "monitoring/agent"),
			},
			want: []string{
				"daemonset/canal -n kube-system", "deployment/calico-kube-controllers -n kube-system", "poddisruptionbudget/calico-kube-controllers -n kube-system",
				"configmap/canal-config -n kube-system",
				"clusterrolebinding/calico-cni-plugin", "clusterrolebinding/calico-kube-controllers", "clusterrolebinding/canal-calico", "clusterrolebinding/canal-flannel",
				"clusterrole/calico-cni-plugin", "clusterrole/calico-kube-controllers", "clusterrole/calico-node",
				"serviceaccount/calico-cni-plugin -n kube-system", "serviceaccount/calico-kube-controllers -n kube-system", "serviceaccount/canal -n kube-system",
			},
			kept: []string{"*.crd.projectcalico.org"},
		},
		{
			name:    "calico manifest with typha",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "calico", Install: "manifest", Namespace: "kube-system", DaemonSet: "calico-node", ConfigMap: "calico-config"}},
			objects: []runtime.Object{
				ds("kube-system", "calico-node", "calico-node"), cm("kube-system", "calico-config"),
				deploy("kube-system", "calico-kube-controllers", "calico-kube-controllers"), pdb("kube-system", "calico-kube-controllers"),
				deploy("kube-system", "calico-typha", "calico-node"), pdb("kube-system", "calico-typha"),
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "calico-typha"}},
				sa("kube-system", "calico-node"), sa("kube-system", "calico-kube-controllers"), sa("kube-system", "calico-cni-plugin"),
				cr("calico-node"), cr("calico-kube-controllers"), cr("calico-cni-plugin"),
				crb("calico-node", "calico-node", "kube-system/calico-node"),
				crb("calico-kube-controllers", "calico-kube-controllers", "kube-system/calico-kube-controllers"),
				crb("calico-cni-plugin", "calico-cni-plugin", "kube-system/calico-cni-plugin"),
			},
			want: []string{
				"daemonset/calico-node -n kube-system", "deployment/calico-kube-controllers -n kube-system", "deployment/calico-typha -n kube-system",
				"poddisruptionbudget/calico-kube-controllers -n kube-system", "poddisruptionbudget/calico-typha -n kube-system", "service/calico-typha -n kube-system",
				"configmap/calico-config -n kube-system",
				"clusterrolebinding/calico-cni-plugin", "clusterrolebinding/calico-kube-controllers", "clusterrolebinding/calico-node",
				"clusterrole/calico-cni-plugin", "clusterrole/calico-kube-controllers", "clusterrole/calico-node",
				"serviceaccount/calico-cni-plugin -n kube-system", "serviceaccount/calico-kube-controllers -n kube-system", "serviceaccount/calico-node -n kube-system",
			},
			kept: []string{"IPPools, IPAM blocks"},
		},
		{
			name:    "calico operator install: uninstall through the operator",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "calico", Install: "operator", Installation: "default", Namespace: "calico-system", DaemonSet: "calico-node"}},
			objects: []runtime.Object{ds("calico-system", "calico-node", "calico-node"), deploy("tigera-operator", "tigera-operator", "tigera-operator")},
			manual:  "kubectl delete installation default",
		},
		{
			name:    "weave: Role and RoleBinding too, and its peer list",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "weave", Namespace: "kube-system", DaemonSet: "weave-net"}},
			objects: []runtime.Object{
				ds("kube-system", "weave-net", "weave-net"), cm("kube-system", "weave-net"), sa("kube-system", "weave-net"),
				cr("weave-net"), crb("weave-net", "weave-net", "kube-system/weave-net"),
				role("kube-system", "weave-net"), rb("kube-system", "weave-net", "Role", "weave-net", "kube-system/weave-net"),
			},
			want: []string{"daemonset/weave-net -n kube-system", "configmap/weave-net -n kube-system", "rolebinding/weave-net -n kube-system",
				"role/weave-net -n kube-system", "clusterrolebinding/weave-net", "clusterrole/weave-net", "serviceaccount/weave-net -n kube-system"},
		},
		{
			name:    "kube-router: not the kube-proxy ConfigMap it mounts",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "kube-router", Namespace: "kube-system", DaemonSet: "kube-router", ConfigMap: "kube-router-cfg"}},
			objects: []runtime.Object{
				ds("kube-system", "kube-router", "kube-router", "kube-router-cfg", "kube-proxy"), cm("kube-system", "kube-router-cfg"), sa("kube-system", "kube-router"),
				cr("kube-router"), crb("kube-router", "kube-router", "kube-system/kube-router"),
			},
			want: []string{"daemonset/kube-router -n kube-system", "configmap/kube-router-cfg -n kube-system", "clusterrolebinding/kube-router",
				"clusterrole/kube-router", "serviceaccount/kube-router -n kube-system"},
			kept: []string{"ConfigMap kube-system/kube-proxy: kube-router mounts it"},
		},
		{
			name:    "RoleBindings cannot be listed: RBAC and ServiceAccounts stay",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "kube-router", Namespace: "kube-system", DaemonSet: "kube-router", ConfigMap: "kube-router-cfg"}},
			objects: []runtime.Object{
				ds("kube-system", "kube-router", "kube-router", "kube-router-cfg"), cm("kube-system", "kube-router-cfg"), sa("kube-system", "kube-router"),
				cr("kube-router"), crb("kube-router", "kube-router", "kube-system/kube-router"),
			},
			forbidRoleBindings: true,
			want:               []string{"daemonset/kube-router -n kube-system", "configmap/kube-router-cfg -n kube-system"},
			kept:               []string{"you may not list RoleBindings"},
		},
		{
			name:    "already removed",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "weave", Namespace: "kube-system", DaemonSet: "weave-net"}},
		},
		{
			name:    "named by --from only",
			cluster: &detect.Cluster{CNI: &detect.CNI{Name: "calico", Override: "--from calico --old-pod-cidr 10.50.0.0/16"}},
			manual:  "delete its objects by hand",
		},
		{
			name: "several CNIs, none chosen",
			cluster: &detect.Cluster{CNIsSeen: []detect.SeenCNI{{Name: "canal", Object: "DaemonSet kube-system/canal"},
				{Name: "weave", Object: "DaemonSet kube-system/weave-net"}, {Name: "cilium", Object: "DaemonSet kube-system/cilium"}}},
			manual: "not identified (seen: canal (DaemonSet kube-system/canal), weave (DaemonSet kube-system/weave-net))",
		},
		{name: "nothing left", cluster: &detect.Cluster{CNIsSeen: []detect.SeenCNI{{Name: "cilium", Object: "DaemonSet kube-system/cilium"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewSimpleClientset(append(bystanders(), tt.objects...)...)
			if tt.forbidRoleBindings {
				c.PrependReactor("list", "rolebindings", func(a k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}, "", nil)
				})
			}
			r, err := PlanRemoval(context.Background(), c, tt.cluster)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := objectStrings(r.Objects), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("objects:\n%s\nwant:\n%s", got, want)
			}
			if len(r.Kept) != len(tt.kept) {
				t.Errorf("kept %q, want %d", r.Kept, len(tt.kept))
			}
			for i := range tt.kept {
				if i < len(r.Kept) && !strings.Contains(r.Kept[i], tt.kept[i]) {
					t.Errorf("kept[%d] %q lacks %q", i, r.Kept[i], tt.kept[i])
				}
			}
			if !strings.Contains(r.Manual, tt.manual) || (tt.manual == "") != (r.Manual == "") {
				t.Errorf("manual %q, want %q", r.Manual, tt.manual)
			}
			if r.Manual != "" && len(r.Objects) > 0 {
				t.Errorf("manual removal lists objects: %v", r.Objects)
			}

			// Delete removes exactly those, and a second plan finds nothing.
			if len(r.Objects) == 0 {
				return
			}
			deleted, err := Delete(context.Background(), c, r.Objects, false)
			if err != nil || len(deleted) != len(r.Objects) {
				t.Fatalf("deleted %v: %v", deleted, err)
			}
			again, err := PlanRemoval(context.Background(), c, tt.cluster)
			if err != nil || len(again.Objects) != 0 {
				t.Fatalf("after deleting: %v %v", again.Objects, err)
			}
			for _, b := range bystanders() {
				m := b.(metav1.Object)
				var err error
				switch b.(type) {
				case *corev1.ConfigMap:
					_, err = c.CoreV1().ConfigMaps(m.GetNamespace()).Get(context.Background(), m.GetName(), metav1.GetOptions{})
				case *corev1.ServiceAccount:
					_, err = c.CoreV1().ServiceAccounts(m.GetNamespace()).Get(context.Background(), m.GetName(), metav1.GetOptions{})
				case *rbacv1.ClusterRole:
					_, err = c.RbacV1().ClusterRoles().Get(context.Background(), m.GetName(), metav1.GetOptions{})
				case *rbacv1.ClusterRoleBinding:
					_, err = c.RbacV1().ClusterRoleBindings().Get(context.Background(), m.GetName(), metav1.GetOptions{})
				}
				if err != nil {
					t.Errorf("bystander %T %s: %v", b, m.GetName(), err)
				}
			}
		})
	}
}

func TestLeftovers(t *testing.T) {
	for cni, want := range map[string]string{
		"flannel":     "flannel.1, cni0",
		"canal":       "FLANNEL-POSTRTG",
		"calico":      "vxlan.calico",
		"weave":       "vxlan-6784",
		"kube-router": "kube-dummy-if",
	} {
		var b strings.Builder
		if err := Leftovers(&b, cni); err != nil {
			t.Fatalf("%s: %v", cni, err)
		}
		if !strings.Contains(b.String(), want) || !strings.Contains(b.String(), "*.cilium_bak") {
			t.Errorf("%s: %s", cni, b.String())
		}
	}
}
