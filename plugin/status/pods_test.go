package status

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testNetworks(t *testing.T) Networks {
	t.Helper()
	old, bad := ParsePrefixes([]string{"10.244.0.0/16", "10.250.1.0/24"})
	nw, bad2 := ParsePrefixes([]string{"10.245.0.0/16"})
	if len(bad)+len(bad2) > 0 {
		t.Fatal(bad, bad2)
	}
	return Networks{Old: old, New: nw}
}

func TestClassify(t *testing.T) {
	n := testNetworks(t)
	for _, tc := range []struct {
		ip   string
		want Network
	}{
		{"", NoAddress},
		{"10.244.0.5", OldNetwork},
		{"10.244.255.255", OldNetwork},
		{"10.250.1.9", OldNetwork},
		{"10.245.3.17", NewNetwork},
		{"::ffff:10.245.3.17", NewNetwork},
		{"10.246.0.1", OtherNetwork},
		{"192.168.1.10", OtherNetwork},
		{"fd00::1", OtherNetwork},
	} {
		var ip netip.Addr
		if tc.ip != "" {
			ip = netip.MustParseAddr(tc.ip)
		}
		if got := n.Classify(ip); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.ip, got, tc.want)
		}
	}

	// An address in both networks (overlapping pools, which plan refuses)
	// is Cilium's.
	overlap := Networks{Old: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, New: []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")}}
	if got := overlap.Classify(netip.MustParseAddr("10.245.0.9")); got != NewNetwork {
		t.Errorf("overlap: %v", got)
	}
	// No networks known (Cilium not installed, nothing detected).
	if got := (Networks{}).Classify(netip.MustParseAddr("10.244.0.5")); got != OtherNetwork {
		t.Errorf("no networks: %v", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	ok, bad := ParsePrefixes([]string{"10.244.0.0/16", "10.245.1.7/16", "nonsense", "10.1.0.0"})
	if len(ok) != 2 || ok[1].String() != "10.245.0.0/16" {
		t.Errorf("ok %v", ok)
	}
	if len(bad) != 2 {
		t.Errorf("bad %v", bad)
	}
}

func TestCounted(t *testing.T) {
	for _, tc := range []struct {
		hostNetwork bool
		phase       corev1.PodPhase
		want        bool
	}{
		{false, corev1.PodRunning, true},
		{false, corev1.PodPending, true},
		{false, corev1.PodSucceeded, false},
		{false, corev1.PodFailed, false},
		{false, corev1.PodUnknown, false},
		{false, "", false},
		{true, corev1.PodRunning, false},
		{true, corev1.PodPending, false},
	} {
		if got := Counted(tc.hostNetwork, tc.phase); got != tc.want {
			t.Errorf("Counted(hostNetwork=%v, %q) = %v, want %v", tc.hostNetwork, tc.phase, got, tc.want)
		}
	}
}

func pod(node, ip string, phase corev1.PodPhase, hostNetwork bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: node, HostNetwork: hostNetwork},
		Status:     corev1.PodStatus{Phase: phase, PodIP: ip},
	}
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

func TestPodFrom(t *testing.T) {
	p := pod("n1", "", corev1.PodRunning, false)
	p.Status.PodIPs = []corev1.PodIP{{IP: "fd00::5"}, {IP: "10.245.0.9"}}
	p.Status.PodIP = "fd00::5"
	if got := PodFrom(p, false); got.IP != netip.MustParseAddr("10.245.0.9") || got.Agent != NotAgent || got.Name != "" {
		t.Errorf("dual stack: %+v", got)
	}
	p.Status.PodIPs = []corev1.PodIP{{IP: "fd00::5"}}
	if got := PodFrom(p, false); got.IP != netip.MustParseAddr("fd00::5") {
		t.Errorf("IPv6 only: %+v", got)
	}
	p = pod("n1", "10.244.0.3", corev1.PodRunning, false)
	p.Status.PodIPs = nil // old servers set only podIP
	if got := PodFrom(p, false); got.IP != netip.MustParseAddr("10.244.0.3") {
		t.Errorf("podIP only: %+v", got)
	}

	agent := pod("n1", "127.1.0.2", corev1.PodRunning, true)
	agent.Name = "cilium-abc"
	if got := PodFrom(agent, true); got.Agent != AgentNotReady || got.Name != "cilium-abc" {
		t.Errorf("agent without Ready condition: %+v", got)
	}
	agent.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if got := PodFrom(agent, true); got.Agent != AgentReady {
		t.Errorf("ready agent: %+v", got)
	}
	now := metav1.Now()
	agent.DeletionTimestamp = &now
	if got := PodFrom(agent, true); got.Agent != AgentNotReady {
		t.Errorf("terminating agent counts as ready: %+v", got)
	}
}

func TestTally(t *testing.T) {
	tl := NewTally(testNetworks(t))
	add := func(p *corev1.Pod) { tl.Add(PodFrom(p, false)) }
	add(pod("n1", "10.244.1.2", corev1.PodRunning, false))   // old
	add(pod("n1", "10.244.1.3", corev1.PodPending, false))   // old, Pending with an address
	add(pod("n1", "10.245.0.2", corev1.PodRunning, false))   // new
	add(pod("n1", "", corev1.PodPending, false))             // no address yet
	add(pod("n1", "127.1.0.1", corev1.PodRunning, true))     // hostNetwork: not counted
	add(pod("n1", "10.244.1.4", corev1.PodSucceeded, false)) // finished: not counted
	add(pod("n1", "10.244.1.5", corev1.PodFailed, false))    // finished: not counted
	add(pod("n1", "10.244.1.6", corev1.PodUnknown, false))   // unknown: not counted
	add(pod("n2", "10.245.1.2", corev1.PodRunning, false))   // new
	add(pod("n2", "172.16.0.1", corev1.PodRunning, false))   // other
	add(pod("", "", corev1.PodPending, false))               // unscheduled: totals only

	if tl.Counted != 7 || tl.OldCIDR != 2 || tl.NewCIDR != 2 || tl.Other != 1 || tl.NoIP != 2 {
		t.Errorf("totals: counted %d old %d new %d other %d noIP %d", tl.Counted, tl.OldCIDR, tl.NewCIDR, tl.Other, tl.NoIP)
	}
	if n1 := tl.Nodes["n1"]; n1 == nil || *n1 != (NodeTally{OldCIDR: 2, NewCIDR: 1, NoIP: 1}) {
		t.Errorf("n1: %+v", n1)
	}
	if n2 := tl.Nodes["n2"]; n2 == nil || *n2 != (NodeTally{NewCIDR: 1, Other: 1}) {
		t.Errorf("n2: %+v", n2)
	}
	if _, ok := tl.Nodes[""]; ok {
		t.Errorf("unscheduled pods got a node entry")
	}
}

func TestTallyAgents(t *testing.T) {
	for _, order := range [][]Pod{
		{{Node: "n1", Name: "cilium-old", Agent: AgentNotReady}, {Node: "n1", Name: "cilium-new", Agent: AgentReady}},
		{{Node: "n1", Name: "cilium-new", Agent: AgentReady}, {Node: "n1", Name: "cilium-old", Agent: AgentNotReady}},
	} {
		tl := NewTally(Networks{})
		for _, p := range order {
			p.HostNetwork, p.Phase = true, corev1.PodRunning
			tl.Add(p)
		}
		if n1 := tl.Nodes["n1"]; n1.AgentPod != "cilium-new" || !n1.AgentReady || tl.Counted != 0 {
			t.Errorf("a Ready agent wins whatever the order: %+v, counted %d", n1, tl.Counted)
		}
	}
	tl := NewTally(Networks{})
	tl.Add(Pod{Node: "n1", Name: "cilium-b", Agent: AgentNotReady, HostNetwork: true})
	tl.Add(Pod{Node: "n1", Name: "cilium-a", Agent: AgentNotReady, HostNetwork: true})
	if n1 := tl.Nodes["n1"]; n1.AgentPod != "cilium-a" || n1.AgentReady {
		t.Errorf("two agents not ready: %+v", n1)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
