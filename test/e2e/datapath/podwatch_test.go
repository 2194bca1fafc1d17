package datapath

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

func TestPodWatchRestarts(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	yes := true
	pod := func(uid, ns, name, node, ip, ownerKind, owner string, ready, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Namespace: ns, Name: name}, Spec: corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{PodIP: ip}}
		if owner != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: owner, Controller: &yes}}
		}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: t0}
		}
		return p
	}
	pw := newPodWatch()
	// Two monitor pods (a DaemonSet) and a web pod (a ReplicaSet) on the old network.
	pw.observe(at(0), pod("a", "lab-monitor", "mon-a", "worker-1", "10.244.1.5", "DaemonSet", "monitor", true, false))
	pw.observe(at(0), pod("b", "lab-monitor", "mon-b", "worker-2", "10.244.2.5", "DaemonSet", "monitor", true, false))
	pw.observe(at(0), pod("w", "lab-apps", "web-1", "worker-1", "10.244.1.7", "ReplicaSet", "web-x", true, false))
	// web-1 evicted at 10, its replacement on worker-2 Ready at 13.
	pw.observe(at(10), pod("w", "lab-apps", "web-1", "worker-1", "10.244.1.7", "ReplicaSet", "web-x", true, true))
	pw.observe(at(10.2), pod("w2", "lab-apps", "web-2", "worker-2", "", "ReplicaSet", "web-x", false, false))
	pw.observe(at(13), pod("w2", "lab-apps", "web-2", "worker-2", "10.245.2.9", "ReplicaSet", "web-x", true, false))
	// mon-b evicted at 20; a new monitor pod on worker-1 (not its node) and then on worker-2, Ready at 24.
	pw.observe(at(20), pod("b", "lab-monitor", "mon-b", "worker-2", "10.244.2.5", "DaemonSet", "monitor", true, true))
	pw.observe(at(21), pod("c", "lab-monitor", "mon-c", "worker-1", "10.245.1.3", "DaemonSet", "monitor", true, false))
	pw.observe(at(21), pod("d", "lab-monitor", "mon-d", "worker-2", "", "DaemonSet", "monitor", false, false))
	pw.observe(at(24), pod("d", "lab-monitor", "mon-d", "worker-2", "10.245.2.4", "DaemonSet", "monitor", true, false))
	// A pod already on Cilium, deleted: not a restart of the old network.
	pw.observe(at(30), pod("c", "lab-monitor", "mon-c", "worker-1", "10.245.1.3", "DaemonSet", "monitor", true, true))

	old := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	rs := pw.Restarts(old)
	if len(rs) != 2 || rs[0].Old.Name != "web-1" || rs[0].New == nil || rs[0].New.Name != "web-2" || rs[0].Gap != 3*time.Second ||
		rs[1].Old.Name != "mon-b" || rs[1].New == nil || rs[1].New.Name != "mon-d" || rs[1].Gap != 4*time.Second {
		t.Fatalf("%+v", rs)
	}
	// mon-a re-addressed by worker-1's reboot (its window from 40 to 60).
	pw.observe(at(55), pod("a", "lab-monitor", "mon-a", "worker-1", "10.245.1.8", "DaemonSet", "monitor", true, false))
	nodes := []monitor.Window{{Node: "worker-2", Start: at(38), End: at(62)}, {Node: "worker-1", Start: at(40), End: at(60)}}
	ws := pw.Windows(old, nodes)
	if len(ws) != 3 || ws[0].IP != "10.244.1.7" || ws[0].Node != "worker-1" || !ws[0].Start.Equal(at(10)) || !ws[0].End.IsZero() ||
		!ws[0].ServiceUntil.Equal(at(13)) || ws[0].Readdressed {
		t.Fatalf("%+v", ws)
	}
	if m := ws[2]; m.IP != "10.244.1.5" || m.Node != "worker-1" || !m.Readdressed || !m.Start.Equal(at(40)) || !m.ServiceUntil.IsZero() ||
		!strings.Contains(m.Reason, "lab-monitor/mon-a re-addressed: 10.244.1.5 to 10.245.1.8") {
		t.Fatalf("re-addressed window %+v", m)
	}
	md := restartsMarkdown(rs)
	for _, want := range []string{"| lab-apps/web-1 | ReplicaSet/web-x | worker-1 | 10.244.1.7 | web-2 | worker-2 | 10.245.2.9 | 3.0 |", "gap median 4.0 s, longest 4.0 s"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
}

func TestParseHealth(t *testing.T) {
	data := []byte(`{"local":{"name":"worker-1"},"nodes":[
 {"name":"worker-1","host":{"primary-address":{"ip":"192.168.100.12","http":{"latency":1},"icmp":{"latency":2}}},
  "health-endpoint":{"primary-address":{"ip":"10.245.1.9","http":{},"icmp":{}}}},
 {"name":"worker-2","host":{"primary-address":{"ip":"192.168.100.13","http":{"status":"Connection timed out"},"icmp":{}}},
  "health-endpoint":{"primary-address":{"ip":"10.245.2.9","icmp":{"status":"unreachable","lastProbed":"2026-12-06T17:53:35Z"}}}}]}`)
	paths, bad, err := parseHealth(data)
	if err != nil || paths != 7 || len(bad) != 2 || bad[0] != "worker-2 endpoint icmp (10.245.2.9): unreachable (probed 17:53:35)" ||
		bad[1] != "worker-2 host http (192.168.100.13): Connection timed out" {
		t.Fatalf("%d %q %v", paths, bad, err)
	}
	if _, _, err := parseHealth([]byte("not json")); err == nil {
		t.Fatal("no error for text")
	}
	r := healthRun{When: "after finalize", Agents: []agentHealth{{Node: "worker-1", Paths: 8, Cluster: "3/3 reachable"}}}
	if !r.healthy() || !strings.Contains(healthMarkdown([]healthRun{r}), "| after finalize | worker-1 | 8 | none | 3/3 reachable |") {
		t.Fatalf("%v\n%s", r.healthy(), healthMarkdown([]healthRun{r}))
	}
}

func TestParseGinkgoReport(t *testing.T) {
	data := []byte(`[{"SpecReports":[
 {"ContainerHierarchyTexts":["[sig-network] DNS"],"LeafNodeText":"should provide DNS for services [Conformance]","LeafNodeType":"It","State":"passed","RunTime":12000000000},
 {"ContainerHierarchyTexts":["[sig-network] NoSNAT"],"LeafNodeText":"Should be able to send traffic between Pods without SNAT","LeafNodeType":"It","State":"failed","RunTime":30000000000,"Failure":{"Message":"source IP 10.244.1.0 is not the pod's\nmore"}},
 {"ContainerHierarchyTexts":["[sig-network] Other"],"LeafNodeText":"not focused","LeafNodeType":"It","State":"skipped"},
 {"LeafNodeText":"","LeafNodeType":"SynchronizedBeforeSuite","State":"passed"}]}]`)
	rs, err := parseGinkgoReport(data, conformance)
	if err != nil || len(rs) != 2 || rs[0].Name != "[sig-network] DNS should provide DNS for services [Conformance]" || rs[1].Failure != "source IP 10.244.1.0 is not the pod's" {
		t.Fatalf("%+v %v", rs, err)
	}
	run := suiteRun{Suite: conformanceSuite, When: "After finalize", Results: rs, Took: time.Minute}
	passed, failed, skipped, missing := run.counts()
	if passed != 1 || failed != 1 || skipped != 0 || len(missing) != len(conformance)-2 {
		t.Fatalf("%d %d %d %d", passed, failed, skipped, len(missing))
	}
	md := suiteMarkdown([]suiteRun{run})
	if !strings.Contains(md, "**After finalize**: 1 passed, 1 failed, 0 skipped, 28 not run, in 1m0s.") || !strings.Contains(md, "| failed: source IP 10.244.1.0 is not the pod's | 30 |") {
		t.Fatalf("%s", md)
	}
}

func TestSameVerdicts(t *testing.T) {
	s := &suite{Title: "T", Tests: []string{"a", "b", "c"}, Known: map[string]string{"c": "a cause"}}
	run := func(when string, states ...string) suiteRun {
		r := suiteRun{Suite: s, When: when}
		for i, st := range states {
			r.Results = append(r.Results, specResult{Name: s.Tests[i], State: st})
		}
		return r
	}
	other := suiteRun{Suite: conformanceSuite, When: "x"}
	for _, tc := range []struct {
		name string
		runs []suiteRun
		want []string
	}{
		{"same, the known one differing", []suiteRun{run("Before", "passed", "failed", "passed"), other, run("Half", "passed", "failed", "failed"), run("After", "passed", "failed", "failed")}, nil},
		{"one differs", []suiteRun{run("Before", "passed", "passed", "passed"), run("Half", "passed", "failed", "failed")}, []string{"Half: b: failed, passed before the migration: "}},
		{"known after finalize, gone half migrated", []suiteRun{run("Before", "passed", "passed", "passed"), run("Half", "passed", "passed", "passed"), run("After", "passed", "passed", "failed")}, []string{"Half: c: passed as before the migration: remove it from the suite's Known"}},
		{"known, half migrated too", []suiteRun{run("Before", "passed", "passed", "passed"), run("Half", "passed", "passed", "failed"), run("After", "passed", "passed", "failed")}, nil},
		{"not run", []suiteRun{run("Before", "passed", "passed", "passed"), run("Half", "passed")}, []string{"Half: 1 passed, 2 not run"}},
		{"none", []suiteRun{other}, []string{"no run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameVerdicts(tc.runs, s); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMergeShards(t *testing.T) {
	got := mergeShards([]specResult{{Name: "b", State: "skipped"}, {Name: "a", State: "passed"}, {Name: "b", State: "failed"}, {Name: "a", State: "skipped"}, {Name: "c", State: "skipped"}})
	want := []specResult{{Name: "a", State: "passed"}, {Name: "b", State: "failed"}, {Name: "c", State: "skipped"}}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("%+v", got)
	}
}
