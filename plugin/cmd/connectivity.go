package cmd

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/connectivity"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/status"
)

const connectivityLong = `Check, from every node, that the old and the new network reach each other.

It deploys (or reuses) a probe DaemonSet in its own namespace
(cni-migrate-connectivity): one agnhost pod per node that tolerates every
taint, and a Service in front of them. In each round every probe pod, asked
through the API server's pod proxy, checks:

  pod        every other probe pod by its pod IP (old->new and new->old
             while the cluster is half migrated), and the source address
             the peer saw (SNAT)
  mtu        a UDP datagram that fills the pod MTU (--mtu) to every peer,
             echoed back: an MTU black hole fails it
  service    the probe Service by its ClusterIP
  dns        the probe Service by its DNS name, through the cluster DNS
  apiserver  the kubernetes Service (a TCP connection to the API server)

The matrix is printed by network (old/new) and by node pair, with each
failure named (which pair, which check, since when). Each probe dials at most
--max-peers peers a round (they rotate), so a round is a bounded number of
requests. The latest matrix is kept in the namespace for 'status'.

It exits 0 when the round is green, 19 when a check failed or a node has no
ready probe. --watch runs a round every --interval until interrupted.
--cleanup removes everything it made.`

const connectivityExample = `  # One round of checks, as a matrix (deploys the probes the first time)
  kubectl cni-migrate connectivity

  # Every 5 seconds until Ctrl-C
  kubectl cni-migrate connectivity --watch

  # For scripts (schema: docs/connectivity-schema.md)
  kubectl cni-migrate connectivity -o json

  # Gate a rollout on it: after each batch, green for 30s before the next
  kubectl cni-migrate rollout --gate connectivity --gate-settle 30s

  # Remove the probes
  kubectl cni-migrate connectivity --cleanup`

// probeFlags are the flags of the probe (connectivity, and the gate of
// rollout and node).
type probeFlags struct {
	namespace string
	image     string
	mtu       int
	maxPeers  int
	interval  time.Duration
	ready     time.Duration
}

func (f *probeFlags) add(cmd *cobra.Command, prefix string) {
	fl := cmd.Flags()
	// Not --namespace: that is kubectl's -n.
	nsFlag := prefix + "namespace"
	if prefix == "" {
		nsFlag = "probe-namespace"
	}
	fl.StringVar(&f.namespace, nsFlag, connectivity.DefaultNamespace, "namespace of the connectivity probes")
	fl.StringVar(&f.image, prefix+"image", connectivity.DefaultImage, "image of the probe pods (agnhost)")
	fl.IntVar(&f.mtu, prefix+"mtu", connectivity.DefaultMTU, "pod MTU the mtu check fills (a UDP datagram of MTU-28 bytes)")
	fl.IntVar(&f.maxPeers, prefix+"max-peers", 20, "peers each probe pod checks per round (they rotate between rounds)")
	fl.DurationVar(&f.interval, prefix+"interval", 5*time.Second, "time between rounds")
	fl.DurationVar(&f.ready, prefix+"ready-timeout", 3*time.Minute, "how long to wait for a ready probe pod on every node")
}

func (f *probeFlags) validate(prefix string) error {
	switch {
	case f.mtu < 576 || f.mtu > 65535:
		return errs.Newf(errs.Usage, "pass the pods' MTU, e.g. --"+prefix+"mtu 1450", "--%smtu %d is not an MTU between 576 and 65535", prefix, f.mtu)
	case f.maxPeers < 1:
		return errs.Newf(errs.Usage, "pass --"+prefix+"max-peers 1 or more", "--%smax-peers %d is not positive", prefix, f.maxPeers)
	case f.interval <= 0:
		return errs.Newf(errs.Usage, "pass a duration such as 5s", "--%sinterval %s is not positive", prefix, f.interval)
	case f.ready <= 0:
		return errs.Newf(errs.Usage, "pass a duration such as 3m", "--%sready-timeout %s is not positive", prefix, f.ready)
	case f.namespace == "" || f.image == "":
		return errs.New(errs.Usage, "the probe namespace and image cannot be empty", "drop the flag for the default")
	}
	return nil
}

// monitor deploys (or reuses) the probes, waits for them on every node and
// returns a Monitor that runs rounds and keeps the latest matrix.
func (f *probeFlags) monitor(ctx context.Context, c *common, cl *kube.Clients, onRound func(connectivity.Matrix)) (*connectivity.Monitor, error) {
	// Every permission first: nothing is made that could not be used.
	if err := access.Require(ctx, cl.Kube, access.Required(access.ConnectivityNeeds(f.namespace)), "running the connectivity probes",
		"apply docs/rbac.yaml (its connectivity rules) and bind it to your user"); err != nil {
		return nil, cl.Classify(err, "checking the connectivity probes' permissions")
	}
	did, err := connectivity.Ensure(ctx, cl.Kube, f.namespace, f.image, false)
	if err != nil {
		return nil, cl.Classify(err, "deploying the connectivity probes")
	}
	for _, d := range did {
		fmt.Fprintln(c.streams.ErrOut, d)
	}
	cluster, err := detectCluster(ctx, cl)
	if err != nil {
		return nil, err
	}
	nets, _ := status.NetworksOf(cluster)
	classify := func(ip string) string {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return connectivity.NetOther
		}
		switch nets.Classify(a) {
		case status.OldNetwork:
			return connectivity.NetOld
		case status.NewNetwork:
			return connectivity.NetNew
		}
		return connectivity.NetOther
	}
	var dialer connectivity.Dialer = connectivity.ProxyDialer{Client: cl.Kube, Namespace: f.namespace}
	if c.env.ProbeEndpoint != "" {
		dialer = connectivity.HTTPDialer{Base: c.env.ProbeEndpoint}
	}
	round := &connectivity.Round{Client: cl.Kube, Dialer: dialer, Namespace: f.namespace, Classify: classify,
		MTU: f.mtu, MaxPeers: f.maxPeers, Parallel: 8, Timeout: 15 * time.Second}
	waited, err := waitProbes(ctx, c, cl, f.namespace, f.ready)
	if err != nil {
		return nil, err
	}
	ns := f.namespace
	return &connectivity.Monitor{Round: round, Tracker: connectivity.NewTracker(), Interval: f.interval, OnRound: onRound,
		Save:  func(ctx context.Context, m connectivity.Matrix) error { return connectivity.Save(ctx, cl.Kube, ns, m) },
		Fresh: len(did) > 0 || waited}, nil
}

// waitProbes waits until the probe DaemonSet has a ready pod on every node
// it schedules to; when it does not, the rounds show which nodes lack one.
// It reports whether it had to wait.
func waitProbes(ctx context.Context, c *common, cl *kube.Clients, ns string, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	said := false
	for {
		ds, err := cl.Kube.AppsV1().DaemonSets(ns).Get(ctx, connectivity.Name, metav1.GetOptions{})
		if err != nil {
			return said, cl.Classify(err, "reading the probe DaemonSet")
		}
		s := ds.Status
		if s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled > 0 && s.NumberReady == s.DesiredNumberScheduled && s.UpdatedNumberScheduled == s.DesiredNumberScheduled {
			return said, nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(c.streams.ErrOut, "warning: %d of %d probe pods ready after %s\n", s.NumberReady, s.DesiredNumberScheduled, timeout)
			return said, nil
		}
		if !said {
			fmt.Fprintf(c.streams.ErrOut, "waiting for the probe pods (%d of %d ready)\n", s.NumberReady, s.DesiredNumberScheduled)
			said = true
		}
		select {
		case <-ctx.Done():
			return said, errs.New(errs.Interrupted, "interrupted while waiting for the probe pods", "run the same command again")
		case <-time.After(2 * time.Second):
		}
	}
}

type connectivityOptions struct {
	*common
	probeFlags
	output  string
	watch   bool
	cleanup bool
}

func newCmdConnectivity(c *common) *cobra.Command {
	o := &connectivityOptions{common: c}
	cmd := &cobra.Command{
		Use:     "connectivity",
		Short:   "Check pod, Service, DNS, API server and MTU connectivity between the old and the new network",
		Long:    connectivityLong,
		Example: connectivityExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errs.Newf(errs.Usage, "connectivity takes no arguments; see 'kubectl cni-migrate connectivity --help'", "unexpected argument %q", args[0])
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
	o.probeFlags.add(cmd, "")
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: tables)")
	fl.BoolVarP(&o.watch, "watch", "w", false, "run a round every --interval until interrupted (Ctrl-C exits with the last round's code)")
	fl.BoolVar(&o.cleanup, "cleanup", false, "delete the probes' namespace and everything in it")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *connectivityOptions) Complete(*cobra.Command) error { return nil }

func (o *connectivityOptions) Validate() error {
	if err := output.ValidateFormat(o.output); err != nil {
		return err
	}
	if o.cleanup && o.watch {
		return errs.New(errs.Usage, "--cleanup and --watch do not go together", "run one, then the other")
	}
	return o.probeFlags.validate("")
}

func (o *connectivityOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	if o.cleanup {
		found, err := connectivity.Cleanup(ctx, cl.Kube, o.namespace, false)
		if err != nil {
			return cl.Classify(err, "removing the connectivity probes")
		}
		if found {
			fmt.Fprintf(o.streams.ErrOut, "namespace/%s deleted\n", o.namespace)
		} else {
			fmt.Fprintf(o.streams.ErrOut, "nothing to remove: no namespace %s\n", o.namespace)
		}
		return nil
	}
	print := func(m connectivity.Matrix) {
		var err error
		if o.output != "" {
			err = output.PrintStructured(&m, o.output, o.streams.Out)
		} else {
			err = m.Print(o.streams.Out)
			if o.watch {
				fmt.Fprintln(o.streams.Out)
			}
		}
		if err != nil {
			fmt.Fprintln(o.streams.ErrOut, "warning:", err)
		}
	}
	mon, err := o.probeFlags.monitor(ctx, o.common, cl, print)
	if err != nil {
		return err
	}
	var last connectivity.Matrix
	for first := true; ; first = false {
		once := mon.Once
		if first {
			once = func(ctx context.Context) (connectivity.Matrix, error) { return mon.First(ctx, connectivity.Warmup) }
		}
		m, err := once(ctx)
		if err != nil {
			if ctx.Err() != nil && o.watch {
				break
			}
			return cl.Classify(err, "checking connectivity")
		}
		last = m
		if !o.watch {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.interval):
			continue
		}
		break
	}
	if !last.Green {
		return errs.Newf(errs.ConnectivityFailed, "the matrix above names the failing checks; fix the path, then run connectivity again", "connectivity: %s", last.Summary())
	}
	return nil
}

// gateFlags are --gate and its settings (rollout, node).
type gateFlags struct {
	gate    string
	settle  time.Duration
	timeout time.Duration
	probe   probeFlags
}

// gateConnectivity is the one gate there is.
const gateConnectivity = "connectivity"

func (g *gateFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&g.gate, "gate", "", "before the first node and after each batch, wait until this check passes: connectivity (see 'kubectl cni-migrate connectivity')")
	fl.DurationVar(&g.settle, "gate-settle", 30*time.Second, "how long the connectivity matrix must stay green")
	fl.DurationVar(&g.timeout, "gate-timeout", 5*time.Minute, "how long to wait for the settle period; then stop (exit 19), the nodes not yet begun untouched")
	g.probe.add(cmd, "gate-")
	_ = cmd.RegisterFlagCompletionFunc("gate", cobra.FixedCompletions([]string{gateConnectivity}, cobra.ShellCompDirectiveNoFileComp))
}

func (g *gateFlags) validate() error {
	switch g.gate {
	case "":
		return nil
	case gateConnectivity:
	default:
		return errs.Newf(errs.Usage, "use --gate connectivity, or leave it out", "--gate %q is not a gate", g.gate)
	}
	if g.settle < 0 || g.timeout <= 0 {
		return errs.New(errs.Usage, "--gate-settle must not be negative and --gate-timeout must be positive", "pass durations such as 30s and 5m")
	}
	if g.settle >= g.timeout {
		return errs.Newf(errs.Usage, "raise --gate-timeout above --gate-settle", "--gate-settle %s is not shorter than --gate-timeout %s: the gate could never pass", g.settle, g.timeout)
	}
	return g.probe.validate("gate-")
}

// open deploys the probes for the gate (nil Gate without --gate).
func (g *gateFlags) open(ctx context.Context, c *common, cl *kube.Clients) (*rollout.Gate, error) {
	if g.gate == "" {
		return nil, nil
	}
	mon, err := g.probe.monitor(ctx, c, cl, nil)
	if err != nil {
		return nil, err
	}
	return &rollout.Gate{Monitor: mon, Settle: g.settle, Timeout: g.timeout, Out: c.streams.ErrOut}, nil
}
