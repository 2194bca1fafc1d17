package policybridge

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/NAME, which -update rewrites.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s (go test -update):\n%s", path, got)
	}
}

func pod(ns, name, ip, host string, labels map[string]string, mod ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Labels: labels},
		Spec:       corev1.PodSpec{ServiceAccountName: "default"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, HostIP: host, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	for _, m := range mod {
		m(&p)
	}
	return p
}

// bridgeInput is a half-migrated cluster: worker-1 (192.168.100.12) on
// Cilium (10.245.0.0/16), control-plane (192.168.100.11) on the old
// network (10.244.0.0/16).
func bridgeInput() Input {
	lp := map[string]string{"kubernetes.io/metadata.name": "lab-policy"}
	in := Input{
		Pool:    []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")},
		Cluster: "cni-migrate-lab",
		Namespaces: []corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "lab-policy", Labels: lp}},
			{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", Labels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}},
		},
		Pods: []corev1.Pod{
			// Old network: bridged.
			pod("lab-policy", "client-7p4pj", "10.244.235.130", "192.168.100.11", map[string]string{"role": "client", "controller-revision-hash": "x"}),
			pod("lab-policy", "server-qmr62", "10.244.235.131", "192.168.100.11", map[string]string{"app": "server"}),
			pod("kube-system", "coredns-a", "10.244.235.139", "192.168.100.11", map[string]string{"k8s-app": "kube-dns", "pod-template-hash": "1"},
				func(p *corev1.Pod) { p.Spec.ServiceAccountName = "coredns" }),
			pod("kube-system", "coredns-b", "10.244.235.141", "192.168.100.11", map[string]string{"k8s-app": "kube-dns", "pod-template-hash": "1"},
				func(p *corev1.Pod) { p.Spec.ServiceAccountName = "coredns" }),
			// Old network, already bridged and unchanged.
			pod("lab-policy", "server-old", "10.244.235.150", "192.168.100.11", map[string]string{"app": "server"}),
			// Not bridged: Cilium's pods, the host's network, not running,
			// being deleted, no address yet.
			pod("lab-policy", "client-fvq62", "10.245.0.78", "192.168.100.12", map[string]string{"role": "client"}),
			pod("kube-system", "kube-proxy-x", "192.168.100.11", "192.168.100.11", nil, func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			pod("lab-policy", "pending", "", "", nil, func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending; p.Status.PodIPs = nil }),
			pod("lab-policy", "going", "10.244.235.160", "192.168.100.11", nil, func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }),
			// An old-network address with Cilium's own endpoint: left alone.
			pod("lab-policy", "theirs", "10.244.235.170", "192.168.100.11", map[string]string{"app": "x"}),
		},
		Identities: []Identity{
			{ID: 31155, Namespace: "lab-policy", Labels: IdentityLabels(map[string]string{"app": "server"}, lp, "lab-policy", "default", "cni-migrate-lab")},
			{ID: 58583, Namespace: "lab-policy", Labels: IdentityLabels(map[string]string{"role": "client"}, lp, "lab-policy", "default", "cni-migrate-lab")},
		},
		Endpoints: []Existing{
			{Namespace: "lab-policy", Name: "client-fvq62"},
			{Namespace: "lab-policy", Name: "theirs"},
			// Ours: one stale (the pod's address changed), one whose pod is
			// gone, one up to date.
			{Namespace: "lab-policy", Name: "client-7p4pj", Ours: true, Key: "stale"},
			{Namespace: "lab-policy", Name: "gone-pod", Ours: true},
			{Namespace: "lab-policy", Name: "server-old", Ours: true},
		},
	}
	// server-old's key as the bridge wrote it.
	p := in.Pods[4]
	in.Endpoints[4].Key = Endpoint{Namespace: p.Namespace, Name: p.Name, PodUID: string(p.UID), Addresses: []netip.Addr{netip.MustParseAddr("10.244.235.150")},
		Node: "192.168.100.11", Identity: 31155, Labels: labelList(in.Identities[0].Labels), ServiceAccount: "default"}.Key()
	return in
}

// TestReconcileGolden: the plan for the half-migrated cluster above and
// the objects it writes, in testdata/reconcile.golden.
func TestReconcileGolden(t *testing.T) {
	plan := Reconcile(bridgeInput())
	var b bytes.Buffer
	fmt.Fprintf(&b, "# bridged: %d pods\n", plan.Bridged)
	for _, e := range plan.Delete {
		fmt.Fprintf(&b, "# delete: ciliumendpoint %s/%s\n", e.Namespace, e.Name)
	}
	for _, id := range plan.CreateIdentities {
		y, err := yaml.Marshal(identityObject(id).Object)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "---\n%s", y)
	}
	for _, e := range plan.Write {
		y, err := yaml.Marshal(endpointObject(e).Object)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "---\n%s", y)
	}
	golden(t, "reconcile.golden", b.Bytes())
}

// TestReconcileSettles: applying a plan's endpoints and identities and
// reconciling again asks for nothing more.
func TestReconcileSettles(t *testing.T) {
	in := bridgeInput()
	plan := Reconcile(in)
	in.Identities = append(in.Identities, plan.CreateIdentities...)
	keep := in.Endpoints[:0]
	for _, e := range in.Endpoints {
		if !(e.Ours && e.Name == "gone-pod") {
			keep = append(keep, e)
		}
	}
	in.Endpoints = keep
	for _, w := range plan.Write {
		found := false
		for i, e := range in.Endpoints {
			if e.Namespace == w.Namespace && e.Name == w.Name {
				in.Endpoints[i].Key, found = w.Key(), true
			}
		}
		if !found {
			in.Endpoints = append(in.Endpoints, Existing{Namespace: w.Namespace, Name: w.Name, Ours: true, Key: w.Key()})
		}
	}
	again := Reconcile(in)
	if len(again.Write)+len(again.Delete)+len(again.CreateIdentities) != 0 || again.Bridged != plan.Bridged {
		t.Errorf("second round: %+v", again)
	}
	// The same label set gets the same new identity in every run.
	if a, b := Reconcile(bridgeInput()).CreateIdentities, plan.CreateIdentities; len(a) != 1 || a[0].ID != b[0].ID {
		t.Errorf("identities %v, then %v", b, a)
	}
}

// TestFreeID: a taken identity moves to the next free one, and the range
// follows the cluster ID.
func TestFreeID(t *testing.T) {
	used := map[int64]bool{}
	a := freeID("k", 0, used)
	if a < minIdentity || a > maxIdentity {
		t.Fatalf("identity %d outside [%d, %d]", a, minIdentity, maxIdentity)
	}
	used[a] = true
	if b := freeID("k", 0, used); b == a || b < minIdentity || b > maxIdentity {
		t.Errorf("taken %d, got %d", a, b)
	}
	if c := freeID("k", 3, map[int64]bool{}); c>>16 != 3 || c&0xffff < minIdentity {
		t.Errorf("cluster 3: %d", c)
	}
}

// TestNodeRulesGolden: the node agent's script for a Calico node
// (testdata/noderules-calico.sh.golden) and a flannel one, where felix's
// rules are left out.
func TestNodeRulesGolden(t *testing.T) {
	old := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	cilium := []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16"), netip.MustParsePrefix("fd00:10:245::/104")}
	calico := NodeRules{Old: old, Cilium: cilium, Felix: true, Interval: 1}.Script()
	golden(t, "noderules-calico.sh.golden", []byte(calico))
	flannel := NodeRules{Old: old, Cilium: cilium}.Script()
	for _, bad := range []string{"cali-FORWARD\"", "--set-mark", "fd00"} {
		if bytes.Contains([]byte(flannel), []byte(bad)) {
			t.Errorf("flannel's script has %q:\n%s", bad, flannel)
		}
	}
	if !bytes.Contains([]byte(flannel), []byte(`"-s 10.244.0.0/16 -d 10.245.0.0/16 -m comment --comment cni-migrate:no-nat:1 -j RETURN"`)) {
		t.Errorf("flannel's script lacks the no-NAT rule:\n%s", flannel)
	}
}

func TestFelixAcceptBit(t *testing.T) {
	for mask, want := range map[uint32]uint32{0: 0x10000, 0xffff0000: 0x10000, 0xff000000: 0x1000000, 0x00f00000: 0x100000} {
		if got := FelixAcceptBit(mask); got != want {
			t.Errorf("FelixAcceptBit(%#x) = %#x, want %#x", mask, got, want)
		}
	}
	script := NodeRules{Old: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, Cilium: []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")}, Felix: true, FelixAcceptMark: 0x1000000}.Script()
	if !bytes.Contains([]byte(script), []byte("-m mark ! --mark 0x1000000/0x1000000")) {
		t.Errorf("the guard does not test felix's accept bit 0x1000000:\n%s", script)
	}
}

// TestDeploymentGolden: what `policy-bridge --deploy` applies on a Calico
// cluster (testdata/deploy.golden).
func TestDeploymentGolden(t *testing.T) {
	d := Deployment{Namespace: "kube-system", Image: "ghcr.io/cni-migrate/kubectl-cni-migrate:v0.9.0", AgentImage: "quay.io/cilium/cilium:v1.20.2",
		Interval: 2,
		Rules:    NodeRules{Old: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, Cilium: []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")}, Felix: true, Interval: 1}}
	var b bytes.Buffer
	for _, u := range d.Objects() {
		if GVR(u).Resource == "" {
			t.Errorf("no resource for kind %s", u.GetKind())
		}
		if u.GetKind() == "ConfigMap" { // the script has its own golden file
			continue
		}
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "---\n%s", y)
	}
	golden(t, "deploy.golden", b.Bytes())
}
