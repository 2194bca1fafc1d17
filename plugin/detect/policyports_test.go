package detect

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestPolicyPorts: a policy's ranges and named ports are kept, plain port
// numbers are not; the pods' numbers are read only for the names egress
// rules use.
func TestPolicyPorts(t *testing.T) {
	udp := corev1.ProtocolUDP
	port := func(p intstr.IntOrString, end int32, proto *corev1.Protocol) networkingv1.NetworkPolicyPort {
		np := networkingv1.NetworkPolicyPort{Port: &p, Protocol: proto}
		if end != 0 {
			np.EndPort = &end
		}
		return np
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{
				port(intstr.FromInt32(80), 0, nil), port(intstr.FromString("metrics"), 0, nil), {Protocol: &udp},
			}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
				port(intstr.FromInt32(30000), 32767, &udp), port(intstr.FromString("http"), 0, nil),
			}}},
		},
	}
	name := NamespacedName{"shop", "web"}
	got := policyPortsOf(np)
	want := []PolicyPort{
		{Policy: name, Direction: "ingress", Protocol: "TCP", Port: "metrics"},
		{Policy: name, Direction: "egress", Protocol: "UDP", Port: "30000", EndPort: 32767},
		{Policy: name, Direction: "egress", Protocol: "TCP", Port: "http"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("policyPortsOf:\n got %+v\nwant %+v", got, want)
	}
	names := egressPortNames(got)
	if !reflect.DeepEqual(names, map[string]bool{"http": true}) {
		t.Fatalf("egress names %v", names)
	}
	pod := func(ns, n string, phase corev1.PodPhase, ports ...corev1.ContainerPort) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}, Status: corev1.PodStatus{Phase: phase},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}}}
	}
	pods := []corev1.Pod{
		pod("shop", "web-1", corev1.PodRunning, corev1.ContainerPort{Name: "http", ContainerPort: 8080}, corev1.ContainerPort{Name: "metrics", ContainerPort: 9090}),
		pod("shop", "web-2", corev1.PodRunning, corev1.ContainerPort{Name: "http", ContainerPort: 8080}),
		pod("demo", "api-0", corev1.PodPending, corev1.ContainerPort{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}),
		pod("demo", "done", corev1.PodSucceeded, corev1.ContainerPort{Name: "http", ContainerPort: 81}),
	}
	np2 := namedPortsOf(pods, names)
	wantNP := []NamedPort{
		{Name: "http", Protocol: "TCP", Port: 80, Pods: 1, Example: NamespacedName{"demo", "api-0"}},
		{Name: "http", Protocol: "TCP", Port: 8080, Pods: 2, Example: NamespacedName{"shop", "web-1"}},
	}
	if !reflect.DeepEqual(np2, wantNP) {
		t.Fatalf("namedPortsOf:\n got %+v\nwant %+v", np2, wantNP)
	}
	if namedPortsOf(pods, nil) != nil {
		t.Error("pods read without an egress name")
	}
}
