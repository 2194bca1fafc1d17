package rollout

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/inplace"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// InPlace restarts the pods of nodes that are not on Cilium's pod CIDR
// (node and rollout with --strategy in-place), writing its progress and the
// summary for people to out. It returns the summary (nil when the
// preflight failed) and the error.
func InPlace(ctx context.Context, cl *kube.Clients, cluster *detect.Cluster, nodes []string, opts inplace.Options, out io.Writer, style output.Style) (*inplace.Summary, error) {
	r := inplace.New(cl, opts, migrate.NewProgress(out, output.IsTerminal(out), style, nil))
	plan, err := r.Preflight(ctx, cluster, nodes)
	if err != nil {
		return nil, err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(out, style.Yellow("warning:"), w)
	}
	mode := ""
	if opts.DryRun {
		mode = " (server dry run: every write is sent with dryRun=All)"
	}
	var pool []string
	for _, p := range plan.Pool {
		pool = append(pool, p.String())
	}
	fmt.Fprintf(out, "in-place: Cilium %s in %s owns every node's CNI config, pod CIDR %s; restarting the pods of %d %s that are not on it, namespace by namespace (evictions, PodDisruptionBudgets honoured)%s\n",
		cluster.Cilium.Version, plan.Namespace, strings.Join(pool, ", "), len(plan.Nodes), output.Plural(len(plan.Nodes), "node", "nodes"), mode)
	summary, runErr := r.Run(ctx, plan)
	inplace.PrintSummary(out, summary, style)
	if runErr == nil && !opts.DryRun {
		fmt.Fprintln(out, "next: kubectl cni-migrate status, then kubectl cni-migrate finalize")
	}
	return summary, runErr
}

// RunInPlace is rollout --strategy in-place: InPlace on every selected
// node, under the rollout lock (not taken in a dry run).
func RunInPlace(ctx context.Context, cl *kube.Clients, cluster *detect.Cluster, sel *Selection, opts inplace.Options, lk Lock, out io.Writer, style output.Style) (*inplace.Summary, error) {
	names := make([]string, len(sel.Nodes))
	for i := range sel.Nodes {
		names[i] = sel.Nodes[i].Name
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return InPlace(ctx, cl, cluster, names, opts, out, style)
	}
	if err := requireBridge(ctx, cl, cluster, cmp.Or(opts.Namespace, cluster.Cilium.Namespace, "kube-system"), true); err != nil {
		return nil, err
	}
	held, release, err := lk.Hold(ctx, cl, out)
	if err != nil {
		return nil, err
	}
	defer release()
	summary, err := InPlace(held, cl, cluster, names, opts, out, style)
	if lost := LockLost(held); err != nil && lost != nil {
		return summary, lost
	}
	return summary, err
}
