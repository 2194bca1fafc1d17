package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
)

const rolloutLong = `Migrate every node (or those matching --selector) with the per-node steps of
'kubectl cni-migrate node': nodes already under way first, then the workers,
then the control-plane nodes one at a time. --batch N (or --max-unavailable N
or P%) migrates that many workers at once; --pause-between waits between
batches. The rollout stops at the first failure: nodes not yet begun are left
untouched, and running the same command again resumes.

A Lease (kube-system/cni-migrate-rollout) keeps two rollouts from running at
once; a second one exits naming the holder. --force-unlock takes over a lease
whose holder is known to be dead (an expired one is taken over anyway).

--strategy in-place (the default when the installed Cilium owns every node's
CNI config while the old CNI is still there) restarts instead every pod of
the selected nodes whose address is not in Cilium's pod CIDR, namespace by
namespace (kube-system first): evictions as kubectl drain makes them
(PodDisruptionBudgets honoured until --timeout), then a wait until the
replacements run on Cilium (--restart-timeout) before the next namespace.
No node is cordoned, drained or rebooted. Progress is kept in the ConfigMap
cni-migrate-in-place in Cilium's namespace and in each node's
cni-migrate.io/phase; running the same command again resumes, and does
nothing once every pod is on Cilium.`

const rolloutExample = `  # Every node, two workers at a time, rebooting through ssh
  kubectl cni-migrate rollout --batch 2 --reboot-command 'ssh {{.Node}} sudo systemctl reboot'

  # Only one pool, 25% of its nodes at a time, a pause between batches
  kubectl cni-migrate rollout --selector pool=blue --max-unavailable 25% --pause-between 5m --reboot=skip

  # The one-shot method: restart every pod still on the old network
  kubectl cni-migrate rollout --strategy in-place --timeout 10m

  # The whole rollout as a bash script of kubectl commands
  kubectl cni-migrate rollout --reboot=skip --dry-run=client > rollout.sh`

type rolloutOptions struct {
	*common
	migrateFlags
	selector       string
	batch          int
	maxUnavailable string
	pauseBetween   time.Duration
	forceUnlock    bool
	output         string
	dryRun         cmdutil.DryRunStrategy
	resume         string
	commandLine    string
	kubectlFlags   []string
	gate           gateFlags
	cmd            *cobra.Command
}

func newCmdRollout(c *common) *cobra.Command {
	o := &rolloutOptions{common: c}
	cmd := &cobra.Command{
		Use:     "rollout",
		Short:   "Migrate every node in batches, workers first and the control plane last",
		Long:    rolloutLong,
		Example: rolloutExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.migrateFlags.add(cmd)
	o.gate.add(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&o.selector, "selector", "l", "", "migrate only the nodes matching this label selector")
	fl.IntVar(&o.batch, "batch", 0, "workers migrated at once (default 1)")
	fl.StringVar(&o.maxUnavailable, "max-unavailable", "", "workers migrated at once, as a number or a percentage of the selected nodes")
	fl.DurationVar(&o.pauseBetween, "pause-between", 0, "wait this long between batches")
	fl.BoolVar(&o.forceUnlock, "force-unlock", false, "take the rollout lock even if another run holds it (only when that run is dead)")
	fl.StringVarP(&o.output, "output", "o", "", "print a summary on stdout: json or yaml")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *rolloutOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, oneLineErr(err), "use --dry-run=none, client or server")
	}
	if err := o.migrateFlags.complete(cmd, o.namespaceFlag(cmd), o.dryRun == cmdutil.DryRunServer); err != nil {
		return err
	}
	o.cmd = cmd
	o.commandLine, o.resume, o.kubectlFlags = commandLines(cmd, nil)
	o.opts.ResumeCommand = o.resume
	return nil
}

func (o *rolloutOptions) Validate() error {
	if err := proposal.ValidateStrategy(o.strategy); err != nil {
		return err
	}
	if o.strategy == proposal.InPlace && o.dryRun == cmdutil.DryRunClient {
		return errs.New(errs.Usage, "--dry-run=client prints the dual-overlay steps; the in-place method has no script", "use --dry-run=server to see what would be evicted")
	}
	if o.strategy != "" {
		if err := strategyFlags(o.cmd, o.strategy, "--strategy "+o.strategy); err != nil {
			return err
		}
	}
	if _, err := labels.Parse(o.selector); err != nil {
		return errs.Wrap(errs.Usage, err, fmt.Sprintf("--selector %q is not a label selector", o.selector), "use the form key=value,other!=x")
	}
	if _, err := rollout.BatchSize(o.batch, o.maxUnavailable, 1); err != nil {
		return err
	}
	if o.pauseBetween < 0 {
		return errs.New(errs.Usage, "--pause-between is negative", "pass a duration such as 5m")
	}
	if err := output.ValidateFormat(o.output); err != nil {
		return err
	}
	if o.output != "" && o.dryRun == cmdutil.DryRunClient {
		return errs.New(errs.Usage, "-o does not apply to --dry-run=client, which prints a script", "drop -o, or use --dry-run=server")
	}
	if err := o.gate.validate(); err != nil {
		return err
	}
	if o.gate.gate != "" && o.dryRun != cmdutil.DryRunNone {
		return errs.New(errs.Usage, "--gate does not apply to a dry run: nothing changes for it to check", "drop --gate, or --dry-run")
	}
	if o.gate.gate != "" && o.strategy == proposal.InPlace {
		return errs.New(errs.Usage, "--gate applies to the node-by-node rollout, not --strategy in-place", "drop --gate, or run connectivity before and after")
	}
	return o.opts.Validate()
}

func (o *rolloutOptions) Run(ctx context.Context) error {
	errOut := o.streams.ErrOut
	style := o.errStyle()
	cl, err := o.clients()
	if err != nil {
		return err
	}
	nodeList, err := cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: o.selector})
	if err != nil {
		return cl.Classify(err, "listing nodes")
	}
	var nodes []rollout.Node
	for i := range nodeList.Items {
		n := &nodeList.Items[i]
		st, err := migrate.StateOf(n)
		if err != nil {
			return err
		}
		_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
		_, master := n.Labels["node-role.kubernetes.io/master"]
		nodes = append(nodes, rollout.Node{Name: n.Name, ControlPlane: cp || master, Phase: st.Phase})
	}
	if len(nodes) == 0 {
		return errs.Newf(errs.Precondition, "check --selector and --context", "no node matches --selector %q", o.selector)
	}
	todo, done := rollout.Order(nodes)
	size, _ := rollout.BatchSize(o.batch, o.maxUnavailable, len(nodes))
	batches := rollout.Batches(todo, size)

	if o.dryRun == cmdutil.DryRunClient {
		ns := o.opts.Namespace
		if ns == "" {
			ns = "kube-system"
			if l, err := cl.Kube.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel}); err == nil && len(l.Items) > 0 {
				ns = l.Items[0].Namespace
			}
		}
		if len(todo) == 0 {
			fmt.Fprintf(errOut, "all %d nodes are migrated; next: kubectl cni-migrate finalize\n", len(nodes))
			return nil
		}
		script, err := migrate.Script(o.opts, migrate.ScriptInput{Nodes: rollout.Names(todo), Namespace: ns, KubectlFlags: o.kubectlFlags, Command: o.commandLine})
		if err != nil {
			return err
		}
		_, err = io.WriteString(o.streams.Out, script)
		return err
	}

	cluster, err := detectCluster(ctx, cl)
	if err != nil {
		return err
	}
	strategy, why := resolveStrategy(o.strategy, cluster)
	if err := strategyFlags(o.cmd, strategy, why); err != nil {
		return err
	}
	if strategy == proposal.InPlace {
		return o.runInPlace(ctx, cl, cluster, nodeList.Items)
	}

	summary := &migrate.Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: "Rollout", Result: "ok", Nodes: []migrate.NodeResult{}}
	if o.opts.DryRun {
		summary.DryRun = "server"
	}
	if len(todo) == 0 {
		fmt.Fprintf(errOut, "all %d nodes are migrated; next: kubectl cni-migrate finalize\n", len(nodes))
		return o.printSummary(summary, nil)
	}

	check := migrate.New(cl, o.opts, migrate.NewProgress(errOut, false, style, nil), nil)
	plan, err := check.Preflight(ctx, cluster, rollout.Names(todo))
	if err != nil {
		return err
	}
	targets := map[string]migrate.Target{}
	for _, t := range plan.Targets {
		targets[t.Name] = t
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !o.opts.DryRun {
		held, err := lock.Acquire(ctx, cl.Kube, lock.DefaultNamespace, lock.DefaultName, identity(), lock.DefaultDuration, o.forceUnlock, nil)
		if err != nil {
			return cl.Classify(err, "taking the rollout lock")
		}
		if held.TookOver != "" {
			fmt.Fprintf(errOut, "took over the rollout lock from %s\n", held.TookOver)
		}
		go held.KeepAlive(runCtx, func(err error) { cancel(err) })
		defer func() {
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer rcancel()
			_ = held.Release(rctx)
		}()
	}

	fmt.Fprintf(errOut, "rollout: %d %s to migrate in %d %s: %s", len(todo), output.Plural(len(todo), "node", "nodes"),
		len(batches), output.Plural(len(batches), "batch", "batches"), rollout.Describe(batches))
	if len(done) > 0 {
		fmt.Fprintf(errOut, "; %d already done", len(done))
	}
	fmt.Fprintln(errOut)

	var firstErr error
	mon, err := o.gate.open(runCtx, o.common, cl)
	if err == nil {
		err = o.gate.pass(runCtx, o.common, mon, "before the first batch")
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
		if i > 0 && o.pauseBetween > 0 {
			fmt.Fprintf(errOut, "pausing %s before batch %d/%d\n", o.pauseBetween, i+1, len(batches))
			select {
			case <-time.After(o.pauseBetween):
			case <-runCtx.Done():
			}
		}
		if runCtx.Err() != nil {
			firstErr = o.stopped(runCtx)
			for _, n := range b {
				summary.Nodes = append(summary.Nodes, notStarted(targets[n.Name]))
			}
			continue
		}
		fmt.Fprintf(errOut, "batch %d/%d: %s\n", i+1, len(batches), rollout.Describe([][]rollout.Node{b}))
		results, err := o.runBatch(runCtx, cl, plan, b, targets, len(batches) == len(todo))
		summary.Nodes = append(summary.Nodes, results...)
		if err == nil {
			err = o.gate.pass(runCtx, o.common, mon, fmt.Sprintf("after batch %d/%d", i+1, len(batches)))
		}
		if err != nil {
			firstErr = err
			if cause := context.Cause(runCtx); cause != nil && errs.Code(cause) == errs.Locked {
				firstErr = cause
			}
		}
	}
	if firstErr != nil {
		summary.ExitCode = errs.Code(firstErr)
		summary.Result = errs.Name(summary.ExitCode)
		summary.Resume = o.resume
	}
	migrate.PrintSummary(errOut, summary, style)
	if firstErr == nil {
		fmt.Fprintln(errOut, "next: kubectl cni-migrate status, then kubectl cni-migrate finalize")
	}
	return o.printSummary(summary, firstErr)
}

// runBatch migrates the nodes of a batch at once, each with its own
// Migrator, and returns their results in batch order and the first error.
func (o *rolloutOptions) runBatch(ctx context.Context, cl *kube.Clients, plan *migrate.Plan, b []rollout.Node, targets map[string]migrate.Target, spinner bool) ([]migrate.NodeResult, error) {
	errOut := o.streams.ErrOut
	results := make([]migrate.NodeResult, len(b))
	errors := make([]error, len(b))
	tty := spinner && output.IsTerminal(errOut)
	var wg sync.WaitGroup
	for i, n := range b {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := migrate.New(cl, o.opts, migrate.NewProgress(errOut, tty, o.errStyle(), nil), nil)
			s, err := m.Run(ctx, &migrate.Plan{Targets: []migrate.Target{targets[n.Name]}, Namespace: plan.Namespace, Pool: plan.Pool, NodeConfig: plan.NodeConfig})
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

func (o *rolloutOptions) stopped(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && errs.Code(cause) == errs.Locked {
		return cause
	}
	return errs.New(errs.Interrupted, "rollout interrupted between batches", "run "+o.resume+" to continue")
}

func (o *rolloutOptions) printSummary(s *migrate.Summary, runErr error) error {
	if o.output != "" {
		if err := printSummary(o.streams.Out, s, o.output); err != nil && runErr == nil {
			return err
		}
	}
	return runErr
}

func notStarted(t migrate.Target) migrate.NodeResult {
	return migrate.NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase, Result: migrate.ResultNotStarted, Steps: []migrate.StepResult{}}
}

// identity names this run in the rollout lock: user@host (pid N).
func identity() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s (pid %d)", name, host, os.Getpid())
}
