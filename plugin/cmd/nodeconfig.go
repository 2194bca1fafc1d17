package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

const nodeconfigExample = `  # Print the CiliumNodeConfig for the default Cilium version
  kubectl cni-migrate nodeconfig

  # Apply it (server-side apply, field manager cni-migrate); the Cilium
  # version and namespace are read from the installed Cilium
  kubectl cni-migrate nodeconfig --apply

  # See what the API server would store, without storing it
  kubectl cni-migrate nodeconfig --apply --dry-run=server -o yaml`

type nodeconfigOptions struct {
	*common
	printFlags    *genericclioptions.PrintFlags
	ciliumVersion string
	name          string
	label         string
	chaining      string
	apply         bool
	dryRun        cmdutil.DryRunStrategy
	namespace     string
	outputSet     bool
}

func newCmdNodeConfig(c *common) *cobra.Command {
	o := &nodeconfigOptions{common: c, printFlags: genericclioptions.NewPrintFlags("serverside-applied")}
	cmd := &cobra.Command{
		Use:   "nodeconfig",
		Short: "Print or apply the CiliumNodeConfig that moves labelled nodes to Cilium",
		Long: `Print the CiliumNodeConfig of the migration guide: nodes carrying its label get
Cilium as their only CNI once their Cilium agent restarts. cilium.io/v2alpha1 is
used for Cilium < 1.16 and cilium.io/v2 from 1.16. -n sets the namespace Cilium
runs in (default: where it is installed, else kube-system).`,
		Example: nodeconfigExample,
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
	o.printFlags.AddFlags(cmd)
	cmd.Flags().StringVar(&o.ciliumVersion, "cilium-version", "", "Cilium release the config is for (default: the installed one with --apply, else "+ciliumver.Default().String()+")")
	cmd.Flags().StringVar(&o.name, "name", nodeconfig.DefaultName, "name of the CiliumNodeConfig")
	cmd.Flags().StringVar(&o.label, "node-label", nodeconfig.DefaultLabel, "node label (key=value) that selects the nodes the config applies to")
	cmd.Flags().StringVar(&o.chaining, "cni-chaining-mode", "", "cni-chaining-mode on the selected nodes: none or portmap (default: the installed Cilium's with --apply, which values makes portmap for hostPorts when kube-proxy stays and the old CNI chains portmap; else none)")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "server-side apply the CiliumNodeConfig to the cluster")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("cilium-version", completeCiliumVersions)
	return cmd
}

func (o *nodeconfigOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, err.Error(), "use --dry-run=none, client or server")
	}
	o.namespace = o.namespaceFlag(cmd)
	o.outputSet = cmd.Flags().Changed("output")
	if !o.apply || o.dryRun == cmdutil.DryRunClient {
		if !o.outputSet {
			out := "yaml"
			o.printFlags.OutputFormat = &out
		}
	}
	switch o.dryRun {
	case cmdutil.DryRunServer:
		return o.printFlags.Complete("%s (server dry run)")
	case cmdutil.DryRunClient:
		return o.printFlags.Complete("%s (dry run)")
	}
	return nil
}

func (o *nodeconfigOptions) Validate() error {
	if o.ciliumVersion != "" {
		if _, err := ciliumver.Parse(o.ciliumVersion); err != nil {
			return err
		}
	}
	if o.dryRun == cmdutil.DryRunServer && !o.apply {
		return errs.New(errs.Usage, "--dry-run=server needs --apply", "add --apply, or drop --dry-run to print the object")
	}
	if _, err := o.printFlags.ToPrinter(); err != nil {
		return errs.Wrap(errs.Usage, err, err.Error(), "use -o yaml, json or name")
	}
	return nodeconfig.Options{Version: ciliumver.Default(), Namespace: nodeconfig.DefaultNamespace, Name: o.name, Label: o.label, ChainingMode: o.chaining}.Validate()
}

func (o *nodeconfigOptions) Run(ctx context.Context) error {
	version := ciliumver.Default()
	if o.ciliumVersion != "" {
		version, _ = ciliumver.Parse(o.ciliumVersion)
	}
	ns := o.namespace
	send := o.apply && o.dryRun != cmdutil.DryRunClient
	var cl *kube.Clients
	if send {
		var err error
		if cl, err = o.clients(); err != nil {
			return err
		}
		cluster, err := detectCluster(ctx, cl)
		if err != nil {
			return err
		}
		if ns == "" {
			ns = cluster.Cilium.Namespace
		}
		if o.chaining == "" && cluster.Cilium.ChainingMode == "portmap" {
			o.chaining = "portmap"
		}
		if cluster.Cilium.Version != "" {
			if installed, err := ciliumver.Parse(cluster.Cilium.Version); err == nil {
				if err := nodeconfig.CheckVersion(version, installed, o.ciliumVersion != ""); err != nil {
					return err
				}
				if o.ciliumVersion == "" {
					version = installed
				}
			}
		}
	}
	if ns == "" {
		ns = nodeconfig.DefaultNamespace
	}
	obj, err := nodeconfig.Build(nodeconfig.Options{Version: version, Namespace: ns, Name: o.name, Label: o.label, ChainingMode: o.chaining})
	if err != nil {
		return err
	}
	printer, err := o.printFlags.ToPrinter()
	if err != nil {
		return errs.Wrap(errs.Usage, err, err.Error(), "use -o yaml, json or name")
	}
	if !send {
		return printer.PrintObj(obj, o.streams.Out)
	}
	served, err := nodeconfig.Served(cl.Kube.Discovery())
	if err != nil {
		return cl.Classify(err, "reading the cilium.io API versions")
	}
	if err := nodeconfig.CheckServed(obj.GetAPIVersion(), served); err != nil {
		return err
	}
	applied, err := nodeconfig.Apply(ctx, cl.Dynamic, obj, o.dryRun == cmdutil.DryRunServer)
	if err != nil {
		return cl.Classify(err, fmt.Sprintf("applying CiliumNodeConfig %s/%s", ns, o.name))
	}
	return printer.PrintObj(applied, o.streams.Out)
}
