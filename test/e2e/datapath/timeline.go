package datapath

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/monitor"
)

// Annotations the plugin writes on nodes (plugin/migrate/phase.go); the
// timeline reads them as a user's tooling would, from the API.
const (
	annotationPhase = "cni-migrate.io/phase"
	phaseCordoned   = "cordoned"
	phaseDone       = "done"
)

// timeline records what happened when: marks the test sets (helm install,
// rollout, finalize) and, by polling the nodes, when each node's migration
// began (cordoned) and ended (phase done, schedulable and Ready again). The
// monitor's phases and disruption windows come from it.
type timeline struct {
	mu     sync.Mutex
	marks  []mark
	nodes  map[string]*nodeSpan
	order  []string
	faults []monitor.Window
	// past are the windows of nodes migrated before and then rolled back
	// (Forget), with the name of their rollout phase.
	past []pastSpan
	// onDone, when set before Watch, is called (without the lock) once
	// for each node when its migration ends.
	onDone func(node string)
}

type mark struct {
	name string
	t    time.Time
}

type pastSpan struct {
	node string
	span nodeSpan
}

type nodeSpan struct {
	start, end time.Time
	reboots    int
	lastBoot   string
}

func newTimeline() *timeline { return &timeline{nodes: map[string]*nodeSpan{}} }

// Mark records that the named part of the run begins now.
func (tl *timeline) Mark(name string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.marks = append(tl.marks, mark{name, time.Now()})
	transcript("\n==> %s  (%s)\n", name, time.Now().Format("15:04:05"))
}

// Fault records a fault the test injects on node from now on (its end
// is set by the func it returns): a disruption window of that node.
func (tl *timeline) Fault(node, reason string) (end func()) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.faults = append(tl.faults, monitor.Window{Node: node, Start: time.Now(), Reason: reason})
	i := len(tl.faults) - 1
	return func() {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		tl.faults[i].End = time.Now()
	}
}

// Forget closes node's migration in the timeline (its window and phase
// stay as they were), so that its next migration, after a rollback, is
// recorded anew.
func (tl *timeline) Forget(node string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	sp := tl.nodes[node]
	if sp == nil {
		return
	}
	tl.past = append(tl.past, pastSpan{node, *sp})
	delete(tl.nodes, node)
	tl.order = slices.DeleteFunc(tl.order, func(n string) bool { return n == node })
}

// Watch follows the nodes until ctx ends (a watch, so that a node's
// start is seen within milliseconds of the plugin's cordon, before its
// drain evicts anything; relisting whenever the watch ends).
func (tl *timeline) Watch(ctx context.Context, cs kubernetes.Interface) {
	for ctx.Err() == nil {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		tl.observe(time.Now(), nodes.Items)
		w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: nodes.ResourceVersion})
		if err != nil {
			continue
		}
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*corev1.Node); ok && ev.Type != watch.Deleted {
				tl.observe(time.Now(), []corev1.Node{*n})
			}
		}
		w.Stop()
	}
}

func (tl *timeline) observe(now time.Time, nodes []corev1.Node) {
	var done []string
	defer func() {
		for _, n := range done {
			if tl.onDone != nil {
				tl.onDone(n)
			}
		}
	}()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, n := range nodes {
		phase := n.Annotations[annotationPhase]
		sp := tl.nodes[n.Name]
		if sp == nil {
			if phase == "" {
				continue
			}
			sp = &nodeSpan{start: now, lastBoot: n.Status.NodeInfo.BootID}
			tl.nodes[n.Name] = sp
			tl.order = append(tl.order, n.Name)
		}
		if b := n.Status.NodeInfo.BootID; b != sp.lastBoot {
			sp.reboots++
			sp.lastBoot = b
		}
		if sp.end.IsZero() && phase == phaseDone && !n.Spec.Unschedulable && nodeReady(n) {
			sp.end = now
			done = append(done, n.Name)
		}
	}
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Ended reports how many nodes' migrations have ended.
func (tl *timeline) Ended() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := 0
	for _, sp := range tl.nodes {
		if !sp.end.IsZero() {
			n++
		}
	}
	return n
}

// Phases are the monitor's phases: from each mark to the next, the
// rollout split by node (from the node's start to the next node's start).
// The run ends at end.
func (tl *timeline) Phases(end time.Time) []monitor.Phase {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	type cut struct {
		name string
		t    time.Time
	}
	var cuts []cut
	for _, m := range tl.marks {
		if m.name == "rollout" && len(tl.order) > 0 {
			cuts = append(cuts, cut{"rollout (starting)", m.t})
			continue
		}
		cuts = append(cuts, cut(m))
	}
	for _, p := range tl.past {
		cuts = append(cuts, cut{"rollout: " + p.node + " (first time)", p.span.start})
	}
	for _, n := range tl.order {
		name := "rollout: " + n
		if slices.ContainsFunc(tl.past, func(p pastSpan) bool { return p.node == n }) {
			name += " (again)"
		}
		cuts = append(cuts, cut{name, tl.nodes[n].start})
	}
	slices.SortStableFunc(cuts, func(a, b cut) int { return a.t.Compare(b.t) })
	var out []monitor.Phase
	for i, c := range cuts {
		e := end
		if i+1 < len(cuts) {
			e = cuts[i+1].t
		}
		if !e.After(c.t) {
			continue
		}
		out = append(out, monitor.Phase{Name: c.name, Start: c.t, End: e})
	}
	return out
}

// Windows are the nodes' disruption windows: from the node's start
// (cordoned) to its end (done, uncordoned, Ready), and the faults.
func (tl *timeline) Windows() []monitor.Window {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := slices.Clone(tl.faults)
	for _, p := range tl.past {
		reason := "cordon, drain"
		if p.span.reboots > 0 {
			reason += ", reboot"
		}
		out = append(out, monitor.Window{Node: p.node, Start: p.span.start, End: p.span.end, Reason: reason})
	}
	for _, n := range tl.order {
		sp := tl.nodes[n]
		reason := "cordon, drain"
		if sp.reboots > 0 {
			reason += ", reboot"
		}
		out = append(out, monitor.Window{Node: n, Start: sp.start, End: sp.end, Reason: reason})
	}
	return out
}

// String sums the timeline up for the log.
func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, m := range tl.marks {
		fmt.Fprintf(&b, "%s %s\n", m.t.Format("15:04:05.000"), m.name)
	}
	for _, n := range tl.order {
		sp := tl.nodes[n]
		fmt.Fprintf(&b, "%s: %s .. %s (%d reboots)\n", n, sp.start.Format("15:04:05.000"), sp.end.Format("15:04:05.000"), sp.reboots)
	}
	return b.String()
}
