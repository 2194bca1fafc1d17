package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// proposalFlags are the flags of every command that proposes a setup.
type proposalFlags struct {
	opts proposal.Options
	// override is --from and --old-pod-cidr.
	override detect.Override
}

func (f *proposalFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	addStrategyFlag(cmd, &f.opts.Strategy)
	fl.StringVar(&f.opts.CiliumVersion, "cilium-version", "", "Cilium release to migrate to, 1.14 to 1.20 (default: the installed one, else "+ciliumver.Default().String()+")")
	fl.StringVar(&f.opts.PodCIDR, "pod-cidr", "", "Cilium's cluster-pool pod CIDR (default: the first of 10.245.0.0/16, 10.246.0.0/16, ... that overlaps nothing)")
	fl.IntVar(&f.opts.MaskSize, "cluster-pool-mask-size", 0, "prefix length of each node's pod block (default: the installed Cilium's, else 24)")
	fl.StringVar(&f.opts.TunnelProtocol, "tunnel-protocol", "", "Cilium's tunnel during the migration: vxlan or geneve (default: the installed Cilium's, else vxlan)")
	fl.IntVar(&f.opts.TunnelPort, "tunnel-port", 0, "Cilium's tunnel UDP port (default: 8473 for vxlan, 6081 for geneve, or the next free one)")
	_ = cmd.RegisterFlagCompletionFunc("cilium-version", completeCiliumVersions)
	_ = cmd.RegisterFlagCompletionFunc("tunnel-protocol", cobra.FixedCompletions([]string{"vxlan", "geneve"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pod-cidr", cobra.NoFileCompletions)
	fl.StringVar(&f.override.From, "from", "", "the CNI to migrate from, when detection finds several or none: "+strings.Join(detect.SourceCNIs(), ", "))
	fl.StringArrayVar(&f.override.OldPodCIDRs, "old-pod-cidr", nil, "the old CNI's pod network instead of the detected one (repeatable; needed with --from when that CNI is not found)")
	_ = cmd.RegisterFlagCompletionFunc("from", cobra.FixedCompletions(detect.SourceCNIs(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("old-pod-cidr", cobra.NoFileCompletions)
	fl.Var(&optionalBool{v: &f.opts.PolicyBridge}, "policy-bridge", "keep NetworkPolicies in force through the migration: Cilium enforces them from the install on, and `policy-bridge --deploy` gives the pods still on the old network their identity (either method; default: on from Calico and Canal; see docs/policy-continuity.md)")
	fl.Lookup("policy-bridge").NoOptDefVal = "true"
	fl.Var(&optionalBool{v: &f.opts.PolicyAudit}, "policy-audit", "without the policy bridge, turn Cilium's policy audit mode on from the install: it drops nothing and reports what the policies will deny at finalize (kubectl cni-migrate policy-report; default: on whenever the bridge is off)")
	fl.Lookup("policy-audit").NoOptDefVal = "true"
}

// optionalBool is a boolean flag that stays nil unless given.
type optionalBool struct{ v **bool }

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, not %q", s)
	}
	*b.v = &v
	return nil
}

func (b *optionalBool) String() string {
	if b.v == nil || *b.v == nil {
		return ""
	}
	return strconv.FormatBool(**b.v)
}

func (b *optionalBool) Type() string { return "bool" }

// validate checks the syntax of the flags, without a cluster.
func (f *proposalFlags) validate() error {
	if err := f.override.Validate(); err != nil {
		return err
	}
	return proposal.ValidateOptions(f.opts)
}

func completeCiliumVersions(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, v := range ciliumver.Supported() {
		out = append(out, v.String())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// detectCluster reads and analyses the cluster.
func detectCluster(ctx context.Context, cl *kube.Clients) (*detect.Cluster, error) {
	return detectClusterWith(ctx, cl, detect.Override{})
}

// detectClusterWith is detectCluster with the user's word on the old CNI
// (--from, --old-pod-cidr) over detection's.
func detectClusterWith(ctx context.Context, cl *kube.Clients, ov detect.Override) (*detect.Cluster, error) {
	snap, err := detect.Fetch(ctx, cl.Kube, cl.Dynamic)
	if err != nil {
		return nil, cl.Classify(err, "reading the cluster")
	}
	snap.KubeconfigCluster = cl.ClusterName
	snap.APIServerURL = cl.Server
	return detect.AnalyzeWith(snap, ov), nil
}

// addStrategyFlag adds --strategy, shared by plan, values, node and rollout.
func addStrategyFlag(cmd *cobra.Command, strategy *string) {
	cmd.Flags().StringVar(strategy, "strategy", "",
		"migration method: dual-overlay (node by node: drain, reboot) or in-place (Cilium takes every node at once, pods are restarted namespace by namespace) (default: the installed Cilium's, else dual-overlay)")
	_ = cmd.RegisterFlagCompletionFunc("strategy", cobra.FixedCompletions(proposal.Strategies(), cobra.ShellCompDirectiveNoFileComp))
}
