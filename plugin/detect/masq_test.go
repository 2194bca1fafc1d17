package detect

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFlannelIPMasq(t *testing.T) {
	ds := func(ctr corev1.Container) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "canal"},
			Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "calico-node", Image: "calico/node:v3.30.0"}, ctr}}}}}
	}
	s := &Snapshot{ConfigMaps: map[string]*corev1.ConfigMap{
		"kube-system/canal-config": {ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "canal-config"}, Data: map[string]string{"masquerade": "true"}},
	}}
	fromCM := corev1.EnvVar{Name: "FLANNELD_IP_MASQ", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "canal-config"}, Key: "masquerade"}}}
	for _, tc := range []struct {
		name string
		ctr  corev1.Container
		want string
	}{
		{"kube-flannel.yml", corev1.Container{Name: "kube-flannel", Image: "ghcr.io/flannel-io/flannel:v0.28.4", Command: []string{"/opt/bin/flanneld"}, Args: []string{"--ip-masq", "--kube-subnet-mgr"}}, "true"},
		{"flag off", corev1.Container{Name: "kube-flannel", Args: []string{"--ip-masq=false"}}, "false"},
		{"flanneld's default", corev1.Container{Name: "kube-flannel", Args: []string{"--kube-subnet-mgr"}}, "false"},
		{"canal's variable from its ConfigMap", corev1.Container{Name: "kube-flannel", Image: "quay.io/coreos/flannel:v0.15.1", Env: []corev1.EnvVar{fromCM}}, "true"},
		{"the flag wins over the variable", corev1.Container{Name: "kube-flannel", Env: []corev1.EnvVar{fromCM}, Args: []string{"--ip-masq=false"}}, "false"},
		{"no flannel container", corev1.Container{Name: "other", Image: "busybox"}, "nil"},
	} {
		got := "nil"
		if b := flannelIPMasq(s, ds(tc.ctr)); b != nil {
			got = map[bool]string{true: "true", false: "false"}[*b]
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
