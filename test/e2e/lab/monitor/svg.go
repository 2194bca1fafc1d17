package monitor

import (
	"fmt"
	"html"
	"slices"
	"strings"
	"time"
)

// Timeline draws a run as an SVG picture a reader takes in at a glance:
// the time axis left to right, the phases in a band on top, then one row
// per node with its disruption windows (windows of every node, such as a
// starved CPU, span all rows) and a mark for each failed probe at its
// start, on its source node's row: grey when a window explains it, red when
// none does; policy probes of denied flows that got through are orange, in
// the lower half of the row. Marks are binned per pixel column, so the
// picture stays small however many probes failed.
func Timeline(probes []Probe, r Report, phases []Phase, windows []Window, nodes []string) []byte {
	const (
		width   = 1000
		left    = 110
		right   = 20
		top     = 28
		rowH    = 44
		phaseH  = 40
		legendH = 44
	)
	if len(phases) == 0 {
		return []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="200" height="20"><text x="4" y="14">no phases</text></svg>` + "\n")
	}
	start, end := phases[0].Start, phases[len(phases)-1].End
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	plotW := float64(width - left - right)
	x := func(t time.Time) float64 {
		f := float64(t.Sub(start)) / float64(span)
		return float64(left) + min(max(f, 0), 1)*plotW
	}
	row := map[string]int{}
	for i, n := range nodes {
		row[n] = i
	}
	height := top + phaseH + len(nodes)*rowH + 30 + legendH
	rowY := func(i int) int { return top + phaseH + i*rowH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", 8, esc(fmt.Sprintf(
		"%d probes, %d failed, %d unexplained", r.Totals.Sent, r.Totals.Failed, r.Totals.Unexplained)))

	// Phases: alternating bands with their names, staggered on two lines.
	for i, p := range phases {
		x0, x1 := x(p.Start), x(p.End)
		fill := "#eef2f7"
		if i%2 == 1 {
			fill = "#dde5ef"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
			x0, top, max(x1-x0, 0.5), phaseH+len(nodes)*rowH, fill, esc(fmt.Sprintf("%s: %s to %s", p.Name, off(p.Start, start), off(p.End, start))))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#8899aa" stroke-width="0.5"/>`+"\n", x0, top, x0, top+phaseH+len(nodes)*rowH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#334455">%s</text>`+"\n", x0+2, top+11+(i%3)*12, esc(p.Name))
	}

	// Node rows and their windows.
	for i, n := range nodes {
		y := rowY(i)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c0c8d0" stroke-width="0.5"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+rowH/2+4, esc(n))
	}
	for _, w := range windows {
		we := w.End
		if we.IsZero() {
			we = end
		}
		x0, x1 := x(w.Start), x(we)
		title := esc(fmt.Sprintf("%s %s: %s to %s (%s)", orAll(w.Node), w.Reason, off(w.Start, start), off(we, start), we.Sub(w.Start).Round(time.Second)))
		if w.IP != "" && w.Readdressed {
			continue // the node's own window shows it
		}
		if w.IP != "" {
			// A pod's restart: a tick where it began, on its node's row.
			if i, ok := row[w.Node]; ok {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="2" height="%d" fill="#6aa86a"><title>%s</title></rect>`+"\n",
					x0, rowY(i)+2, rowH-4, esc(fmt.Sprintf("%s %s at %s", w.Node, w.Reason, off(w.Start, start))))
			}
			continue
		}
		if w.Node == "" {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f2d7a6" opacity="0.6"><title>%s</title></rect>`+"\n",
				x0, rowY(0), max(x1-x0, 1), len(nodes)*rowH, title)
			continue
		}
		i, ok := row[w.Node]
		if !ok {
			continue
		}
		color := "#7fa7d8"
		if strings.HasPrefix(w.Reason, "fault") {
			color = "#c9a0dc"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" rx="2"><title>%s</title></rect>`+"\n",
			x0, rowY(i)+4, max(x1-x0, 1), rowH-8, color, title)
	}

	// Failed probes, binned per pixel column.
	unexplained := map[probeKey]bool{}
	for _, p := range r.UnexplainedProbes {
		unexplained[keyOf(p)] = true
	}
	type bin struct {
		row, col int
		class    string
	}
	counts := map[bin]int{}
	for _, p := range probes {
		i, ok := row[p.SrcNode]
		if !ok {
			continue
		}
		class := ""
		switch {
		case p.Denied() && p.OK:
			class = "through"
		case p.Denied() || p.OK || p.Kind == KindLoopback:
			continue
		case unexplained[keyOf(p)]:
			class = "unexplained"
		default:
			class = "explained"
		}
		counts[bin{i, int(x(p.T)), class}]++
	}
	bins := make([]bin, 0, len(counts))
	for k := range counts {
		bins = append(bins, k)
	}
	classRank := map[string]int{"through": 0, "explained": 1, "unexplained": 2}
	slices.SortFunc(bins, func(a, b bin) int {
		if a.class != b.class {
			return classRank[a.class] - classRank[b.class]
		}
		if a.row != b.row {
			return a.row - b.row
		}
		return a.col - b.col
	})
	// Neighbouring columns of one row and class are drawn as one run.
	for i := 0; i < len(bins); {
		k := bins[i]
		j, n := i+1, counts[k]
		for j < len(bins) && bins[j].row == k.row && bins[j].class == k.class && bins[j].col-bins[j-1].col <= 2 {
			n += counts[bins[j]]
			j++
		}
		last := bins[j-1].col
		y, h, color := rowY(k.row)+8, rowH/2-8, "#707070"
		switch k.class {
		case "through":
			y, color = rowY(k.row)+rowH/2+2, "#f08c00"
		case "unexplained":
			y, h, color = rowY(k.row)+4, rowH-8, "#d62728"
		}
		op := min(0.35+0.1*float64(n)/float64(last-k.col+1), 1)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" opacity="%.2f"><title>%d %s</title></rect>`+"\n", k.col, y, float64(last-k.col)+1.5, h, color, op, n, k.class)
		i = j
	}

	// Time axis: a tick every minute (every 5 past 20 minutes).
	ay := rowY(len(nodes))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#334455"/>`+"\n", left, ay, width-right, ay)
	step := time.Minute
	if span > 20*time.Minute {
		step = 5 * time.Minute
	}
	for d := time.Duration(0); d <= span; d += step {
		tx := x(start.Add(d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#334455"/>`+"\n", tx, ay, tx, ay+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", tx, ay+16, fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60))
	}

	// Legend.
	ly := ay + 30
	items := []struct{ color, label string }{
		{"#7fa7d8", "node's window (cordon to uncordon)"},
		{"#c9a0dc", "injected fault"},
		{"#f2d7a6", "CPU starved (all nodes)"},
		{"#707070", "failed, explained"},
		{"#d62728", "failed, unexplained"},
		{"#f08c00", "denied flow let through"},
	}
	for i, it := range items {
		lx, y := left+(i%3)*260, ly+(i/3)*18
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, y, it.color, lx+14, y+9, esc(it.label))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

type probeKey struct {
	t              time.Time
	src, kind, dst string
	policy, expect string
}

func keyOf(p Probe) probeKey {
	return probeKey{p.T, p.SrcPod, p.Kind, p.Dst, p.Policy, p.Expect}
}

func esc(s string) string { return html.EscapeString(s) }

func orAll(node string) string {
	if node == "" {
		return "all nodes"
	}
	return node
}

func off(t, start time.Time) string {
	d := t.Sub(start).Round(time.Second)
	return fmt.Sprintf("+%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
