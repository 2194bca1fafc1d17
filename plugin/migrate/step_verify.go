package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// FreshAgentWait bounds how long verify waits for the Cilium agent's
// Ready to be as recent as the node's (see waitAgentAfterReboot) before it
// takes the agent's Ready as it is.
const FreshAgentWait = time.Minute

// waitAgentAfterReboot waits until the node's Cilium agent is Ready in
// this boot. After a reboot the agent pod still shows the Ready of its
// previous boot until the kubelet reports on it again, and a probe pod
// created then waits in cilium-cni for an agent that is not up yet (found
// on the real datapath: the CNI ADD gives up after 30 s, then the kubelet
// retries, a minute per node). The reboot step recorded the agent's
// container ID (AnnotationAgentContainer): a Ready agent in another
// container is this boot's. Without that record (a node whose reboot step
// an older plugin ran, or no Ready agent then), a node that went NotReady
// over its reboot has been Ready again since its Ready condition's last
// transition, so an agent Ready since then is this boot's; a node that
// never went NotReady has an old transition, and any Ready agent passes;
// an agent that stays Ready from before a later transition of the node (a
// flap) passes after FreshAgentWait.
func (m *Migrator) waitAgentAfterReboot(ctx context.Context, ns string, n *corev1.Node, st State) error {
	name := n.Name
	if m.opts.Reboot != RebootSkip {
		if st.AgentContainer != "" {
			_, err := m.waitAgent(ctx, ns, name, nil, time.Time{}, st.AgentContainer)
			return err
		}
		if since := readyTransition(n); !since.IsZero() {
			fctx, cancel := context.WithTimeout(ctx, m.freshAgentWait)
			_, err := m.waitAgent(fctx, ns, name, nil, since, "")
			cancel()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	_, err := m.waitAgent(ctx, ns, name, nil, time.Time{}, "")
	return err
}

// readyTransition is when the node's Ready condition last changed (zero if
// it has none).
func readyTransition(n *corev1.Node) time.Time {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func (m *Migrator) verify(ctx context.Context, plan *Plan, name string) (string, error) {
	t0 := time.Now()
	if !m.opts.DryRun {
		// A node whose Ready changed since the reboot step (or, with
		// --reboot=skip, during the steps before) is waited for.
		n, err := m.waitNodeReady(ctx, name, m.opts.RebootTimeout)
		if err != nil {
			return "", err
		}
		st, err := StateOf(n)
		if err != nil {
			return "", err
		}
		if err := m.waitAgentAfterReboot(ctx, plan.Namespace, n, st); err != nil {
			return "", err
		}
	}
	agentWait := time.Since(t0)
	var oldPod string
	if !m.opts.DryRun {
		var err error
		if oldPod, err = m.waitOldCNIPod(ctx, plan, name); err != nil {
			return "", err
		}
	}
	oldWait := time.Since(t0) - agentWait
	target, probeOld, err := m.oldNetwork(ctx, plan, name)
	if err != nil {
		return "", err
	}
	job := ProbeJob(plan.Namespace, name, m.opts.ProbeImage, m.opts.ProbeTimeout, target.Addr)
	jobs := m.cl.Kube.BatchV1().Jobs(plan.Namespace)
	if !m.opts.DryRun {
		if err := m.deleteJob(ctx, plan.Namespace, job.Name, true); err != nil {
			return "", err
		}
	}
	wctx, cancel := writeCtx(ctx)
	created, err := jobs.Create(wctx, job, metav1.CreateOptions{DryRun: m.dryRun(), FieldManager: nodeconfig.FieldManager})
	cancel()
	if err != nil && !(m.opts.DryRun && apierrors.IsAlreadyExists(err)) {
		return "", m.cl.Classify(err, "creating probe Job "+plan.Namespace+"/"+job.Name)
	}
	if m.opts.DryRun {
		return m.dryNote("would run probe Job " + plan.Namespace + "/" + job.Name), m.record(ctx, name, StepVerify, nil)
	}
	check, where, err := m.probeExpect(ctx, plan, name)
	if err != nil {
		return "", err
	}
	probeStart := time.Now()
	ip, addrAt, err := m.waitProbe(ctx, plan, name, created, check, target, probeOld)
	if err != nil {
		return "", err
	}
	if err := m.deleteJob(ctx, plan.Namespace, job.Name, false); err != nil {
		return "", err
	}
	if err := m.stillReady(ctx, name); err != nil {
		return "", err
	}
	// How the time went: the wait for this boot's agent, the old CNI's
	// pod, then the probe.
	detail := fmt.Sprintf("agent Ready after %s; ", agentWait.Round(100*time.Millisecond))
	if oldPod != "" {
		detail += fmt.Sprintf("old CNI's pod %s Ready %s later; ", oldPod, oldWait.Round(100*time.Millisecond))
	}
	reached := "the API server"
	if probeOld {
		reached += " and the old network (" + target.String() + ")"
	}
	detail += fmt.Sprintf("probe pod got %s (%s) after %s and reached %s %s later",
		ip, where, addrAt.Sub(probeStart).Round(100*time.Millisecond), reached, time.Since(addrAt).Round(100*time.Millisecond))
	return detail, m.record(ctx, name, StepVerify, nil)
}

// addrCheck returns the error for a probe address the verification does
// not accept (nil when it does); keep says what is left for the user.
type addrCheck func(ip, keep string) error

// probeExpect says which addresses the probe pod on a node may get: one in
// Cilium's pool when migrating; when rolling back, one outside Cilium's
// pool and in the node's spec.podCIDRs (the range the old CNI allocates
// from: flannel's with the Kubernetes subnet manager). where describes the
// accepted range for the step's detail.
func (m *Migrator) probeExpect(ctx context.Context, plan *Plan, name string) (check addrCheck, where string, err error) {
	pool := poolString(plan.Pool)
	if !m.rollback() {
		return func(ip, keep string) error {
			if InPool(ip, plan.Pool) {
				return nil
			}
			return errs.Newf(errs.VerificationFailed,
				fmt.Sprintf("%s; check that CiliumNodeConfig %s selects the node and that its agent restarted after the label, then run the same command again", keep, plan.NodeConfig),
				"the probe pod on node %s got address %s, outside Cilium's pod CIDR %s: new pods there still use the old CNI", name, ip, pool)
		}, "in " + pool, nil
	}
	n, _, err := m.getNode(ctx, name)
	if err != nil {
		return nil, "", err
	}
	var cidrs []netip.Prefix
	for _, c := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			cidrs = append(cidrs, p.Masked())
		}
	}
	where = "outside Cilium's pod CIDR " + pool
	if len(cidrs) > 0 {
		where = fmt.Sprintf("in %s, the node's podCIDR, outside Cilium's %s", poolString(cidrs), pool)
	}
	return func(ip, keep string) error {
		if InPool(ip, plan.Pool) {
			return errs.Newf(errs.VerificationFailed,
				fmt.Sprintf("%s; on the node, remove %s and restore the old CNI's config as printed at the reboot step (docs/rollback.md), then run the same command again", keep, plan.CNIConfFile),
				"the probe pod on node %s got address %s, inside Cilium's pod CIDR %s: new pods there still use Cilium's CNI config", name, ip, pool)
		}
		if len(cidrs) > 0 && !InPool(ip, cidrs) {
			return errs.Newf(errs.VerificationFailed,
				fmt.Sprintf("%s; check which CNI config the node's container runtime uses (the first file in %s), then run the same command again", keep, path.Dir(plan.CNIConfFile)),
				"the probe pod on node %s got address %s, outside the node's podCIDR %s, the old CNI's range", name, ip, poolString(cidrs))
		}
		return nil
	}, where, nil
}

// deleteJob deletes a probe Job and its pods; with wait it watches until
// the Job is gone, so that one of the same name can be created.
func (m *Migrator) deleteJob(ctx context.Context, ns, name string, wait bool) error {
	jobs := m.cl.Kube.BatchV1().Jobs(ns)
	wctx, cancel := writeCtx(ctx)
	err := jobs.Delete(wctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
	cancel()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return m.cl.Classify(err, "deleting probe Job "+ns+"/"+name)
	}
	if !wait {
		return nil
	}
	gctx, gcancel := context.WithTimeout(ctx, time.Minute)
	defer gcancel()
	err = watchUntil(gctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name},
		func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
			l, err := jobs.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			if len(l.Items) == 0 {
				return []runtime.Object{&batchv1.Job{}}, l.ResourceVersion, nil
			}
			return nil, l.ResourceVersion, nil
		}, jobs.Watch,
		func(e watch.Event) (bool, error) {
			j, ok := e.Object.(*batchv1.Job)
			return ok && (e.Type == watch.Deleted || j.Name == ""), nil
		})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return m.cl.Classify(err, "waiting for the old probe Job "+ns+"/"+name+" to go")
	}
	return nil
}

// errProbe carries a verification failure out of the watch condition.
type errProbe struct{ err error }

func (e errProbe) Error() string { return e.err.Error() }

// waitProbe watches the probe Job's pod until it succeeds, and checks its
// address with check as soon as it has one.
// It also returns when the pod's address was first seen.
func (m *Migrator) waitProbe(ctx context.Context, plan *Plan, node string, job *batchv1.Job, check addrCheck, old OldNetwork, probeOld bool) (string, time.Time, error) {
	ns := plan.Namespace
	wctx, cancel := context.WithTimeout(ctx, m.opts.ProbeTimeout)
	defer cancel()
	pods := m.cl.Kube.CoreV1().Pods(ns)
	var last *corev1.Pod
	var ip string
	var addrAt time.Time
	keep := fmt.Sprintf("the node stays cordoned; see kubectl -n %s logs job/%s and kubectl -n %s describe job %s", ns, job.Name, ns, job.Name)
	err := watchUntil(wctx, metav1.ListOptions{LabelSelector: JobNameLabel + "=" + job.Name}, podLister(pods.List), pods.Watch, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || e.Type == watch.Deleted || !ownedBy(p, job.UID) {
			return false, nil
		}
		last = p
		if p.Status.PodIP != "" {
			if ip == "" {
				addrAt = time.Now()
			}
			ip = p.Status.PodIP
			if err := check(ip, keep); err != nil {
				return false, errProbe{err}
			}
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			if ip == "" {
				return false, errProbe{errs.Newf(errs.VerificationFailed, keep,
					"the probe pod on node %s finished without reporting an address", node)}
			}
			return true, nil
		case corev1.PodFailed:
			return false, errProbe{errs.Newf(errs.VerificationFailed, keep,
				"the probe pod %s on node %s (address %s) failed: %s: it could not reach the API server's /healthz through the Service network", p.Name, node, ip, probeFailure(p))}
		}
		return false, nil
	})
	var pe errProbe
	switch {
	case err == nil:
		return ip, addrAt, nil
	case errors.As(err, &pe):
		return "", addrAt, pe.err
	case ctx.Err() != nil:
		return "", addrAt, ctx.Err()
	case wctx.Err() != nil:
		state := "its pod was not created"
		if last != nil {
			state = "pod " + last.Name + " is " + podState(last)
			if probeOld && last.Status.Phase == corev1.PodRunning {
				state += fmt.Sprintf(" (it retries the old network, %s, until it answers: the old CNI's overlay on node %s is not back; check the old CNI's pod there)", old, node)
			}
		}
		return "", addrAt, errs.Newf(errs.VerificationFailed, keep+" (is --probe-image "+m.opts.ProbeImage+" pullable?)",
			"the probe on node %s did not finish within %s: %s", node, m.opts.ProbeTimeout, state)
	}
	return "", addrAt, m.cl.Classify(err, "watching the probe pod on node "+node)
}

func ownedBy(p *corev1.Pod, uid types.UID) bool {
	for _, o := range p.OwnerReferences {
		if o.UID == uid {
			return true
		}
	}
	return false
}
