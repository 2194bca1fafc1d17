package cmd

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/plan"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

const planExample = `  # What runs today, what would be proposed, and whether it is safe
  kubectl cni-migrate plan

  # The same for scripts (schema: docs/plan-schema.md)
  kubectl cni-migrate plan -o json

  # Check a pod CIDR and tunnel of your choice
  kubectl cni-migrate plan --pod-cidr 172.20.0.0/16 --tunnel-protocol geneve

  # Check your own chart values too (values that break the migration FAIL)
  kubectl cni-migrate plan --values my-cilium.yaml

  # Two CNIs found (or one under names detection does not know): name the one to migrate from
  kubectl cni-migrate plan --from calico --old-pod-cidr 10.50.0.0/16`

type planOptions struct {
	*common
	proposalFlags
	output          string
	skipAccessCheck bool
	namespace       string
	valuesFile      string
	user            map[string]any
	// ignoreUnsupportedDistribution: --ignore-unsupported-distribution.
	ignoreUnsupportedDistribution bool
}

func newCmdPlan(c *common) *cobra.Command {
	o := &planOptions{common: c}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Detect the cluster's network and check that a migration is safe",
		Long: `Detect the cluster's current network (CNI, pod and service networks, kube-proxy,
nodes, Cilium) and check that a migration is safe. Each check is PASS, WARN or
FAIL with its reason and fix. Source CNIs: Flannel, Canal, Calico (manifest
or operator), Weave Net, kube-router, k3s's embedded flannel (docs/cni/). Exits 3 when a check FAILs,
6 when no supported CNI is found, several are (pick one with --from), or
Cilium already owns the network.`,
		Example: planExample,
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
	o.proposalFlags.add(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: a table)")
	cmd.Flags().StringVarP(&o.valuesFile, "values", "f", "", "a Helm values file to check as values would merge it (the values and mtu checks)")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml")
	cmd.Flags().BoolVar(&o.skipAccessCheck, "skip-access-check", false, "do not ask the API server which permissions you have")
	cmd.Flags().BoolVar(&o.ignoreUnsupportedDistribution, "ignore-unsupported-distribution", false, "plan a migration on a distribution that does not support changing its CNI (RKE2): its distribution check WARNs instead of FAILing")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *planOptions) Complete(cmd *cobra.Command) error {
	o.namespace = o.namespaceFlag(cmd)
	if o.valuesFile != "" {
		u, err := values.LoadFile(o.valuesFile)
		if err != nil {
			return err
		}
		o.user = u
	}
	return nil
}

func (o *planOptions) Validate() error {
	if err := output.ValidateFormat(o.output); err != nil {
		return err
	}
	return o.proposalFlags.validate()
}

func (o *planOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	c, err := detectClusterWith(ctx, cl, o.override)
	if err != nil {
		return err
	}
	p, err := proposal.Propose(c, o.opts)
	if err != nil && errs.Code(err) == errs.Usage {
		return err
	}
	in := check.Input{Cluster: c, Proposal: p, IgnoreUnsupportedDistribution: o.ignoreUnsupportedDistribution}
	if !o.skipAccessCheck {
		ciliumNS := o.namespace
		if ciliumNS == "" {
			ciliumNS = c.Cilium.Namespace
		}
		if ciliumNS == "" {
			ciliumNS = "kube-system"
		}
		cniNS := ""
		if c.CNI != nil {
			cniNS = c.CNI.Namespace
		}
		res, aerr := access.Check(ctx, cl.Kube, access.Needs(ciliumNS, cniNS))
		if aerr != nil {
			if ctx.Err() != nil {
				return cl.Classify(ctx.Err(), "checking permissions")
			}
			in.AccessErr = cl.Classify(aerr, "checking permissions")
		} else {
			in.Access = &res
		}
	}
	results := check.Run(in)
	if c.CNI != nil {
		results = append(results, o.valuesChecks(c, p)...)
	}
	if p == nil && err != nil {
		// The proposal itself failed (e.g. no free CIDR): show it as a check.
		results = append(results, check.Result{ID: check.IDPodCIDR, Status: check.Fail, Message: errMsg(err), Fix: errFix(err)})
	}
	report := plan.New(c, p, results)

	if o.output != "" {
		if err := output.PrintStructured(report, o.output, o.streams.Out); err != nil {
			return err
		}
	} else if err := report.PrintTable(o.streams.Out, o.outStyle()); err != nil {
		return err
	}

	switch {
	case c.Problem != nil:
		return c.Problem
	case check.Failed(results):
		var failed []string
		for _, r := range results {
			if r.Status == check.Fail {
				failed = append(failed, r.ID)
			}
		}
		return errs.Newf(errs.ChecksFailed, "fix them and run plan again",
			"%d %s FAILed (%s)", len(failed), output.Plural(len(failed), "check", "checks"), strings.Join(failed, ", "))
	}
	return nil
}

func errMsg(err error) string {
	if e, ok := err.(*errs.Error); ok {
		return e.Msg
	}
	return err.Error()
}

func errFix(err error) string {
	if e, ok := err.(*errs.Error); ok {
		return e.Fix
	}
	return ""
}

// valuesChecks are the checks after check.Run: the user's --values file, if
// any, through values.Guard, and the MTU (the file's, else auto-detected).
func (o *planOptions) valuesChecks(c *detect.Cluster, p *proposal.Proposal) []check.Result {
	var out []check.Result
	userMTU := 0
	if o.valuesFile != "" && p != nil && len(proposal.Safety(c, p)) == 0 {
		pp, initial, _, _, err := proposal.GenerateValues(c, o.opts, o.user, o.valuesFile)
		if err != nil {
			out = append(out, check.Result{ID: check.IDValues, Status: check.Fail, Message: errMsg(err), Fix: errFix(err)})
		} else {
			out = append(out, check.Values(o.valuesFile, guardValues(c, pp, initial, o.valuesFile))...)
			if v, ok := initial.Map()["MTU"].(float64); ok && v > 0 && v == float64(int(v)) {
				userMTU = int(v)
			}
		}
	}
	return append(out, check.MTU(c, p, userMTU))
}
