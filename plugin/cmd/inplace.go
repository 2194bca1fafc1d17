package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/inplace"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// dualOverlayFlags are the flags of node and rollout that only the
// dual-overlay method uses (in-place neither drains, labels, restarts the
// agent, reboots nor runs a probe pod, and goes namespace by namespace).
func dualOverlayFlags() []string {
	return []string{"node-label", "nodeconfig-name", "allow-control-plane", "agent-timeout", "reboot", "reboot-command",
		"reboot-timeout", "probe-image", "probe-timeout", "batch", "max-unavailable", "pause-between"}
}

// strategyFlags checks the flags given against the strategy: the
// dual-overlay-only flags with in-place, --restart-timeout with
// dual-overlay. why says where the strategy came from.
func strategyFlags(cmd *cobra.Command, strategy, why string) error {
	var set []string
	switch strategy {
	case proposal.InPlace:
		for _, name := range dualOverlayFlags() {
			if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
				set = append(set, "--"+name)
			}
		}
		if len(set) > 0 {
			return errs.Newf(errs.Usage, "drop them, or pass --strategy dual-overlay if that is the method you use",
				"%s %s not apply to the in-place method (%s), which restarts pods instead of draining and rebooting nodes", strings.Join(set, ", "), map[bool]string{true: "does", false: "do"}[len(set) == 1], why)
		}
	default:
		if f := cmd.Flags().Lookup("restart-timeout"); f != nil && f.Changed {
			return errs.Newf(errs.Usage, "drop it, or pass --strategy in-place if that is the method you use",
				"--restart-timeout applies to the in-place method only, and this run is dual-overlay (%s)", why)
		}
	}
	return nil
}

// resolveStrategy is --strategy, else the installed Cilium's, else
// dual-overlay, with why.
func resolveStrategy(flag string, c *detect.Cluster) (string, string) {
	if flag != "" {
		return flag, "--strategy " + flag
	}
	if s, why := proposal.DetectStrategy(c); s != "" {
		return s, why
	}
	return proposal.DualOverlay, "the default"
}

// inPlaceOptions are the in-place restart's options from the node flags:
// the eviction flags of the drain, and --restart-timeout.
func (f *migrateFlags) inPlaceOptions() inplace.Options {
	return inplace.Options{
		Namespace:          f.opts.Namespace,
		Timeout:            f.opts.DrainTimeout,
		GracePeriodSeconds: f.opts.GracePeriodSeconds,
		DeleteEmptyDirData: f.opts.DeleteEmptyDirData,
		DisableEviction:    f.opts.DisableEviction,
		Force:              f.opts.Force,
		RestartTimeout:     f.restartTimeout,
		DryRun:             f.opts.DryRun,
		ResumeCommand:      f.opts.ResumeCommand,
	}
}

// runInPlace restarts the pods of nodes that are not on Cilium's pod CIDR
// (node and rollout with --strategy in-place) and prints the summary.
func runInPlace(ctx context.Context, c *common, cl *kube.Clients, cluster *detect.Cluster, nodes []string, opts inplace.Options, format string) error {
	errOut := c.streams.ErrOut
	style := c.errStyle()
	r := inplace.New(cl, opts, migrate.NewProgress(errOut, output.IsTerminal(errOut), style, nil))
	plan, err := r.Preflight(ctx, cluster, nodes)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(errOut, style.Yellow("warning:"), w)
	}
	mode := ""
	if opts.DryRun {
		mode = " (server dry run: every write is sent with dryRun=All)"
	}
	var pool []string
	for _, p := range plan.Pool {
		pool = append(pool, p.String())
	}
	fmt.Fprintf(errOut, "in-place: Cilium %s in %s owns every node's CNI config, pod CIDR %s; restarting the pods of %d %s that are not on it, namespace by namespace (evictions, PodDisruptionBudgets honoured)%s\n",
		cluster.Cilium.Version, plan.Namespace, strings.Join(pool, ", "), len(plan.Nodes), output.Plural(len(plan.Nodes), "node", "nodes"), mode)
	summary, runErr := r.Run(ctx, plan)
	inplace.PrintSummary(errOut, summary, style)
	if runErr == nil && !opts.DryRun {
		fmt.Fprintln(errOut, "next: kubectl cni-migrate status, then kubectl cni-migrate finalize")
	}
	if format != "" {
		if err := printStructured(c.streams.Out, summary, format); err != nil && runErr == nil {
			return err
		}
	}
	return runErr
}

// printStructured writes v as JSON or YAML.
func printStructured(w io.Writer, v any, format string) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	} else {
		data = append(data, '\n')
	}
	if _, err := w.Write(data); err != nil {
		return errs.Wrap(errs.IO, err, "cannot write the summary: "+oneLineErr(err), "check stdout")
	}
	return nil
}

// runInPlace is rollout --strategy in-place: every selected node's pods,
// under the rollout lock.
func (o *rolloutOptions) runInPlace(ctx context.Context, cl *kube.Clients, cluster *detect.Cluster, nodes []corev1.Node) error {
	names := make([]string, len(nodes))
	for i := range nodes {
		names[i] = nodes[i].Name
	}
	opts := o.inPlaceOptions()
	if err := opts.Validate(); err != nil {
		return err
	}
	if !opts.DryRun {
		runCtx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		held, err := lock.Acquire(ctx, cl.Kube, lock.DefaultNamespace, lock.DefaultName, identity(), lock.DefaultDuration, o.forceUnlock, nil)
		if err != nil {
			return cl.Classify(err, "taking the rollout lock")
		}
		if held.TookOver != "" {
			fmt.Fprintf(o.streams.ErrOut, "took over the rollout lock from %s\n", held.TookOver)
		}
		go held.KeepAlive(runCtx, func(err error) { cancel(err) })
		defer func() {
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer rcancel()
			_ = held.Release(rctx)
		}()
		err = runInPlace(runCtx, o.common, cl, cluster, names, opts, o.output)
		if cause := context.Cause(runCtx); err != nil && cause != nil && errs.Code(cause) == errs.Locked {
			return cause
		}
		return err
	}
	return runInPlace(ctx, o.common, cl, cluster, names, opts, o.output)
}
