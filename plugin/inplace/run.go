package inplace

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// work is one namespace's pods to restart.
type work struct {
	ns      string
	pods    []corev1.Pod
	blocked []string // why pods cannot be restarted (drain's refusals)
}

// Run restarts, namespace by namespace, every pod on the plan's nodes whose
// address is outside Cilium's pod CIDR, then marks the nodes done. It stops
// at the first namespace that fails.
func (r *Restarter) Run(ctx context.Context, plan *Plan) (*Summary, error) {
	s := &Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: Kind, Strategy: "in-place", Result: "ok",
		PodCIDRs: poolStrings(plan.Pool), Namespaces: []NamespaceResult{}, Nodes: []NodeResult{}}
	if r.opts.DryRun {
		s.DryRun = "server"
	}
	done, err := r.readProgress(ctx, plan.Namespace)
	if err != nil {
		return s, r.fail(s, err)
	}
	pods, err := r.listPods(ctx)
	if err != nil {
		return s, r.fail(s, err)
	}
	todo := r.classify(plan, pods)

	// Namespaces recorded earlier with nothing left are already done.
	left := map[string]bool{}
	for _, w := range todo {
		left[w.ns] = true
	}
	for _, ns := range sortedKeys(done) {
		if !left[ns] {
			s.Namespaces = append(s.Namespaces, NamespaceResult{Name: ns, Pods: []string{}, Result: ResultAlreadyDone, Detail: done[ns]})
		}
	}
	if len(todo) == 0 {
		r.progress.Printf("every pod on %s is on Cilium's pod CIDR %s; nothing to restart", describeNodes(plan.Nodes), strings.Join(s.PodCIDRs, ", "))
	} else {
		n := 0
		var parts []string
		for _, w := range todo {
			n += len(w.pods)
			parts = append(parts, fmt.Sprintf("%s (%d)", w.ns, len(w.pods)))
		}
		r.progress.Printf("%d %s on the old network in %d %s: %s", n, output.Plural(n, "pod", "pods"), len(todo), output.Plural(len(todo), "namespace", "namespaces"), list(parts))
	}

	var firstErr error
	for _, w := range todo {
		if firstErr != nil {
			s.Namespaces = append(s.Namespaces, NamespaceResult{Name: w.ns, Pods: podNames(w.pods), Result: ResultNotStarted})
			continue
		}
		res, err := r.restartNamespace(ctx, plan, w)
		s.Namespaces = append(s.Namespaces, res)
		if err != nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return s, r.fail(s, firstErr)
	}
	if err := r.markNodes(ctx, plan, s); err != nil {
		return s, r.fail(s, err)
	}
	return s, nil
}

func (r *Restarter) fail(s *Summary, err error) error {
	s.ExitCode = errs.Code(err)
	s.Result = errs.Name(s.ExitCode)
	if s.ExitCode != errs.Usage {
		s.Resume = r.opts.ResumeCommand
	}
	return err
}

// listPods lists every pod, a page at a time.
func (r *Restarter) listPods(ctx context.Context) ([]corev1.Pod, error) {
	var out []corev1.Pod
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := r.cl.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, r.cl.Classify(err, "listing pods")
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// onOldNetwork reports whether p is a running pod of the pod network whose
// address is outside Cilium's pod CIDR.
func onOldNetwork(p *corev1.Pod, pool []netip.Prefix) bool {
	if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Status.PodIP == "" {
		return false
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	return !migrate.InPool(p.Status.PodIP, pool)
}

// classify groups the pods on the old network by namespace (kube-system
// first, then by name) and notes, as a drain would, those that cannot be
// restarted without losing them.
func (r *Restarter) classify(plan *Plan, pods []corev1.Pod) []*work {
	target := map[string]bool{}
	for _, n := range plan.Nodes {
		target[n] = true
	}
	byNS := map[string]*work{}
	for i := range pods {
		p := pods[i]
		if !target[p.Spec.NodeName] || !onOldNetwork(&p, plan.Pool) {
			continue
		}
		w := byNS[p.Namespace]
		if w == nil {
			w = &work{ns: p.Namespace}
			byNS[p.Namespace] = w
		}
		w.pods = append(w.pods, p)
		id := p.Namespace + "/" + p.Name
		switch {
		case p.Annotations[corev1.MirrorPodAnnotationKey] != "":
			w.blocked = append(w.blocked, id+" is a static pod (restart it on its node: move its manifest out of the kubelet's manifest directory and back)")
		case metav1.GetControllerOf(&p) == nil && !r.opts.Force:
			w.blocked = append(w.blocked, id+" has no controller and would not come back (pass --force to restart it anyway: it is deleted)")
		case usesEmptyDir(&p) && !r.opts.DeleteEmptyDirData:
			w.blocked = append(w.blocked, id+" uses emptyDir volumes whose data a restart loses (pass --delete-emptydir-data)")
		}
	}
	var out []*work
	for _, w := range byNS {
		sort.Slice(w.pods, func(i, j int) bool { return w.pods[i].Name < w.pods[j].Name })
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].ns == metav1.NamespaceSystem) != (out[j].ns == metav1.NamespaceSystem) {
			return out[i].ns == metav1.NamespaceSystem
		}
		return out[i].ns < out[j].ns
	})
	return out
}

func usesEmptyDir(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}
