package cmd

import (
	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

const rollbackExample = `  # Move a migrated worker back to flannel; the reboot command also puts the
  # node's CNI config back first (see docs/rollback.md)
  kubectl cni-migrate rollback worker-1 --reboot-command 'ssh {{.Node}} "sudo rm -f /etc/cni/net.d/05-cilium.conflist; sudo mv -n /etc/cni/net.d/10-flannel.conflist.cilium_bak /etc/cni/net.d/10-flannel.conflist; sudo systemctl reboot"'

  # Stop with exit code 14 and instructions when the node must be rebooted by
  # hand; run the same command again afterwards
  kubectl cni-migrate rollback worker-1

  # The same steps as a bash script of kubectl commands
  kubectl cni-migrate rollback worker-1 --reboot=skip --dry-run=client > rollback-worker-1.sh`

const rollbackLong = `Move migrated nodes back to the old CNI, one after the other, before the
migration is finalized (Cilium in migration mode, the CiliumNodeConfig still
there):

  1. cordon (remembering whether the node was cordoned before the rollback)
  2. drain (DaemonSet pods stay; PodDisruptionBudgets are honoured)
  3. remove the label, so that the CiliumNodeConfig no longer selects the node
  4. delete the node's Cilium agent pod and wait until its replacement, which
     starts without the CiliumNodeConfig, is Ready
  5. reboot (--reboot: command, manual or skip); before the command runs, the
     pods left on the node (not on the host's network) are marked NotReady,
     as in node
  6. verify: a probe pod pinned to the node gets an address outside Cilium's
     pod CIDR, in the node's podCIDR (the old CNI's range), and reaches the
     API server
  7. uncordon (unless it was cordoned before), and remove the cni-migrate.io/
     annotations: the node is not migrated any more (node and rollout can
     migrate it again)

Each step records its progress on the node (annotation
cni-migrate.io/rollback-phase) before the next begins: after a failure, Ctrl-C
or a manual reboot, the same command continues where it stopped. A node never
migrated (no phase, no label) is left alone. Like node, it checks every
permission first (exit 8) and holds the migration lock while it runs (exit
18 when another run holds it).

What needs access to the node: while Cilium owned the node's CNI config it
renamed flannel's 10-flannel.conflist to 10-flannel.conflist.cilium_bak, and
its own 05-cilium.conflist stays after the agent restarts without the
CiliumNodeConfig. Remove it (and restore flannel's file) on the node before
the reboot; the command prints how at the reboot step, and the verification
fails while new pods still get Cilium addresses. See docs/rollback.md.

Exit codes: 10 drain blocked, 11 agent not Ready, 12 verification failed, 13
reboot failed, 14 waiting for a manual reboot, 15 precondition (e.g. the
migration was finalized), 18 locked, 130 interrupted (see docs/exit-codes.md).`

func newCmdRollback(c *common) *cobra.Command {
	o := &nodeOptions{common: c, direction: migrate.DirectionRollback}
	cmd := &cobra.Command{
		Use:     "rollback NODE...",
		Short:   "Move migrated nodes back to the old CNI before finalize: cordon, drain, unlabel, restart the agent, reboot, verify, uncordon",
		Long:    rollbackLong,
		Example: rollbackExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errs.New(errs.Usage, "name at least one node", "run 'kubectl cni-migrate rollback --help' for usage")
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
	o.migrateFlags.addStepFlags(cmd)
	addForceUnlock(cmd, &o.forceUnlock)
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "", "print a summary on stdout: json or yaml")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
