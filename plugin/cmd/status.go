package cmd

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/status"
)

const statusExample = `  # Where every node stands, the cluster's pods on each network, the next command
  kubectl cni-migrate status

  # The same for scripts (schema: docs/status-schema.md)
  kubectl cni-migrate status -o json

  # Refresh whenever nodes, pods or CiliumEndpoints change; Ctrl-C stops
  kubectl cni-migrate status --watch

  # How many API requests it took, and how long (-v=6: each request)
  kubectl cni-migrate status -v`

const statusLong = `Show where the migration stands.

Per node: its phase (the cni-migrate.io/phase annotation written by
'kubectl cni-migrate node', "none" before), whether it is cordoned, whether a
CiliumNodeConfig selects it, whether its Cilium agent pod is Ready, and how
many of its pods have an address in the old pod CIDR and in Cilium's pool.

For the cluster: the pods managed by Cilium out of all pods that are not on
the host network and are Running or Pending, counted as 'cilium status'
counts "Cluster Pods X/Y" (X: the CiliumEndpoints); the nodes done and those
remaining in the order a rollout takes them (nodes in progress first, then
workers, then control-plane nodes); and the next command to run.

It reads the cluster with paginated lists (--chunk-size objects a page),
keeps a few fields per pod, and makes no request per node or per pod.`

type statusOptions struct {
	*common
	output    string
	watch     bool
	verbose   int
	chunkSize int64
	namespace string
}

func newCmdStatus(c *common) *cobra.Command {
	o := &statusOptions{common: c}
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show each node's migration phase, the pods on each network and the next command",
		Long:    statusLong,
		Example: statusExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errs.Newf(errs.Usage, "status takes no arguments; see 'kubectl cni-migrate status --help'", "unexpected argument %q", args[0])
			}
			return nil
		},
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
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: a table)")
	fl.BoolVarP(&o.watch, "watch", "w", false, "print the status again whenever it changes, until interrupted (Ctrl-C exits 0)")
	fl.IntVarP(&o.verbose, "verbose", "v", 0, "report the API requests made and their time on stderr when done (-v); -v=6 also logs each request")
	fl.Lookup("verbose").NoOptDefVal = "1"
	fl.Int64Var(&o.chunkSize, "chunk-size", status.DefaultPageSize, "objects per page of each LIST")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *statusOptions) Complete(cmd *cobra.Command) error {
	o.namespace = o.namespaceFlag(cmd)
	return nil
}

func (o *statusOptions) Validate() error {
	if err := output.ValidateFormat(o.output); err != nil {
		return err
	}
	if o.chunkSize <= 0 {
		return errs.Newf(errs.Usage, "pass a positive --chunk-size, e.g. 500", "--chunk-size %d is not positive", o.chunkSize)
	}
	if o.verbose < 0 {
		return errs.Newf(errs.Usage, "pass -v or -v=N with N >= 1", "-v=%d is negative", o.verbose)
	}
	return nil
}

func (o *statusOptions) Run(ctx context.Context) error {
	start := time.Now()
	if o.verbose > 0 {
		var trace io.Writer
		if o.verbose >= 6 {
			trace = o.streams.ErrOut
		}
		reqs := status.NewRequests(trace)
		o.configFlags.WrapConfigFn = func(c *rest.Config) *rest.Config {
			c.Wrap(reqs.Wrap)
			return c
		}
		defer func() { reqs.Summary().Print(o.streams.ErrOut, time.Since(start)) }()
	}
	cl, err := o.clients()
	if err != nil {
		return err
	}
	md, err := metadata.NewForConfig(cl.Config)
	if err != nil {
		return errs.Wrap(errs.Usage, err, "invalid client configuration: "+errs.OneLine(err.Error()), "check your kubeconfig")
	}
	sc := status.Clients{Kube: cl.Kube, Metadata: md, Dynamic: cl.Dynamic}
	opts := status.Options{Namespace: o.namespace, PageSize: o.chunkSize, KubeconfigCluster: cl.ClusterName, APIServer: cl.Server}

	if !o.watch {
		r, err := status.Collect(ctx, sc, opts)
		if err != nil {
			return cl.Classify(err, "reading the migration status")
		}
		if o.output != "" {
			return output.PrintStructured(r, o.output, o.streams.Out)
		}
		return r.PrintTable(o.streams.Out, o.outStyle())
	}
	rd, err := status.NewRenderer(o.streams.Out, o.output, o.outStyle(), output.IsTerminal(o.streams.Out), time.Now)
	if err != nil {
		return err
	}
	if err := status.Watch(ctx, sc, opts, rd.Emit); err != nil {
		return cl.Classify(err, "watching the migration status")
	}
	return nil
}
