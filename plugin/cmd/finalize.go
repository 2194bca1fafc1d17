package cmd

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/finalize"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

const finalizeLong = `Finish the migration once every node is migrated:

  1. write values-final.yaml (and values-initial.yaml) into --output-dir and
     show what changes between them
  2. helm upgrade Cilium to the final values: printed for you to run, or run
     with --yes when helm is on PATH; run finalize again after upgrading
  3. restart the Cilium agents and wait for them
  4. delete the CiliumNodeConfig
  5. with --remove-old-cni: delete the old CNI's objects, listed first, then
     remove what its agents left on every node (interfaces, routes, iptables
     chains and ipsets, its CNI files and state directories) with one short
     Job per node in the Cilium agent's image (unless --keep-node-leftovers;
     Flannel, Canal and Calico manifest installs), saying what it removed
  6. remove the plugin's node labels and annotations (unless --keep-state)

The policy bridge (policy-bridge --deploy), when there, is removed before
the first of these steps.

Each step is recognised from the cluster, so finalize can be run again after
an interruption. Refuses while any node is not migrated, or (exit 15) while
Calico policies exist whose Cilium translation is not in the cluster as
translated (kubectl cni-migrate calico-policies --apply; --accept-untranslated
goes on without it). Checks the permissions of its own changes before the
first (exit 8). From its first
change it holds the migration lock (the Lease kube-system/cni-migrate-rollout
that node, rollout and rollback take): exit 18 while another run holds it.
The lock's Lease also notes a helm upgrade and an old-CNI removal under way:
a finalize interrupted in the middle of helm leaves the release
pending-upgrade, and the next finalize --yes rolls it back and upgrades
again (exit 17 with the helm rollback to run when it cannot tell the
pending operation was its own); one interrupted while removing the old CNI
deletes what is left and sweeps the nodes. A node whose sweep fails exits 20
with what to remove by hand.`

const finalizeExample = `  # Write the final values and print the helm upgrade to run
  kubectl cni-migrate finalize --output-dir .

  # Run helm too, and remove Flannel's objects
  kubectl cni-migrate finalize --output-dir . --yes --remove-old-cni

  # Show what would happen
  kubectl cni-migrate finalize --remove-old-cni --dry-run=client`

type finalizeOptions struct {
	*common
	outputDir    string
	valuesFile   string
	user         map[string]any
	yes          bool
	removeOldCNI bool
	keepState    bool
	keepLeft     bool
	release      string
	chart        string
	helm         string
	label        string
	ncName       string
	timeout      time.Duration
	dryRun       cmdutil.DryRunStrategy
	namespace    string
	forceUnlock  bool
	untranslated bool
}

func newCmdFinalize(c *common) *cobra.Command {
	o := &finalizeOptions{common: c}
	cmd := &cobra.Command{
		Use:     "finalize",
		Short:   "Finish the migration: final Helm values, restart Cilium, delete the CiliumNodeConfig and the old CNI",
		Long:    finalizeLong,
		Example: finalizeExample,
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
	f := cmd.Flags()
	f.StringVar(&o.outputDir, "output-dir", ".", "where values-initial.yaml and values-final.yaml are written")
	f.StringVarP(&o.valuesFile, "values", "f", "", "a Helm values file merged on top of the generated values (the one used with `values`)")
	f.BoolVarP(&o.yes, "yes", "y", false, "run the helm upgrade (helm must be on PATH) instead of printing it")
	f.BoolVar(&o.removeOldCNI, "remove-old-cni", false, "delete the old CNI's objects (listed before they are deleted)")
	f.BoolVar(&o.keepState, "keep-state", false, "keep the plugin's node labels and annotations")
	f.BoolVar(&o.keepLeft, "keep-node-leftovers", false, "with --remove-old-cni, leave what the old CNI left on the nodes (interfaces, iptables chains, ...) instead of removing it with a Job per node")
	f.StringVar(&o.release, "release", "cilium", "Helm release name of Cilium")
	f.StringVar(&o.chart, "chart", "cilium/cilium", "Helm chart reference for the upgrade")
	f.StringVar(&o.helm, "helm", "helm", "helm binary to run with --yes")
	f.StringVar(&o.label, "node-label", nodeconfig.DefaultLabel, "the migration node label to remove (key=value)")
	f.StringVar(&o.ncName, "nodeconfig-name", nodeconfig.DefaultName, "name of the CiliumNodeConfig to delete")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long to wait for the Cilium agents to restart")
	f.BoolVar(&o.untranslated, "accept-untranslated", false, "finalize although Calico policies have no Cilium translation in the cluster (see calico-policies)")
	addForceUnlock(cmd, &o.forceUnlock)
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.MarkFlagDirname("output-dir")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml")
	return cmd
}

func (o *finalizeOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, err.Error(), "use --dry-run=none, client or server")
	}
	o.namespace = o.namespaceFlag(cmd)
	if o.valuesFile != "" {
		if o.user, err = values.LoadFile(o.valuesFile); err != nil {
			return err
		}
	}
	return nil
}

func (o *finalizeOptions) Validate() error {
	if _, _, err := nodeconfig.ParseLabel(o.label); err != nil {
		return err
	}
	if o.timeout <= 0 {
		return errs.New(errs.Usage, "--timeout must be positive", "pass a duration such as 10m")
	}
	return nil
}

func (o *finalizeOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	c, err := detectCluster(ctx, cl)
	if err != nil {
		return err
	}
	lk := migrationLock("finalize", o.forceUnlock)
	var held context.Context
	err = finalize.Run(ctx, cl, c, finalize.Options{
		Lock: func(ctx context.Context) (context.Context, finalize.Notes, func(), error) {
			h, lease, release, err := lk.HoldLease(ctx, cl, o.streams.ErrOut)
			held = h
			if err != nil {
				return nil, nil, nil, err
			}
			return h, lease, release, nil
		},
		OutputDir:          o.outputDir,
		User:               o.user,
		UserFile:           o.valuesFile,
		Yes:                o.yes,
		Helm:               o.helm,
		Release:            o.release,
		Chart:              o.chart,
		RemoveOldCNI:       o.removeOldCNI,
		AcceptUntranslated: o.untranslated,
		KeepState:          o.keepState,
		KeepNodeLeftovers:  o.keepLeft,
		Label:              o.label,
		NodeConfigName:     o.ncName,
		Timeout:            o.timeout,
		DryRun:             o.dryRun != cmdutil.DryRunNone,
		ServerDryRun:       o.dryRun == cmdutil.DryRunServer,
		Namespace:          o.namespace,
		Out:                o.streams.ErrOut,
		Style:              o.errStyle(),
	})
	if held != nil && err != nil {
		if lost := rollout.LockLost(held); lost != nil {
			return lost
		}
	}
	return err
}
