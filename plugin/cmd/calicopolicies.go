package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/calicopolicy"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

const calicoPoliciesExample = `  # Print Calico's policies translated to Cilium policies, with what could
  # not be translated as comments
  kubectl cni-migrate calico-policies

  # Apply the translation (server-side apply, field manager cni-migrate)
  kubectl cni-migrate calico-policies --apply

  # Remove every policy the translation applied
  kubectl cni-migrate calico-policies --delete`

type calicoPoliciesOptions struct {
	*common
	apply, delete bool
	output        string
	dryRun        cmdutil.DryRunStrategy
}

func newCmdCalicoPolicies(c *common) *cobra.Command {
	o := &calicoPoliciesOptions{common: c}
	cmd := &cobra.Command{
		Use:   "calico-policies",
		Short: "Translate Calico's own policies into Cilium policies, and apply or remove them",
		Long: `Read Calico's NetworkPolicies and GlobalNetworkPolicies (crd.projectcalico.org/v1,
as Calico stores projectcalico.org/v3 objects) and its NetworkSets, and write them
as CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies where Cilium can
express them. Cilium does not read Calico's policies: without this, finalize's
removal of Calico ends them. What cannot be translated, or translates with
another meaning (Log, Pass, tiers and order, a Deny after an Allow, source ports,
not-matches, host endpoints), is said in a comment above each policy; review it
before --apply. The policies carry the label cni-migrate.io/translated-from=calico,
by which --delete (and rollback) remove them.`,
		Example: calicoPoliciesExample,
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
	cmd.Flags().BoolVar(&o.apply, "apply", false, "server-side apply the translated policies")
	cmd.Flags().BoolVar(&o.delete, "delete", false, "delete every policy the translation applied (label cni-migrate.io/translated-from=calico)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "yaml", "yaml (the policies, with comments) or json (each Calico policy's translation and notes)")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *calicoPoliciesOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, err.Error(), "use --dry-run=none, client or server")
	}
	return nil
}

func (o *calicoPoliciesOptions) Validate() error {
	if o.apply && o.delete {
		return errs.New(errs.Usage, "--apply and --delete exclude each other", "run one, then the other")
	}
	if o.output != "yaml" && o.output != "json" {
		return errs.New(errs.Usage, fmt.Sprintf("unknown output format %q", o.output), "use -o yaml or -o json")
	}
	if o.dryRun != cmdutil.DryRunNone && !o.apply && !o.delete {
		return errs.New(errs.Usage, "--dry-run needs --apply or --delete", "add --apply or --delete, or drop --dry-run to print the translation")
	}
	return nil
}

func (o *calicoPoliciesOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	suffix := map[cmdutil.DryRunStrategy]string{cmdutil.DryRunClient: " (dry run)", cmdutil.DryRunServer: " (server dry run)"}[o.dryRun]
	if o.delete {
		if o.dryRun == cmdutil.DryRunClient {
			fmt.Fprintf(o.streams.ErrOut, "would delete every CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy labelled %s=calico\n", calicopolicy.TranslatedLabel)
			return nil
		}
		gone, err := calicopolicy.Delete(ctx, cl.Dynamic, o.dryRun == cmdutil.DryRunServer)
		for _, g := range gone {
			fmt.Fprintf(o.streams.Out, "%s deleted%s\n", g, suffix)
		}
		if err != nil {
			return cl.Classify(err, "deleting the translated policies")
		}
		if len(gone) == 0 {
			fmt.Fprintln(o.streams.ErrOut, "no translated policy to delete")
		}
		return nil
	}
	policies, sets, err := calicopolicy.Read(ctx, cl.Dynamic)
	if err != nil {
		return cl.Classify(err, "reading Calico's policies")
	}
	if len(policies) == 0 {
		fmt.Fprintln(o.streams.ErrOut, "no Calico NetworkPolicy or GlobalNetworkPolicy: nothing to translate")
		return nil
	}
	results := make([]calicopolicy.Result, 0, len(policies))
	translated, notes := 0, 0
	for _, p := range policies {
		r := calicopolicy.Translate(p, sets)
		results = append(results, r)
		translated += len(r.Policies)
		if len(r.Notes) > 0 {
			notes++
		}
	}
	summary := fmt.Sprintf("%d Calico policies: %d Cilium policies; %d with something not translated exactly (the comments say what)", len(policies), translated, notes)
	if !o.apply || o.dryRun == cmdutil.DryRunClient {
		if o.output == "json" {
			b, err := json.MarshalIndent(results, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(o.streams.Out, "%s\n", b)
		} else {
			b, err := calicopolicy.Render(results)
			if err != nil {
				return err
			}
			_, _ = o.streams.Out.Write(b)
		}
		fmt.Fprintln(o.streams.ErrOut, summary)
		return nil
	}
	for _, r := range results {
		for _, n := range r.Notes {
			fmt.Fprintf(o.streams.ErrOut, "%s: %s\n", r.Source, n)
		}
		for _, p := range r.Policies {
			if _, err := calicopolicy.Apply(ctx, cl.Dynamic, p, o.dryRun == cmdutil.DryRunServer); err != nil {
				return cl.Classify(err, "applying the translated policies")
			}
			fmt.Fprintf(o.streams.Out, "%s.cilium.io/%s serverside-applied%s\n", strings.ToLower(p.Kind), p.Metadata.Name, suffix)
		}
	}
	fmt.Fprintln(o.streams.ErrOut, summary)
	return nil
}
