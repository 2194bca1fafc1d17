package inplace

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/drain"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// owner is a controller whose pods were evicted, and how many of its pods
// ran before: its replacements must run again, on Cilium, before the next
// namespace begins.
type owner struct {
	uid  types.UID
	ref  string // Kind/name
	want int
}

func (r *Restarter) restartNamespace(ctx context.Context, plan *Plan, w *work) (res NamespaceResult, err error) {
	res = NamespaceResult{Name: w.ns, Pods: podNames(w.pods)}
	if ctx.Err() != nil {
		res.Result = ResultInterrupted
		err = r.interrupted(w.ns)
		res.Error = err.Error()
		return res, err
	}
	verb := "evicting"
	if r.opts.DisableEviction {
		verb = "deleting"
	}
	task := r.progress.Start(w.ns, StepRestart, fmt.Sprintf("%s %d %s", verb, len(w.pods), output.Plural(len(w.pods), "pod", "pods")))
	finish := func(result string, e error) (NamespaceResult, error) {
		res.Result = result
		if e != nil {
			res.Error = e.Error()
			switch result {
			case ResultInterrupted:
				res.Seconds = seconds(task.Stop("interrupted", ""))
			default:
				res.Seconds = seconds(task.Fail("failed"))
			}
		}
		return res, e
	}
	if len(w.blocked) > 0 {
		return finish(ResultFailed, errs.Newf(errs.DrainBlocked,
			"pass the flag it names (as for kubectl drain) or move those pods, then run the same command again; namespaces before it are done",
			"cannot restart the pods of namespace %s: %s", w.ns, list(w.blocked)))
	}

	// The controllers of the pods and how many pods each runs now (on any
	// node): that many must run again before the namespace is done.
	owners, err := r.owners(ctx, w)
	if err != nil {
		return finish(ResultFailed, err)
	}
	start := r.now()
	if err := r.evict(ctx, w); err != nil {
		if ctx.Err() != nil {
			return finish(ResultInterrupted, r.interrupted(w.ns))
		}
		return finish(ResultFailed, err)
	}
	evicted := map[types.UID]bool{}
	for _, p := range w.pods {
		evicted[p.UID] = true
	}
	detail := fmt.Sprintf("evicted %d %s", len(w.pods), output.Plural(len(w.pods), "pod", "pods"))
	if r.opts.DisableEviction {
		detail = fmt.Sprintf("deleted %d %s", len(w.pods), output.Plural(len(w.pods), "pod", "pods"))
	}
	if r.opts.DryRun {
		res.Detail = detail + " (server dry run)"
		res.Result = ResultDryRun
		res.Seconds = seconds(task.Done(res.Detail))
		return res, nil
	}
	if err := r.waitReplacements(ctx, plan, w.ns, owners, evicted, start); err != nil {
		if ctx.Err() != nil {
			return finish(ResultInterrupted, r.interrupted(w.ns))
		}
		return finish(ResultFailed, err)
	}
	detail += fmt.Sprintf("; their replacements run on %s", strings.Join(poolStrings(plan.Pool), ", "))
	if err := r.recordProgress(ctx, plan.Namespace, w.ns, fmt.Sprintf("restarted %d %s at %s", len(w.pods), output.Plural(len(w.pods), "pod", "pods"), r.now().UTC().Format(time.RFC3339))); err != nil {
		return finish(ResultFailed, err)
	}
	res.Detail = detail
	res.Result = ResultRestarted
	res.Seconds = seconds(task.Done(detail))
	return res, nil
}

func (r *Restarter) interrupted(ns string) error {
	fix := "run the same command again to continue"
	if r.opts.ResumeCommand != "" {
		fix = "run " + r.opts.ResumeCommand + " to continue"
	}
	return errs.Newf(errs.Interrupted, fix, "interrupted while restarting the pods of namespace %s; namespaces before it are done", ns)
}

// owners returns the controllers of w's pods with the number of their pods
// running now in the namespace. Pods without a controller (restarted only
// with --force) and Jobs' pods (whose replacements may finish) are not
// waited for.
func (r *Restarter) owners(ctx context.Context, w *work) ([]owner, error) {
	l, err := r.cl.Kube.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, r.cl.Classify(err, "listing the pods of namespace "+w.ns)
	}
	byUID := map[types.UID]*owner{}
	var order []types.UID
	for _, p := range w.pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind == "Job" {
			continue
		}
		if byUID[ref.UID] == nil {
			byUID[ref.UID] = &owner{uid: ref.UID, ref: ref.Kind + "/" + ref.Name}
			order = append(order, ref.UID)
		}
	}
	for i := range l.Items {
		p := &l.Items[i]
		if ref := metav1.GetControllerOf(p); ref != nil && byUID[ref.UID] != nil && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			byUID[ref.UID].want++
		}
	}
	out := make([]owner, 0, len(order))
	for _, uid := range order {
		out = append(out, *byUID[uid])
	}
	return out, nil
}

// evict evicts (or deletes) w's pods with kubectl's drain helper: each
// eviction is retried while a PodDisruptionBudget refuses it, until
// --timeout.
func (r *Restarter) evict(ctx context.Context, w *work) error {
	out := r.progress.Writer()
	// The helper polls each evicted pod every second: answer its polls
	// from one watch of the namespace's pods.
	client, stop := kube.WatchedPods(ctx, r.cl.Kube, w.ns, "")
	defer stop()
	h := &drain.Helper{
		Ctx:                ctx,
		Client:             client,
		Force:              r.opts.Force,
		GracePeriodSeconds: r.opts.GracePeriodSeconds,
		Timeout:            r.opts.Timeout,
		DeleteEmptyDirData: r.opts.DeleteEmptyDirData,
		DisableEviction:    r.opts.DisableEviction,
		Out:                output.NewDedupWriter(out),
		ErrOut:             output.NewDedupWriter(out),
	}
	if r.opts.DryRun {
		h.DryRunStrategy = cmdutil.DryRunServer
	}
	start := r.now()
	// The helper sleeps between refused evictions without looking at the
	// context: on an interrupt, stop waiting for it.
	errc := make(chan error, 1)
	go func() { errc <- h.DeleteOrEvictPods(w.pods) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "global timeout reached") || (r.opts.Timeout > 0 && r.now().Sub(start) >= r.opts.Timeout) {
		return r.blocked(ctx, w)
	}
	return r.cl.Classify(err, "evicting the pods of namespace "+w.ns)
}

// blocked builds the error of evictions past --timeout: the pods left and
// the PodDisruptionBudgets that hold them.
func (r *Restarter) blocked(ctx context.Context, w *work) error {
	var remaining []corev1.Pod
	for _, p := range w.pods {
		cur, err := r.cl.Kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil && cur.UID == p.UID {
			remaining = append(remaining, *cur)
		}
	}
	var pdbs []policyv1.PodDisruptionBudget
	if l, err := r.cl.Kube.PolicyV1().PodDisruptionBudgets(w.ns).List(ctx, metav1.ListOptions{}); err == nil {
		pdbs = l.Items
	}
	budgets := migrate.BlockingPDBs(remaining, pdbs)
	var names []string
	for _, p := range remaining {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	msg := fmt.Sprintf("restarting the pods of namespace %s did not finish within %s: %d %s left on the old network", w.ns, r.opts.Timeout, len(names), output.Plural(len(names), "pod", "pods"))
	if len(names) > 0 {
		msg += " (" + list(names) + ")"
	}
	fix := "raise --timeout (or lower --grace-period), then run the same command again"
	if len(budgets) > 0 {
		var held, refs []string
		for _, b := range budgets {
			held = append(held, fmt.Sprintf("PodDisruptionBudget %s/%s (%d %s allowed) holds %s", b.Namespace, b.Name, b.DisruptionsAllowed,
				output.Plural(int(b.DisruptionsAllowed), "disruption", "disruptions"), list(b.Pods)))
			refs = append(refs, b.Namespace+"/"+b.Name)
		}
		msg += "; " + strings.Join(held, "; ")
		fix = fmt.Sprintf("let %s allow a disruption (scale its workload up or relax it: kubectl -n %s edit pdb %s), then run the same command again",
			list(refs), budgets[0].Namespace, budgets[0].Name)
	}
	return errs.New(errs.DrainBlocked, msg, fix+"; namespaces before it are done")
}

// waitReplacements waits until no evicted pod is left, every controller
// runs as many pods as before, and none of the pods created since start has
// an address outside Cilium's pod CIDR.
func (r *Restarter) waitReplacements(ctx context.Context, plan *Plan, ns string, owners []owner, evicted map[types.UID]bool, start time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, r.opts.RestartTimeout)
	defer cancel()
	since := metav1.NewTime(start.Add(-time.Second))
	var state string
	for {
		l, err := r.cl.Kube.CoreV1().Pods(ns).List(wctx, metav1.ListOptions{})
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			return r.waitTimeout(ns, state)
		default:
			return r.cl.Classify(err, "watching the pods of namespace "+ns)
		}
		running := map[types.UID]int{}
		var left, pending []string
		for i := range l.Items {
			p := &l.Items[i]
			if evicted[p.UID] {
				left = append(left, p.Name)
				continue
			}
			if p.DeletionTimestamp != nil || p.Spec.HostNetwork {
				continue
			}
			if p.CreationTimestamp.Before(&since) {
				// Not a replacement; it counts for its controller if it runs.
			} else if p.Status.PodIP != "" && !migrate.InPool(p.Status.PodIP, plan.Pool) {
				return errs.Newf(errs.VerificationFailed,
					fmt.Sprintf("check that the Cilium agent on %s wrote its CNI config (kubectl -n %s logs -l %s -c cilium-agent) and that cilium-config has custom-cni-conf \"false\", then run the same command again", p.Spec.NodeName, plan.Namespace, migrate.AgentLabel),
					"pod %s/%s, restarted on node %s, got address %s outside Cilium's pod CIDR %s: new pods there still start on the old CNI", ns, p.Name, p.Spec.NodeName, p.Status.PodIP, strings.Join(poolStrings(plan.Pool), ", "))
			}
			if ref := metav1.GetControllerOf(p); ref != nil {
				if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
					running[ref.UID]++
				} else {
					pending = append(pending, p.Name+" ("+string(p.Status.Phase)+")")
				}
			}
		}
		var short []string
		for _, o := range owners {
			if running[o.uid] < o.want {
				short = append(short, fmt.Sprintf("%s runs %d of %d", o.ref, running[o.uid], o.want))
			}
		}
		if len(left) == 0 && len(short) == 0 {
			return nil
		}
		var parts []string
		if len(left) > 0 {
			sort.Strings(left)
			parts = append(parts, "still terminating: "+list(left))
		}
		if len(short) > 0 {
			parts = append(parts, list(short))
		}
		if len(pending) > 0 {
			sort.Strings(pending)
			parts = append(parts, "not running yet: "+list(pending))
		}
		state = strings.Join(parts, "; ")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wctx.Done():
			return r.waitTimeout(ns, state)
		case <-time.After(pollInterval):
		}
	}
}

func (r *Restarter) waitTimeout(ns, state string) error {
	return errs.Newf(errs.VerificationFailed,
		fmt.Sprintf("see kubectl -n %s get pods and kubectl -n %s describe pod for the replacements, raise --restart-timeout if they are only slow, then run the same command again", ns, ns),
		"the restarted pods of namespace %s are not all running again after %s: %s", ns, r.opts.RestartTimeout, state)
}
