package cmd

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
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
}

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

// generateValues resolves the proposal for the cluster, refuses an unsafe
// one, and generates the initial and final values with the user's on top.
func generateValues(c *detect.Cluster, opts proposal.Options, user map[string]any, userFile string) (*proposal.Proposal, *values.Doc, *values.Doc, []string, error) {
	p, err := proposal.Propose(c, opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if unsafe := proposal.Safety(c, p); len(unsafe) > 0 {
		return nil, nil, nil, nil, unsafe[0]
	}
	in := values.Input{
		Version:              p.Version,
		PodCIDR:              p.PodCIDR,
		MaskSize:             p.MaskSize,
		TunnelProtocol:       p.TunnelProtocol,
		TunnelPort:           p.TunnelPort,
		ClusterName:          p.ClusterName,
		KubeProxyReplacement: p.KubeProxyReplacement,
		K8sServiceHost:       p.K8sServiceHost,
		K8sServicePort:       p.K8sServicePort,
		OperatorReplicas:     p.OperatorReplicas,
		User:                 user,
		UserFile:             userFile,
	}
	in.Strategy, in.IPv4NativeRoutingCIDR = p.Strategy, p.IPv4NativeRoutingCIDR
	in.CNIConfPath, in.CNIBinPath = p.CNIConfPath, p.CNIBinPath
	initial, final, warnings, err := values.Generate(in)
	return p, initial, final, warnings, err
}

// addStrategyFlag adds --strategy, shared by plan, values, node and rollout.
func addStrategyFlag(cmd *cobra.Command, strategy *string) {
	cmd.Flags().StringVar(strategy, "strategy", "",
		"migration method: dual-overlay (node by node: drain, reboot) or in-place (Cilium takes every node at once, pods are restarted namespace by namespace) (default: the installed Cilium's, else dual-overlay)")
	_ = cmd.RegisterFlagCompletionFunc("strategy", cobra.FixedCompletions(proposal.Strategies(), cobra.ShellCompDirectiveNoFileComp))
}
