package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
)

const rolloutLong = `Migrate every node (or those matching --selector) with the per-node steps of
'kubectl cni-migrate node': nodes already under way first, then the workers,
then the control-plane nodes one at a time. --batch N (or --max-unavailable N
or P%) migrates that many workers at once; --pause-between waits between
batches. The rollout stops at the first failure: nodes not yet begun are left
untouched, and running the same command again resumes.

The migration lock, a Lease (kube-system/cni-migrate-rollout) that node and
rollback take too, keeps two runs from changing the migration at once: a
second one exits 18 naming the holder, and a run that loses the lock to
another stops before its next change. --force-unlock takes over a lease whose
holder is known to be dead; an expired one, or one whose holder ran on this
host and was killed, is taken over anyway.

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
	addForceUnlock(cmd, &o.forceUnlock)
	fl.StringVarP(&o.output, "output", "o", "", "print a summary on stdout: json or yaml")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *rolloutOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, errs.OneLine(err.Error()), "use --dry-run=none, client or server")
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
	if err := o.validateStrategy(o.cmd, o.dryRun); err != nil {
		return err
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
	if err := validateOutputAndGate(o.output, o.dryRun, &o.gate, o.strategy, "node-by-node rollout"); err != nil {
		return err
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
	sel, err := rollout.Select(ctx, cl, o.selector, o.batch, o.maxUnavailable)
	if err != nil {
		return err
	}
	if o.dryRun == cmdutil.DryRunClient {
		if len(sel.Todo) == 0 {
			sel.SayAllDone(errOut)
			return nil
		}
		script, err := rollout.Script(ctx, cl, sel, o.opts, o.kubectlFlags, o.commandLine)
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
	lk := migrationLock("rollout", o.forceUnlock)
	if strategy == proposal.InPlace {
		summary, err := rollout.RunInPlace(ctx, cl, cluster, sel, o.inPlaceOptions(), lk, errOut, style)
		return printResult(o.streams.Out, o.output, summary, err)
	}
	summary, err := rollout.Run(ctx, cl, cluster, sel, rollout.Options{
		Migrate:      o.opts,
		PauseBetween: o.pauseBetween,
		Lock:         lk,
		OpenGate:     func(ctx context.Context) (*rollout.Gate, error) { return o.gate.open(ctx, o.common, cl) },
		Out:          errOut,
		Style:        style,
	})
	return printResult(o.streams.Out, o.output, summary, err)
}

// migrationLock is the migration lock as command takes it: named
// user@host (pid N, command) in the Lease, and a holder that ran on this
// host and whose process is gone (killed outright) taken over at once.
func migrationLock(command string, force bool) rollout.Lock {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return rollout.Lock{
		Holder: lock.Identity(name, host, os.Getpid(), command),
		Force:  force,
		Dead:   lock.DeadHere(host, os.Getpid(), lock.ProcessGone),
	}
}

// addForceUnlock adds --force-unlock.
func addForceUnlock(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "force-unlock", false, "take the migration lock even if another run holds it (only when that run is dead)")
}
