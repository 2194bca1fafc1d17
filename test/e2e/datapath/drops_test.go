package datapath

import (
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

func TestDropsMarkdown(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	drops := []drop{
		{T: t0.Add(-10 * time.Second), Node: "worker-1", Line: "xx drop (Stale or unroutable IP) flow 0x0 to endpoint 0: 10.245.1.2:80 -> 10.245.2.3:4000 tcp"},
		{T: t0.Add(time.Second), Node: "worker-2", Line: "xx drop (CT: Map insertion failed) flow 0x1 to endpoint 12: 10.245.2.3:4000 -> 10.245.1.2:80 tcp SYN"},
		{T: t0.Add(2 * time.Second), Node: "worker-2", Line: "xx drop (CT: Map insertion failed) flow 0x2"},
	}
	un := []monitor.Probe{{T: t0, SrcPod: "a", SrcNode: "worker-2", Kind: monitor.KindMTU, Dst: "10.245.1.2", Err: "timeout (connecting)"}}
	md := dropsMarkdown(drops, un, 3*time.Second)
	for _, want := range []string{
		"| worker-1 | Stale or unroutable IP | 1 | `xx drop (Stale or unroutable IP) flow 0x0 to endpoint 0: 10.245.1.2:80 -> 10.245.2.3:4000 tcp` |",
		"| worker-2 | CT: Map insertion failed | 2 | `xx drop (CT: Map insertion failed) flow 0x1 to endpoint 12: 10.245.2.3:4000 -> 10.245.1.2:80 tcp SYN` |",
		"Around the unexplained mtu probe a (worker-2) -> 10.245.1.2 at 09:00:00.000 (timeout (connecting))",
		"09:00:01.000 worker-2 xx drop (CT: Map insertion failed) flow 0x1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	if strings.Contains(md, "08:59:50") {
		t.Errorf("a drop 10s before the probe is listed beside it:\n%s", md)
	}
	if got := dropsMarkdown(nil, un, 3*time.Second); !strings.Contains(got, "None.") || !strings.Contains(got, "(no drop reported by any agent)") {
		t.Errorf("no drops:\n%s", got)
	}
}
