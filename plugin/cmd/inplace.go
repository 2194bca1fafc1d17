package cmd

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/inplace"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
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
// (node with --strategy in-place) and prints the summary.
func runInPlace(ctx context.Context, c *common, cl *kube.Clients, cluster *detect.Cluster, nodes []string, opts inplace.Options, format string) error {
	summary, err := rollout.InPlace(ctx, cl, cluster, nodes, opts, c.streams.ErrOut, c.errStyle())
	return printResult(c.streams.Out, format, summary, err)
}

// printResult writes the summary s as -o format asks (nothing without -o,
// or when there is no summary) and returns runErr, else the write's error.
func printResult[T any](w io.Writer, format string, s *T, runErr error) error {
	if format != "" && s != nil {
		if err := printStructured(w, s, format); err != nil && runErr == nil {
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
		return errs.Wrap(errs.IO, err, "cannot write the summary: "+errs.OneLine(err.Error()), "check stdout")
	}
	return nil
}
