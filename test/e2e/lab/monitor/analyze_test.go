package monitor

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

var nets = Networks{
	Old: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	New: []netip.Prefix{netip.MustParsePrefix("10.245.0.0/16")},
}

type pod struct{ name, node, ip string }

var nodeIP = map[string]string{"control-plane": "192.168.100.11", "worker-1": "192.168.100.12", "worker-2": "192.168.100.13"}

var (
	podA  = pod{"mon-a", "worker-1", "10.244.1.5"}
	podB  = pod{"mon-b", "worker-2", "10.244.2.5"}
	podC  = pod{"mon-c", "control-plane", "10.244.0.5"}
	podAn = pod{"mon-a", "worker-1", "10.245.1.3"} // podA after its node moved to the new network
	podCn = pod{"mon-c", "control-plane", "10.245.0.9"}
)

// okPeer is a successful probe of kind from src to dst, seen as seen
// (src's own IP with a port when "").
func okPeer(sec float64, kind string, src, dst pod, seen string) Probe {
	if seen == "" {
		seen = src.ip + ":41000"
	}
	return Probe{T: at(sec), MS: 1.5, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: kind,
		Dst: dst.ip, DstPod: dst.name, DstNode: dst.node, DstIP: dst.ip, OK: true, Seen: seen}
}

func okPod(sec float64, src, dst pod) Probe { return okPeer(sec, KindPod, src, dst, "") }

func failPod(sec float64, src pod, dstIP string) Probe {
	return Probe{T: at(sec), MS: 1000, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindPod,
		Dst: dstIP, Err: "timeout"}
}

func okSvc(sec float64, src pod, kind, dst string, backend pod, seen string) Probe {
	return Probe{T: at(sec), MS: 2, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: kind,
		Dst: dst, DstPod: backend.name, DstNode: backend.node, DstIP: backend.ip, OK: true, Seen: seen}
}

func failSvc(sec float64, src pod, kind, dst string) Probe {
	return Probe{T: at(sec), MS: 1000, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: kind,
		Dst: dst, Err: "timeout"}
}

func TestNetworksClass(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"10.244.1.5", ClassOld},
		{"10.245.0.9", ClassNew},
		{"10.245.0.9:8080", ClassNew},
		{"192.168.100.11", ClassHost},
		{"10.96.100.10", ClassHost},
		{"::ffff:10.244.3.4", ClassOld},
		{"[::ffff:10.245.3.4]:80", ClassNew},
		{"", ""},
		{"not-an-ip", ""},
	} {
		if got := nets.Class(tc.ip); got != tc.want {
			t.Errorf("Class(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

func TestAnalyzePhases(t *testing.T) {
	phases := []Phase{
		{Name: "before", Start: at(0), End: at(10)},
		{Name: "worker-1", Start: at(10), End: at(20)},
		{Name: "after", Start: at(20), End: at(30)},
	}
	probes := []Probe{
		okPod(0, podA, podB),
		okPod(9.999, podA, podB),
		failPod(10, podA, podB.ip), // the first instant of worker-1
		failSvc(15, podA, "svc-ip", "10.96.100.10"),
		okSvc(19.5, podA, "svc-ip", "10.96.100.10", podB, podA.ip+":5000"),
		okPod(20, podA, podB),
		okPod(35, podA, podB), // after every phase
	}
	r := Analyze(probes, nets, phases, nil)
	type row struct {
		name                string
		sent, failed, unexp int
		kinds               []KindCounts
	}
	var got []row
	for _, p := range r.Phases {
		got = append(got, row{p.Name, p.Sent, p.Failed, p.Unexplained, p.Kinds})
	}
	want := []row{
		{"before", 2, 0, 0, []KindCounts{{KindPod, Counts{2, 0, 0}}}},
		{"worker-1", 3, 2, 2, []KindCounts{{KindPod, Counts{1, 1, 1}}, {"svc-ip", Counts{2, 1, 1}}}},
		{"after", 1, 0, 0, []KindCounts{{KindPod, Counts{1, 0, 0}}}},
		{UnphasedName, 1, 0, 0, []KindCounts{{KindPod, Counts{1, 0, 0}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("phases:\n got %+v\nwant %+v", got, want)
	}
}

func TestAnalyzeExplained(t *testing.T) {
	w2 := []Window{{Node: "worker-2", Start: at(4), End: at(6), Reason: "drain"}}
	for _, tc := range []struct {
		name    string
		probes  []Probe
		windows []Window
		// wantUnexplained are the indexes into probes of the unexplained failures.
		wantUnexplained   []int
		wantNode, wantSvc int
	}{
		{
			name:     "pod dst node resolved by an earlier success",
			probes:   []Probe{okPod(1, podA, podB), failPod(5, podA, podB.ip)},
			windows:  w2,
			wantNode: 1,
		},
		{
			name:     "pod dst node resolved by a later success when none before",
			probes:   []Probe{failPod(5, podA, podB.ip), okPod(8, podA, podB)},
			windows:  w2,
			wantNode: 1,
		},
		{
			name: "pod dst node resolved from another source's success",
			probes: []Probe{okPod(1, podC, podB), failPod(5, podA, podB.ip),
				okPeer(1.5, KindMTU, podC, podB, ""), {T: at(5), SrcPod: podA.name, SrcNode: podA.node, SrcIP: podA.ip, Kind: KindMTU, Dst: podB.ip, Err: "timeout"}},
			windows:  w2,
			wantNode: 2,
		},
		{
			name:     "src node in a window",
			probes:   []Probe{okPod(1, podB, podA), failPod(5, podB, podA.ip)},
			windows:  w2,
			wantNode: 1,
		},
		{
			name:            "failure outside any window",
			probes:          []Probe{okPod(1, podA, podB), failPod(7, podA, podB.ip)},
			windows:         w2,
			wantUnexplained: []int{1},
		},
		{
			name:            "pod dst never answered: node unknown",
			probes:          []Probe{failPod(5, podA, "10.244.9.9")},
			windows:         w2,
			wantUnexplained: []int{0},
		},
		{
			// A drain that begins while a probe waits for its answer is what
			// the probe fails of.
			name:            "a probe in flight when the window opened",
			probes:          []Probe{failSvc(2.5, podA, "svc-ip", "10.96.100.10"), failSvc(3.5, podA, "svc-ip", "10.96.100.10")},
			windows:         w2,
			wantSvc:         1,
			wantUnexplained: []int{0},
		},
		{
			name:            "pod probe while another node is disrupted",
			probes:          []Probe{okPod(1, podA, podC), failPod(5, podA, podC.ip)},
			windows:         w2,
			wantUnexplained: []int{1},
		},
		{
			name: "service probes during any window, and after it",
			probes: []Probe{
				failSvc(5, podA, "svc-ip", "10.96.100.10"),
				failSvc(5.5, podC, "svc-dns", "monitor.lab-monitor.svc.cluster.local"),
				failSvc(5.5, podC, KindDNS, "monitor-peers.lab-monitor.svc.cluster.local"),
				failSvc(6, podA, "svc-ip", "10.96.100.10"), // End is exclusive
			},
			windows:         w2,
			wantSvc:         3,
			wantUnexplained: []int{3},
		},
		{
			name:     "open-ended window and a window of every node",
			probes:   []Probe{failPod(100, podA, podB.ip), failPod(200, podC, "10.244.9.9"), okPod(1, podA, podB)},
			windows:  []Window{{Node: "worker-2", Start: at(50), Reason: "reboot"}, {Start: at(199), End: at(201), Reason: "all"}},
			wantNode: 2,
		},
		{
			name:   "no failures",
			probes: []Probe{okPod(1, podA, podB)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Analyze(tc.probes, nets, nil, tc.windows)
			var want []Probe
			for _, i := range tc.wantUnexplained {
				want = append(want, tc.probes[i])
			}
			if got := r.Unexplained(); !reflect.DeepEqual(got, want) {
				t.Errorf("Unexplained() =\n %+v\nwant\n %+v", got, want)
			}
			if r.Totals.Unexplained != len(want) || r.Totals.ExplainedNode != tc.wantNode || r.Totals.ExplainedService != tc.wantSvc {
				t.Errorf("totals %+v, want unexplained %d, node %d, service %d", r.Totals, len(want), tc.wantNode, tc.wantSvc)
			}
		})
	}
}

func TestAnalyzeOutages(t *testing.T) {
	type want struct {
		src, kind, dst      string
		sent, failed, unexp int
		outages             int
		start               float64
		dur                 time.Duration
		nfailed             int
		recovered           bool
		outageUnexplained   int
	}
	for _, tc := range []struct {
		name    string
		probes  []Probe
		windows []Window
		want    []want
	}{
		{
			name: "recovered; the failed pod probes are the pod's pair",
			probes: []Probe{
				okPod(0, podA, podB), okPod(0.5, podA, podB), okPod(1, podA, podB),
				failPod(1.5, podA, podB.ip), failPod(2, podA, podB.ip), failPod(2.5, podA, podB.ip),
				okPod(3, podA, podB),
			},
			want: []want{{podA.name, KindPod, podB.name, 7, 3, 3, 1, 1.5, 1500 * time.Millisecond, 3, true, 3}},
		},
		{
			name: "never recovered: last failure plus the interval",
			probes: []Probe{
				okPod(0, podA, podB), okPod(0.5, podA, podB), okPod(1, podA, podB), okPod(1.5, podA, podB),
				failPod(2, podA, podB.ip), failPod(2.5, podA, podB.ip),
			},
			// The probe at 2 s timed out (1 s) before the window opened.
			windows: []Window{{Node: podB.node, Start: at(3.1), End: at(9)}},
			want:    []want{{podA.name, KindPod, podB.name, 6, 2, 1, 1, 2, time.Second, 2, false, 1}},
		},
		{
			name: "the longest of several outages",
			probes: []Probe{
				okPod(0, podA, podB), failPod(0.5, podA, podB.ip), okPod(1, podA, podB),
				failPod(1.5, podA, podB.ip), failPod(2, podA, podB.ip), failPod(2.5, podA, podB.ip), okPod(3, podA, podB),
				failPod(3.5, podA, podB.ip), okPod(4, podA, podB),
			},
			want: []want{{podA.name, KindPod, podB.name, 9, 5, 5, 3, 1.5, 1500 * time.Millisecond, 3, true, 3}},
		},
		{
			name: "a pod that moved to the new network stays one pair; service pairs by target",
			probes: []Probe{
				okPod(0, podB, podA), okPod(0.5, podB, podA),
				failPod(1, podB, podA.ip), failPod(1.5, podB, podA.ip),
				okPod(2, podB, podAn), okPod(2.5, podB, podAn),
				okSvc(0, podB, "svc-ip", "10.96.100.10", podA, ""), failSvc(0.5, podB, "svc-ip", "10.96.100.10"),
				okSvc(1, podB, "svc-ip", "10.96.100.10", podC, ""),
				failPod(0.5, podB, "10.244.9.9"),
			},
			// The failed Service probe at 0.5 s ended (1 s timeout) before the window.
			windows: []Window{{Node: podA.node, Start: at(1.6), End: at(2)}},
			want: []want{
				{podB.name, KindPod, "10.244.9.9", 1, 1, 1, 1, 0.5, 500 * time.Millisecond, 1, false, 1},
				{podB.name, KindPod, podA.name, 6, 2, 0, 1, 1, time.Second, 2, true, 0},
				{podB.name, "svc-ip", "10.96.100.10", 3, 1, 1, 1, 0.5, 500 * time.Millisecond, 1, true, 1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Analyze(tc.probes, nets, nil, tc.windows)
			if r.Totals.Interval != 500*time.Millisecond {
				t.Errorf("interval %v, want 500ms", r.Totals.Interval)
			}
			var got []want
			for _, p := range r.Pairs {
				got = append(got, want{p.Src, p.Kind, p.Dst, p.Sent, p.Failed, p.Unexplained, p.Outages,
					p.Longest.Start.Sub(t0).Seconds(), p.Longest.Duration, p.Longest.Failed, p.Longest.Recovered, p.Longest.Unexplained})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pairs:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAnalyzeDirections(t *testing.T) {
	probes := []Probe{
		okPod(0, podA, podB), okPod(0, podB, podA), failPod(0.5, podA, podB.ip), // old->old
		okPod(1, podA, podCn), failPod(1.5, podA, podCn.ip), // old->new
		okPod(1, podCn, podA),                                                    // new->old
		okPod(2, podCn, podAn), okPod(2, podAn, podCn), okPod(2.5, podAn, podCn), // new->new
		okPeer(3, KindMTU, podA, podB, ""), // not a pod probe
		okSvc(3, podA, "svc-ip", "10.96.100.10", podB, ""),
		{T: at(4), SrcPod: "host-pod", SrcNode: "worker-1", SrcIP: "192.168.100.11", Kind: KindPod, Dst: podA.ip, Err: "refused"},
	}
	r := Analyze(probes, nets, nil, nil)
	want := []DirectionStats{
		{"old->old", 3, 2, 1}, {"old->new", 2, 1, 1}, {"new->old", 1, 1, 0}, {"new->new", 3, 3, 0}, {"host->old", 1, 0, 1},
	}
	if !reflect.DeepEqual(r.Directions, want) {
		t.Errorf("directions:\n got %+v\nwant %+v", r.Directions, want)
	}
}

func TestAnalyzeNAT(t *testing.T) {
	const node1 = "192.168.100.11"
	probes := []Probe{
		okPeer(0, KindPod, podA, podB, ""),                 // old->old, not rewritten
		okPeer(0.5, KindPod, podA, podB, podA.ip+":33333"), // old->old, not rewritten
		okPeer(1, KindPod, podAn, podB, node1+":40000"),    // new->old, masqueraded to the node
		okPeer(1, KindPod, podAn, podB, node1+":40001"),
		okPeer(1.5, KindPod, podAn, podCn, podAn.ip+":1"),                                                     // new->new
		okPeer(1.5, KindPod, podB, podAn, "10.244.2.1:999"),                                                   // old->new, seen as another old address
		okPeer(2, KindMTU, podAn, podB, node1+":40002"),                                                       // mtu counted apart
		okSvc(2, podA, "svc-ip", "10.96.100.10", podCn, node1+":1"),                                           // a Service to a new backend: direction from dst_ip
		okSvc(2, podA, "web", "10.96.100.20", pod{}, podA.ip+":2"),                                            // a backend that does not say who it is
		{T: at(3), SrcPod: podA.name, SrcIP: podA.ip, Kind: KindPod, Dst: podB.ip, Err: "timeout", Seen: "x"}, // failed: ignored
		okPeer(3, KindPod, podA, podB, "garbage"),                                                             // unparsable: ignored
	}
	named := nets
	named.Names = map[netip.Addr]string{netip.MustParseAddr(node1): "eth0"}
	r := Analyze(probes, named, nil, nil)
	eth0 := func(n int) map[string]int { return map[string]int{"eth0": n} }
	want := []NATStats{
		{KindPod, "old->old", ClassOld, 2, 0, nil},
		{KindPod, "old->new", ClassOld, 1, 1, map[string]int{"other": 1}},
		{KindPod, "new->old", ClassHost, 2, 2, eth0(2)},
		{KindPod, "new->new", ClassNew, 1, 0, nil},
		{KindMTU, "new->old", ClassHost, 1, 1, eth0(1)},
		{"svc-ip", "old->new", ClassHost, 1, 1, eth0(1)},
		{"web", "old->host", ClassOld, 1, 0, nil},
	}
	if !reflect.DeepEqual(r.NAT, want) {
		t.Errorf("NAT:\n got %+v\nwant %+v", r.NAT, want)
	}
}

// scenario is a run of three monitor pods over four phases: worker-1 is
// drained and rebooted onto the new network, its pod coming back with a
// new IP; a Service probe and a pod probe fail with no window open.
func scenario() ([]Probe, []Phase, []Window) {
	phases := []Phase{
		{Name: "before", Start: at(0), End: at(10)},
		{Name: "worker-1", Start: at(10), End: at(20)},
		{Name: "finalize", Start: at(20), End: at(30)},
		{Name: "after", Start: at(30), End: at(40)},
	}
	windows := []Window{{Node: "worker-1", Start: at(11), End: at(18), Reason: "drain, reboot"}}
	const svc, dns = "10.96.100.10", "monitor-peers.lab-monitor.svc.cluster.local"
	var ps []Probe
	for r := 0; r < 80; r++ {
		sec := float64(r) / 2
		a := podA
		if sec >= 17 {
			a = podAn
		}
		aDown := sec >= 12 && sec < 17
		pods := []pod{a, podB, podC}
		for _, src := range pods {
			if src.name == a.name && aDown {
				continue
			}
			ps = append(ps, Probe{T: at(sec), MS: 3, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindDNS, Dst: dns, OK: true})
			for _, dst := range pods {
				if dst.name == src.name {
					continue
				}
				switch {
				case dst.name == a.name && aDown:
					ps = append(ps, failPod(sec, src, podA.ip))
				case src == podC && dst == podB && sec == 33:
					ps = append(ps, failPod(sec, src, dst.ip))
				default:
					seen := ""
					if nets.Class(src.ip) != nets.Class(dst.ip) {
						seen = nodeIP[src.node] + ":40000"
					}
					ps = append(ps, okPeer(sec, KindPod, src, dst, seen))
				}
			}
			// Policy probes: every pod may reach the others' 8080 and
			// none their 8081; a is a server on 8080 that is down while
			// its node is, and once it is on the new network nothing
			// denies 8081 there; one allowed probe from b to c fails at 36s
			// with no window open.
			if r%2 == 0 {
				for _, dst := range pods {
					if dst.name == src.name {
						continue
					}
					allow := policyProbe(sec, src, dst, "8080", ExpectAllow, !(dst.name == a.name && aDown) && !(src == podB && dst == podC && sec == 36))
					deny := policyProbe(sec, src, dst, "8081", ExpectDeny, dst == podAn)
					ps = append(ps, allow, deny)
				}
			}
			switch {
			case aDown && r%2 == 0:
				ps = append(ps, failSvc(sec, src, "svc-ip", svc))
			case sec == 35:
				ps = append(ps, failSvc(sec, src, "svc-ip", svc))
			default:
				ps = append(ps, okSvc(sec, src, "svc-ip", svc, pods[(r+1)%3], "192.168.100.2:5000"))
			}
		}
	}
	return ps, phases, windows
}

// policyProbe is a policy probe from src to dst's port that got through
// (ok) or timed out.
func policyProbe(sec float64, src, dst pod, port, expect string, ok bool) Probe {
	p := Probe{T: at(sec), MS: 1.5, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindPolicy,
		Dst: dst.ip, OK: ok, Policy: "flow-" + port, Expect: expect, Port: port}
	if ok {
		p.DstPod, p.DstNode, p.DstIP, p.Seen = dst.name, dst.node, dst.ip, src.ip+":41000"
	} else {
		p.MS, p.Err = 3000, "timeout (connecting)"
	}
	return p
}

func TestPolicy(t *testing.T) {
	phases := []Phase{{Name: "one", Start: at(0), End: at(10)}, {Name: "two", Start: at(10), End: at(20)}}
	windows := []Window{{Node: podB.node, Start: at(12), End: at(14)}}
	ps := []Probe{
		policyProbe(1, podA, podB, "8080", ExpectAllow, true),
		policyProbe(2, podA, podB, "8081", ExpectDeny, false),
		policyProbe(3, podA, podB, "8081", ExpectDeny, true),    // let through
		policyProbe(4, podA, podC, "8080", ExpectAllow, false),  // unexplained
		policyProbe(12, podA, podB, "8080", ExpectAllow, false), // b's window
		policyProbe(15, podAn, podB, "8080", ExpectAllow, true),
		policyProbe(16, podAn, podB, "8081", ExpectDeny, true),
	}
	r := Analyze(ps, nets, phases, windows)
	want := []PolicyStats{
		{Phase: "one", Direction: "old->old", Allowed: 2, AllowedFailed: 1, AllowedUnexplained: 1, Denied: 2, LetThrough: 1},
		{Phase: "two", Direction: "old->old", Allowed: 1, AllowedFailed: 1},
		{Phase: "two", Direction: "new->old", Allowed: 1, Denied: 1, LetThrough: 1},
	}
	if !reflect.DeepEqual(r.Policy, want) {
		t.Errorf("Policy:\n got %+v\nwant %+v", r.Policy, want)
	}
	wantFlows := []FlowStats{
		{Flow: "flow-8080", Expect: ExpectAllow, Port: "8080", Sent: 4, Failed: 2, Unexplained: 1},
		{Flow: "flow-8081", Expect: ExpectDeny, Port: "8081", Sent: 3, Failed: 2},
	}
	if !reflect.DeepEqual(r.Flows, wantFlows) {
		t.Errorf("Flows:\n got %+v\nwant %+v", r.Flows, wantFlows)
	}
	// Denied flows are no failures: only the allowed probes count.
	if r.Totals.Sent != 4 || r.Totals.Failed != 2 || r.Totals.Unexplained != 1 || len(r.Unexplained()) != 1 {
		t.Errorf("totals %+v, unexplained %d", r.Totals.Counts, len(r.Unexplained()))
	}
}

func TestMarkdownGolden(t *testing.T) {
	ps, phases, windows := scenario()
	r := Analyze(ps, nets, phases, windows)
	got := r.Markdown()
	if again := Analyze(ps, nets, phases, windows).Markdown(); again != got {
		t.Fatal("Markdown is not deterministic")
	}
	golden := filepath.Join("testdata", "report.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./lab/monitor -update)", err)
	}
	if got != string(want) {
		t.Errorf("Markdown() differs from %s (rerun with -update to accept):\n%s", golden, got)
	}
	if len(r.Unexplained()) != 5 { // c->b at 33s, three svc-ip at 35s, the b->c policy probe at 36s
		t.Errorf("unexplained: %d: %+v", len(r.Unexplained()), r.Unexplained())
	}
}

func TestReportJSON(t *testing.T) {
	ps, phases, windows := scenario()
	r := Analyze(ps, nets, phases, windows)
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Totals != r.Totals || len(back.Pairs) != len(r.Pairs) || len(back.UnexplainedProbes) != len(r.UnexplainedProbes) {
		t.Errorf("JSON round trip: %+v != %+v", back.Totals, r.Totals)
	}
	if fmt.Sprint(back.Phases) != fmt.Sprint(r.Phases) {
		t.Errorf("phases: %v != %v", back.Phases, r.Phases)
	}
}

func TestStarved(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	lp := func(s, ms float64, ok bool) Probe {
		return Probe{T: at(s), MS: ms, Kind: KindLoopback, Dst: "127.0.0.1", OK: ok}
	}
	probes := []Probe{
		lp(0, 2, true),
		{T: at(1), MS: 3000, Kind: KindPod, Dst: "10.244.1.2", Err: "timeout"}, // not a loopback probe
		lp(10, 800, true),
		lp(11, 1500, true), // overlaps the one before: merged, the worse one named
		lp(30, 5, true),
		lp(40, 3000, false),
	}
	got := Starved(probes, 500*time.Millisecond, 3*time.Second)
	want := []Window{
		{Start: at(7), End: at(12.501), Reason: "host CPU starved (a loopback probe took 1.5s)"},
		{Start: at(37), End: at(43.001), Reason: "host CPU starved (a loopback probe took 3s)"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d windows %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g := got[i]
		if g.Node != "" || !g.Start.Equal(want[i].Start) || !g.End.Equal(want[i].End) || g.Reason != want[i].Reason {
			t.Errorf("window %d = %+v, want %+v", i, g, want[i])
		}
	}
	// A starved window explains a timeout of any pair within it.
	rep := Analyze([]Probe{probes[0], {T: at(9), MS: 3000, SrcPod: "a", SrcNode: "n1", Kind: KindPod, Dst: "10.244.1.2", Err: "timeout"}},
		Networks{}, nil, got)
	if len(rep.Unexplained()) != 0 {
		t.Errorf("unexplained: %+v", rep.Unexplained())
	}
}

func TestTimelineGolden(t *testing.T) {
	ps, phases, windows := scenario()
	windows = append(windows, Window{Start: at(33), End: at(34), Reason: "host CPU starved"})
	r := Analyze(ps, nets, phases, windows)
	got := Timeline(ps, r, phases, windows, []string{"control-plane", "worker-1", "worker-2"})
	golden := filepath.Join("testdata", "timeline.svg")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./lab/monitor -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("Timeline() differs from %s (rerun with -update to accept)", golden)
	}
	var doc struct{}
	if err := xml.Unmarshal(got, &doc); err != nil {
		t.Errorf("not well-formed XML: %v", err)
	}
	for _, want := range []string{"#d62728", "#f08c00", "worker-1", "drain, reboot"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the picture lacks %q", want)
		}
	}
}

// TestAnalyzeApp: a failed request to the application is explained only by
// its client's own window or that client's own starved loopback probe;
// another node's window and a starved period of every node excuse nothing.
func TestAnalyzeApp(t *testing.T) {
	failApp := func(sec float64, src pod) Probe {
		return Probe{T: at(sec), MS: 3000, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindApp, Dst: "http://10.96.100.30/clientip", Err: "timeout (connecting)"}
	}
	loop := func(sec, ms float64, src pod, ok bool) Probe {
		p := Probe{T: at(sec), MS: ms, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindLoopback, Dst: "127.0.0.1", OK: ok}
		if !ok {
			p.Err = "timeout"
		}
		return p
	}
	probes := []Probe{
		okSvc(1, podA, KindApp, "http://10.96.100.30/clientip", podB, ""),
		failApp(10, podA),                            // worker-1's own window: explained
		failApp(20, podB),                            // worker-1's window only: unexplained for a worker-2 client
		failApp(30, podC), loop(31, 900, podC, true), // its own loopback slow: starved
		failApp(40, podB), loop(40.5, 2, podB, true), loop(41, 900, podA, true), // another pod's loopback: unexplained
		failApp(50, podC), // only a starved window of every node: unexplained
		failSvc(20, podB, "web", "http://10.96.100.20/clientip"), // a target of another kind: any window explains it
	}
	windows := []Window{
		{Node: "worker-1", Start: at(9), End: at(25), Reason: "migration"},
		{Start: at(49), End: at(55), Reason: "host CPU starved"},
	}
	r := Analyze(probes, nets, nil, windows)
	want := AppStats{Sent: 6, Failed: 5, InWindow: 1, Starved: 1, Unexplained: 3}
	got := r.App
	got.Failures = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("app: got %+v, want %+v", got, want)
	}
	if len(r.App.Failures) != 4 || r.App.Failures[1].Starved == "" || !strings.Contains(r.App.Failures[1].Starved, "took 900ms") ||
		r.App.Failures[0].Starved != "" || r.App.Failures[2].Starved != "" || r.App.Failures[3].Starved != "" {
		t.Fatalf("failures: %+v", r.App.Failures)
	}
	if r.Totals.Unexplained != 3 || r.Totals.ExplainedStarved != 1 || r.Totals.ExplainedService != 1 {
		t.Fatalf("totals: %+v", r.Totals)
	}
	md := r.Markdown()
	for _, want := range []string{"### What the application's users saw", "**3 failed requests from clients outside any window: the verdict fails.**", "no: **unexplained**"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
}

// TestAnalyzePodWindows: an evicted pod's window explains the probes from
// and to its address, not its node's other pods, and Service probes only
// until its replacement was Ready; a re-addressed pod's window explains
// the probes to its old address, never Service probes.
func TestAnalyzePodWindows(t *testing.T) {
	failApp := func(sec float64, src pod) Probe {
		return Probe{T: at(sec), MS: 3000, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindApp, Dst: "http://10.96.100.30/clientip", Err: "timeout"}
	}
	podD := pod{"mon-d", "worker-1", "10.244.1.9"}
	const moved = "10.245.2.77" // podB's address before its node's reboot
	probes := []Probe{
		okPod(1, podB, podA),
		failPod(10, podB, podA.ip),                  // to the evicted pod: explained
		failPod(11, podA, podB.ip),                  // from it: explained
		failPod(12, podD, podB.ip),                  // another pod of its node: unexplained
		failApp(13, podA),                           // the evicted client's own request: explained
		failApp(14, podD),                           // another client on its node: unexplained
		failSvc(9, podB, "svc-ip", "10.96.100.10"),  // a Service probe before the replacement is Ready: explained
		failSvc(15, podB, "svc-ip", "10.96.100.10"), // and after it: unexplained
		failPod(5, podB, podA.ip),                   // before the eviction: unexplained
		failPod(16, podD, moved),                    // to a re-addressed pod's old address: explained
		failSvc(17, podD, "svc-ip", "10.96.100.10"), // not by that window: unexplained
	}
	windows := []Window{
		{Node: "worker-1", IP: podA.ip, Start: at(8), ServiceUntil: at(11), Reason: "pod lab-monitor/mon-a evicted"},
		{Node: "worker-2", IP: moved, Start: at(2), Readdressed: true, Reason: "pod lab-monitor/mon-b re-addressed: 10.245.2.77 to 10.244.2.5"},
	}
	r := Analyze(probes, nets, nil, windows)
	if r.Totals.Unexplained != 5 || r.App.Unexplained != 1 || r.App.InWindow != 1 {
		t.Fatalf("totals %+v, app %+v, unexplained %+v", r.Totals, r.App, r.UnexplainedProbes)
	}
	md := r.Markdown()
	if strings.Contains(md, "### Disruption windows") || !strings.Contains(md, "Pods restarted: 1;") ||
		!strings.Contains(md, "Pods re-addressed by their node's reboot (DaemonSet pods, which no drain moves): 1;") ||
		!strings.Contains(md, "- worker-2: pod lab-monitor/mon-b re-addressed: 10.245.2.77 to 10.244.2.5, from ") {
		t.Errorf("pod windows in the markdown:\n%s", md)
	}
}

// TestAnalyzeAppLoopbackGap: a client that sent no loopback probe for
// longer than an interval and StarvedAfter was not scheduled to: its
// failed request then is explained as starved; a shorter pause is not.
func TestAnalyzeAppLoopbackGap(t *testing.T) {
	var probes []Probe
	loops := func(src pod, from, to float64, skip ...float64) {
		for s := from; s <= to; s += 0.5 {
			if !slices.Contains(skip, s) {
				probes = append(probes, Probe{T: at(s), MS: 2, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindLoopback, Dst: "127.0.0.1", OK: true})
			}
		}
	}
	failApp := func(sec float64, src pod) Probe {
		return Probe{T: at(sec), MS: 3000, SrcPod: src.name, SrcNode: src.node, SrcIP: src.ip, Kind: KindApp, Dst: "http://10.96.100.30/clientip", Err: "timeout (reading the answer)"}
	}
	loops(podA, 0, 10)
	loops(podA, 13.5, 20)   // none from 10 to 13.5
	loops(podB, 0, 20, 5.5) // one missing: sent 1 s after the one before
	probes = append(probes, failApp(10.2, podA), failApp(5.2, podB))
	r := Analyze(probes, nets, nil, nil)
	if r.App.Starved != 1 || r.App.Unexplained != 1 || len(r.App.Failures) != 2 {
		t.Fatalf("app: %+v", r.App)
	}
	for _, f := range r.App.Failures {
		switch f.Probe.SrcPod {
		case podA.name:
			if want := "it sent no loopback probe from 12:00:10.000 to 12:00:13.500 (3.5s; one is due every 500ms)"; f.Starved != want {
				t.Errorf("starved: %q, want %q", f.Starved, want)
			}
		case podB.name:
			if f.Starved != "" {
				t.Errorf("a pause of one missing probe explained as starved: %q", f.Starved)
			}
		}
	}
}
