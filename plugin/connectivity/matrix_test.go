package connectivity

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/testdoc"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testdoc.Golden(t, name, got, *update)
}

var (
	t0     = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	nodes  = []string{"cp", "w1", "w2"}
	probes = []Probe{
		{Pod: "p-w2", Node: "w2", IP: "10.244.2.5", Network: NetOld, Ready: true},
		{Pod: "p-cp", Node: "cp", IP: "10.245.0.7", Network: NetNew, Ready: true},
		{Pod: "p-w1", Node: "w1", IP: "10.245.1.9", Network: NetNew, Ready: true},
	}
)

// round makes every check of every probe; fail names the checks that fail
// as "check src dst" (dst: a node, or the target of a Service check).
func round(fail ...string) []Result {
	failed := map[string]bool{}
	for _, f := range fail {
		failed[f] = true
	}
	var rs []Result
	for _, s := range probes {
		for _, d := range probes {
			if s.Pod == d.Pod {
				continue
			}
			for _, c := range []string{CheckPod, CheckMTU} {
				r := Result{Check: c, SrcPod: s.Pod, SrcNode: s.Node, SrcNet: s.Network, Target: d.IP, DstPod: d.Pod, DstNode: d.Node, DstNet: d.Network, OK: true}
				if c == CheckPod {
					r.Seen = s.IP + ":40000"
					if s.Network != d.Network {
						r.Seen = "192.168.100.9:40000" // the node's address: SNAT between the networks
					}
				}
				if failed[c+" "+s.Node+" "+d.Node] {
					r.OK, r.Error, r.Seen = false, "timeout", ""
				}
				rs = append(rs, r)
			}
		}
		for _, c := range []struct{ check, target string }{
			{CheckService, "10.96.0.50:8080"}, {CheckDNS, "cni-migrate-probe.cni-migrate-connectivity.svc"}, {CheckAPIServer, "10.96.0.1:443"},
		} {
			r := Result{Check: c.check, SrcPod: s.Pod, SrcNode: s.Node, SrcNet: s.Network, Target: c.target, OK: true}
			if failed[c.check+" "+s.Node+" "+c.target] {
				r.OK, r.Error = false, "dial tcp: lookup failed"
			}
			rs = append(rs, r)
		}
	}
	return rs
}

func TestObserveDatesFailuresAndGreen(t *testing.T) {
	tr := NewTracker()
	m := tr.Observe(t0, probes, nodes, round())
	if !m.Green || !m.GreenSince.Time.Equal(t0) || m.GreenFor(time.Second) {
		t.Fatalf("round 1: green %v since %v", m.Green, m.GreenSince)
	}
	m = tr.Observe(t0.Add(10*time.Second), probes, nodes, round())
	if !m.GreenFor(10*time.Second) || m.GreenFor(11*time.Second) {
		t.Fatalf("round 2: green since %v at %v", m.GreenSince, m.Time)
	}
	m = tr.Observe(t0.Add(20*time.Second), probes, nodes, round("mtu w2 w1", "pod w2 w1"))
	if m.Green || m.GreenSince != nil || len(m.Failures) != 2 {
		t.Fatalf("round 3: %+v", m)
	}
	m = tr.Observe(t0.Add(30*time.Second), probes, nodes, round("mtu w2 w1"))
	if len(m.Failures) != 1 {
		t.Fatalf("round 4: %+v", m.Failures)
	}
	f := m.Failures[0]
	if f.Check != CheckMTU || f.SrcNode != "w2" || f.DstNode != "w1" || f.Rounds != 2 || !f.Since.Time.Equal(t0.Add(20*time.Second)) {
		t.Errorf("round 4: %+v", f)
	}
	if got, want := f.String(), "mtu: w2 (old) -> w1 (new, 10.245.1.9): timeout, since 12:00:20 (2 round(s))"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// The pod check recovered: failing again later starts a new run.
	m = tr.Observe(t0.Add(40*time.Second), probes, nodes, round("pod w2 w1"))
	for _, f := range m.Failures {
		if f.Check == CheckPod && (f.Rounds != 1 || !f.Since.Time.Equal(t0.Add(40*time.Second))) {
			t.Errorf("a check failing again is dated afresh: %+v", f)
		}
	}
	m = tr.Observe(t0.Add(50*time.Second), probes, nodes, round())
	if !m.Green || !m.GreenSince.Time.Equal(t0.Add(50*time.Second)) {
		t.Errorf("green again at +50s: %v %v", m.Green, m.GreenSince)
	}
}

func TestObserveNotGreen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		probes  []Probe
		results []Result
		missing []string
	}{
		{"a node without a ready probe", []Probe{probes[0], probes[1], {Pod: "p-w1", Node: "w1", Network: NetOther}}, round(), []string{"w1"}},
		{"a node without any probe", probes[:2], round(), []string{"w1"}},
		{"no result at all", probes, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewTracker().Observe(t0, tc.probes, nodes, tc.results)
			if m.Green {
				t.Error("green")
			}
			if strings.Join(m.Missing, ",") != strings.Join(tc.missing, ",") {
				t.Errorf("missing %v, want %v", m.Missing, tc.missing)
			}
		})
	}
}

func TestMatrixPrintAndJSON(t *testing.T) {
	tr := NewTracker()
	tr.Observe(t0, probes, nodes, round("dns w1 cni-migrate-probe.cni-migrate-connectivity.svc"))
	m := tr.Observe(t0.Add(5*time.Second), probes, nodes, round("mtu w2 w1", "dns w1 cni-migrate-probe.cni-migrate-connectivity.svc"))
	var b bytes.Buffer
	if err := m.Print(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "failing.txt", b.Bytes())

	green := NewTracker().Observe(t0, probes, nodes, round())
	b.Reset()
	if err := green.Print(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "green.txt", b.Bytes())

	m.Results = nil
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "failing.json", append(js, '\n'))
}
