// Package connectivity is `kubectl cni-migrate connectivity`: a probe
// DaemonSet (agnhost netexec, one pod per node, every taint tolerated)
// and a Service in front of it; rounds of checks in which every probe pod
// dials its peers by pod IP, a full-MTU UDP datagram to each peer, the
// probe Service by ClusterIP and by DNS name, and the API server; and the
// matrix those results make, by network (old/new) and by node pair, with
// each failure named and dated.
//
// The checks run in the probe pods themselves (netexec's /dial), asked
// through the API server's pod proxy, so the traffic is pod to pod on the
// cluster's own datapath. Observe (the matrix logic) is pure and keeps the
// history that dates failures and green periods.
package connectivity

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// APIVersion and Kind of the matrix's JSON form (docs/connectivity-schema.md).
const (
	APIVersion = "cni-migrate.io/v1alpha1"
	Kind       = "ConnectivityMatrix"
)

// The checks.
const (
	// CheckPod: a peer probe pod by its pod IP (HTTP GET /clientip).
	CheckPod = "pod"
	// CheckMTU: a UDP datagram of the full pod MTU to a peer, echoed back
	// (the kernel sets Don't Fragment on it).
	CheckMTU = "mtu"
	// CheckService: the probe Service by its ClusterIP.
	CheckService = "service"
	// CheckDNS: the probe Service by its DNS name, through the cluster DNS.
	CheckDNS = "dns"
	// CheckAPIServer: the kubernetes Service (a TCP connection to the API
	// server, answered by its TLS port).
	CheckAPIServer = "apiserver"
)

// Checks lists every check in the order the matrix shows them.
func Checks() []string {
	return []string{CheckPod, CheckMTU, CheckService, CheckDNS, CheckAPIServer}
}

// IsPeerCheck reports whether check goes to one peer probe pod.
func IsPeerCheck(check string) bool { return check == CheckPod || check == CheckMTU }

// The networks a probe pod is on.
const (
	NetOld = "old"
	NetNew = "new"
	// NetOther: an address in neither network (the host's, or unknown).
	NetOther = "other"
)

// Result is one check of one round.
type Result struct {
	Check   string `json:"check"`
	SrcPod  string `json:"srcPod"`
	SrcNode string `json:"srcNode"`
	SrcNet  string `json:"srcNetwork"`
	// Target is what was dialed: a peer's pod IP, the Service's ClusterIP
	// or DNS name, the API server's Service.
	Target string `json:"target"`
	// DstPod, DstNode and DstNet name the peer of a peer check.
	DstPod  string `json:"dstPod,omitempty"`
	DstNode string `json:"dstNode,omitempty"`
	DstNet  string `json:"dstNetwork,omitempty"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	// Seen is the client address the peer reported (CheckPod): the source
	// address after any NAT.
	Seen string `json:"seen,omitempty"`
}

// key identifies a check across rounds.
func (r Result) key() string { return r.Check + "|" + r.SrcPod + "|" + r.Target }

// Probe is one probe pod of the matrix.
type Probe struct {
	Pod     string `json:"pod"`
	Node    string `json:"node"`
	IP      string `json:"ip,omitempty"`
	Network string `json:"network"`
	// Ready: the pod runs and answers; a probe that is not does not take
	// part in the round (and a node without one is listed in Missing).
	Ready bool `json:"ready"`
}

// Matrix is what a round found: its JSON form is documented in
// docs/connectivity-schema.md (add fields, never rename or remove them).
type Matrix struct {
	metav1.TypeMeta `json:",inline"`
	// Time is when the round ended.
	Time metav1.Time `json:"time"`
	// Round counts the rounds observed, from 1.
	Round int `json:"round"`
	// Green: every check of the round passed, and every node has a ready probe.
	Green bool `json:"green"`
	// GreenSince is when the matrix last turned green (unset when it is not).
	GreenSince *metav1.Time `json:"greenSince,omitempty"`
	Probes     []Probe      `json:"probes"`
	// Missing lists the nodes without a ready probe pod.
	Missing []string `json:"missing,omitempty"`
	// Networks is the summary by direction (old->new, ...) and check.
	Networks []Direction `json:"networks"`
	// Pairs is the matrix by node pair (peer checks) and by source node
	// (the Service, DNS and API server checks, with DstNode empty).
	Pairs []Pair `json:"pairs"`
	// Failures lists every failing check, with the time it began failing.
	Failures []Failure `json:"failures,omitempty"`
	// SNAT counts the peer checks whose peer saw another source address
	// than the client pod's own, by direction.
	SNAT []SNAT `json:"snat,omitempty"`
	// Results are the round's results (-o json|yaml only).
	Results []Result `json:"results,omitempty"`
}

// DeepCopyObject makes Matrix a runtime.Object for kubectl's printers.
func (m *Matrix) DeepCopyObject() runtime.Object {
	data, err := json.Marshal(m)
	if err != nil {
		panic(err) // Matrix is plain data: marshalling cannot fail
	}
	out := &Matrix{}
	if err := json.Unmarshal(data, out); err != nil {
		panic(err)
	}
	return out
}

// Direction is the count of one check between two networks.
type Direction struct {
	// From and To are networks (NetOld, NetNew, NetOther); To is empty
	// for the Service, DNS and API server checks.
	From   string `json:"from"`
	To     string `json:"to,omitempty"`
	Check  string `json:"check"`
	OK     int    `json:"ok"`
	Failed int    `json:"failed"`
}

// Pair is the checks from one node to another (or to the Services).
type Pair struct {
	SrcNode string `json:"srcNode"`
	SrcNet  string `json:"srcNetwork"`
	DstNode string `json:"dstNode,omitempty"`
	DstNet  string `json:"dstNetwork,omitempty"`
	// Failed lists the checks that failed (empty: all passed).
	Failed []string `json:"failed,omitempty"`
	OK     int      `json:"ok"`
}

// Failure is one failing check.
type Failure struct {
	Check   string `json:"check"`
	SrcPod  string `json:"srcPod"`
	SrcNode string `json:"srcNode"`
	SrcNet  string `json:"srcNetwork"`
	Target  string `json:"target"`
	DstNode string `json:"dstNode,omitempty"`
	DstNet  string `json:"dstNetwork,omitempty"`
	Error   string `json:"error"`
	// Since is the first round of this run of failures.
	Since metav1.Time `json:"since"`
	// Rounds counts the rounds it has failed in a row.
	Rounds int `json:"rounds"`
}

// String names the failure in one line: which pair, which check, since when.
func (f Failure) String() string {
	to := f.Target
	if f.DstNode != "" {
		to = fmt.Sprintf("%s (%s, %s)", f.DstNode, f.DstNet, f.Target)
	}
	return fmt.Sprintf("%s: %s (%s) -> %s: %s, since %s (%d round(s))",
		f.Check, f.SrcNode, f.SrcNet, to, f.Error, f.Since.UTC().Format(time.TimeOnly), f.Rounds)
}

// SNAT counts rewritten source addresses by direction.
type SNAT struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Checks    int    `json:"checks"`
	Rewritten int    `json:"rewritten"`
}

// Tracker keeps what Observe needs between rounds: since when each check
// fails and since when the matrix is green.
type Tracker struct {
	round      int
	since      map[string]time.Time
	rounds     map[string]int
	greenSince time.Time
}

// NewTracker returns a Tracker with no history.
func NewTracker() *Tracker {
	return &Tracker{since: map[string]time.Time{}, rounds: map[string]int{}}
}

// Observe turns one round (its probes, the nodes that should have one and
// its results, at now) into the matrix, dating failures and the green
// period from the rounds observed before.
func (t *Tracker) Observe(now time.Time, probes []Probe, nodes []string, results []Result) Matrix {
	t.round++
	m := Matrix{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		Time:     metav1.NewTime(now),
		Round:    t.round,
		Probes:   append([]Probe(nil), probes...),
		Results:  append([]Result(nil), results...),
	}
	sort.Slice(m.Probes, func(i, j int) bool {
		return m.Probes[i].Node < m.Probes[j].Node || m.Probes[i].Node == m.Probes[j].Node && m.Probes[i].Pod < m.Probes[j].Pod
	})
	ready := map[string]bool{}
	for _, p := range probes {
		if p.Ready {
			ready[p.Node] = true
		}
	}
	for _, n := range nodes {
		if !ready[n] {
			m.Missing = append(m.Missing, n)
		}
	}
	sort.Strings(m.Missing)

	dirs := map[[3]string]*Direction{}
	pairs := map[[2]string]*Pair{}
	snat := map[[2]string]*SNAT{}
	failing := map[string]bool{}
	srcIP := map[string]string{}
	for _, p := range probes {
		srcIP[p.Pod] = p.IP
	}
	for _, r := range results {
		to := ""
		if IsPeerCheck(r.Check) {
			to = r.DstNet
		}
		dk := [3]string{r.SrcNet, to, r.Check}
		d := dirs[dk]
		if d == nil {
			d = &Direction{From: r.SrcNet, To: to, Check: r.Check}
			dirs[dk] = d
		}
		pk := [2]string{r.SrcNode, r.DstNode}
		p := pairs[pk]
		if p == nil {
			p = &Pair{SrcNode: r.SrcNode, SrcNet: r.SrcNet, DstNode: r.DstNode, DstNet: r.DstNet}
			pairs[pk] = p
		}
		if r.OK {
			d.OK++
			p.OK++
			if r.Check == CheckPod && r.Seen != "" {
				sk := [2]string{r.SrcNet, r.DstNet}
				s := snat[sk]
				if s == nil {
					s = &SNAT{From: r.SrcNet, To: r.DstNet}
					snat[sk] = s
				}
				s.Checks++
				if hostOf(r.Seen) != srcIP[r.SrcPod] {
					s.Rewritten++
				}
			}
			continue
		}
		d.Failed++
		if !slices.Contains(p.Failed, r.Check) {
			p.Failed = append(p.Failed, r.Check)
		}
		k := r.key()
		failing[k] = true
		if _, ok := t.since[k]; !ok {
			t.since[k] = now
		}
		t.rounds[k]++
		m.Failures = append(m.Failures, Failure{
			Check: r.Check, SrcPod: r.SrcPod, SrcNode: r.SrcNode, SrcNet: r.SrcNet, Target: r.Target,
			DstNode: r.DstNode, DstNet: r.DstNet, Error: r.Error,
			Since: metav1.NewTime(t.since[k]), Rounds: t.rounds[k],
		})
	}
	// A check that passed (or was not run) this round starts afresh.
	for k := range t.since {
		if !failing[k] {
			delete(t.since, k)
			delete(t.rounds, k)
		}
	}
	for _, d := range dirs {
		m.Networks = append(m.Networks, *d)
	}
	sort.Slice(m.Networks, func(i, j int) bool {
		a, b := m.Networks[i], m.Networks[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return checkOrder(a.Check) < checkOrder(b.Check)
	})
	for _, p := range pairs {
		sort.Slice(p.Failed, func(i, j int) bool { return checkOrder(p.Failed[i]) < checkOrder(p.Failed[j]) })
		m.Pairs = append(m.Pairs, *p)
	}
	sort.Slice(m.Pairs, func(i, j int) bool {
		a, b := m.Pairs[i], m.Pairs[j]
		if a.SrcNode != b.SrcNode {
			return a.SrcNode < b.SrcNode
		}
		return a.DstNode < b.DstNode
	})
	for _, s := range snat {
		m.SNAT = append(m.SNAT, *s)
	}
	sort.Slice(m.SNAT, func(i, j int) bool {
		return m.SNAT[i].From < m.SNAT[j].From || m.SNAT[i].From == m.SNAT[j].From && m.SNAT[i].To < m.SNAT[j].To
	})
	sort.SliceStable(m.Failures, func(i, j int) bool {
		a, b := m.Failures[i], m.Failures[j]
		if a.SrcNode != b.SrcNode {
			return a.SrcNode < b.SrcNode
		}
		if a.DstNode != b.DstNode {
			return a.DstNode < b.DstNode
		}
		if a.Check != b.Check {
			return checkOrder(a.Check) < checkOrder(b.Check)
		}
		return a.Target < b.Target
	})

	m.Green = len(m.Failures) == 0 && len(m.Missing) == 0 && len(results) > 0
	switch {
	case !m.Green:
		t.greenSince = time.Time{}
	case t.greenSince.IsZero():
		t.greenSince = now
	}
	if m.Green {
		gs := metav1.NewTime(t.greenSince)
		m.GreenSince = &gs
	}
	return m
}

// GreenFor reports whether the matrix has been green for at least d.
func (m Matrix) GreenFor(d time.Duration) bool {
	return m.Green && m.GreenSince != nil && m.Time.Sub(m.GreenSince.Time) >= d
}

// checkOrder places a check as Checks lists it (unknown ones last).
func checkOrder(c string) int {
	if i := slices.Index(Checks(), c); i >= 0 {
		return i
	}
	return len(Checks())
}

// hostOf is the host of "host:port" (or the input when it has no port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
