package migrate

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (m *Migrator) reboot(ctx context.Context, plan *Plan, t Target) (string, error) {
	name := t.Name
	if m.opts.Reboot == RebootSkip {
		if m.rollback() {
			m.progress.Printf("%s", CNIConfigRestore(name, plan))
		}
		left := m.leftBehind(ctx, name)
		return m.dryNote("skipped: " + left), m.record(ctx, name, StepReboot, map[string]any{AnnotationReboot: RebootSkip})
	}
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	if m.rollback() && (!st.HasBootID || n.Status.NodeInfo.BootID == st.BootID) {
		// Not rebooted yet: what the reboot does not restore.
		m.progress.Printf("%s", CNIConfigRestore(name, plan))
	}
	recorded := st.BootID
	if !st.HasBootID {
		recorded = n.Status.NodeInfo.BootID
		ann := map[string]any{AnnotationBootID: recorded, AnnotationReboot: m.opts.Reboot}
		if id := m.agentContainer(ctx, plan.Namespace, name); id != "" {
			ann[AnnotationAgentContainer] = id
		}
		if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": ann}}); err != nil {
			return "", err
		}
	}
	rebooted := n.Status.NodeInfo.BootID != recorded
	if m.opts.DryRun {
		what := "would wait for you to reboot it"
		if m.opts.Reboot == RebootCommand {
			argv, err := m.opts.RebootCommand.Argv(RebootTarget{Node: name, InternalIP: t.InternalIP})
			if err != nil {
				return "", err
			}
			what = "would run " + shell.Join(argv)
		}
		return m.dryNote(what), m.record(ctx, name, StepReboot, map[string]any{AnnotationReboot: m.opts.Reboot})
	}
	if !rebooted && m.opts.Reboot == RebootManual {
		resume := "run the same command again"
		if m.opts.ResumeCommand != "" {
			resume = "run " + m.opts.ResumeCommand
		}
		detail := fmt.Sprintf("bootID %s recorded; reboot the node now", shortID(recorded))
		if m.rollback() {
			return detail, errs.Newf(errs.WaitingForReboot, "restore the old CNI's config on it as printed above, reboot it (e.g. ssh "+name+" sudo systemctl reboot), wait until it is Ready, then "+resume+" to continue",
				"node %s waits for a manual reboot (its Cilium agent restarted without the CiliumNodeConfig; bootID %s recorded)", name, shortID(recorded))
		}
		return detail, errs.Newf(errs.WaitingForReboot, "reboot it (e.g. ssh "+name+" sudo systemctl reboot), wait until it is Ready, then "+resume+" to continue",
			"node %s waits for a manual reboot (its Cilium agent runs; bootID %s recorded)", name, shortID(recorded))
	}
	var cmdErr error
	var argvText string
	if !rebooted {
		argv, err := m.opts.RebootCommand.Argv(RebootTarget{Node: name, InternalIP: t.InternalIP})
		if err != nil {
			return "", err
		}
		argvText = shell.Join(argv)
		m.markNotReady(ctx, name)
		m.progress.Printf("running %s", argvText)
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		cmdDone := make(chan error, 1)
		w := m.progress.Writer()
		go func() { cmdDone <- m.run(cctx, argv, w, w) }()
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		waitDone := make(chan error, 1)
		var last *corev1.Node
		go func() {
			var err error
			last, err = m.waitRebooted(wctx, name, recorded)
			waitDone <- err
		}()
		timer := time.NewTimer(m.opts.RebootTimeout)
		defer timer.Stop()
	loop:
		for {
			select {
			case err := <-cmdDone:
				cmdDone = nil
				if ctx.Err() != nil {
					wcancel()
					<-waitDone
					return "", ctx.Err()
				}
				if err != nil && commandNotRunnable(err) {
					wcancel()
					<-waitDone
					m.unmarkNotReady(ctx, name)
					return "", errs.Newf(errs.RebootFailed, "fix --reboot-command, then run the same command again; the node stays cordoned",
						"the reboot command %s of node %s could not run: %v", argvText, name, errs.OneLine(err.Error()))
				}
				// A kubelet still running when the pods were marked may
				// have written their Ready again before it stopped.
				m.remarkNotReady(ctx, name, recorded)
				if err == nil {
					continue
				}
				cmdErr = err
				m.progress.Printf("the reboot command exited: %v; waiting for the node to come back anyway (ssh often reports a reboot as a dropped connection)", errs.OneLine(err.Error()))
			case err := <-waitDone:
				if err != nil {
					if ctx.Err() != nil {
						return "", ctx.Err()
					}
					return "", m.cl.Classify(err, "watching node "+name)
				}
				if cmdDone != nil {
					// Let the command finish on its own for a moment.
					select {
					case <-cmdDone:
					case <-time.After(10 * time.Second):
						ccancel()
						<-cmdDone
					}
				}
				break loop
			case <-timer.C:
				wcancel()
				<-waitDone
				why := fmt.Sprintf("its bootID is still %s", shortID(recorded))
				if last != nil && last.Status.NodeInfo.BootID != recorded {
					why = "it rebooted but is not Ready"
				}
				if cmdErr != nil {
					why += fmt.Sprintf(" and the reboot command failed (%s)", errs.OneLine(cmdErr.Error()))
				}
				return "", errs.Newf(errs.RebootFailed, "check the node (and --reboot-command), then run the same command again; the node stays cordoned",
					"node %s did not come back within %s after %s: %s", name, m.opts.RebootTimeout, argvText, why)
			}
		}
		n = last
	} else if !nodeReady(n) {
		// Rebooted (by hand or by an interrupted run): wait for Ready.
		wctx, cancel := context.WithTimeout(ctx, m.opts.RebootTimeout)
		defer cancel()
		n, err = m.waitRebooted(wctx, name, recorded)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			if wctx.Err() != nil {
				return "", errs.Newf(errs.RebootFailed, "check the node, then run the same command again; the node stays cordoned",
					"node %s rebooted but is not Ready after %s", name, m.opts.RebootTimeout)
			}
			return "", m.cl.Classify(err, "watching node "+name)
		}
	}
	detail := fmt.Sprintf("bootID %s -> %s, Ready", shortID(recorded), shortID(n.Status.NodeInfo.BootID))
	return detail, m.record(ctx, name, StepReboot, map[string]any{AnnotationReboot: m.opts.Reboot})
}

// waitRebooted watches a node until its bootID differs from old and it is
// Ready; it returns the last node seen (also on error).
func (m *Migrator) waitRebooted(ctx context.Context, name, old string) (*corev1.Node, error) {
	return m.watchNode(ctx, name, func(n *corev1.Node) bool {
		return n.Status.NodeInfo.BootID != old && nodeReady(n)
	})
}

// watchNode watches a node until cond holds for it and returns the last
// node seen (also on error). A node deleted (or gone before the watch's
// first list) or replaced meanwhile is an error.
func (m *Migrator) watchNode(ctx context.Context, name string, cond func(*corev1.Node) bool) (*corev1.Node, error) {
	nodes := m.cl.Kube.CoreV1().Nodes()
	var last *corev1.Node
	err := watchUntil(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name},
		func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
			l, err := nodes.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			var out []runtime.Object
			for i := range l.Items {
				if l.Items[i].Name == name {
					out = append(out, &l.Items[i])
				}
			}
			if len(out) == 0 {
				return nil, "", m.nodeGone(name)
			}
			return out, l.ResourceVersion, nil
		}, nodes.Watch,
		func(e watch.Event) (bool, error) {
			n, ok := e.Object.(*corev1.Node)
			if !ok || n.Name != name {
				return false, nil
			}
			if e.Type == watch.Deleted {
				return false, m.nodeGone(name)
			}
			if err := m.sameNode(n); err != nil {
				return false, err
			}
			last = n
			return cond(n), nil
		})
	return last, err
}

// commandNotRunnable reports errors that mean the command never ran: not
// found, not executable (exit codes 126 and 127 of a wrapper included).
func commandNotRunnable(err error) bool {
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return true
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode() == 126 || exitErr.ExitCode() == 127
	}
	return false
}

// leftBehind says what a skipped reboot leaves on the node.
func (m *Migrator) leftBehind(ctx context.Context, name string) string {
	s := "the old CNI's interfaces (e.g. flannel.1, cni0) and iptables rules stay on the node until it next reboots"
	one, many := "1 pod keeps its old address", "%d pods keep their old addresses"
	if m.rollback() {
		s = "the pods left on the node (DaemonSet pods) are not restarted"
		one, many = "1 pod keeps its Cilium address", "%d pods keep their Cilium addresses"
	}
	pods, err := m.podsOn(ctx, name)
	if err != nil {
		return s
	}
	var kept []string
	for _, p := range pods {
		if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Labels["k8s-app"] == "cilium" || p.Status.PodIP == "" {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		kept = append(kept, p.Namespace+"/"+p.Name)
	}
	sort.Strings(kept)
	if len(kept) > 0 {
		s += fmt.Sprintf("; %s until restarted (%s)", output.Plural(len(kept), one, fmt.Sprintf(many, len(kept))), list(kept))
	}
	return s
}

func shortID(id string) string {
	if id == "" {
		return `""`
	}
	if len(id) > 16 {
		return id[:8] + "…"
	}
	return id
}
