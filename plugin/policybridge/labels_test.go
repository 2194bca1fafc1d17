package policybridge

import (
	"reflect"
	"testing"
)

// TestIdentityLabels: the security labels of pods as Cilium 1.20.2 gave
// them in the lab (the CiliumIdentities of the migrated pods), and the
// filter's edge cases.
func TestIdentityLabels(t *testing.T) {
	labPolicy := map[string]string{"kubernetes.io/metadata.name": "lab-policy"}
	for _, tc := range []struct {
		name                string
		pod, ns             map[string]string
		namespace, sa, clus string
		want                map[string]string
	}{
		{
			name: "the lab's client (identity 58583)",
			pod:  map[string]string{"role": "client", "controller-revision-hash": "7d9f", "pod-template-generation": "1"}, ns: labPolicy,
			namespace: "lab-policy", sa: "default", clus: "cni-migrate-lab",
			want: map[string]string{
				"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": "lab-policy",
				"k8s:io.cilium.k8s.policy.cluster":                               "cni-migrate-lab",
				"k8s:io.cilium.k8s.policy.serviceaccount":                        "default",
				"k8s:io.kubernetes.pod.namespace":                                "lab-policy",
				"k8s:role":                                                       "client",
			},
		},
		{
			name: "the plugin's probe Job (identity 40414): job-name kept, controller-uid and job-completion-index left out",
			pod: map[string]string{"app.kubernetes.io/component": "cni-migrate-probe", "app.kubernetes.io/managed-by": "kubectl-cni-migrate",
				"batch.kubernetes.io/job-name": "cni-migrate-probe-worker-1", "job-name": "cni-migrate-probe-worker-1",
				"batch.kubernetes.io/controller-uid": "5c1e", "controller-uid": "5c1e", "batch.kubernetes.io/job-completion-index": "0"},
			ns:        map[string]string{"kubernetes.io/metadata.name": "kube-system"},
			namespace: "kube-system", sa: "default", clus: "cni-migrate-lab",
			want: map[string]string{
				"k8s:app.kubernetes.io/component":                                "cni-migrate-probe",
				"k8s:app.kubernetes.io/managed-by":                               "kubectl-cni-migrate",
				"k8s:batch.kubernetes.io/job-name":                               "cni-migrate-probe-worker-1",
				"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": "kube-system",
				"k8s:io.cilium.k8s.policy.cluster":                               "cni-migrate-lab",
				"k8s:io.cilium.k8s.policy.serviceaccount":                        "default",
				"k8s:io.kubernetes.pod.namespace":                                "kube-system",
				"k8s:job-name":                                                   "cni-migrate-probe-worker-1",
			},
		},
		{
			name: "kubernetes.io, k8s.io, beta, topology, StatefulSet and pod-template-hash labels left out",
			pod: map[string]string{"k8s-app": "kube-dns", "pod-template-hash": "7b77698545", "kubernetes.io/os": "linux", "k8s.io/x": "y",
				"failure-domain.beta.kubernetes.io/zone": "a", "topology.kubernetes.io/zone": "a", "statefulset.kubernetes.io/pod-name": "db-0",
				"apps.kubernetes.io/pod-index": "0", "annotation.x": "y", "io.kubernetes.foo": "bar"},
			namespace: "kube-system", sa: "coredns", clus: "default",
			want: map[string]string{
				"k8s:io.cilium.k8s.policy.cluster":        "default",
				"k8s:io.cilium.k8s.policy.serviceaccount": "coredns",
				"k8s:io.kubernetes.pod.namespace":         "kube-system",
				"k8s:k8s-app":                             "kube-dns",
			},
		},
		{
			name: "a namespace label under kubernetes.io is kept (the namespace prefix is the longer match)",
			pod:  map[string]string{"app": "web"}, ns: map[string]string{"kubernetes.io/metadata.name": "shop", "team": "a"},
			namespace: "shop", sa: "", clus: "c1",
			want: map[string]string{
				"k8s:app": "web",
				"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": "shop",
				"k8s:io.cilium.k8s.namespace.labels.team":                        "a",
				"k8s:io.cilium.k8s.policy.cluster":                               "c1",
				"k8s:io.kubernetes.pod.namespace":                                "shop",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := IdentityLabels(tc.pod, tc.ns, tc.namespace, tc.sa, tc.clus)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
