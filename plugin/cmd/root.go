// Package cmd is the command layer of kubectl cni-migrate: cobra commands
// with an options struct each, whose RunE calls Complete, Validate and Run.
// It is the only package that imports cobra; the work is done in the other
// packages under plugin/.
package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// BuildInfo is stamped into the binary by the linker (see Makefile).
type BuildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Env is what the commands read from the process environment, passed in so
// that nothing below main reads globals.
type Env struct {
	// NoColor is the NO_COLOR environment variable.
	NoColor string
	// ProbeEndpoint (KUBECTL_CNI_MIGRATE_PROBE_ENDPOINT) sends the
	// connectivity checks to this URL instead of the probe pods through the
	// API server: the kwok e2e suite's stand-in for pods that cannot answer.
	ProbeEndpoint string
}

// common is shared by every command.
type common struct {
	configFlags *genericclioptions.ConfigFlags
	streams     genericiooptions.IOStreams
	env         Env
}

func (c *common) clients() (*kube.Clients, error) {
	cl, err := kube.New(c.configFlags)
	if err == nil {
		errOut := c.streams.ErrOut
		cl.Outage.Notify = func(msg string) { fmt.Fprintln(errOut, msg) }
	}
	return cl, err
}

// namespaceFlag returns -n when the user gave it, else "".
func (c *common) namespaceFlag(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("namespace"); f != nil && f.Changed && c.configFlags.Namespace != nil {
		return *c.configFlags.Namespace
	}
	return ""
}

func (c *common) errStyle() output.Style { return output.NewStyle(c.streams.ErrOut, c.env.NoColor) }
func (c *common) outStyle() output.Style { return output.NewStyle(c.streams.Out, c.env.NoColor) }

const rootLong = `Migrate a live Kubernetes cluster's CNI to Cilium without downtime.

kubectl cni-migrate detects the network the cluster runs today (Flannel),
checks that a migration is safe, and generates what the Cilium "dual overlay"
migration needs: Helm values for the migration and after it, and the
CiliumNodeConfig that moves nodes over one at a time.

Start with:
  kubectl cni-migrate plan`

// NewCmdCNIMigrate returns the root command.
func NewCmdCNIMigrate(streams genericiooptions.IOStreams, info BuildInfo, env Env) *cobra.Command {
	c := &common{
		configFlags: genericclioptions.NewConfigFlags(true),
		streams:     streams,
		env:         env,
	}
	root := &cobra.Command{
		Use:          "cni-migrate",
		Short:        "Migrate a cluster's CNI to Cilium, node by node, without downtime",
		Long:         rootLong,
		SilenceUsage: true,
		// main prints errors itself, on one line, and picks the exit code.
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl cni-migrate"},
		// kubectl (>= 1.26) completes a plugin through the
		// kubectl_complete-cni_migrate script, which runs __complete; a
		// `completion` command would only write scripts for a
		// `cni-migrate` binary that does not exist.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errs.Newf(errs.Usage, "run 'kubectl cni-migrate --help' for the commands", "unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return errs.Newf(errs.Usage, fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()), "%s", strings.TrimSpace(err.Error()))
	})
	c.configFlags.AddFlags(root.PersistentFlags())
	registerKubeconfigCompletions(root, c)

	root.AddCommand(
		newCmdPlan(c),
		newCmdValues(c),
		newCmdNodeConfig(c),
		newCmdFinalize(c),
		newCmdRollout(c),
		newCmdNode(c),
		newCmdRollback(c),
		newCmdStatus(c),
		newCmdConnectivity(c),
		newCmdCalicoPolicies(c),
		newCmdPolicyBridge(c, info.Version),
		newCmdPolicyReport(c),
		newCmdVersion(c, info),
	)
	return root
}

// Run executes the root command and returns the error to report, if any.
// It exists so tests can drive the whole CLI in-process.
func Run(cmd *cobra.Command, args []string) error {
	cmd.SetArgs(args)
	return cmd.Execute()
}

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int { return errs.Code(err) }

// FormatError renders err as the one line main prints.
func FormatError(err error) string {
	return "error: " + errs.OneLine(err.Error())
}
