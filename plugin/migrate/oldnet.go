package migrate

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// OldNetwork is what a node's probe pod reaches on the old network.
type OldNetwork struct {
	// Addr is the address; Node and Link say whose interface it is.
	Addr, Node, Link string
}

func (o OldNetwork) String() string {
	return fmt.Sprintf("node %s's %s %s", o.Node, o.Link, o.Addr)
}

// OldNetworkTarget picks what node's probe pod must reach on the old
// network while both networks exist: the old CNI's tunnel interface on
// another Ready node, the first by name (every node runs the old CNI until
// finalize). A migrated node's pods reach the old network only through
// the old CNI's overlay on their own node, which comes back after the
// node's reboot only once the old CNI's pod there has started again
// (found on the real datapath with Canal: 55 s after the agent was
// Ready). ok is false when the CNI has no tunnel the plugin can name, or
// no other node has one.
func OldNetworkTarget(cni *detect.CNI, node string, nodes []corev1.Node) (OldNetwork, bool) {
	if cni == nil {
		return OldNetwork{}, false
	}
	src, err := sourcecni.For(cni)
	if err != nil || src.Node.Tunnel == nil {
		return OldNetwork{}, false
	}
	sorted := append([]corev1.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := range sorted {
		n := &sorted[i]
		if n.Name == node || !nodeReady(n) || n.DeletionTimestamp != nil {
			continue
		}
		if t, ok := src.Node.Tunnel(cni, n); ok {
			return OldNetwork{Addr: t.Addr, Node: n.Name, Link: t.Link}, true
		}
	}
	return OldNetwork{}, false
}

// oldNetwork is OldNetworkTarget for node with the cluster's nodes.
func (m *Migrator) oldNetwork(ctx context.Context, plan *Plan, node string) (OldNetwork, bool, error) {
	if plan.OldCNI == nil {
		return OldNetwork{}, false, nil
	}
	rctx, cancel := writeCtx(ctx)
	l, err := m.cl.Kube.CoreV1().Nodes().List(rctx, metav1.ListOptions{})
	cancel()
	if err != nil {
		return OldNetwork{}, false, m.cl.Classify(err, "listing nodes")
	}
	t, ok := OldNetworkTarget(plan.OldCNI, node, l.Items)
	return t, ok, nil
}

// waitOldCNIPod waits until the old CNI's pod on the node is Ready: after
// the reboot, the node's pods reach the old network only through it (its
// overlay, its routes). It returns the pod's name ("" when the old CNI has
// no DaemonSet, for example k3s's embedded flannel, or no pod on the node).
func (m *Migrator) waitOldCNIPod(ctx context.Context, plan *Plan, node string) (string, error) {
	cni := plan.OldCNI
	if cni == nil || cni.DaemonSet == "" || cni.Namespace == "" {
		return "", nil
	}
	rctx, cancel := writeCtx(ctx)
	ds, err := m.cl.Kube.AppsV1().DaemonSets(cni.Namespace).Get(rctx, cni.DaemonSet, metav1.GetOptions{})
	cancel()
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", m.cl.Classify(err, "reading DaemonSet "+cni.Namespace+"/"+cni.DaemonSet)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() {
		return "", nil
	}
	opts := metav1.ListOptions{LabelSelector: sel.String(), FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()}
	pods := m.cl.Kube.CoreV1().Pods(cni.Namespace)
	rctx, cancel = writeCtx(ctx)
	l, err := pods.List(rctx, opts)
	cancel()
	if err != nil {
		return "", m.cl.Classify(err, "listing the pods of DaemonSet "+cni.Namespace+"/"+cni.DaemonSet)
	}
	if len(l.Items) == 0 {
		return "", nil
	}
	wctx, wcancel := context.WithTimeout(ctx, m.opts.AgentTimeout)
	defer wcancel()
	var last, ready *corev1.Pod
	err = watchUntil(wctx, opts, podLister(pods.List), pods.Watch, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || e.Type == watch.Deleted || p.DeletionTimestamp != nil || !metav1.IsControlledBy(p, ds) {
			return false, nil
		}
		last = p
		if kube.PodReady(p) {
			ready = p
			return true, nil
		}
		return false, nil
	})
	switch {
	case err == nil:
		return ready.Name, nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case wctx.Err() != nil:
		state := "its pod is gone"
		name := "-l " + sel.String()
		if last != nil {
			state, name = "pod "+last.Name+" is "+podState(last), last.Name
		}
		return "", errs.Newf(errs.VerificationFailed,
			fmt.Sprintf("check kubectl -n %s describe pod %s and its logs, then run the same command again; the node stays cordoned", cni.Namespace, name),
			"the old CNI (%s) on node %s is not Ready after %s: %s; the node's pods would not reach the pods still on the old network", cni.Name, node, m.opts.AgentTimeout.Round(time.Second), state)
	}
	return "", m.cl.Classify(err, "watching the old CNI's pod on node "+node)
}
