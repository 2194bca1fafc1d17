package monitor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Markdown limits.
const (
	// TopOutages is how many pairs the outage table shows by longest
	// outage (every pair with an unexplained failure is shown as well).
	TopOutages = 10
	// MaxUnexplainedListed is how many unexplained failures are listed.
	MaxUnexplainedListed = 20
)

// Markdown renders the report as tables for a docs page. Times are shown
// as offsets from the first probe.
func (r Report) Markdown() string {
	var b strings.Builder
	t := r.Totals
	off := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		d := x.Sub(t.Start)
		if d < 0 {
			return "-" + fmtDur(-d)
		}
		return "+" + fmtDur(d)
	}

	b.WriteString("### Totals\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| probes | %d from %d pods |\n", t.Sent, t.Sources)
	if t.Sent > 0 {
		fmt.Fprintf(&b, "| first probe | %s |\n", t.Start.UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(&b, "| last probe | %s (%s) |\n", t.End.UTC().Format(time.RFC3339Nano), off(t.End))
	}
	fmt.Fprintf(&b, "| probe interval (median) | %s |\n", fmtDur(t.Interval))
	fmt.Fprintf(&b, "| failed | %d (%s) |\n", t.Failed, pct(t.Failed, t.Sent))
	fmt.Fprintf(&b, "| explained by a node's window | %d |\n", t.ExplainedNode)
	fmt.Fprintf(&b, "| Service probes explained by an open window | %d |\n", t.ExplainedService)
	if t.ExplainedStarved > 0 {
		fmt.Fprintf(&b, "| application probes explained by their client's starved CPU | %d |\n", t.ExplainedStarved)
	}
	fmt.Fprintf(&b, "| **unexplained** | **%d** |\n", t.Unexplained)
	b.WriteString("\nA failure is explained when a disruption window of its source node is open while the probe is in flight (from its start to its answer or timeout), " +
		"or for pod and mtu probes one of the destination pod's node (known from the successful probes to the same IP). " +
		"A failed Service probe (a target or the DNS lookup) is explained whenever any window is open, " +
		"as its backend may be on the disrupted node; but not a probe of the application's Service `app`, explained only by its client's own window. Times below are offsets from the first probe.\n")

	if a := r.App; a.Sent > 0 {
		verdict := "**0 failed requests from clients outside a window: the verdict holds.**"
		if a.Unexplained > 0 {
			verdict = fmt.Sprintf("**%d failed requests from clients outside any window: the verdict fails.**", a.Unexplained)
		}
		fmt.Fprintf(&b, "\n### What the application's users saw\n\n"+
			"The Service `app` (replicas on different nodes, a PodDisruptionBudget, a readiness probe and a graceful shutdown) from every monitor pod: "+
			"%d requests, %d failed: %d while the client's own node was in its window, %d while that client's own CPU was starved (below, one by one), %d from a client outside any window. %s\n",
			a.Sent, a.Failed, a.InWindow, a.Starved, a.Unexplained, verdict)
		if len(a.Failures) > 0 {
			b.WriteString("\n| time | client | node | error | starved? |\n| --- | --- | --- | --- | --- |\n")
			for _, f := range a.Failures[:min(len(a.Failures), MaxUnexplainedListed)] {
				p := f.Probe
				st := "no: **unexplained**"
				if f.Starved != "" {
					st = f.Starved
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", off(p.T), cell(srcName(p)), cell(p.SrcNode), cell(p.Err), cell(st))
			}
			if n := len(a.Failures); n > MaxUnexplainedListed {
				fmt.Fprintf(&b, "\nThe first %d of %d.\n", MaxUnexplainedListed, n)
			}
		}
	}

	b.WriteString("\n### Phases\n\n| phase | from | to | sent | failed | unexplained |\n| --- | --- | --- | ---: | ---: | ---: |\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d |\n", cell(p.Name), off(p.Start), off(p.End), p.Sent, p.Failed, p.Unexplained)
	}
	b.WriteString("\n#### By kind\n\n| phase | kind | sent | failed | unexplained |\n| --- | --- | ---: | ---: | ---: |\n")
	for _, p := range r.Phases {
		for _, k := range p.Kinds {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |\n", cell(p.Name), cell(k.Kind), k.Sent, k.Failed, k.Unexplained)
		}
	}

	var nodeWindows []Window
	pods, moved := 0, 0
	for _, w := range r.Windows {
		if w.IP != "" && w.Readdressed {
			moved++
			continue
		}
		if w.IP != "" {
			pods++
			continue
		}
		nodeWindows = append(nodeWindows, w)
	}
	if len(nodeWindows) > 0 {
		b.WriteString("\n### Disruption windows\n\n| node | reason | from | to | duration |\n| --- | --- | --- | --- | ---: |\n")
		for _, w := range nodeWindows {
			node, end, dur := w.Node, off(w.End), "open"
			if node == "" {
				node = "(all)"
			}
			if !w.End.IsZero() {
				dur = fmtDur(w.End.Sub(w.Start))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(node), cell(w.Reason), off(w.Start), end, dur)
		}
	}

	if pods > 0 {
		fmt.Fprintf(&b, "\nPods restarted: %d; each one's eviction opened a window of its address (probes from or to it from then on, and Service probes until its replacement was Ready).\n", pods)
	}
	if moved > 0 {
		fmt.Fprintf(&b, "\nPods re-addressed by their node's reboot (DaemonSet pods, which no drain moves): %d; the old address is gone from the start of the node's window (probes to it from then on):\n\n", moved)
		for _, w := range r.Windows {
			if w.IP != "" && w.Readdressed {
				fmt.Fprintf(&b, "- %s: %s, from %s\n", cell(w.Node), cell(w.Reason), off(w.Start))
			}
		}
	}

	b.WriteString("\n### Longest outage per pair\n\n")
	var failed []PairStats
	for _, p := range r.Pairs {
		if p.Failed > 0 {
			failed = append(failed, p)
		}
	}
	if len(failed) == 0 {
		fmt.Fprintf(&b, "No pair had a failed probe (%d pairs).\n", len(r.Pairs))
	} else {
		slices.SortStableFunc(failed, func(a, b PairStats) int {
			return cmp.Compare(b.Longest.Duration, a.Longest.Duration) // pairs are already in name order
		})
		var shown []PairStats
		for i, p := range failed {
			if i < TopOutages || p.Unexplained > 0 {
				shown = append(shown, p)
			}
		}
		b.WriteString("| source | kind | destination | sent | failed | outages | longest outage | from | failed probes | recovered | unexplained |\n" +
			"| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |\n")
		for _, p := range shown {
			rec := "yes"
			if !p.Longest.Recovered {
				rec = "**no**"
			}
			un := fmt.Sprint(p.Unexplained)
			if p.Unexplained > 0 {
				un = "**" + un + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %s | %s | %d | %s | %s |\n",
				cell(p.Src), cell(p.Kind), cell(p.Dst), p.Sent, p.Failed, p.Outages,
				fmtDur(p.Longest.Duration), off(p.Longest.Start), p.Longest.Failed, rec, un)
		}
		fmt.Fprintf(&b, "\n%d of %d pairs had a failed probe; shown: the %d longest outages and every pair with an unexplained failure.\n",
			len(failed), len(r.Pairs), min(TopOutages, len(failed)))
	}

	b.WriteString("\n### Pod to pod by network\n\n")
	if len(r.Directions) == 0 {
		b.WriteString("No pod probes.\n")
	} else {
		b.WriteString("| direction | sent | ok | failed | success | unexplained |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, d := range r.Directions {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %d |\n", d.Direction, d.Sent, d.OK, d.Sent-d.OK, pct(d.OK, d.Sent), d.Unexplained)
		}
		b.WriteString("\nFailed probes between the networks are those of a node's window (its pods down while it is drained and rebooted); unexplained ones would be traffic the two networks lost between them.\n")
	}

	if len(r.Policy) > 0 {
		b.WriteString("\n### NetworkPolicies\n\n" +
			"Each policy probe is a new connection from a client pod to a server pod's port that the cluster's NetworkPolicies allow or deny. " +
			"An allowed flow that failed is judged like a pod probe (only the client's or the server's node window explains it); " +
			"a denied flow that got through is counted, not judged.\n\n")
		b.WriteString("| phase | direction | allowed | allowed failed | unexplained | denied | denied let through |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, p := range r.Policy {
			un := fmt.Sprint(p.AllowedUnexplained)
			if p.AllowedUnexplained > 0 {
				un = "**" + un + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %d | %d |\n", cell(p.Phase), p.Direction, p.Allowed, p.AllowedFailed, un, p.Denied, p.LetThrough)
		}
		b.WriteString("\n#### By flow\n\n| flow | port | policies say | sent | failed / let through | unexplained |\n| --- | ---: | --- | ---: | ---: | ---: |\n")
		for _, f := range r.Flows {
			un := "-"
			if f.Expect == ExpectAllow {
				un = fmt.Sprint(f.Unexplained)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s |\n", cell(f.Flow), cell(f.Port), f.Expect, f.Sent, f.Failed, un)
		}
	}

	b.WriteString("\n### Source address seen by the server\n\n")
	if len(r.NAT) == 0 {
		b.WriteString("No successful probe reported its client address.\n")
	} else {
		b.WriteString("| kind | direction | seen as | ok | source rewritten | rewritten to |\n| --- | --- | --- | ---: | ---: | --- |\n")
		for _, n := range r.NAT {
			to := "-"
			if len(n.RewrittenTo) > 0 {
				var parts []string
				for _, k := range slices.Sorted(maps.Keys(n.RewrittenTo)) {
					parts = append(parts, fmt.Sprintf("%s %d", k, n.RewrittenTo[k]))
				}
				to = strings.Join(parts, ", ")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s |\n", cell(n.Kind), n.Direction, classLabel(n.Seen), n.OK, n.NATed, cell(to))
		}
		b.WriteString("\nDirection: the source pod's network -> the answering pod's; seen as: the network of the client address " +
			"the server reported; source rewritten: probes whose client address is not the source pod's own IP (SNAT/masquerade); " +
			"rewritten to: what that address was, by the node interface that holds it (read from the nodes before finalize), else other.\n")
	}

	if n := len(r.UnexplainedProbes); n > 0 {
		b.WriteString("\n### Unexplained failures\n\n| time | source | node | kind | destination | error |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, p := range r.UnexplainedProbes[:min(n, MaxUnexplainedListed)] {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", off(p.T), cell(srcName(p)), cell(p.SrcNode), cell(p.Kind), cell(p.Dst), cell(p.Err))
		}
		if n > MaxUnexplainedListed {
			fmt.Fprintf(&b, "\nThe first %d of %d.\n", MaxUnexplainedListed, n)
		}
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
