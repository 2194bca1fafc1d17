package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

const valuesExample = `  # Write values-initial.yaml and values-final.yaml into the current directory
  kubectl cni-migrate values --output-dir .

  # Print both as two YAML documents
  kubectl cni-migrate values

  # Your own chart values on top (maps merge, lists replace, null deletes)
  kubectl cni-migrate values --values my-cilium.yaml --output-dir .

  # Write values the migration cannot survive anyway (refused otherwise, exit code 4)
  kubectl cni-migrate values --values risky.yaml --allow-unsafe-values --output-dir .

  # Values for the one-shot method: Cilium owns every node's CNI config at once
  kubectl cni-migrate values --strategy in-place --output-dir .`

type valuesOptions struct {
	*common
	proposalFlags
	valuesFile  string
	outputDir   string
	allowUnsafe bool
	user        map[string]any
}

func newCmdValues(c *common) *cobra.Command {
	o := &valuesOptions{common: c}
	cmd := &cobra.Command{
		Use:   "values",
		Short: "Generate the Helm values for the migration and for after it",
		Long: `Generate values-initial.yaml (Cilium installed beside the old CNI, on its own pod
CIDR and tunnel port, taking over no node) and values-final.yaml (the values to
'helm upgrade' to once every node is migrated), for the chosen Cilium version,
with a comment on every key saying why it is there.`,
		Example: valuesExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.proposalFlags.add(cmd)
	cmd.Flags().StringVarP(&o.valuesFile, "values", "f", "", "a Helm values file merged on top of the generated values")
	cmd.Flags().BoolVar(&o.allowUnsafe, "allow-unsafe-values", false, "write --values that would break the migration (another IPAM, cni.customConf, a clashing tunnel port, policy enforcement, ...) anyway, with a warning")
	cmd.Flags().StringVar(&o.outputDir, "output-dir", "", "write values-initial.yaml and values-final.yaml into this directory (default: both to stdout)")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml")
	_ = cmd.MarkFlagDirname("output-dir")
	return cmd
}

// Complete reads the user's values file, before any API call.
func (o *valuesOptions) Complete() error {
	if o.valuesFile == "" {
		return nil
	}
	u, err := values.LoadFile(o.valuesFile)
	if err != nil {
		return err
	}
	o.user = u
	return nil
}

func (o *valuesOptions) Validate() error {
	if err := o.proposalFlags.validate(); err != nil {
		return err
	}
	if o.outputDir != "" {
		st, err := os.Stat(o.outputDir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return errs.Wrap(errs.IO, err, fmt.Sprintf("--output-dir %s does not exist", o.outputDir), "create it or choose another --output-dir")
		case err != nil:
			return errs.Wrap(errs.IO, err, fmt.Sprintf("cannot use --output-dir %s: %v", o.outputDir, err), "choose another --output-dir")
		case !st.IsDir():
			return errs.Newf(errs.IO, "choose a directory for --output-dir", "--output-dir %s is not a directory", o.outputDir)
		}
	}
	return nil
}

func (o *valuesOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	c, err := detectClusterWith(ctx, cl, o.override)
	if err != nil {
		return err
	}
	if c.Problem != nil {
		return c.Problem
	}
	p, initial, final, warnings, err := proposal.GenerateValues(c, o.opts, o.user, o.valuesFile)
	if err != nil {
		return err
	}
	unsafe, err := values.Refuse(guardValues(c, p, initial, o.valuesFile), o.allowUnsafe)
	if err != nil {
		return err
	}
	warnings = append(warnings, unsafe...)
	warnings = append(warnings, mtuWarnings(c, p, initial, o.valuesFile)...)
	warn := o.errStyle().Yellow("warning:")
	for _, w := range warnings {
		fmt.Fprintln(o.streams.ErrOut, warn, w)
	}
	if o.outputDir == "" {
		return values.WriteStdout(o.streams.Out, initial, final)
	}
	paths, err := values.WriteFiles(o.outputDir, initial, final)
	if err != nil {
		return err
	}
	for _, path := range paths {
		fmt.Fprintf(o.streams.ErrOut, "wrote %s\n", path)
	}
	ns := c.Cilium.Namespace
	if ns == "" {
		ns = "kube-system"
	}
	fmt.Fprintf(o.streams.ErrOut, "next: helm install cilium cilium/cilium --version %s --namespace %s --values %s\n",
		p.Version.HelmChartVersion(), ns, paths[0])
	if p.Strategy == proposal.InPlace {
		fmt.Fprintln(o.streams.ErrOut, "then: kubectl cni-migrate rollout --strategy in-place (restarts the pods still on the old network, namespace by namespace)")
	}
	if p.PolicyBridge {
		fmt.Fprintf(o.streams.ErrOut, "policies stay in force through the migration (%s; --policy-bridge=false turns it off)\n", p.PolicyBridgeSource)
		fmt.Fprintln(o.streams.ErrOut, "then, before the first node: kubectl cni-migrate policy-bridge --deploy (and, from Calico or Canal, kubectl cni-migrate calico-policies --apply)")
	} else if c.CNI != nil && c.CNI.EnforcesPolicy && p.Strategy != proposal.InPlace {
		fmt.Fprintf(o.streams.ErrOut, "%s: Cilium enforces no policy until finalize (%s)\n", warn, p.PolicyBridgeSource)
	}
	if p.PolicyAudit {
		fmt.Fprintln(o.streams.ErrOut, "Cilium audits the policies until finalize: before finalize, kubectl cni-migrate policy-report shows the flows they will deny")
	}
	return nil
}

// guardValues lists the values of the user's file that would break the
// migration of cluster c as proposed by p (values.Guard).
func guardValues(c *detect.Cluster, p *proposal.Proposal, initial *values.Doc, userFile string) []values.Unsafe {
	in := values.Input{Strategy: p.Strategy, PodCIDR: p.PodCIDR, TunnelPort: p.TunnelPort, UserFile: userFile, PolicyBridge: p.PolicyBridge, PolicyAudit: p.PolicyAudit}
	old := values.OldNetwork{Reserved: proposal.Reserved(c), NetworkPolicies: len(c.NetworkPolicies)}
	if c.CNI != nil {
		old.CNI, old.Backend, old.BackendPort = c.CNI.Name, c.CNI.Backend.Type, c.CNI.Backend.Port
		old.UDPPorts = c.CNI.UDPPorts
	}
	return values.Guard(in, initial, old)
}

// mtuWarnings checks an MTU from the user's file against the old overlay's
// (the plan's mtu check, with the user's value).
func mtuWarnings(c *detect.Cluster, p *proposal.Proposal, initial *values.Doc, userFile string) []string {
	v, ok := initial.Map()["MTU"].(float64)
	if !ok || v <= 0 || v != float64(int(v)) {
		return nil
	}
	m := proposal.CheckMTU(c, p.TunnelProtocol, int(v))
	if m.Status == proposal.MTUEqual {
		return nil
	}
	from := "--values"
	if userFile != "" {
		from += " " + userFile
	}
	w := fmt.Sprintf("%s sets MTU %d: %s", from, int(v), m.Message)
	if m.Fix != "" {
		w += "; " + m.Fix
	}
	return []string{w}
}
