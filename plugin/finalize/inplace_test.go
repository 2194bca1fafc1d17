package finalize

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestUpgradedBothStrategies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		data     map[string]string
		progress bool // the in-place method's progress ConfigMap
		want     bool
	}{
		{"dual-overlay initial", map[string]string{"custom-cni-conf": "true", "enable-policy": "never", "unmanaged-pod-watcher-interval": "0"}, false, false},
		{"in-place initial", map[string]string{"custom-cni-conf": "false", "enable-policy": "never", "unmanaged-pod-watcher-interval": "0"}, false, false},
		{"final (1.18)", map[string]string{"custom-cni-conf": "false", "enable-policy": "default", "unmanaged-pod-watcher-interval": "15"}, false, true},
		{"final (1.20)", map[string]string{"custom-cni-conf": "false", "enable-policy": "default", "unmanaged-pod-watcher-interval": "15s"}, false, true},
		{"final keeping policies off", map[string]string{"custom-cni-conf": "false", "enable-policy": "never", "unmanaged-pod-watcher-interval": "15s"}, false, true},
		{"final keeping the watcher off", map[string]string{"custom-cni-conf": "false", "enable-policy": "default", "unmanaged-pod-watcher-interval": "0"}, false, true},
		{"a Cilium not installed by the plugin", map[string]string{"custom-cni-conf": "false"}, false, true},
		{"in-place initial, audit mode", map[string]string{"custom-cni-conf": "false", "enable-policy": "default", "policy-audit-mode": "true", "unmanaged-pod-watcher-interval": "0"}, true, false},
		{"in-place initial, the policy bridge", map[string]string{"custom-cni-conf": "false", "enable-policy": "default", "unmanaged-pod-watcher-interval": "0"}, true, false},
		{"in-place final keeping the watcher off", map[string]string{"custom-cni-conf": "false", "enable-policy": "default", "unmanaged-pod-watcher-interval": "0"}, false, true},
	} {
		objs := []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: tc.data}}
		if tc.progress {
			objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: InPlaceProgress}})
		}
		c := fake.NewClientset(objs...)
		if got, err := Upgraded(context.Background(), c, "kube-system"); err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestInPlaceProgress(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	if ok, err := InPlaceProgressExists(ctx, c, "kube-system"); ok || err != nil {
		t.Fatalf("%v %v", ok, err)
	}
	if err := DeleteInPlaceProgress(ctx, c, "kube-system", false); err != nil {
		t.Fatalf("deleting a missing one: %v", err)
	}
	_, _ = c.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: InPlaceProgress}}, metav1.CreateOptions{})
	if ok, err := InPlaceProgressExists(ctx, c, "kube-system"); !ok || err != nil {
		t.Fatalf("%v %v", ok, err)
	}
	if err := DeleteInPlaceProgress(ctx, c, "kube-system", false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := InPlaceProgressExists(ctx, c, "kube-system"); ok {
		t.Error("still there")
	}
}
