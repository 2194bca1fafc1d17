package rollout

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Selection is the nodes a rollout works on, in rollout order and batches.
type Selection struct {
	// Nodes are all the nodes the selector matched, done or not.
	Nodes []corev1.Node
	// Todo are the nodes still to migrate, in order; Done the names of
	// those already migrated.
	Todo []Node
	Done []string
	// Batches split Todo as --batch or --max-unavailable say.
	Batches [][]Node
}

// Select lists the nodes matching selector and puts those still to migrate
// in order and in batches of the size batch and maxUnavailable give (see
// BatchSize). No node matching is a Precondition error.
func Select(ctx context.Context, cl *kube.Clients, selector string, batch int, maxUnavailable string) (*Selection, error) {
	nodeList, err := cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, cl.Classify(err, "listing nodes")
	}
	var nodes []Node
	for i := range nodeList.Items {
		n := &nodeList.Items[i]
		st, err := migrate.StateOf(n)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, Node{Name: n.Name, ControlPlane: kube.IsControlPlane(n), Phase: st.Phase})
	}
	if len(nodes) == 0 {
		return nil, errs.Newf(errs.Precondition, "check --selector and --context", "no node matches --selector %q", selector)
	}
	todo, done := Order(nodes)
	size, err := BatchSize(batch, maxUnavailable, len(nodes))
	if err != nil {
		return nil, err
	}
	return &Selection{Nodes: nodeList.Items, Todo: todo, Done: done, Batches: Batches(todo, size)}, nil
}

// SayAllDone writes the line for a rollout with no node left to migrate.
func (s *Selection) SayAllDone(w io.Writer) {
	fmt.Fprintf(w, "all %d nodes are migrated; next: kubectl cni-migrate finalize\n", len(s.Nodes))
}

// Script is the --dry-run=client bash script of the per-node steps of the
// nodes still to migrate, in rollout order. Cilium's namespace is
// opts.Namespace, else that of the agent DaemonSet, else kube-system.
func Script(ctx context.Context, cl *kube.Clients, sel *Selection, opts migrate.Options, kubectlFlags []string, command string) (string, error) {
	ns := opts.Namespace
	if ns == "" {
		ns = "kube-system"
		if l, err := cl.Kube.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel}); err == nil && len(l.Items) > 0 {
			ns = l.Items[0].Namespace
		}
	}
	return migrate.Script(opts, migrate.ScriptInput{Nodes: Names(sel.Todo), Namespace: ns, KubectlFlags: kubectlFlags, Command: command})
}

// Options are a dual-overlay rollout's settings.
type Options struct {
	// Migrate are the per-node steps' options (ResumeCommand is the
	// command that resumes the rollout).
	Migrate migrate.Options
	// PauseBetween is the wait between batches.
	PauseBetween time.Duration
	// Lock is who takes the rollout lock (not taken in a dry run).
	Lock Lock
	// OpenGate, when set, deploys the gate once the lock is held; the
	// Gate it returns is passed before the first batch and after each.
	OpenGate func(context.Context) (*Gate, error)
	// Out receives the progress and the summary for people (stderr).
	Out   io.Writer
	Style output.Style
}

// Run migrates the selected nodes batch by batch under the rollout lock,
// the nodes of a batch at once, and stops at the first failure: the nodes
// not yet begun are left untouched. It writes its progress and the summary
// for people to o.Out, and returns the summary (nil when it stopped before
// the first batch was planned: preflight, lock) and the first error.
func Run(ctx context.Context, cl *kube.Clients, cluster *detect.Cluster, sel *Selection, o Options) (*migrate.Summary, error) {
	errOut := o.Out
	todo, batches := sel.Todo, sel.Batches
	summary := &migrate.Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: "Rollout", Result: "ok", Nodes: []migrate.NodeResult{}}
	if o.Migrate.DryRun {
		summary.DryRun = "server"
	}
	if len(todo) == 0 {
		sel.SayAllDone(errOut)
		return summary, nil
	}

	check := migrate.New(cl, o.Migrate, migrate.NewProgress(errOut, false, o.Style, nil), nil)
	plan, err := check.Preflight(ctx, cluster, Names(todo))
	if err != nil {
		return nil, err
	}
	if plan.Namespace != "" {
		if err := requireBridge(ctx, cl, cluster, plan.Namespace, false); err != nil {
			return nil, err
		}
	}
	targets := map[string]migrate.Target{}
	for _, t := range plan.Targets {
		targets[t.Name] = t
	}

	runCtx := ctx
	if !o.Migrate.DryRun {
		held, release, err := o.Lock.Hold(ctx, cl, errOut)
		if err != nil {
			return nil, err
		}
		defer release()
		runCtx = held
	}

	fmt.Fprintf(errOut, "rollout: %d %s to migrate in %d %s: %s", len(todo), output.Plural(len(todo), "node", "nodes"),
		len(batches), output.Plural(len(batches), "batch", "batches"), Describe(batches))
	if len(sel.Done) > 0 {
		fmt.Fprintf(errOut, "; %d already done", len(sel.Done))
	}
	fmt.Fprintln(errOut)

	var firstErr error
	var gate *Gate
	if o.OpenGate != nil {
		gate, err = o.OpenGate(runCtx)
	}
	if err == nil {
		err = gate.Pass(runCtx, "before the first batch")
	}
	if err != nil {
		firstErr = err
	}
	for i, b := range batches {
		if firstErr != nil {
			for _, n := range b {
				summary.Nodes = append(summary.Nodes, notStarted(targets[n.Name]))
			}
			continue
		}
		if i > 0 && o.PauseBetween > 0 {
			fmt.Fprintf(errOut, "pausing %s before batch %d/%d\n", o.PauseBetween, i+1, len(batches))
			select {
			case <-time.After(o.PauseBetween):
			case <-runCtx.Done():
			}
		}
		if runCtx.Err() != nil {
			firstErr = stopped(runCtx, o.Migrate.ResumeCommand)
			for _, n := range b {
				summary.Nodes = append(summary.Nodes, notStarted(targets[n.Name]))
			}
			continue
		}
		fmt.Fprintf(errOut, "batch %d/%d: %s\n", i+1, len(batches), Describe([][]Node{b}))
		results, err := runBatch(runCtx, cl, o, plan, b, targets, len(batches) == len(todo))
		summary.Nodes = append(summary.Nodes, results...)
		if err == nil {
			err = gate.Pass(runCtx, fmt.Sprintf("after batch %d/%d", i+1, len(batches)))
		}
		if err != nil {
			firstErr = err
			if lost := LockLost(runCtx); lost != nil {
				firstErr = lost
			}
		}
	}
	if firstErr != nil {
		summary.ExitCode = errs.Code(firstErr)
		summary.Result = errs.Name(summary.ExitCode)
		summary.Resume = o.Migrate.ResumeCommand
	}
	migrate.PrintSummary(errOut, summary, o.Style)
	if firstErr == nil {
		fmt.Fprintln(errOut, "next: kubectl cni-migrate status, then kubectl cni-migrate finalize")
	}
	return summary, firstErr
}

// runBatch migrates the nodes of a batch at once, each with its own
// Migrator, and returns their results in batch order and the first error.
func runBatch(ctx context.Context, cl *kube.Clients, o Options, plan *migrate.Plan, b []Node, targets map[string]migrate.Target, spinner bool) ([]migrate.NodeResult, error) {
	errOut := o.Out
	results := make([]migrate.NodeResult, len(b))
	errors := make([]error, len(b))
	tty := spinner && output.IsTerminal(errOut)
	var wg sync.WaitGroup
	for i, n := range b {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := migrate.New(cl, o.Migrate, migrate.NewProgress(errOut, tty, o.Style, nil), nil)
			// The node's own plan: the rollout's, with this node alone (the
			// old CNI and the CNI config file included: verify and rollback
			// read them).
			one := *plan
			one.Targets = []migrate.Target{targets[n.Name]}
			s, err := m.Run(ctx, &one)
			if s != nil && len(s.Nodes) == 1 {
				results[i] = s.Nodes[0]
			} else {
				results[i] = notStarted(targets[n.Name])
			}
			errors[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errors {
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// stopped is the error of a rollout stopped between batches: the lost
// lock's, else Interrupted.
func stopped(ctx context.Context, resume string) error {
	if lost := LockLost(ctx); lost != nil {
		return lost
	}
	return errs.New(errs.Interrupted, "rollout interrupted between batches", "run "+resume+" to continue")
}

func notStarted(t migrate.Target) migrate.NodeResult {
	return migrate.NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase, Result: migrate.ResultNotStarted, Steps: []migrate.StepResult{}}
}
