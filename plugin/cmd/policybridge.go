package cmd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/finalize"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/status"
)

const policyBridgeLong = `Keep Cilium aware of the pods still on the old CNI's network while the
migration runs: for each of them (running, not on the host's network, with an
address outside Cilium's pod CIDR) write a CiliumEndpoint with the pod's
address, its node's address and the security identity of its labels (an
existing CiliumIdentity with the same labels, or one created), so that every
Cilium agent matches the pod by its labels: NetworkPolicies and Cilium
policies select pods on both networks alike, and Cilium can enforce them from
the first migrated node on. An endpoint goes with its pod (owner reference),
is written again when an agent restart deletes it, and is deleted when the
pod moves to Cilium. Only objects labelled app.kubernetes.io/managed-by=
cni-migrate are touched. See docs/policy-continuity.md.

Runs until interrupted, one round every --interval; --once runs one round;
--remove deletes every CiliumEndpoint the bridge wrote (the identities it
created are left to Cilium's identity garbage collection: a pod that moved to
Cilium may carry one now).

--deploy runs it in the cluster, so that it keeps working between the
plugin's commands: a Deployment of the plugin's --image in Cilium's
namespace, and a DaemonSet in the Cilium agent's image on every node that
keeps the node rules the real nodes need (no NAT from the old pod network to
Cilium's; for Calico and Canal, felix's chain ahead of Cilium's and Cilium's
packet mark cleared before felix reads it). With values --policy-bridge,
deploy it (and, from Calico or Canal, calico-policies --apply) after the helm
install and before the first node. finalize removes it first thing, and so
does a rollback that leaves no node on Cilium; --undeploy removes it by hand.`

const policyBridgeExample = `  # Keep the CiliumEndpoints of the old network's pods, every 5 seconds
  kubectl cni-migrate policy-bridge

  # One round, saying what it writes
  kubectl cni-migrate policy-bridge --once

  # Delete every CiliumEndpoint the bridge wrote
  kubectl cni-migrate policy-bridge --remove

  # Run it in the cluster, with the node rules
  kubectl cni-migrate policy-bridge --deploy --image ghcr.io/cni-migrate/kubectl-cni-migrate:v0.9.0`

type policyBridgeOptions struct {
	*common
	once, remove       bool
	deploy, undeploy   bool
	image              string
	interval, timeout  time.Duration
	wait               bool
	namespace, version string
}

// pluginImage is the repository of the plugin's release images (make
// image IMAGE_PUSH=1 in .github/workflows/release.yaml).
const pluginImage = "ghcr.io/cni-migrate/kubectl-cni-migrate"

func newCmdPolicyBridge(c *common, version string) *cobra.Command {
	o := &policyBridgeOptions{common: c, version: version}
	cmd := &cobra.Command{
		Use:     "policy-bridge",
		Short:   "Give the old network's pods CiliumEndpoints with the identity of their labels, so Cilium's policies match them during the migration",
		Long:    policyBridgeLong,
		Example: policyBridgeExample,
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
	f := cmd.Flags()
	f.BoolVar(&o.once, "once", false, "run one round and exit")
	f.BoolVar(&o.remove, "remove", false, "delete every CiliumEndpoint the bridge wrote, and exit")
	f.DurationVar(&o.interval, "interval", 5*time.Second, "time between rounds")
	f.BoolVar(&o.deploy, "deploy", false, "run the bridge in the cluster (a Deployment in the plugin's --image) with the node rules (a DaemonSet in the Cilium agent's image on the nodes not migrated), and exit")
	f.BoolVar(&o.undeploy, "undeploy", false, "delete what --deploy created and the bridge's CiliumEndpoints, and exit")
	f.StringVar(&o.image, "image", "", "the plugin's image for --deploy (default "+pluginImage+":VERSION, which every release pushes)")
	f.BoolVar(&o.wait, "wait", true, "with --deploy, wait until the bridge and the node rules on every node are Ready (exit code 11 after --timeout)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long --deploy waits for the bridge to be Ready")
	return cmd
}

func (o *policyBridgeOptions) Complete(cmd *cobra.Command) error {
	o.namespace = o.namespaceFlag(cmd)
	return nil
}

func (o *policyBridgeOptions) Validate() error {
	n := 0
	for _, b := range []bool{o.once, o.remove, o.deploy, o.undeploy} {
		if b {
			n++
		}
	}
	if n > 1 {
		return errs.New(errs.Usage, "--once, --remove, --deploy and --undeploy exclude each other", "run one, then the other")
	}
	if o.deploy && o.image == "" && !publishedVersion(o.version) {
		return errs.New(errs.Usage, "--deploy needs --image: this build ("+o.version+") has no published image",
			"build the plugin's image (make image, or make image IMAGE_PUSH=1 IMAGE_REPO=REGISTRY/REPO) and pass it with --image")
	}
	if o.interval <= 0 {
		return errs.New(errs.Usage, "--interval must be positive", "pass a duration such as 5s")
	}
	if o.timeout <= 0 {
		return errs.New(errs.Usage, "--timeout must be positive", "pass a duration such as 5m")
	}
	return nil
}

// releaseTag is a tag the release workflow pushes an image for
// (vX.Y.Z, or vX.Y.Z-PRERELEASE with no dash in PRERELEASE).
var releaseTag = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$`)

// publishedVersion tells whether a build's version has its image at
// pluginImage: a release tag, not "dev", a bare commit (git describe
// --always before the first tag), a describe past a tag (v1.2.3-4-gHASH)
// or a dirty tree.
func publishedVersion(v string) bool {
	return releaseTag.MatchString(v) && !strings.HasSuffix(v, "-dirty")
}

// policyBridgeNeeds are the bridge's permissions.
func policyBridgeNeeds(ciliumNS string) []access.Need {
	var out []access.Need
	add := func(group, resource, ns, why string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, access.Need{Group: group, Resource: resource, Verb: v, Namespace: ns, Why: why})
		}
	}
	add("", "pods", "", "find the pods on the old network", "list", "watch")
	add("", "namespaces", "", "read the namespace labels of their identities", "list", "watch")
	add("", "configmaps", ciliumNS, "read Cilium's pod CIDR and cluster name (cilium-config)", "get", "list", "watch")
	add("cilium.io", "ciliumendpoints", "", "write the old network's pods' CiliumEndpoints", "list", "watch", "create", "patch", "delete")
	add("cilium.io", "ciliumidentities", "", "give label sets without an identity one", "list", "watch", "create")
	return out
}

func (o *policyBridgeOptions) Run(ctx context.Context) error {
	cl, err := o.clients()
	if err != nil {
		return err
	}
	ns := o.namespace
	if ns == "" {
		if ns, err = ciliumNamespace(ctx, cl); err != nil {
			return err
		}
	}
	if err := access.Require(ctx, cl.Kube, policyBridgeNeeds(ns), "kubectl cni-migrate policy-bridge",
		"apply docs/rbac.yaml and bind it to your user (or to the bridge's ServiceAccount)"); err != nil {
		return cl.Classify(err, "checking permissions")
	}
	errOut := o.streams.ErrOut
	if o.deploy {
		return o.runDeploy(ctx, cl, ns)
	}
	if o.undeploy {
		return o.runUndeploy(ctx, cl, ns)
	}
	if o.remove {
		gone, err := policybridge.Remove(ctx, cl.Dynamic, false)
		for _, g := range gone {
			fmt.Fprintf(o.streams.Out, "%s deleted\n", g)
		}
		if len(gone) == 0 && err == nil {
			fmt.Fprintln(errOut, "nothing of the bridge's to delete")
		}
		return cl.Classify(err, "deleting what the bridge wrote")
	}
	say := func(s string) { fmt.Fprintln(errOut, s) }
	// One round reads the cluster with one list of each; a bridge that
	// keeps running reads the informer caches the watches keep current.
	read := func(ctx context.Context) (policybridge.Input, error) {
		return policybridge.Read(ctx, cl.Kube, cl.Dynamic, ns)
	}
	if !o.once {
		c := policybridge.NewCache(cl.Kube, cl.Dynamic, ns)
		if err := c.Start(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return cl.Classify(err, "watching the cluster")
		}
		read = func(context.Context) (policybridge.Input, error) { return c.Input() }
	}
	last := -1
	for {
		n, err := bridgeRound(ctx, cl, read, say)
		switch {
		case err != nil && (o.once || errors.Is(err, context.Canceled)):
			return cl.Classify(err, "bridging the old network's pods")
		case err != nil:
			// A controller keeps going: the next round reads the cluster anew.
			say("warning: " + errs.OneLine(err.Error()))
		case n != last:
			say(fmt.Sprintf("%d pods on the old network have their CiliumEndpoint", n))
			last = n
		}
		if o.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

// bridgeRound reads the cluster, reconciles and applies the plan; it
// returns the number of pods bridged.
func bridgeRound(ctx context.Context, cl *kube.Clients, read func(context.Context) (policybridge.Input, error), say func(string)) (int, error) {
	in, err := read(ctx)
	if err != nil {
		return 0, err
	}
	plan := policybridge.Reconcile(in)
	return plan.Bridged, policybridge.Apply(ctx, cl.Dynamic, plan, say)
}

// ciliumNamespace finds where Cilium's agents run (their DaemonSet), the
// default namespace when there is none yet.
func ciliumNamespace(ctx context.Context, cl *kube.Clients) (string, error) {
	l, err := cl.Kube.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel})
	if err != nil {
		return "", cl.Classify(err, "finding Cilium's DaemonSet")
	}
	var found []string
	for _, ds := range l.Items {
		found = append(found, ds.Namespace)
	}
	switch len(found) {
	case 0:
		return nodeconfig.DefaultNamespace, nil
	case 1:
		return found[0], nil
	}
	return "", errs.Newf(errs.Usage, "pass Cilium's namespace with -n", "Cilium DaemonSets in several namespaces: %s", strings.Join(found, ", "))
}

// runDeploy applies the bridge's Deployment and the node rules' DaemonSet
// (docs/policy-continuity.md), with the old network and Cilium's pool of
// the cluster.
func (o *policyBridgeOptions) runDeploy(ctx context.Context, cl *kube.Clients, ns string) error {
	cluster, err := detectCluster(ctx, cl)
	if err != nil {
		return err
	}
	if cluster.CNI == nil {
		return errs.New(errs.Precondition, "no old CNI found: there is nothing to bridge", "deploy the bridge while the migration runs, before finalize")
	}
	// The networks as status reads them: the old CNI's pod CIDRs and
	// Cilium's pool, both from what detection read.
	nets, warnings := status.NetworksOf(cluster)
	if len(warnings) > 0 {
		return errs.New(errs.Precondition, warnings[0], "check the old CNI's and Cilium's configuration (kubectl cni-migrate plan)")
	}
	if len(nets.New) == 0 {
		return errs.New(errs.Precondition, "cilium-config has no cluster-pool-ipv4-cidr: the bridge needs Cilium's cluster-pool IPAM to tell its pods from the old network's",
			"install Cilium with kubectl cni-migrate values' values-initial.yaml first")
	}
	dsName := cluster.Cilium.DaemonSet
	if dsName == "" {
		dsName = "cilium"
	}
	ds, err := cl.Kube.AppsV1().DaemonSets(ns).Get(ctx, dsName, metav1.GetOptions{})
	if err != nil {
		return cl.Classify(err, "reading Cilium's DaemonSet")
	}
	agentImage, _ := finalize.AgentImage(ds)
	if agentImage == "" {
		return errs.Newf(errs.Precondition, "check Cilium's installation", "DaemonSet %s/%s has no cilium-agent container", ns, dsName)
	}
	image := o.image
	if image == "" {
		image = pluginImage + ":" + o.version
	}
	felix := cluster.CNI.Name == "calico" || cluster.CNI.Name == "canal"
	d := policybridge.Deployment{Namespace: ns, Image: image, AgentImage: agentImage, Interval: int(o.interval / time.Second), Rules: policybridge.NodeRules{Old: nets.Old, Cilium: nets.New, Felix: felix, Interval: 1}}
	if felix {
		if m := cluster.CNI.FelixMarkMask; m&policybridge.GuardMark != 0 {
			return errs.Newf(errs.Precondition, fmt.Sprintf("give felix an iptablesMarkMask without bit %#x (FelixConfiguration default, or FELIX_IPTABLESMARKMASK)", policybridge.GuardMark),
				"felix's iptablesMarkMask %#x holds bit %#x, which the bridge's node rules use to require felix's verdict between the networks", m, policybridge.GuardMark)
		}
		d.Rules.FelixAcceptMark = policybridge.FelixAcceptBit(cluster.CNI.FelixMarkMask)
	}
	for _, u := range d.Objects() {
		// Namespace("") is the cluster-scoped path.
		out, err := cl.Dynamic.Resource(policybridge.GVR(u)).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u,
			metav1.ApplyOptions{FieldManager: nodeconfig.FieldManager, Force: true})
		if err != nil {
			return cl.Classify(err, "applying "+u.GetKind()+" "+u.GetName())
		}
		fmt.Fprintf(o.streams.Out, "%s/%s serverside-applied\n", strings.ToLower(u.GetKind()), out.GetName())
	}
	old := make([]string, len(nets.Old))
	for i, p := range nets.Old {
		old[i] = p.String()
	}
	fmt.Fprintf(o.streams.ErrOut, "the bridge runs %s in %s; the node rules (%s, felix: %v) run in %s on every node\n",
		image, ns, strings.Join(old, ","), felix, agentImage)
	if !o.wait {
		return nil
	}
	return o.waitReady(ctx, cl, ns)
}

// waitReady waits until the bridge and its node rules are Ready
// (policybridge.State.Ready), saying how far they are when that changes.
func (o *policyBridgeOptions) waitReady(ctx context.Context, cl *kube.Clients, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	last := ""
	for {
		st, err := policybridge.ReadState(ctx, cl.Kube, ns)
		if err == nil && st.Ready() {
			fmt.Fprintf(o.streams.ErrOut, "the policy bridge is Ready: %s\n", st)
			return nil
		}
		if err == nil && st.String() != last {
			last = st.String()
			fmt.Fprintf(o.streams.ErrOut, "waiting for the policy bridge: %s\n", last)
		}
		if err != nil && ctx.Err() == nil {
			return cl.Classify(err, "reading the policy bridge")
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return errs.Newf(errs.AgentNotReady,
					fmt.Sprintf("see why with kubectl -n %s get pods -l %s=%s and kubectl -n %s describe pods -l %s=%s, then run --deploy again (or raise --timeout)", ns, policybridge.ComponentLabel, policybridge.Component, ns, policybridge.ComponentLabel, policybridge.Component),
					"the policy bridge was not Ready within %s: %s", o.timeout, last)
			}
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// runUndeploy deletes what runDeploy applied and the bridge's endpoints.
func (o *policyBridgeOptions) runUndeploy(ctx context.Context, cl *kube.Clients, ns string) error {
	gone, err := policybridge.Undeploy(ctx, cl.Dynamic, ns, false)
	for _, g := range gone {
		fmt.Fprintf(o.streams.Out, "%s deleted\n", g)
	}
	if len(gone) == 0 && err == nil {
		fmt.Fprintln(o.streams.ErrOut, "nothing of the bridge's to delete")
	}
	return cl.Classify(err, "deleting the bridge")
}
