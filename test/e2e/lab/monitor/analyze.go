package monitor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// Networks are the pod networks of a migration.
type Networks struct {
	// Old is the source CNI's pod network (Flannel: 10.244.0.0/16).
	Old []netip.Prefix
	// New is the target CNI's pod network (Cilium's pool).
	New []netip.Prefix
	// Names name the nodes' own addresses by their interface ("flannel.1",
	// "cilium_host", "eth0"): what a rewritten source address was.
	Names map[netip.Addr]string
}

// Network classes of an address (see Networks.Class).
const (
	ClassOld  = "old"
	ClassNew  = "new"
	ClassHost = "host"
)

// Class returns ClassOld or ClassNew when ip (an address, or ip:port) is in
// the old or new pod network, ClassHost for any other address (a node's,
// a Service's) and "" when ip does not parse.
func (n Networks) Class(ip string) string {
	a, ok := parseAddr(ip)
	if !ok {
		return ""
	}
	for _, p := range n.Old {
		if p.Contains(a) {
			return ClassOld
		}
	}
	for _, p := range n.New {
		if p.Contains(a) {
			return ClassNew
		}
	}
	return ClassHost
}

// parseAddr parses an address or an address:port.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// Phase is a phase of the rollout; a probe belongs to the first phase
// whose [Start, End) contains its time.
type Phase struct {
	Name       string
	Start, End time.Time
}

// Window is a time when a node was disrupted on purpose (cordoned, drained,
// rebooted, until uncordoned and Ready again): [Start, End), a zero End
// meaning still open at the end of the run. An empty Node is every node.
type Window struct {
	Node       string
	Start, End time.Time
	Reason     string
	// IP, when set, makes it a pod's window (its eviction: the in-place
	// method restarts pods, not nodes; Node is the pod's node): the
	// address is gone from Start on. It explains the probes from or to
	// that address, never the other probes of its node, and Service
	// probes only until ServiceUntil (the replacement's Ready: until
	// then a Service may still send to the pod; zero: none).
	IP           string    `json:",omitempty"`
	ServiceUntil time.Time `json:",omitempty"`
	// Readdressed marks a pod window of a pod that kept running under a
	// new address (its node's reboot gave its sandbox another): the old
	// address is gone, the pod was not restarted by the migration.
	Readdressed bool `json:",omitempty"`
}

// Starved returns a window (of every node: Node "") around each loopback
// probe slower than slow or failed: the probe program could not even answer
// itself in time, so a datapath probe that timed out then (it started up to
// timeout earlier) may have lost no packet. Overlapping windows are merged.
func Starved(probes []Probe, slow, timeout time.Duration) []Window {
	var out []Window
	var worst []time.Duration // the slowest loopback probe of each window
	for _, p := range probes {
		took := time.Duration(p.MS * float64(time.Millisecond))
		if p.Kind != KindLoopback || (p.OK && took <= slow) {
			continue
		}
		w := Window{Start: p.T.Add(-timeout), End: p.T.Add(took + time.Millisecond), Reason: "host CPU starved (a loopback probe took " + took.Round(time.Millisecond).String() + ")"}
		if n := len(out); n > 0 && !w.Start.After(out[n-1].End) {
			if w.End.After(out[n-1].End) {
				out[n-1].End = w.End
			}
			if took > worst[n-1] {
				out[n-1].Reason, worst[n-1] = w.Reason, took
			}
			continue
		}
		out = append(out, w)
		worst = append(worst, took)
	}
	return out
}

// Open reports whether the window is open at t.
func (w Window) Open(t time.Time) bool {
	return !t.Before(w.Start) && (w.End.IsZero() || t.Before(w.End))
}

// During reports whether the window is open at some time in [from, to].
func (w Window) During(from, to time.Time) bool {
	return !w.Start.After(to) && (w.End.IsZero() || w.End.After(from))
}

// span is the time a probe was in flight: from its start to its answer
// (or its timeout).
func span(p Probe) (time.Time, time.Time) {
	return p.T, p.T.Add(time.Duration(p.MS * float64(time.Millisecond)))
}

// How a failure is explained (Report.Totals).
const (
	explainedNo = iota
	explainedSrc
	explainedDst
	explainedService
	explainedStarved
)

// Counts are probes sent and failed, and failed that no window explains.
type Counts struct {
	Sent        int `json:"sent"`
	Failed      int `json:"failed"`
	Unexplained int `json:"unexplained"`
}

func (c *Counts) add(p Probe, unexplained bool) {
	c.Sent++
	if !p.OK {
		c.Failed++
		if unexplained {
			c.Unexplained++
		}
	}
}

// Totals sum up a run.
type Totals struct {
	Counts
	// ExplainedNode failures had their source node, or (peer kinds) their
	// destination pod's node, in a window.
	ExplainedNode int `json:"explained_node"`
	// ExplainedService failures are Service probes (targets, DNS) explained
	// only because some window was open: their backend may have been on
	// the disrupted node.
	ExplainedService int `json:"explained_service"`
	// ExplainedStarved failures are the app's (KindApp) whose client's own
	// loopback probe was starved at the time.
	ExplainedStarved int `json:"explained_starved"`
	// Sources is the number of probing pods.
	Sources int `json:"sources"`
	// Start and End are the first and last probe's times.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Interval is the median time between two probes of one pair: the
	// probe interval, used to end outages that never recovered.
	Interval time.Duration `json:"interval_ns"`
}

// KindCounts are a phase's counts of one probe kind.
type KindCounts struct {
	Kind string `json:"kind"`
	Counts
}

// PhaseStats are a phase's counts, in total and per kind.
type PhaseStats struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Counts
	Kinds []KindCounts `json:"kinds"`
}

// UnphasedName names the PhaseStats of probes outside every phase.
const UnphasedName = "(no phase)"

// Outage is a run of consecutive failed probes of one pair: from the first
// failure to the next success (Recovered) or, if the pair never recovered,
// to the last failure plus the probe interval.
type Outage struct {
	Start     time.Time     `json:"start"`
	End       time.Time     `json:"end"`
	Duration  time.Duration `json:"duration_ns"`
	Failed    int           `json:"failed"`
	Recovered bool          `json:"recovered"`
	// Unexplained is how many of its failures no window explains.
	Unexplained int `json:"unexplained"`
}

// PairStats are one source pod's probes of one destination: for peer
// kinds the destination pod (its name from the successful probes to its
// IP, else the IP), else the target (Dst is the name or IP probed).
type PairStats struct {
	Src  string `json:"src"`
	Kind string `json:"kind"`
	Dst  string `json:"dst"`
	Counts
	Outages int `json:"outages"`
	// Longest is the longest outage (zero when nothing failed).
	Longest Outage `json:"longest"`
}

// DirectionStats count pod-to-pod probes ("pod") by the source's network
// (its src_ip) and the destination's (the IP probed): "old->new" and so on.
type DirectionStats struct {
	Direction string `json:"direction"`
	Sent      int    `json:"sent"`
	OK        int    `json:"ok"`
	// Unexplained counts the failed probes no window explains.
	Unexplained int `json:"unexplained"`
}

// NATStats count successful probes of one kind and direction by the class
// of the source address the server saw (Seen), and how many of them were
// seen with another address than the source pod's own (NATed).
type NATStats struct {
	Kind      string `json:"kind"`
	Direction string `json:"direction"`
	Seen      string `json:"seen"`
	OK        int    `json:"ok"`
	NATed     int    `json:"nated"`
	// RewrittenTo counts the rewritten (NATed) source addresses by what
	// they were: a node interface's name (Networks.Names), else "other".
	RewrittenTo map[string]int `json:"rewritten_to,omitempty"`
}

// PolicyStats count one phase's policy probes of one direction (the
// client's network -> the server's): the flows the policies allow, how many
// failed and how many of those no window explains; the flows they deny,
// and how many got through.
type PolicyStats struct {
	Phase              string `json:"phase"`
	Direction          string `json:"direction"`
	Allowed            int    `json:"allowed"`
	AllowedFailed      int    `json:"allowed_failed"`
	AllowedUnexplained int    `json:"allowed_unexplained"`
	Denied             int    `json:"denied"`
	LetThrough         int    `json:"let_through"`
}

// FlowStats count the probes of one policy flow over the whole run:
// Failed are the failed probes of an allowed flow, or the probes of a
// denied flow that got through.
type FlowStats struct {
	Flow        string `json:"flow"`
	Expect      string `json:"expect"`
	Port        string `json:"port"`
	Sent        int    `json:"sent"`
	Failed      int    `json:"failed"`
	Unexplained int    `json:"unexplained"`
}

// Report is the analysis of a run's probes (see Analyze).
type Report struct {
	Totals     Totals           `json:"totals"`
	Phases     []PhaseStats     `json:"phases"`
	Windows    []Window         `json:"windows"`
	Pairs      []PairStats      `json:"pairs"`
	Directions []DirectionStats `json:"directions"`
	NAT        []NATStats       `json:"nat"`
	// Policy and Flows are the policy probes' (KindPolicy) verdicts; the
	// probes of denied flows are counted only there, never as failures.
	Policy []PolicyStats `json:"policy,omitempty"`
	Flows  []FlowStats   `json:"flows,omitempty"`
	// UnexplainedProbes are the failed probes no window explains.
	UnexplainedProbes []Probe `json:"unexplained"`
	// App is the verdict on the well-run application (KindApp).
	App AppStats `json:"app"`
}

// AppStats are the probes of the well-run application's Service
// (KindApp): what its users saw.
type AppStats struct {
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
	// InWindow failed while their client's own node was disrupted.
	InWindow int `json:"in_window"`
	// Starved failed while that client's own loopback probe was slow or
	// failed: listed one by one in Failures, with the evidence.
	Starved int `json:"starved"`
	// Unexplained failed from a client outside any window: the verdict,
	// which must be 0.
	Unexplained int `json:"unexplained"`
	// Failures are the failed probes outside the client's window (starved
	// or unexplained), in time order.
	Failures []AppFailure `json:"failures,omitempty"`
}

// AppFailure is one failed request to the application from a client
// outside its node's window.
type AppFailure struct {
	Probe Probe `json:"probe"`
	// Starved is the client's loopback probe that shows its CPU starved
	// then ("" when none did: unexplained).
	Starved string `json:"starved,omitempty"`
}

// Unexplained returns the failed probes no window explains, in time order.
func (r Report) Unexplained() []Probe { return r.UnexplainedProbes }

// JSON returns the report as indented JSON.
func (r Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// dstIndex resolves a peer IP to the pod and node that answered on it.
type dstIndex map[string][]Probe

func newDstIndex(ps []Probe) dstIndex {
	idx := dstIndex{}
	for _, p := range ps {
		if !p.OK || p.DstNode == "" && p.DstPod == "" {
			continue
		}
		ip := p.DstIP
		if ip == "" && IsPeerKind(p.Kind) {
			ip = p.Dst
		}
		if ip != "" {
			idx[ip] = append(idx[ip], p) // ps are in time order
		}
	}
	return idx
}

// at returns the last successful probe answered on ip at or before t, else
// the first one after t (a pod that answered later was there all along).
func (idx dstIndex) at(ip string, t time.Time) (Probe, bool) {
	s := idx[ip]
	if len(s) == 0 {
		return Probe{}, false
	}
	i := sort.Search(len(s), func(i int) bool { return s[i].T.After(t) })
	if i > 0 {
		return s[i-1], true
	}
	return s[0], true
}

type pairKey struct{ src, kind, dst string }

// Analyze computes the report of a run's probes: nets classify addresses,
// phases are the rollout's phases and windows the disruptions that explain
// failures. A failed probe is explained when a window of its source node
// or of its source pod (Window.IP) is open at its time; for peer kinds also when one of its destination pod's
// node is (the node resolved from the successful probes to the same IP);
// for Service kinds (targets, DNS) also when any node's window is open,
// or a restarting pod's until its replacement is Ready (ServiceUntil). The
// application's probes (KindApp) are judged as its users would: explained
// only by a window of the client's own node or pod (never another node's, nor a
// starved period of every node), or when that client's own loopback probe
// was slower than StarvedAfter or failed, or was not sent on time, while
// the request was in flight (listed probe by probe in App). Policy probes
// of denied flows are counted in Policy and Flows only.
func Analyze(probes []Probe, nets Networks, phases []Phase, windows []Window) Report {
	ps := slices.Clone(probes)
	slices.SortStableFunc(ps, func(a, b Probe) int { return a.T.Compare(b.T) })
	idx := newDstIndex(ps)

	r := Report{Windows: slices.Clone(windows)}
	r.Totals.Interval = inferInterval(ps)

	// A window explains a probe that was in flight while it was open: a
	// drain that begins while a connection waits for its SYN's answer is
	// what the connection fails of.
	openAt := func(node string, p Probe) bool {
		from, to := span(p)
		for _, w := range windows {
			if w.IP == "" && (w.Node == "" || w.Node == node) && w.During(from, to) {
				return true
			}
		}
		return false
	}
	// loopback holds each source pod's loopback probes, for the app's
	// probe-by-probe starvation.
	loopback := map[string][]Probe{}
	for _, p := range ps {
		if p.Kind == KindLoopback {
			loopback[srcName(p)] = append(loopback[srcName(p)], p)
		}
	}
	// starvedClient returns the client's slowest loopback probe in flight
	// while p was, when one was slower than StarvedAfter or failed; else
	// the client's longest pause in sending them while p was in flight: a
	// loopback probe that started more than StarvedAfter after it was due
	// (one interval after the one before; the probe program's round loop
	// waits on nothing but its ticker) is one its program was not even
	// scheduled to send.
	starvedClient := func(p Probe) string {
		from, to := span(p)
		var worst *Probe
		var gapFrom, gapTo time.Time
		own := loopback[srcName(p)]
		for i, l := range own {
			if i > 0 && r.Totals.Interval > 0 {
				prev := own[i-1].T
				if gap := l.T.Sub(prev); gap > r.Totals.Interval+StarvedAfter && !prev.After(to) && !l.T.Before(from) && gap > gapTo.Sub(gapFrom) {
					gapFrom, gapTo = prev, l.T
				}
			}
			lf, lt := span(l)
			if lt.Before(from) || lf.After(to) || (l.OK && lt.Sub(lf) <= StarvedAfter) {
				continue
			}
			if worst == nil || l.MS > worst.MS {
				worst = &own[i]
			}
		}
		if worst == nil && !gapTo.IsZero() {
			return fmt.Sprintf("it sent no loopback probe from %s to %s (%s; one is due every %s)",
				gapFrom.UTC().Format("15:04:05.000"), gapTo.UTC().Format("15:04:05.000"), fmtDur(gapTo.Sub(gapFrom)), fmtDur(r.Totals.Interval))
		}
		if worst == nil {
			return ""
		}
		what := fmt.Sprintf("took %s", fmtDur(time.Duration(worst.MS*float64(time.Millisecond))))
		if !worst.OK {
			what = "failed: " + worst.Err
		}
		return fmt.Sprintf("its loopback probe at %s %s", worst.T.UTC().Format("15:04:05.000"), what)
	}
	// podOpen reports whether a pod window of ip was open while p was in
	// flight.
	podOpen := func(ip string, p Probe) bool {
		from, to := span(p)
		for _, w := range windows {
			if w.IP != "" && w.IP == ip && w.During(from, to) {
				return true
			}
		}
		return false
	}
	explain := func(p Probe) int {
		if podOpen(p.SrcIP, p) {
			return explainedSrc
		}
		if p.Kind == KindApp {
			from, to := span(p)
			for _, w := range windows {
				if w.IP == "" && w.Node != "" && w.Node == p.SrcNode && w.During(from, to) {
					return explainedSrc
				}
			}
			if starvedClient(p) != "" {
				return explainedStarved
			}
			return explainedNo
		}
		if openAt(p.SrcNode, p) {
			return explainedSrc
		}
		if IsPeerKind(p.Kind) {
			if podOpen(p.Dst, p) {
				return explainedDst
			}
			node := p.DstNode
			if node == "" {
				if d, ok := idx.at(p.Dst, p.T); ok {
					node = d.DstNode
				}
			}
			if node != "" && openAt(node, p) {
				return explainedDst
			}
			return explainedNo
		}
		from, to := span(p)
		for _, w := range windows {
			if w.IP == "" && w.During(from, to) {
				return explainedService
			}
			if w.IP != "" && !w.ServiceUntil.IsZero() && !w.Start.After(to) && w.ServiceUntil.After(from) {
				return explainedService
			}
		}
		return explainedNo
	}

	phaseStats := make([]PhaseStats, len(phases))
	for i, ph := range phases {
		phaseStats[i] = PhaseStats{Name: ph.Name, Start: ph.Start, End: ph.End}
	}
	unphased := PhaseStats{Name: UnphasedName}
	phaseKinds := make([]map[string]*Counts, len(phases)+1)
	for i := range phaseKinds {
		phaseKinds[i] = map[string]*Counts{}
	}

	sources := map[string]bool{}
	pairProbes := map[pairKey][]int{}
	var pairOrder []pairKey
	unexplained := make([]bool, len(ps))
	dirs := map[string]*DirectionStats{}
	type natKey struct{ kind, dir, seen string }
	nat := map[natKey]*NATStats{}
	type polKey struct{ phase, dir string }
	pol := map[polKey]*PolicyStats{}
	var polOrder []polKey
	type flowKey struct{ flow, expect, port string }
	flows := map[flowKey]*FlowStats{}
	phaseOf := func(p Probe) (int, string) {
		for j, phase := range phases {
			if !p.T.Before(phase.Start) && p.T.Before(phase.End) {
				return j, phase.Name
			}
		}
		return len(phases), UnphasedName
	}
	// policy counts a policy probe; un says an allowed one failed unexplained.
	policy := func(p Probe, un bool) {
		_, name := phaseOf(p)
		k := polKey{name, direction(nets.Class(p.SrcIP), nets.Class(p.Dst))}
		ps := pol[k]
		if ps == nil {
			ps = &PolicyStats{Phase: k.phase, Direction: k.dir}
			pol[k] = ps
			polOrder = append(polOrder, k)
		}
		fk := flowKey{p.Policy, p.Expect, p.Port}
		fs := flows[fk]
		if fs == nil {
			fs = &FlowStats{Flow: p.Policy, Expect: p.Expect, Port: p.Port}
			flows[fk] = fs
		}
		fs.Sent++
		if p.Denied() {
			ps.Denied++
			if p.OK {
				ps.LetThrough++
				fs.Failed++
			}
			return
		}
		ps.Allowed++
		if !p.OK {
			ps.AllowedFailed++
			fs.Failed++
			if un {
				ps.AllowedUnexplained++
				fs.Unexplained++
			}
		}
	}

	for i, p := range ps {
		if p.Denied() {
			policy(p, false)
			continue
		}
		sources[srcName(p)] = true
		un := false
		if !p.OK {
			how := explain(p)
			switch how {
			case explainedNo:
				un = true
				r.UnexplainedProbes = append(r.UnexplainedProbes, p)
			case explainedService:
				r.Totals.ExplainedService++
			case explainedStarved:
				r.Totals.ExplainedStarved++
			default:
				r.Totals.ExplainedNode++
			}
			if p.Kind == KindApp {
				r.App.Failed++
				switch how {
				case explainedSrc:
					r.App.InWindow++
				case explainedStarved:
					r.App.Starved++
					r.App.Failures = append(r.App.Failures, AppFailure{Probe: p, Starved: starvedClient(p)})
				default:
					r.App.Unexplained++
					r.App.Failures = append(r.App.Failures, AppFailure{Probe: p})
				}
			}
		}
		if p.Kind == KindApp {
			r.App.Sent++
		}
		unexplained[i] = un
		r.Totals.add(p, un)
		if p.Kind == KindPolicy {
			policy(p, un)
		}

		pi, _ := phaseOf(p)
		ph := &unphased
		if pi < len(phases) {
			ph = &phaseStats[pi]
		}
		ph.add(p, un)
		kc := phaseKinds[pi][p.Kind]
		if kc == nil {
			kc = &Counts{}
			phaseKinds[pi][p.Kind] = kc
		}
		kc.add(p, un)

		k := pairKey{src: srcName(p), kind: p.Kind, dst: p.Dst}
		if IsPeerKind(p.Kind) {
			if p.OK && p.DstPod != "" {
				k.dst = p.DstPod
			} else if d, ok := idx.at(p.Dst, p.T); ok && d.DstPod != "" {
				k.dst = d.DstPod
			}
		}
		if _, ok := pairProbes[k]; !ok {
			pairOrder = append(pairOrder, k)
		}
		pairProbes[k] = append(pairProbes[k], i)

		if p.Kind == KindPod {
			d := direction(nets.Class(p.SrcIP), nets.Class(p.Dst))
			ds := dirs[d]
			if ds == nil {
				ds = &DirectionStats{Direction: d}
				dirs[d] = ds
			}
			ds.Sent++
			if p.OK {
				ds.OK++
			}
			if unexplained[i] {
				ds.Unexplained++
			}
		}

		if p.OK && p.Seen != "" {
			seen, ok := parseAddr(p.Seen)
			if !ok {
				continue
			}
			dst := p.DstIP
			if dst == "" {
				dst = p.Dst
			}
			k := natKey{kind: p.Kind, dir: direction(nets.Class(p.SrcIP), nets.Class(dst)), seen: nets.Class(p.Seen)}
			ns := nat[k]
			if ns == nil {
				ns = &NATStats{Kind: k.kind, Direction: k.dir, Seen: k.seen}
				nat[k] = ns
			}
			ns.OK++
			if src, ok := parseAddr(p.SrcIP); !ok || src != seen {
				ns.NATed++
				name := nets.Names[seen]
				if name == "" {
					name = "other"
				}
				if ns.RewrittenTo == nil {
					ns.RewrittenTo = map[string]int{}
				}
				ns.RewrittenTo[name]++
			}
		}
	}

	if len(ps) > 0 {
		r.Totals.Start, r.Totals.End = ps[0].T, ps[len(ps)-1].T
	}
	r.Totals.Sources = len(sources)

	for i := range phaseStats {
		phaseStats[i].Kinds = kindCounts(phaseKinds[i])
	}
	r.Phases = phaseStats
	if unphased.Sent > 0 {
		unphased.Kinds = kindCounts(phaseKinds[len(phases)])
		r.Phases = append(r.Phases, unphased)
	}

	for _, k := range pairOrder {
		r.Pairs = append(r.Pairs, pairStats(k, ps, pairProbes[k], unexplained, r.Totals.Interval))
	}
	slices.SortFunc(r.Pairs, func(a, b PairStats) int {
		return cmp.Or(cmp.Compare(a.Src, b.Src), compareKinds(a.Kind, b.Kind), cmp.Compare(a.Dst, b.Dst))
	})

	for _, d := range dirs {
		r.Directions = append(r.Directions, *d)
	}
	slices.SortFunc(r.Directions, func(a, b DirectionStats) int { return compareDirections(a.Direction, b.Direction) })
	for _, n := range nat {
		r.NAT = append(r.NAT, *n)
	}
	// Policy rows in phase order (the order probes first reached them is
	// time order, so phases come in order), directions sorted within.
	phaseRank := map[string]int{UnphasedName: len(phases)}
	for j, ph := range phases {
		phaseRank[ph.Name] = j
	}
	for _, k := range polOrder {
		r.Policy = append(r.Policy, *pol[k])
	}
	slices.SortStableFunc(r.Policy, func(a, b PolicyStats) int {
		return cmp.Or(cmp.Compare(phaseRank[a.Phase], phaseRank[b.Phase]), compareDirections(a.Direction, b.Direction))
	})
	for _, f := range flows {
		r.Flows = append(r.Flows, *f)
	}
	slices.SortFunc(r.Flows, func(a, b FlowStats) int {
		return cmp.Or(cmp.Compare(a.Flow, b.Flow), cmp.Compare(a.Expect, b.Expect), cmp.Compare(a.Port, b.Port))
	})
	slices.SortFunc(r.NAT, func(a, b NATStats) int {
		return cmp.Or(compareKinds(a.Kind, b.Kind), compareDirections(a.Direction, b.Direction),
			cmp.Compare(classRank(a.Seen), classRank(b.Seen)))
	})
	return r
}

func srcName(p Probe) string {
	if p.SrcPod != "" {
		return p.SrcPod
	}
	return p.SrcIP
}

// pairStats computes a pair's counts and outages from its probes (indexes
// into ps, in time order).
func pairStats(k pairKey, ps []Probe, is []int, unexplained []bool, interval time.Duration) PairStats {
	st := PairStats{Src: k.src, Kind: k.kind, Dst: k.dst}
	var cur *Outage
	end := func(o Outage) {
		o.Duration = o.End.Sub(o.Start)
		st.Outages++
		if st.Longest.Failed == 0 || o.Duration > st.Longest.Duration {
			st.Longest = o
		}
	}
	for _, i := range is {
		p := ps[i]
		st.add(p, unexplained[i])
		if p.OK {
			if cur != nil {
				cur.End, cur.Recovered = p.T, true
				end(*cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &Outage{Start: p.T}
		}
		cur.Failed++
		cur.End = p.T.Add(interval)
		if unexplained[i] {
			cur.Unexplained++
		}
	}
	if cur != nil {
		end(*cur)
	}
	return st
}

// inferInterval returns the median time between two consecutive probes of
// the same source, kind and destination (0 without any such two).
func inferInterval(ps []Probe) time.Duration {
	last := map[pairKey]time.Time{}
	var gaps []time.Duration
	for _, p := range ps {
		k := pairKey{srcName(p), p.Kind, p.Dst}
		if t, ok := last[k]; ok && p.T.After(t) {
			gaps = append(gaps, p.T.Sub(t))
		}
		last[k] = p.T
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

func kindCounts(m map[string]*Counts) []KindCounts {
	out := make([]KindCounts, 0, len(m))
	for k, c := range m {
		out = append(out, KindCounts{Kind: k, Counts: *c})
	}
	slices.SortFunc(out, func(a, b KindCounts) int { return compareKinds(a.Kind, b.Kind) })
	return out
}

// compareKinds orders pod, mtu, policy, dns, then the targets by name.
func compareKinds(a, b string) int {
	rank := func(k string) int {
		switch k {
		case KindPod:
			return 0
		case KindMTU:
			return 1
		case KindPolicy:
			return 2
		case KindDNS:
			return 3
		case KindLoopback:
			return 5
		}
		return 4
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

func classRank(c string) int {
	switch c {
	case ClassOld:
		return 0
	case ClassNew:
		return 1
	case ClassHost:
		return 2
	}
	return 3
}

func classLabel(c string) string {
	if c == "" {
		return "?"
	}
	return c
}

func direction(src, dst string) string { return classLabel(src) + "->" + classLabel(dst) }

// compareDirections orders old->old, old->new, new->old, new->new, then
// host and unknown.
func compareDirections(a, b string) int {
	split := func(d string) (int, int) {
		for i := 0; i+1 < len(d); i++ {
			if d[i] == '-' && d[i+1] == '>' {
				return labelRank(d[:i]), labelRank(d[i+2:])
			}
		}
		return 4, 4
	}
	as, ad := split(a)
	bs, bd := split(b)
	return cmp.Or(cmp.Compare(as, bs), cmp.Compare(ad, bd), cmp.Compare(a, b))
}

func labelRank(l string) int {
	if l == "?" {
		return 3
	}
	return classRank(l)
}
