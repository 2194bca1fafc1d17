package policyreport

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestBuild: the verdicts of two agents, half-way through a Flannel
// migration with audit mode on, named by the cluster's endpoints, pods,
// nodes and policies (testdata/report.golden).
func TestBuild(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	pod := func(ns, name, ip string, labels map[string]string, host bool) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec:   corev1.PodSpec{HostNetwork: host},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: ip}}}}
	}
	egress := networkingv1.PolicyTypeEgress
	inv := Inventory{
		NodeIPs:   map[string]string{"worker-1": "192.168.10.11", "worker-2": "192.168.10.12"},
		Endpoints: []Endpoint{{NodeIP: "192.168.10.11", ID: 101, Namespace: "demo", Name: "db-0"}, {NodeIP: "192.168.10.12", ID: 7, Namespace: "demo", Name: "client-x"}},
		Pods: []corev1.Pod{
			pod("demo", "db-0", "10.245.0.7", map[string]string{"app": "db"}, false),
			pod("demo", "client-x", "10.245.1.3", map[string]string{"app": "client"}, false),
			pod("demo", "web-1", "10.244.2.5", map[string]string{"app": "web"}, false),
			pod("demo", "web-2", "10.244.2.6", map[string]string{"app": "web"}, false),
			pod("kube-system", "kube-proxy-a", "192.168.10.13", nil, true),
		},
		NodeAddrs: map[string]string{"worker-1": "192.168.10.11", "worker-2": "192.168.10.12", "worker-3": "192.168.10.13"},
		Policies: []networkingv1.NetworkPolicy{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "db-from-api"}, Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "deny-all"}, Spec: networkingv1.NetworkPolicySpec{}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "client-egress"}, Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}, PolicyTypes: []networkingv1.PolicyType{egress}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db-elsewhere"}, Spec: networkingv1.NetworkPolicySpec{}},
		},
	}
	v := func(node string, at int, ep int, remote uint32, ingress bool, action, src, dst, l4 string) Observed {
		return Observed{Node: node, At: t0.Add(time.Duration(at) * time.Second), Verdict: Verdict{Endpoint: ep, Remote: remote, Proto: 6, Ingress: ingress,
			Action: action, Match: "none", Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), L4: l4}}
	}
	obs := []Observed{
		// An old pod (its address, through the bridge, or not) to db-0.
		v("worker-1", 1, 101, 58583, true, "audit", "10.244.2.5:40000", "10.245.0.7:5432", "tcp"),
		v("worker-1", 5, 101, 58583, true, "audit", "10.244.2.5:40002", "10.245.0.7:5432", "tcp"),
		v("worker-1", 3, 101, 58583, true, "audit", "10.244.2.6:40001", "10.245.0.7:5432", "tcp"),
		// The same, source-NATed to worker-3's address: a node.
		v("worker-1", 4, 101, 6, true, "audit", "192.168.10.13:33000", "10.245.0.7:5432", "tcp"),
		// Allowed: counted, not reported.
		v("worker-1", 2, 101, 31155, true, "allow", "10.245.1.3:41000", "10.245.0.7:5432", "tcp"),
		// client-x's egress to the world, denied now (not audited).
		v("worker-2", 6, 7, 2, false, "deny", "10.245.1.3:42000", "203.0.113.9:443", "tcp"),
		// An endpoint no CiliumEndpoint names (being deleted).
		v("worker-2", 7, 99, 2, false, "audit", "10.245.1.9:42000", "203.0.113.9:80", "tcp"),
	}
	r := Build(obs, inv, t0, t0.Add(30*time.Second))
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("report differs from %s (go test -update rewrites it):\n%s", path, got)
	}
	if r.Verdicts != 7 || r.Denied != 6 || len(r.Flows) != 5 || r.NotAudited != 2 {
		t.Errorf("verdicts %d, denied %d, flows %d, not audited %d", r.Verdicts, r.Denied, len(r.Flows), r.NotAudited)
	}
}
