package connectivity

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary says in one line how the matrix stands (for status and the gate).
func (m Matrix) Summary() string {
	nets := map[string]int{}
	for _, p := range m.Probes {
		if p.Ready {
			nets[p.Network]++
		}
	}
	probes := fmt.Sprintf("%d probe(s): %d on the old network, %d on the new", nets[NetOld]+nets[NetNew]+nets[NetOther], nets[NetOld], nets[NetNew])
	if nets[NetOther] > 0 {
		probes += fmt.Sprintf(", %d on neither", nets[NetOther])
	}
	at := m.Time.UTC().Format(time.TimeOnly)
	switch {
	case m.Green:
		return fmt.Sprintf("green for %s at %s (round %d, %s)", m.Time.Sub(m.GreenSince.Time).Round(time.Second), at, m.Round, probes)
	case len(m.Results) == 0 && len(m.Failures) == 0 && len(m.Missing) == 0:
		return fmt.Sprintf("no check ran at %s (round %d, %s)", at, m.Round, probes)
	}
	var why []string
	if len(m.Failures) > 0 {
		why = append(why, fmt.Sprintf("%d failing check(s), first %s", len(m.Failures), m.Failures[0]))
	}
	if len(m.Missing) > 0 {
		why = append(why, "no ready probe on "+strings.Join(m.Missing, ", "))
	}
	return fmt.Sprintf("FAILING at %s (round %d, %s): %s", at, m.Round, probes, strings.Join(why, "; "))
}

// Print writes the matrix as tables: node pairs, networks, failures, SNAT.
func (m Matrix) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n\n", m.Summary())

	netOf := map[string]string{}
	var nodes []string
	for _, p := range m.Probes {
		if _, ok := netOf[p.Node]; !ok {
			nodes = append(nodes, p.Node)
		}
		netOf[p.Node] = p.Network
	}
	cell := map[[2]string]Pair{}
	for _, p := range m.Pairs {
		cell[[2]string{p.SrcNode, p.DstNode}] = p
	}
	head := []string{"FROM \\ TO"}
	for _, n := range nodes {
		head = append(head, fmt.Sprintf("%s (%s)", n, netOf[n]))
	}
	head = append(head, "SERVICES")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, src := range nodes {
		row := []string{fmt.Sprintf("%s (%s)", src, netOf[src])}
		for _, dst := range append(append([]string(nil), nodes...), "") {
			p, ok := cell[[2]string{src, dst}]
			switch {
			case !ok && src == dst:
				row = append(row, "-")
			case !ok:
				row = append(row, "?")
			case len(p.Failed) > 0:
				row = append(row, "FAIL "+strings.Join(p.Failed, ","))
			default:
				row = append(row, "ok")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if len(m.Networks) > 0 {
		fmt.Fprintln(tw, "\nNETWORK\tCHECK\tOK\tFAILED")
		for _, d := range m.Networks {
			dir := d.From + "->" + d.To
			if d.To == "" {
				dir = d.From + " pods"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", dir, d.Check, d.OK, d.Failed)
		}
	}
	if len(m.SNAT) > 0 {
		fmt.Fprintln(tw, "\nPOD TO POD\tCHECKS\tSOURCE REWRITTEN (SNAT)")
		for _, s := range m.SNAT {
			fmt.Fprintf(tw, "%s->%s\t%d\t%d\n", s.From, s.To, s.Checks, s.Rewritten)
		}
	}
	if len(m.Missing) > 0 {
		fmt.Fprintf(tw, "\nNO READY PROBE ON: %s\n", strings.Join(m.Missing, ", "))
	}
	if len(m.Failures) > 0 {
		fmt.Fprintln(tw, "\nFAILURES")
		for _, f := range m.Failures {
			fmt.Fprintf(tw, "  %s\n", f)
		}
	}
	return tw.Flush()
}
