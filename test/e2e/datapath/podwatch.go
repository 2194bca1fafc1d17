package datapath

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

// podRecord is what the pod watch saw of one pod.
type podRecord struct {
	NS, Name, Node, IP string
	// Owner is the controller's kind/name ("" for a bare pod).
	Owner string
	// Created, Ready and Deleting are when the watch first saw the pod,
	// saw it Ready and saw its deletion begin (zero: not seen).
	Created, Ready, Deleting time.Time
	// Moves are the pod's earlier addresses, each with when the watch saw
	// the next one (a node's reboot gives the sandboxes of the pods no
	// drain moves, DaemonSet pods, a new address).
	Moves []addrMove
}

// addrMove is an address a pod left.
type addrMove struct {
	From, To string
	At       time.Time
}

// podWatch follows every pod (a watch, relisted when it ends), for the
// in-place method: which pods were evicted when, and when their
// replacements were Ready.
type podWatch struct {
	mu   sync.Mutex
	pods map[types.UID]*podRecord
}

func newPodWatch() *podWatch { return &podWatch{pods: map[types.UID]*podRecord{}} }

// Watch runs until ctx ends.
func (pw *podWatch) Watch(ctx context.Context, cs kubernetes.Interface) {
	for ctx.Err() == nil {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		now := time.Now()
		for i := range pods.Items {
			pw.observe(now, &pods.Items[i])
		}
		w, err := cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{ResourceVersion: pods.ResourceVersion})
		if err != nil {
			continue
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				if ev.Type == watch.Deleted && p.DeletionTimestamp == nil {
					p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
				}
				pw.observe(time.Now(), p)
			}
		}
		w.Stop()
	}
}

func (pw *podWatch) observe(now time.Time, p *corev1.Pod) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	r := pw.pods[p.UID]
	if r == nil {
		r = &podRecord{NS: p.Namespace, Name: p.Name, Created: now}
		if ref := metav1.GetControllerOf(p); ref != nil {
			r.Owner = ref.Kind + "/" + ref.Name
		}
		pw.pods[p.UID] = r
	}
	if p.Spec.NodeName != "" {
		r.Node = p.Spec.NodeName
	}
	if p.Status.PodIP != "" && !p.Spec.HostNetwork {
		if r.IP != "" && r.IP != p.Status.PodIP {
			r.Moves = append(r.Moves, addrMove{From: r.IP, To: p.Status.PodIP, At: now})
		}
		r.IP = p.Status.PodIP
	}
	if r.Ready.IsZero() && podReady(p) {
		r.Ready = now
	}
	if r.Deleting.IsZero() && p.DeletionTimestamp != nil {
		r.Deleting = now
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// restart is one pod of the old network that was deleted, and the pod that
// replaced it.
type restart struct {
	Old, New *podRecord
	// Gap is from the old pod's deletion to its replacement's Ready (zero
	// when no replacement was Ready).
	Gap time.Duration
}

// Restarts returns the deleted pods whose address was in old, in the
// order of their deletion, each with its replacement: the earliest pod of
// the same controller (and node, for a DaemonSet) seen after the deletion
// began and not already taken.
func (pw *podWatch) Restarts(old []netip.Prefix) []restart {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var all []*podRecord
	for _, r := range pw.pods {
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b *podRecord) int { return a.Created.Compare(b.Created) })
	var deleted []*podRecord
	for _, r := range all {
		if !r.Deleting.IsZero() && inPrefixes(r.IP, old) {
			deleted = append(deleted, r)
		}
	}
	slices.SortFunc(deleted, func(a, b *podRecord) int { return a.Deleting.Compare(b.Deleting) })
	taken := map[*podRecord]bool{}
	var out []restart
	for _, d := range deleted {
		rs := restart{Old: d}
		for _, c := range all {
			if c == d || taken[c] || c.Owner == "" || c.Owner != d.Owner || c.Created.Before(d.Deleting.Add(-time.Second)) {
				continue
			}
			if strings.HasPrefix(d.Owner, "DaemonSet/") && c.Node != d.Node {
				continue
			}
			rs.New = c
			taken[c] = true
			if !c.Ready.IsZero() {
				rs.Gap = c.Ready.Sub(d.Deleting)
			}
			break
		}
		out = append(out, rs)
	}
	return out
}

// Windows are the restarted pods' windows (from each deletion on, the old
// address is gone; Service probes are explained until the replacement's
// Ready) and the re-addressed pods' (from the start of the node's window
// in which the pod changed address, nodes being the nodes' windows: the
// reboot in it ended the old address).
func (pw *podWatch) Windows(old []netip.Prefix, nodes []monitor.Window) []monitor.Window {
	var out []monitor.Window
	for _, r := range pw.Restarts(old) {
		w := monitor.Window{Node: r.Old.Node, IP: r.Old.IP, Start: r.Old.Deleting,
			Reason: "pod " + r.Old.NS + "/" + r.Old.Name + " evicted"}
		if r.New != nil {
			w.ServiceUntil = r.New.Ready
		}
		out = append(out, w)
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var moved []monitor.Window
	for _, r := range pw.pods {
		for _, m := range r.Moves {
			// The node's last window that began before the move and had
			// not ended a minute before it.
			start, found := m.At, time.Time{}
			for _, n := range nodes {
				if n.IP == "" && n.Node == r.Node && !n.Start.After(m.At) && (n.End.IsZero() || !n.End.Before(m.At.Add(-time.Minute))) && n.Start.After(found) {
					found = n.Start
				}
			}
			if !found.IsZero() {
				start = found
			}
			moved = append(moved, monitor.Window{Node: r.Node, IP: m.From, Start: start, Readdressed: true,
				Reason: fmt.Sprintf("pod %s/%s re-addressed: %s to %s, seen at %s", r.NS, r.Name, m.From, m.To, m.At.UTC().Format("15:04:05.000"))})
		}
	}
	slices.SortFunc(moved, func(a, b monitor.Window) int { return a.Start.Compare(b.Start) })
	return append(out, moved...)
}

func inPrefixes(ip string, ps []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// restartsMarkdown is the results page's table of the pods the in-place
// method restarted.
func restartsMarkdown(rs []restart) string {
	var b strings.Builder
	b.WriteString("\n### Each pod's restart\n\nEvery pod that had an address of the old network, in the order `rollout --strategy in-place` evicted them; its replacement (same controller, same node for a DaemonSet) and the gap from the eviction to the replacement's Ready.\n\n")
	if len(rs) == 0 {
		b.WriteString("None.\n")
		return b.String()
	}
	b.WriteString("| pod | controller | node | address | replacement | node | address | gap (s) |\n|---|---|---|---|---|---|---|---:|\n")
	var gaps []time.Duration
	for _, r := range rs {
		repl, node, ip, gap := "none", "", "", "no replacement Ready"
		if r.New != nil {
			repl, node, ip = r.New.Name, r.New.Node, r.New.IP
			if r.Gap > 0 {
				gap = fmt.Sprintf("%.1f", r.Gap.Seconds())
				gaps = append(gaps, r.Gap)
			}
		}
		fmt.Fprintf(&b, "| %s/%s | %s | %s | %s | %s | %s | %s | %s |\n", r.Old.NS, r.Old.Name, r.Old.Owner, r.Old.Node, r.Old.IP, repl, node, ip, gap)
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		fmt.Fprintf(&b, "\n%d pods restarted; gap median %.1f s, longest %.1f s.\n", len(rs), gaps[len(gaps)/2].Seconds(), gaps[len(gaps)-1].Seconds())
	}
	return b.String()
}
