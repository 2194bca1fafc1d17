package migrate

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
)

func agentListOptions(node string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: AgentLabel, FieldSelector: "spec.nodeName=" + node}
}

func (m *Migrator) restartAgent(ctx context.Context, plan *Plan, name string) (string, error) {
	pods := m.cl.Kube.CoreV1().Pods(plan.Namespace)
	l, err := pods.List(ctx, agentListOptions(name))
	if err != nil {
		return "", m.cl.Classify(err, "listing the Cilium agent on node "+name)
	}
	old := map[types.UID]bool{}
	var oldNames []string
	for _, p := range l.Items {
		old[p.UID] = true
		oldNames = append(oldNames, p.Name)
		wctx, cancel := writeCtx(ctx)
		err := pods.Delete(wctx, p.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(p.UID)), DryRun: m.dryRun()})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return "", m.cl.Classify(err, "deleting Cilium agent pod "+plan.Namespace+"/"+p.Name)
		}
	}
	if m.opts.DryRun {
		return m.dryNote("would delete " + strings.Join(oldNames, ", ")), m.record(ctx, name, StepRestartAgent, nil)
	}
	start := m.now()
	p, err := m.waitAgent(ctx, plan.Namespace, name, old, time.Time{}, "")
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%s Ready after %s", p.Name, formatDuration(m.now().Sub(start)))
	if len(oldNames) > 0 {
		detail = fmt.Sprintf("%s replaced %s, Ready after %s", p.Name, strings.Join(oldNames, ", "), formatDuration(m.now().Sub(start)))
	}
	return detail, m.record(ctx, name, StepRestartAgent, nil)
}

// waitAgent watches until a Cilium agent pod on node that is not in old is
// Ready, for at most the agent timeout. A non-zero since also wants the
// pod's Ready condition to have turned true at or after since; a non-empty
// notContainer wants its agent container to be another one.
func (m *Migrator) waitAgent(ctx context.Context, ns, node string, old map[types.UID]bool, since time.Time, notContainer string) (*corev1.Pod, error) {
	wctx, cancel := context.WithTimeout(ctx, m.opts.AgentTimeout)
	defer cancel()
	pods := m.cl.Kube.CoreV1().Pods(ns)
	var last, ready *corev1.Pod
	err := watchUntil(wctx, agentListOptions(node), podLister(pods.List), pods.Watch, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || old[p.UID] || e.Type == watch.Deleted || p.DeletionTimestamp != nil {
			return false, nil
		}
		last = p
		if kube.PodReady(p) && !readySince(p).Before(since) && (notContainer == "" || agentContainerID(p) != notContainer) {
			ready = p
			return true, nil
		}
		return false, nil
	})
	switch {
	case err == nil:
		return ready, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		state := "no new agent pod was created (is the DaemonSet " + ns + "/cilium scheduling on it?)"
		fix := fmt.Sprintf("check kubectl -n %s get ds cilium and the node, then run the same command again", ns)
		if last != nil {
			state = fmt.Sprintf("pod %s is %s", last.Name, podState(last))
			fix = fmt.Sprintf("check kubectl -n %s logs pod/%s -c cilium-agent and kubectl -n %s describe pod %s, then run the same command again", ns, last.Name, ns, last.Name)
		}
		return nil, errs.Newf(errs.AgentNotReady, fix+"; the node stays cordoned",
			"the Cilium agent on node %s is not Ready after %s: %s", node, m.opts.AgentTimeout, state)
	}
	return nil, m.cl.Classify(err, "watching the Cilium agent on node "+node)
}

// agentContainerID is the ID of the pod's cilium-agent container (its
// first container's when none has that name), "" before it has one.
func agentContainerID(p *corev1.Pod) string {
	id := ""
	for i, cs := range p.Status.ContainerStatuses {
		if cs.Name == AgentContainerName || (i == 0 && id == "") {
			id = cs.ContainerID
		}
		if cs.Name == AgentContainerName {
			break
		}
	}
	return id
}

// agentContainer is the container ID of the Ready Cilium agent on node
// ("" when there is none or it cannot be read: verify then falls back to
// the agent's Ready time).
func (m *Migrator) agentContainer(ctx context.Context, ns, node string) string {
	l, err := m.cl.Kube.CoreV1().Pods(ns).List(ctx, agentListOptions(node))
	if err != nil {
		return ""
	}
	for i := range l.Items {
		if p := &l.Items[i]; p.DeletionTimestamp == nil && kube.PodReady(p) {
			return agentContainerID(p)
		}
	}
	return ""
}

func podLister(list func(context.Context, metav1.ListOptions) (*corev1.PodList, error)) listFunc {
	return func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
		l, err := list(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]runtime.Object, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out, l.ResourceVersion, nil
	}
}

func podState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			s += ", not Ready"
			if c.Reason != "" {
				s += " (" + c.Reason + ")"
			}
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			s += ", container " + cs.Name + " " + w.Reason
		}
	}
	return s
}

// readySince is when the pod's Ready condition last changed (zero if it
// has none).
func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
