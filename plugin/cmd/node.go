package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/inplace"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
)

const nodeExample = `  # Migrate one worker; stops with exit code 14 and instructions when the
  # node must be rebooted by hand, and continues when run again afterwards
  kubectl cni-migrate node worker-1

  # Reboot through ssh and wait for the node to come back ({{.Node}} is
  # always one argument; {{.InternalIP}} is the node's address)
  kubectl cni-migrate node worker-1 worker-2 --reboot-command 'ssh {{.Node}} sudo systemctl reboot'

  # The same steps as a bash script of kubectl commands, to review or run by hand
  kubectl cni-migrate node worker-1 --reboot=skip --dry-run=client > migrate-worker-1.sh

  # Every write sent with server-side dry run; a JSON summary on stdout
  kubectl cni-migrate node worker-1 --dry-run=server -o json`

const nodeLong = `Run the per-node steps of Cilium's dual-overlay migration on the named nodes,
one node after the other:

  1. cordon (remembering whether the node was cordoned before)
  2. drain (DaemonSet pods stay; PodDisruptionBudgets are honoured)
  3. label the node so that the CiliumNodeConfig selects it
  4. delete the node's Cilium agent pod and wait until its replacement is Ready
  5. reboot (--reboot: command, manual or skip); before the command runs, the
     pods left on the node (not on the host's network) are marked NotReady,
     so their Services stop sending them connections first
  6. verify: a probe pod pinned to the node gets an address in Cilium's pod
     CIDR and reaches the API server
  7. uncordon (unless it was cordoned before), and record the node as done

Each step records its phase on the node (annotations cni-migrate.io/phase and
cni-migrate.io/phase-time) before the next begins: after a failure, Ctrl-C or
a manual reboot, the same command continues where it stopped. A node already
done is left alone. Workers go first; a control-plane node is refused while
workers are not migrated (--allow-control-plane overrides).

Before anything changes it checks that the nodes exist, that Cilium runs in
migration mode (values-initial.yaml) and that the CiliumNodeConfig exists and
selects the label, and that you have every permission the steps need (exit 8
naming the first missing one). While it changes the cluster it holds the
migration lock (the Lease kube-system/cni-migrate-rollout, as rollout does):
a second node, rollback or rollout run exits 18 naming the holder.
Progress goes to stderr; -o json|yaml puts a summary on
stdout. Exit codes: 10 drain blocked, 11 agent not Ready, 12 verification
failed, 13 reboot failed, 14 waiting for a manual reboot, 15 precondition,
18 locked, 130 interrupted (see docs/exit-codes.md).

With --strategy in-place (taken by default when the installed Cilium owns
every node's CNI config while the old CNI is still there: values --strategy
in-place), nothing of the above runs: the pods on the named nodes whose
address is not in Cilium's pod CIDR are evicted namespace by namespace, as a
drain would (PodDisruptionBudgets honoured; --timeout, --grace-period,
--force, --delete-emptydir-data, --disable-eviction apply), each namespace
waiting until the replacements run on Cilium (--restart-timeout), and the
nodes are recorded as done.`

// migrateFlags are the per-node step flags, shared by node and rollout (and
// by rollback, without --allow-control-plane).
type migrateFlags struct {
	opts          migrate.Options
	reboot        string
	rebootCommand string
	// strategy is --strategy ("" = the installed Cilium's); restartTimeout
	// bounds the in-place method's wait for restarted pods.
	strategy       string
	restartTimeout time.Duration
}

func (f *migrateFlags) add(cmd *cobra.Command) {
	f.addStepFlags(cmd)
	cmd.Flags().BoolVar(&f.opts.AllowControlPlane, "allow-control-plane", false, "migrate a control-plane node although workers are not migrated yet")
	addStrategyFlag(cmd, &f.strategy)
	cmd.Flags().DurationVar(&f.restartTimeout, "restart-timeout", inplace.DefaultRestartTimeout, "in-place: how long the pods restarted in a namespace may take to run again on Cilium")
}

// addStepFlags adds the flags of the steps themselves: everything but the
// ordering of nodes.
func (f *migrateFlags) addStepFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.opts.NodeLabel, "node-label", nodeconfig.DefaultLabel, "node label (key=value) that the CiliumNodeConfig selects")
	fl.StringVar(&f.opts.NodeConfigName, "nodeconfig-name", nodeconfig.DefaultName, "name of the CiliumNodeConfig, in Cilium's namespace")
	fl.DurationVar(&f.opts.DrainTimeout, "timeout", migrate.DefaultDrainTimeout, "how long the drain may take before giving up (0: wait forever)")
	fl.IntVar(&f.opts.GracePeriodSeconds, "grace-period", -1, "seconds each evicted pod gets to terminate (negative: the pod's own)")
	fl.BoolVar(&f.opts.DeleteEmptyDirData, "delete-emptydir-data", false, "drain pods that use emptyDir volumes (their data is lost)")
	fl.BoolVar(&f.opts.DisableEviction, "disable-eviction", false, "delete pods instead of evicting them: bypasses PodDisruptionBudgets")
	fl.BoolVar(&f.opts.Force, "force", false, "drain pods that no controller manages (they are not recreated)")
	fl.DurationVar(&f.opts.AgentTimeout, "agent-timeout", migrate.DefaultAgentTimeout, "how long to wait for the restarted Cilium agent to be Ready (at verify, also the old CNI's pod on the node)")
	fl.StringVar(&f.reboot, "reboot", "", "how to reboot the node: command (run --reboot-command), manual (stop until you did) or skip (default: command with --reboot-command, else manual)")
	fl.StringVar(&f.rebootCommand, "reboot-command", "", "command that reboots a node, split into words before {{.Node}} and {{.InternalIP}} are filled in; run without a shell")
	fl.DurationVar(&f.opts.RebootTimeout, "reboot-timeout", migrate.DefaultRebootTimeout, "how long to wait for a rebooted node to report a new bootID and be Ready (and for a node that went NotReady before its verification)")
	fl.StringVar(&f.opts.ProbeImage, "probe-image", migrate.DefaultProbeImage, "image of the probe pod (needs sh and curl)")
	fl.DurationVar(&f.opts.ProbeTimeout, "probe-timeout", migrate.DefaultProbeTimeout, "how long the probe pod may take")
	_ = cmd.RegisterFlagCompletionFunc("reboot", cobra.FixedCompletions([]string{migrate.RebootCommand, migrate.RebootManual, migrate.RebootSkip}, cobra.ShellCompDirectiveNoFileComp))
}

// complete fills opts from the flags.
func (f *migrateFlags) complete(cmd *cobra.Command, namespace string, serverDryRun bool) error {
	f.opts.Namespace = namespace
	f.opts.DryRun = serverDryRun
	f.opts.Reboot = f.reboot
	if f.opts.Reboot == "" {
		f.opts.Reboot = migrate.RebootManual
		if f.rebootCommand != "" {
			f.opts.Reboot = migrate.RebootCommand
		}
	}
	if cmd.Flags().Changed("reboot-command") {
		var err error
		if f.opts.RebootCommand, err = migrate.ParseRebootTemplate(f.rebootCommand); err != nil {
			return err
		}
	}
	return nil
}

// validateStrategy checks --strategy, and the flags given and --dry-run
// against it (node, rollout).
func (f *migrateFlags) validateStrategy(cmd *cobra.Command, dryRun cmdutil.DryRunStrategy) error {
	if err := proposal.ValidateStrategy(f.strategy); err != nil {
		return err
	}
	if f.strategy == proposal.InPlace && dryRun == cmdutil.DryRunClient {
		return errs.New(errs.Usage, "--dry-run=client prints the dual-overlay steps; the in-place method has no script", "use --dry-run=server to see what would be evicted")
	}
	if f.strategy != "" {
		if err := strategyFlags(cmd, f.strategy, "--strategy "+f.strategy); err != nil {
			return err
		}
	}
	return nil
}

// validateOutputAndGate checks -o and --gate against --dry-run and
// --strategy (node, rollout); what names the dual-overlay run in the
// message ("node-by-node rollout").
func validateOutputAndGate(format string, dryRun cmdutil.DryRunStrategy, gate *gateFlags, strategy, what string) error {
	if err := output.ValidateFormat(format); err != nil {
		return err
	}
	if format != "" && dryRun == cmdutil.DryRunClient {
		return errs.New(errs.Usage, "-o does not apply to --dry-run=client, which prints a script", "drop -o, or use --dry-run=server")
	}
	if err := gate.validate(); err != nil {
		return err
	}
	if gate.gate != "" && dryRun != cmdutil.DryRunNone {
		return errs.New(errs.Usage, "--gate does not apply to a dry run: nothing changes for it to check", "drop --gate, or --dry-run")
	}
	if gate.gate != "" && strategy == proposal.InPlace {
		return errs.New(errs.Usage, "--gate applies to the "+what+", not --strategy in-place", "drop --gate, or run connectivity before and after")
	}
	return nil
}

// nodeOptions are the options of node and of rollback, which runs the same
// steps the other way (direction).
type nodeOptions struct {
	*common
	migrateFlags
	direction    migrate.Direction
	names        []string
	output       string
	dryRun       cmdutil.DryRunStrategy
	namespaceSet bool
	resume       string
	kubectlFlags []string
	commandLine  string
	gate         gateFlags
	forceUnlock  bool
	cmd          *cobra.Command
}

func newCmdNode(c *common) *cobra.Command {
	o := &nodeOptions{common: c}
	cmd := &cobra.Command{
		Use:     "node NODE...",
		Short:   "Migrate nodes to Cilium one by one: cordon, drain, label, restart the agent, reboot, verify, uncordon",
		Long:    nodeLong,
		Example: nodeExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errs.New(errs.Usage, "name at least one node", "run 'kubectl cni-migrate node --help' for usage")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return completeNodes(cmd.Context(), c, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
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
	addForceUnlock(cmd, &o.forceUnlock)
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "", "print a summary on stdout: json or yaml")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *nodeOptions) Complete(cmd *cobra.Command, args []string) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, errs.OneLine(err.Error()), "use --dry-run=none, client or server")
	}
	o.names = args
	o.cmd = cmd
	if err := o.migrateFlags.complete(cmd, o.namespaceFlag(cmd), o.dryRun == cmdutil.DryRunServer); err != nil {
		return err
	}
	o.namespaceSet = o.opts.Namespace != ""
	o.commandLine, o.resume, o.kubectlFlags = commandLines(cmd, args)
	o.opts.ResumeCommand = o.resume
	o.opts.Direction = o.direction
	return nil
}

func (o *nodeOptions) Validate() error {
	if err := o.validateStrategy(o.cmd, o.dryRun); err != nil {
		return err
	}
	for _, n := range o.names {
		if err := migrate.ValidateNodeName(n); err != nil {
			return err
		}
	}
	if err := validateOutputAndGate(o.output, o.dryRun, &o.gate, o.strategy, "node-by-node migration"); err != nil {
		return err
	}
	return o.opts.Validate()
}

func (o *nodeOptions) Run(ctx context.Context) error {
	if o.dryRun == cmdutil.DryRunClient {
		return o.printScript(ctx)
	}
	cl, err := o.clients()
	if err != nil {
		return err
	}
	cluster, err := detectCluster(ctx, cl)
	if err != nil {
		return err
	}
	if o.direction != migrate.DirectionRollback {
		strategy, why := resolveStrategy(o.strategy, cluster)
		if err := strategyFlags(o.cmd, strategy, why); err != nil {
			return err
		}
		if strategy == proposal.InPlace {
			if err := o.inPlaceOptions().Validate(); err != nil {
				return err
			}
			return runInPlace(ctx, o.common, cl, cluster, o.names, o.inPlaceOptions(), o.output)
		}
	}
	command := "node"
	if o.direction == migrate.DirectionRollback {
		command = "rollback"
	}
	lk := migrationLock(command, o.forceUnlock)
	summary, err := rollout.RunNodes(ctx, cl, cluster, o.names, rollout.NodesOptions{
		Lock:     &lk,
		Migrate:  o.opts,
		OpenGate: func(ctx context.Context) (*rollout.Gate, error) { return o.gate.open(ctx, o.common, cl) },
		Out:      o.streams.ErrOut,
		Style:    o.errStyle(),
	})
	return printResult(o.streams.Out, o.output, summary, err)
}

// printScript prints the --dry-run=client script. It needs the cluster
// only to find Cilium's namespace when -n is not given.
func (o *nodeOptions) printScript(ctx context.Context) error {
	ns := o.opts.Namespace
	if ns == "" {
		ns = nodeconfig.DefaultNamespace
		if cl, err := o.clients(); err == nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			l, err := cl.Kube.AppsV1().DaemonSets(metav1.NamespaceAll).List(rctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel})
			cancel()
			switch {
			case err == nil && len(l.Items) > 0:
				ns = l.Items[0].Namespace
			case err != nil:
				fmt.Fprintf(o.streams.ErrOut, "warning: could not find Cilium's namespace (%s); the script uses %s (pass -n to choose)\n", errs.OneLine(err.Error()), ns)
			}
		}
	}
	in := migrate.ScriptInput{Nodes: o.names, Namespace: ns, KubectlFlags: o.kubectlFlags, Command: o.commandLine,
		BridgeDeployment: policybridge.BridgeName, BridgeRules: policybridge.NodeRulesName}
	var script string
	var err error
	if o.direction == migrate.DirectionRollback {
		// The script is written without reading the cluster: it assumes
		// flannel, the CNI the guide migrates from.
		in.OldCNI = detect.Flannel().Name
		script, err = migrate.RollbackScript(o.opts, in)
	} else {
		script, err = migrate.Script(o.opts, in)
	}
	if err != nil {
		return err
	}
	if _, err := io.WriteString(o.streams.Out, script); err != nil {
		return errs.Wrap(errs.IO, err, "cannot write the script: "+errs.OneLine(err.Error()), "check stdout")
	}
	return nil
}

// isKubectlGlobalFlag reports the kubectl flags that choose the cluster and
// the credentials: the script passes them on to every kubectl.
func isKubectlGlobalFlag(name string) bool {
	switch name {
	case "kubeconfig", "context", "cluster", "user", "server",
		"certificate-authority", "client-certificate", "client-key",
		"insecure-skip-tls-verify", "tls-server-name", "request-timeout",
		"as", "as-group", "as-uid", "token", "username", "password":
		return true
	}
	return false
}

// isSecretFlag reports flags whose values are not repeated in printed commands.
func isSecretFlag(name string) bool { return name == "token" || name == "password" }

// commandLines returns the command as given (for the script's header), the
// command that resumes it (dry-run and output flags dropped) and the
// kubectl flags that select the cluster.
func commandLines(cmd *cobra.Command, args []string) (line, resume string, kubectlFlags []string) {
	var all, keep []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Name
		if f.Value.Type() == "bool" {
			if f.Value.String() != "true" {
				v = f.Name + "=" + f.Value.String()
			}
		} else if isSecretFlag(f.Name) {
			v = f.Name + "=REDACTED"
		} else {
			v = f.Name + "=" + f.Value.String()
		}
		arg := shell.Quote("--" + v)
		all = append(all, arg)
		if f.Name != "dry-run" && f.Name != "output" {
			keep = append(keep, arg)
		}
		// -n (Cilium's namespace here) is not passed on: the script names
		// the namespace of each command.
		if isKubectlGlobalFlag(f.Name) && !isSecretFlag(f.Name) {
			kubectlFlags = append(kubectlFlags, "--"+f.Name+"="+f.Value.String())
		}
	})
	base := strings.TrimSpace("kubectl cni-migrate " + cmd.Name() + " " + shell.Join(args))
	line = strings.TrimSpace(base + " " + strings.Join(all, " "))
	resume = strings.TrimSpace(base + " " + strings.Join(keep, " "))
	return line, resume, kubectlFlags
}

// completeNodes completes node names not given yet.
func completeNodes(ctx context.Context, c *common, given []string) ([]string, cobra.ShellCompDirective) {
	cl, err := c.clients()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	l, err := cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	seen := map[string]bool{}
	for _, g := range given {
		seen[g] = true
	}
	var out []string
	for _, n := range l.Items {
		if !seen[n.Name] {
			out = append(out, n.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
