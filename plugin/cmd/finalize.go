package cmd

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/finalize"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

const finalizeLong = `Finish the migration once every node is migrated:

  1. write values-final.yaml (and values-initial.yaml) into --output-dir and
     show what changes between them
  2. helm upgrade Cilium to the final values: printed for you to run, or run
     with --yes when helm is on PATH; run finalize again after upgrading
  3. restart the Cilium agents and wait for them
  4. delete the CiliumNodeConfig
  5. with --remove-old-cni: delete the old CNI's objects, listed first
  6. remove the plugin's node labels and annotations (unless --keep-state)

Each step is recognised from the cluster, so finalize can be run again after
an interruption. Refuses while any node is not migrated.`

const finalizeExample = `  # Write the final values and print the helm upgrade to run
  kubectl cni-migrate finalize --output-dir .

  # Run helm too, and remove Flannel's objects
  kubectl cni-migrate finalize --output-dir . --yes --remove-old-cni

  # Show what would happen
  kubectl cni-migrate finalize --remove-old-cni --dry-run=client`

type finalizeOptions struct {
	*common
	outputDir    string
	valuesFile   string
	user         map[string]any
	yes          bool
	removeOldCNI bool
	keepState    bool
	release      string
	chart        string
	helm         string
	label        string
	ncName       string
	timeout      time.Duration
	dryRun       cmdutil.DryRunStrategy
	namespace    string
}

func newCmdFinalize(c *common) *cobra.Command {
	o := &finalizeOptions{common: c}
	cmd := &cobra.Command{
		Use:     "finalize",
		Short:   "Finish the migration: final Helm values, restart Cilium, delete the CiliumNodeConfig and the old CNI",
		Long:    finalizeLong,
		Example: finalizeExample,
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
	f.StringVar(&o.outputDir, "output-dir", ".", "where values-initial.yaml and values-final.yaml are written")
	f.StringVarP(&o.valuesFile, "values", "f", "", "a Helm values file merged on top of the generated values (the one used with `values`)")
	f.BoolVarP(&o.yes, "yes", "y", false, "run the helm upgrade (helm must be on PATH) instead of printing it")
	f.BoolVar(&o.removeOldCNI, "remove-old-cni", false, "delete the old CNI's objects (listed before they are deleted)")
	f.BoolVar(&o.keepState, "keep-state", false, "keep the plugin's node labels and annotations")
	f.StringVar(&o.release, "release", "cilium", "Helm release name of Cilium")
	f.StringVar(&o.chart, "chart", "cilium/cilium", "Helm chart reference for the upgrade")
	f.StringVar(&o.helm, "helm", "helm", "helm binary to run with --yes")
	f.StringVar(&o.label, "node-label", nodeconfig.DefaultLabel, "the migration node label to remove (key=value)")
	f.StringVar(&o.ncName, "nodeconfig-name", nodeconfig.DefaultName, "name of the CiliumNodeConfig to delete")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long to wait for the Cilium agents to restart")
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.MarkFlagDirname("output-dir")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml")
	return cmd
}

func (o *finalizeOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.dryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return errs.Wrap(errs.Usage, err, err.Error(), "use --dry-run=none, client or server")
	}
	o.namespace = o.namespaceFlag(cmd)
	if o.valuesFile != "" {
		if o.user, err = values.LoadFile(o.valuesFile); err != nil {
			return err
		}
	}
	return nil
}

func (o *finalizeOptions) Validate() error {
	if _, _, err := nodeconfig.ParseLabel(o.label); err != nil {
		return err
	}
	if o.timeout <= 0 {
		return errs.New(errs.Usage, "--timeout must be positive", "pass a duration such as 10m")
	}
	return nil
}

func (o *finalizeOptions) Run(ctx context.Context) error {
	out := o.streams.ErrOut
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	cl, err := o.clients()
	if err != nil {
		return err
	}
	c, err := detectCluster(ctx, cl)
	if err != nil {
		return err
	}
	if !c.Cilium.Installed {
		return errs.New(errs.Precondition, "Cilium is not installed", "install it with values-initial.yaml and migrate the nodes first")
	}
	ns := o.namespace
	if ns == "" {
		ns = c.Cilium.Namespace
	}
	nodes, err := cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return cl.Classify(err, "listing nodes")
	}
	upgraded, err := finalize.Upgraded(ctx, cl.Kube, ns)
	if err != nil {
		return cl.Classify(err, "reading cilium-config")
	}
	served, err := nodeconfig.Served(cl.Kube.Discovery())
	if err != nil {
		return cl.Classify(err, "reading the cilium.io API versions")
	}
	ncVersion := finalize.NodeConfigAPIVersion(served)
	exists, err := finalize.NodeConfigExists(ctx, cl.Dynamic, ncVersion, ns, o.ncName)
	if err != nil {
		return cl.Classify(err, "reading the CiliumNodeConfig")
	}
	// The in-place method has no CiliumNodeConfig: its progress ConfigMap
	// plays that part (deleted once the agents run the final values).
	inPlace, err := finalize.InPlaceProgressExists(ctx, cl.Kube, ns)
	if err != nil {
		return cl.Classify(err, "reading ConfigMap "+ns+"/"+finalize.InPlaceProgress)
	}
	// Once Cilium runs with its final values and the CiliumNodeConfig is
	// gone, the nodes were finalized (and their state maybe cleaned): only
	// the remaining clean-up steps are left to do.
	if finished := upgraded && !exists && !inPlace; !finished {
		if left := finalize.NotDone(nodes.Items); len(left) > 0 {
			return finalize.NotDoneError(left)
		}
	}
	dry := o.dryRun != cmdutil.DryRunNone
	serverDry := o.dryRun == cmdutil.DryRunServer
	prefix := ""
	if dry {
		prefix = "(dry run) "
	}

	// 1-2: final values and the Helm upgrade.
	if !upgraded {
		p, initial, final, warnings, err := proposal.GenerateValues(c, proposal.Options{}, o.user, o.valuesFile)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			say("%s %s", o.errStyle().Yellow("warning:"), w)
		}
		say("Changes from values-initial.yaml to values-final.yaml:")
		for _, line := range changes(initial.Map(), final.Map(), "") {
			say("  %s", line)
		}
		finalPath := filepath.Join(o.outputDir, values.FinalFile)
		if !dry {
			paths, err := values.WriteFiles(o.outputDir, initial, final)
			if err != nil {
				return err
			}
			for _, path := range paths {
				say("wrote %s", path)
			}
		}
		args := finalize.HelmUpgradeArgs(o.release, o.chart, p.Version.String(), ns, finalPath)
		args[0] = o.helm
		helmPath, lookErr := exec.LookPath(o.helm)
		switch {
		case dry:
			say("%swould run: %s", prefix, shellJoin(args))
			say("%sthen: restart the Cilium agents, delete CiliumNodeConfig %s/%s%s", prefix, ns, o.ncName, o.removeOldCNIHint())
			return nil
		case !o.yes || lookErr != nil:
			if o.yes {
				say("%s not found on PATH: run the upgrade yourself", o.helm)
			}
			say("Next, upgrade Cilium to the final values:\n  %s", shellJoin(args))
			return errs.New(errs.WaitingForUpgrade, "Cilium still runs with its migration values",
				"run the helm upgrade above (or finalize --yes), then run kubectl cni-migrate finalize again")
		}
		say("running: %s", shellJoin(args))
		cmd := exec.CommandContext(ctx, helmPath, args[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return errs.Wrap(errs.Interrupted, ctx.Err(), "interrupted during the helm upgrade", "run kubectl cni-migrate finalize again")
			}
			return errs.Wrap(errs.HelmFailed, err, "helm upgrade failed: "+err.Error(), "fix what helm reported above, then run kubectl cni-migrate finalize again")
		}
		if upgraded, err = finalize.Upgraded(ctx, cl.Kube, ns); err != nil {
			return cl.Classify(err, "reading cilium-config")
		}
		if !upgraded {
			return errs.New(errs.HelmFailed, "after the helm upgrade cilium-config still has its migration values (custom-cni-conf: true, or enable-policy: never with the unmanaged-pod watcher off)",
				"check that --values does not set cni.customConf, then run finalize again")
		}
	} else {
		say("Cilium runs with its final values (custom-cni-conf off): helm upgrade done")
	}

	// 3-4: restart the agents, then drop the CiliumNodeConfig.
	if exists || inPlace {
		say("%srestarting the Cilium agents (DaemonSet %s/%s)", prefix, ns, c.Cilium.DaemonSet)
		if err := finalize.RestartAgents(ctx, cl.Kube, ns, c.Cilium.DaemonSet, o.timeout, serverDry, time.Now()); err != nil {
			return cl.Classify(err, "restarting the Cilium agents")
		}
		if exists {
			if _, err := finalize.DeleteNodeConfig(ctx, cl.Dynamic, ncVersion, ns, o.ncName, serverDry); err != nil {
				return cl.Classify(err, "deleting the CiliumNodeConfig")
			}
			say("%sdeleted CiliumNodeConfig %s/%s", prefix, ns, o.ncName)
		}
		if inPlace {
			if err := finalize.DeleteInPlaceProgress(ctx, cl.Kube, ns, serverDry); err != nil {
				return cl.Classify(err, "deleting ConfigMap "+ns+"/"+finalize.InPlaceProgress)
			}
			say("%sdeleted ConfigMap %s/%s (the in-place rollout's progress)", prefix, ns, finalize.InPlaceProgress)
		}
	} else {
		say("CiliumNodeConfig %s/%s is gone", ns, o.ncName)
	}

	// 5: the old CNI.
	removal, err := finalize.PlanRemoval(ctx, cl.Kube, c)
	if err != nil {
		return cl.Classify(err, "listing the old CNI's objects")
	}
	objs := removal.Objects
	switch {
	case removal.Manual != "":
		say("The old CNI is not removed by this plugin: %s", removal.Manual)
	case len(objs) == 0:
		say("no objects of the old CNI are left")
	case !o.removeOldCNI:
		say("The old CNI's objects stay (run finalize --remove-old-cni to delete them):")
		for _, obj := range objs {
			say("  %s", obj)
		}
	default:
		say("%sdeleting the old CNI's objects:", prefix)
		for _, obj := range objs {
			say("  %s", obj)
		}
		if _, err := finalize.Delete(ctx, cl.Kube, objs, serverDry); err != nil {
			return cl.Classify(err, "deleting the old CNI")
		}
	}
	if len(objs) > 0 {
		for _, k := range removal.Kept {
			say("Kept: %s", k)
		}
	}

	// 6: the plugin's own state on the nodes.
	if !o.keepState {
		key, _, _ := nodeconfig.ParseLabel(o.label)
		cleaned, err := finalize.CleanNodes(ctx, cl.Kube, nodes.Items, key, serverDry)
		if err != nil {
			return cl.Classify(err, "cleaning node labels and annotations")
		}
		say("%sremoved the migration label and annotations from %d nodes", prefix, len(cleaned))
	}
	if c.CNI != nil {
		finalize.Leftovers(out, c.CNI.Name)
	}
	say("%sMigration finalized: Cilium owns the network on every node.", prefix)
	return nil
}

func (o *finalizeOptions) removeOldCNIHint() string {
	if o.removeOldCNI {
		return ", delete the old CNI's objects"
	}
	return ""
}

// changes lists the leaf keys that differ between two values maps, sorted.
func changes(a, b map[string]any, prefix string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		path := prefix + k
		am, aIsMap := a[k].(map[string]any)
		bm, bIsMap := b[k].(map[string]any)
		if aIsMap && bIsMap {
			out = append(out, changes(am, bm, path+".")...)
			continue
		}
		if fmt.Sprint(a[k]) != fmt.Sprint(b[k]) {
			out = append(out, fmt.Sprintf("%s: %v -> %v", path, show(a[k]), show(b[k])))
		}
	}
	sort.Strings(out)
	return out
}

func show(v any) string {
	if v == nil {
		return "(unset)"
	}
	return fmt.Sprint(v)
}

// shellJoin quotes argv for a shell where needed.
func shellJoin(args []string) string {
	var out []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}
