package finalize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/calicopolicy"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

// Options are finalize's settings (the command's flags).
type Options struct {
	// Lock, when set, takes the migration lock before the first change
	// (not in a dry run) and returns the context to go on with, cancelled
	// when the lock is lost, the lock's notes and its release.
	Lock func(context.Context) (context.Context, Notes, func(), error)
	// OutputDir is where values-initial.yaml and values-final.yaml go.
	OutputDir string
	// User are the user's Helm values (--values, read from UserFile),
	// merged on top of the generated ones.
	User     map[string]any
	UserFile string
	// Yes runs the helm upgrade (Helm is the binary) instead of printing it.
	Yes  bool
	Helm string
	// Release and Chart name Cilium's Helm release and chart.
	Release, Chart string
	// RemoveOldCNI deletes the old CNI's objects; KeepState keeps the
	// plugin's node labels and annotations.
	RemoveOldCNI bool
	KeepState    bool
	// KeepNodeLeftovers skips the sweep of what the old CNI left on the
	// nodes (--remove-old-cni sweeps them otherwise; see Sweep).
	KeepNodeLeftovers bool
	// Label is the migration node label (key=value) to remove;
	// NodeConfigName the CiliumNodeConfig to delete.
	Label          string
	NodeConfigName string
	// Timeout bounds the wait for the restarted Cilium agents.
	Timeout time.Duration
	// DryRun changes nothing (client or server dry run); ServerDryRun sends
	// every write with dryRun=All.
	DryRun, ServerDryRun bool
	// Namespace is Cilium's namespace (-n), "" for the detected one.
	Namespace string
	// AcceptUntranslated finalizes although Calico policies have no
	// Cilium translation in the cluster (see CalicoPolicies).
	AcceptUntranslated bool
	// Out receives what finalize does, step by step (stderr).
	Out   io.Writer
	Style output.Style
}

// Run finalizes the migration of the cluster c: each step is recognised
// from the cluster, so running it again after an interruption continues
// (see the package comment). It says on o.Out what it does. While Cilium
// still runs its migration values and o.Yes is not set, it stops with
// WaitingForUpgrade after printing the helm upgrade to run.
func Run(ctx context.Context, cl *kube.Clients, c *detect.Cluster, o Options) error {
	out := o.Out
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	if !c.Cilium.Installed {
		return errs.New(errs.Precondition, "Cilium is not installed", "install it with values-initial.yaml and migrate the nodes first")
	}
	ns := o.Namespace
	if ns == "" {
		ns = c.Cilium.Namespace
	}
	nodes, err := cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return cl.Classify(err, "listing nodes")
	}
	upgraded, err := Upgraded(ctx, cl.Kube, ns)
	if err != nil {
		return cl.Classify(err, "reading cilium-config")
	}
	served, err := nodeconfig.Served(cl.Kube.Discovery())
	if err != nil {
		return cl.Classify(err, "reading the cilium.io API versions")
	}
	ncVersion := NodeConfigAPIVersion(served)
	exists, err := NodeConfigExists(ctx, cl.Dynamic, ncVersion, ns, o.NodeConfigName)
	if err != nil {
		return cl.Classify(err, "reading the CiliumNodeConfig")
	}
	// The in-place method has no CiliumNodeConfig: its progress ConfigMap
	// plays that part (deleted once the agents run the final values).
	inPlace, err := InPlaceProgressExists(ctx, cl.Kube, ns)
	if err != nil {
		return cl.Classify(err, "reading ConfigMap "+ns+"/"+InPlaceProgress)
	}
	// Once Cilium runs with its final values and the CiliumNodeConfig is
	// gone, the nodes were finalized (and their state maybe cleaned): only
	// the remaining clean-up steps are left to do.
	if finished := upgraded && !exists && !inPlace; !finished {
		if left := NotDone(nodes.Items); len(left) > 0 {
			return NotDoneError(left)
		}
	}
	if err := o.calicoPolicies(ctx, cl, say); err != nil {
		return err
	}
	dry := o.DryRun
	serverDry := o.ServerDryRun
	// The old CNI's objects (read only): what step 5 deletes or lists.
	removal, err := PlanRemoval(ctx, cl.Kube, c)
	if err != nil {
		return cl.Classify(err, "listing the old CNI's objects")
	}
	// A removal an earlier run noted and did not finish: once the old
	// CNI's DaemonSet is gone it is no longer detected, so the note is
	// what names the objects left.
	if o.Lock != nil {
		noted, err := lock.Peek(ctx, cl.Kube, lock.DefaultNamespace, lock.DefaultName, RemovalNote)
		if err != nil {
			return cl.Classify(err, "reading the migration lock")
		}
		if err := removal.addNoted(noted); err != nil {
			return err
		}
	}
	// The sweep: the old CNI's registry entry says what it leaves on the
	// nodes; a sweep an earlier run noted and did not finish names it.
	sweepSrc, err := o.sweepSource(ctx, cl, c, removal)
	if err != nil {
		return err
	}
	bridge := false
	if ncVersion != "" { // Cilium's CRDs are served
		if bridge, err = policybridge.Deployed(ctx, cl.Dynamic, ns); err != nil {
			return cl.Classify(err, "looking for the policy bridge")
		}
	}
	key, _, _ := nodeconfig.ParseLabel(o.Label)
	// Every permission of this run's own changes, before the first: a run
	// without one stops here rather than after the helm upgrade. A client
	// dry run changes nothing and checks nothing, so that anyone who can
	// read the cluster can see what finalize would do.
	if !dry || serverDry {
		w := Work{Lock: o.Lock != nil && !dry, Helm: !upgraded && o.Yes && !dry, Restart: exists || inPlace,
			DeleteNodeConfig: exists, DeleteProgress: inPlace}
		if o.RemoveOldCNI && removal.Manual == "" {
			w.Remove = removal.Objects
		}
		w.Sweep = sweepSrc != nil
		w.Bridge = bridge
		for i := range nodes.Items {
			if !o.KeepState && StatePatch(&nodes.Items[i], key) != nil {
				w.CleanNodes = true
			}
		}
		if err := access.Require(ctx, cl.Kube, w.Needs(ns, lock.DefaultNamespace), "kubectl cni-migrate finalize",
			"apply docs/rbac.yaml and bind it to your user (kubectl cni-migrate plan lists every missing permission)"); err != nil {
			return cl.Classify(err, "checking permissions")
		}
		if err := access.Require(ctx, cl.Kube, w.HelmNeeds(ns), "the helm upgrade of finalize --yes",
			"run finalize --yes as a user who may upgrade Cilium's Helm release (as who installed it), or run finalize without --yes and the helm upgrade it prints yourself"); err != nil {
			return cl.Classify(err, "checking permissions")
		}
	}
	// The migration lock, from the first change to the end: no node,
	// rollout or rollback runs meanwhile, and a lost lock stops the rest.
	var notes Notes
	if o.Lock != nil && !dry {
		held, n, release, err := o.Lock(ctx)
		if err != nil {
			return err
		}
		defer release()
		ctx, notes = held, n
	}
	// A client dry run sends no write at all: each step says what it
	// would do instead (a server dry run sends them with dryRun=All).
	clientDry := dry && !serverDry
	prefix := ""
	if dry {
		prefix = "(dry run) "
	}

	// The policy bridge first: every node is on Cilium, there is no pod
	// left on the old network, and its node rules' DaemonSet must be gone
	// before step 6 takes the migration label off the nodes (it runs where
	// the label is absent).
	if bridge {
		if clientDry {
			say("%swould remove the policy bridge (kubectl cni-migrate policy-bridge --undeploy)", prefix)
		} else {
			gone, err := policybridge.Undeploy(ctx, cl.Dynamic, ns, serverDry)
			if err != nil {
				return cl.Classify(err, "removing the policy bridge")
			}
			say("%sremoved the policy bridge: %s", prefix, strings.Join(gone, ", "))
		}
	}

	// 0: a Helm release left pending by an interrupted upgrade is rolled
	// back first (or named, with the rollback to run), whether or not
	// cilium-config shows the final values yet: helm refuses any upgrade
	// of a pending release.
	var rel Release
	if !dry {
		var rolledBack bool
		if rel, rolledBack, err = o.settleHelm(ctx, cl.Kube, ns, notes, say); err != nil {
			return cl.Classify(err, "reading the Helm release")
		}
		if rolledBack { // cilium-config is back to the migration values
			if upgraded, err = Upgraded(ctx, cl.Kube, ns); err != nil {
				return cl.Classify(err, "reading cilium-config")
			}
		}
	}

	// 1-2: final values and the Helm upgrade.
	if !upgraded {
		p, initial, final, warnings, err := proposal.GenerateValues(c, proposal.Options{}, o.User, o.UserFile)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			say("%s %s", o.Style.Yellow("warning:"), w)
		}
		say("Changes from values-initial.yaml to values-final.yaml:")
		for _, line := range Changes(initial.Map(), final.Map(), "") {
			say("  %s", line)
		}
		if p.PolicyAudit {
			say("Cilium audited the NetworkPolicies during the migration: from the upgrade on (policyAuditMode off) they drop what they deny; kubectl cni-migrate policy-report names those flows first")
		}
		finalPath := filepath.Join(o.OutputDir, values.FinalFile)
		if !dry {
			paths, err := values.WriteFiles(o.OutputDir, initial, final)
			if err != nil {
				return err
			}
			for _, path := range paths {
				say("wrote %s", path)
			}
		}
		args := HelmUpgradeArgs(o.Release, o.Chart, p.Version.String(), ns, finalPath)
		args[0] = o.Helm
		if dry {
			say("%swould run: %s", prefix, shell.Join(args))
			say("%sthen: restart the Cilium agents, delete CiliumNodeConfig %s/%s%s", prefix, ns, o.NodeConfigName, o.removeOldCNIHint())
			return nil
		}
		// The upgrade is noted in the lock's Lease while helm runs: if this
		// run is interrupted, the next finds the release it left pending.
		var started func(pid int)
		host, _ := os.Hostname()
		if notes != nil {
			started = func(pid int) {
				b, _ := json.Marshal(helmRun{Release: ns + "/" + o.Release, From: rel.Deployed, Host: host, PID: pid})
				_ = notes.Note(ctx, HelmNote, string(b)) // a lost lock stops the run anyway
			}
		}
		ended, err := runHelm(ctx, args, o.Yes, out, started)
		if ended && notes != nil {
			if nerr := notes.Note(ctx, HelmNote, ""); nerr != nil && err == nil {
				return cl.Classify(nerr, "updating the migration lock")
			}
		}
		if err != nil {
			return err
		}
		if upgraded, err = Upgraded(ctx, cl.Kube, ns); err != nil {
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
		if !clientDry {
			if err := RestartAgents(ctx, cl.Kube, ns, c.Cilium.DaemonSet, o.Timeout, serverDry, time.Now()); err != nil {
				return cl.Classify(err, "restarting the Cilium agents")
			}
		}
		if exists {
			if !clientDry {
				if _, err := DeleteNodeConfig(ctx, cl.Dynamic, ncVersion, ns, o.NodeConfigName, serverDry); err != nil {
					return cl.Classify(err, "deleting the CiliumNodeConfig")
				}
			}
			say("%sdeleted CiliumNodeConfig %s/%s", prefix, ns, o.NodeConfigName)
		}
		if inPlace {
			if !clientDry {
				if err := DeleteInPlaceProgress(ctx, cl.Kube, ns, serverDry); err != nil {
					return cl.Classify(err, "deleting ConfigMap "+ns+"/"+InPlaceProgress)
				}
			}
			say("%sdeleted ConfigMap %s/%s (the in-place rollout's progress)", prefix, ns, InPlaceProgress)
		}
	} else {
		say("CiliumNodeConfig %s/%s is gone", ns, o.NodeConfigName)
	}

	// 5: the old CNI.
	objs := removal.Objects
	switch {
	case removal.Manual != "":
		say("The old CNI is not removed by this plugin: %s", removal.Manual)
	case len(objs) == 0:
		say("no objects of the old CNI are left")
	case !o.RemoveOldCNI:
		say("The old CNI's objects stay (run finalize --remove-old-cni to delete them):")
		for _, obj := range objs {
			say("  %s", obj)
		}
	default:
		say("%sdeleting the old CNI's objects:", prefix)
		for _, obj := range objs {
			say("  %s", obj)
		}
		if !clientDry {
			// Noted first: a run interrupted halfway leaves the rest to
			// the next, which could not find them any more.
			if notes != nil && !serverDry {
				b, _ := json.Marshal(objs)
				if err := notes.Note(ctx, RemovalNote, string(b)); err != nil {
					return cl.Classify(err, "updating the migration lock")
				}
				if sweepSrc != nil {
					if err := notes.Note(ctx, SweepNote, string(sweepSrc.ID)); err != nil {
						return cl.Classify(err, "updating the migration lock")
					}
				}
			}
			if _, err := Delete(ctx, cl.Kube, objs, serverDry); err != nil {
				return cl.Classify(err, "deleting the old CNI")
			}
			if notes != nil && !serverDry {
				if err := notes.Note(ctx, RemovalNote, ""); err != nil {
					return cl.Classify(err, "updating the migration lock")
				}
			}
		}
	}
	if len(objs) > 0 {
		for _, k := range removal.Kept {
			say("Kept: %s", k)
		}
	}
	swept := false
	if sweepSrc != nil {
		var err error
		if swept, err = o.sweep(ctx, cl, c, ns, nodes.Items, removal, sweepSrc, notes, prefix, clientDry, serverDry, say); err != nil {
			return err
		}
	}

	// 6: the plugin's own state on the nodes.
	if !o.KeepState {
		var cleaned []string
		if clientDry {
			for i := range nodes.Items {
				if StatePatch(&nodes.Items[i], key) != nil {
					cleaned = append(cleaned, nodes.Items[i].Name)
				}
			}
		} else if cleaned, err = CleanNodes(ctx, cl.Kube, nodes.Items, key, serverDry); err != nil {
			return cl.Classify(err, "cleaning node labels and annotations")
		}
		say("%sremoved the migration label and annotations from %d nodes", prefix, len(cleaned))
	}
	if c.CNI != nil && !swept {
		if err := Leftovers(out, c.CNI.Name); err != nil {
			return err
		}
	}
	say("%sMigration finalized: Cilium owns the network on every node.", prefix)
	return nil
}

func (o Options) removeOldCNIHint() string {
	if o.RemoveOldCNI {
		return ", delete the old CNI's objects"
	}
	return ""
}

// calicoPolicies refuses (Precondition) while Calico policies exist whose
// Cilium translation is not in the cluster, or is out of date: once
// finalize's helm upgrade makes Cilium enforce policies, and Calico is
// removed, Cilium's policies are all that is left. With
// AcceptUntranslated it names them and goes on.
func (o Options) calicoPolicies(ctx context.Context, cl *kube.Clients, say func(string, ...any)) error {
	served, err := calicopolicy.Served(cl.Kube.Discovery())
	if err != nil || !served {
		return cl.Classify(err, "reading the crd.projectcalico.org API")
	}
	cov, err := calicopolicy.Check(ctx, cl.Dynamic)
	if err != nil {
		return cl.Classify(err, "comparing Calico's policies with their Cilium translation")
	}
	if cov.Policies == 0 {
		return nil
	}
	if len(cov.Missing) == 0 {
		say("Calico's %d policies: their Cilium translation is in the cluster", cov.Policies)
	} else {
		what := fmt.Sprintf("%d Cilium policies translated from Calico's are not in the cluster as translated: %s",
			len(cov.Missing), strings.Join(cov.Missing, ", "))
		if !o.AcceptUntranslated {
			return errs.New(errs.Precondition, what+"; without them, Calico's policies end with Calico",
				"review and apply the translation with `kubectl cni-migrate calico-policies --apply`, or pass --accept-untranslated to finalize without it")
		}
		say("warning: %s (--accept-untranslated)", what)
	}
	if len(cov.Inexact) > 0 {
		say("  not translated exactly (`kubectl cni-migrate calico-policies` says what): %s", strings.Join(cov.Inexact, ", "))
	}
	return nil
}
