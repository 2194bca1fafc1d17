package cmd

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policyreport"
)

const policyReportLong = `Read the policy verdicts Cilium's agents compute for the pods they manage, for
--for, and print the flows the NetworkPolicies deny: for each pod, the other
end, the port, how often and when. From Flannel, which enforces no policy,
values-initial.yaml turns Cilium's policy audit mode on (policyEnforcementMode
default with policyAuditMode true): Cilium drops nothing during the migration
but reports each flow a policy would drop ("audit"), so this shows, before
finalize turns enforcement on, which of today's flows will stop. With
enforcement on (Calico, Canal with the policy bridge), it shows what is dropped
now ("deny"). Only the pods on migrated nodes are judged: the pods still on
the old network are counted, not audited. Needs pods/exec on Cilium's agents.`

const policyReportExample = `  # The flows the policies deny, seen over a minute
  kubectl cni-migrate policy-report

  # Over ten minutes, as JSON
  kubectl cni-migrate policy-report --for 10m -o json`

type policyReportOptions struct {
	*common
	namespace string
	duration  time.Duration
	output    string
}

func newCmdPolicyReport(c *common) *cobra.Command {
	o := &policyReportOptions{common: c}
	cmd := &cobra.Command{
		Use:     "policy-report",
		Short:   "Show the flows the NetworkPolicies deny on the migrated pods (audited before finalize)",
		Long:    policyReportLong,
		Example: policyReportExample,
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
	cmd.Flags().DurationVar(&o.duration, "for", time.Minute, "how long to read the agents' verdicts")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: a table)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *policyReportOptions) Complete(cmd *cobra.Command) error {
	o.namespace = o.namespaceFlag(cmd)
	return nil
}

func (o *policyReportOptions) Validate() error {
	if o.duration <= 0 {
		return errs.New(errs.Usage, "--for must be positive", "pass a duration such as 1m")
	}
	return output.ValidateFormat(o.output)
}

func (o *policyReportOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	cluster, err := detectCluster(ctx, cl)
	if err != nil {
		return err
	}
	c := cluster.Cilium
	if !c.Installed {
		return errs.New(errs.Precondition, "Cilium is not installed, so no agent computes policy verdicts",
			"install it with values-initial.yaml from kubectl cni-migrate values first")
	}
	ns := o.namespace
	if ns == "" {
		ns = c.Namespace
	}
	if !policybridge.Enforces(c.PolicyEnforcement) {
		return errs.Newf(errs.Precondition,
			"install or upgrade Cilium with the values of kubectl cni-migrate values (policy audit mode from Flannel; the policy bridge from Calico and Canal)",
			"Cilium %s in %s computes no policy verdicts: cilium-config enable-policy is \"never\"", c.Version, ns)
	}
	if err := access.Require(ctx, cl.Kube, policyreport.Needs(ns), "kubectl cni-migrate policy-report",
		"grant them (docs/rbac.yaml: pods/exec on Cilium's agents)"); err != nil {
		return cl.Classify(err, "checking permissions")
	}
	errOut := o.streams.ErrOut
	since := time.Now()
	nodeAddrs := map[string]string{}
	for _, n := range cluster.Nodes {
		nodeAddrs[n.Name] = n.InternalIP
	}
	obs, inv, err := policyreport.Collect(ctx, cl, ns, nodeAddrs, o.duration, func(s string) { fmt.Fprintln(errOut, s) })
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errs.Wrap(errs.Unreachable, err, errs.OneLine(err.Error()),
			fmt.Sprintf("check the agents (kubectl -n %s get pods -l k8s-app=cilium) and run it again", ns))
	}
	r := policyreport.Build(obs, inv, since, time.Now())
	if o.output != "" {
		if err := output.PrintStructured(&r, o.output, o.streams.Out); err != nil {
			return err
		}
	} else if len(r.Flows) > 0 {
		tw := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POD\tDIRECTION\tPEER\tPORT\tACTION\tCOUNT\tLAST SEEN\tPOLICIES")
		for _, f := range r.Flows {
			pol := strings.Join(f.Policies, ",")
			if pol == "" {
				pol = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.Pod, f.Direction, f.Peer, f.Port, f.Action, f.Count, f.Last.Format(time.TimeOnly), pol)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	mode := "deny now"
	if c.PolicyAudit {
		mode = "will deny once finalize turns audit mode off"
	}
	fmt.Fprintf(errOut, "%d %s the policies %s, from %d verdicts over %s on %d nodes; %d pods not on Cilium were not judged\n",
		len(r.Flows), output.Plural(len(r.Flows), "flow", "flows"), mode, r.Verdicts, r.Until.Sub(r.Since).Round(time.Second), len(r.Nodes), r.NotAudited)
	return nil
}
