package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/drain"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

func (m *Migrator) drainHelper(ctx context.Context) *drain.Helper {
	// The helper repeats "evicting pod" and "will retry after 5s" for every
	// attempt; show each line once.
	w := output.NewDedupWriter(m.progress.Writer())
	h := &drain.Helper{
		Ctx:                 ctx,
		Client:              m.cl.Kube,
		Force:               m.opts.Force,
		GracePeriodSeconds:  m.opts.GracePeriodSeconds,
		IgnoreAllDaemonSets: true,
		Timeout:             m.opts.DrainTimeout,
		DeleteEmptyDirData:  m.opts.DeleteEmptyDirData,
		DisableEviction:     m.opts.DisableEviction,
		Out:                 w,
		ErrOut:              w,
	}
	if m.opts.DryRun {
		h.DryRunStrategy = cmdutil.DryRunServer
	}
	return h
}

func (m *Migrator) drain(ctx context.Context, name string) (string, error) {
	h := m.drainHelper(ctx)
	// The helper polls each evicted pod every second: answer its polls
	// from one watch of the node's pods.
	client, stop := kube.WatchedPods(ctx, m.cl.Kube, "", "spec.nodeName="+name)
	defer stop()
	h.Client = client
	list, listErrs := h.GetPodsForDeletion(name)
	if len(listErrs) > 0 {
		return "", m.drainListError(name, listErrs)
	}
	if w := list.Warnings(); w != "" {
		m.progress.Printf("%s", w)
	}
	pods := list.Pods()
	verb := "evicted"
	if m.opts.DisableEviction {
		verb = "deleted"
	}
	if len(pods) > 0 {
		start := m.now()
		// The helper sleeps 5s between refused evictions without looking at
		// the context: on an interrupt, stop waiting for it (its goroutines
		// end on their own after the sleep).
		done := make(chan error, 1)
		go func() { done <- h.DeleteOrEvictPods(pods) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			elapsed := m.now().Sub(start)
			if strings.Contains(err.Error(), "global timeout reached") || (m.opts.DrainTimeout > 0 && elapsed >= m.opts.DrainTimeout) {
				return "", m.drainBlocked(ctx, name)
			}
			return "", m.cl.Classify(err, "draining node "+name)
		}
	}
	detail := fmt.Sprintf("%s %d %s", verb, len(pods), output.Plural(len(pods), "pod", "pods"))
	if len(pods) == 0 {
		detail = "no pods to move"
	}
	return m.dryNote(detail), m.record(ctx, name, StepDrain, nil)
}

// drainListError turns the drain helper's refusals (pods with local
// storage, pods without a controller) into one line.
func (m *Migrator) drainListError(name string, list []error) error {
	var msgs []string
	for _, e := range list {
		var status apierrors.APIStatus
		if errors.As(e, &status) {
			return m.cl.Classify(e, "listing the pods on node "+name)
		}
		msgs = append(msgs, errs.OneLine(e.Error()))
	}
	return errs.Newf(errs.DrainBlocked, "pass the flag it names (as for kubectl drain) or move those pods, then run the same command again; the node stays cordoned",
		"cannot drain node %s: %s", name, strings.Join(msgs, "; "))
}

// drainBlocked builds the error of a drain past its timeout: the pods left
// and the PodDisruptionBudgets that select them.
func (m *Migrator) drainBlocked(ctx context.Context, name string) error {
	h := m.drainHelper(ctx)
	list, listErrs := h.GetPodsForDeletion(name)
	var remaining []corev1.Pod
	if len(listErrs) == 0 {
		remaining = list.Pods()
	}
	var pdbs []policyv1.PodDisruptionBudget
	seenNS := map[string]bool{}
	for _, p := range remaining {
		if seenNS[p.Namespace] {
			continue
		}
		seenNS[p.Namespace] = true
		l, err := m.cl.Kube.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue // the error is about the drain; the budgets are a hint
		}
		pdbs = append(pdbs, l.Items...)
	}
	return DrainBlockedError(name, m.opts.DrainTimeout, remaining, BlockingPDBs(remaining, pdbs))
}
