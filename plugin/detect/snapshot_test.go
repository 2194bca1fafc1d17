package detect

import (
	"context"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestFetchConfigMapErrors: a ConfigMap the plugin cannot read is an error,
// not an absent ConfigMap. Found by the e2e fault matrix: without "get
// configmaps", cilium-config looked absent, so Cilium looked out of
// migration mode and `node` chose the in-place method.
func TestFetchConfigMapErrors(t *testing.T) {
	cilium := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium", Labels: map[string]string{"k8s-app": "cilium"}},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "cilium-agent", Image: "quay.io/cilium/cilium:v1.18.11"}}}}}}
	for _, tc := range []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"missing", apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, "x"), false},
		{"forbidden", apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "x", nil), true},
		{"server error", apierrors.NewInternalError(errors.New("etcd is down")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset(cilium)
			c.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			_, err := Fetch(context.Background(), c, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Fetch: %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && tc.name == "forbidden" && !apierrors.IsForbidden(err) {
				t.Fatalf("Fetch: %v, want the Forbidden error itself", err)
			}
		})
	}
}
