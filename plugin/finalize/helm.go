package finalize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
)

// Notes keeps what a run leaves for the next in case it is interrupted:
// the migration lock's Lease holds them (lock.Held).
type Notes interface {
	Noted(key string) string
	Note(ctx context.Context, key, value string) error
}

// HelmNote is the note of a helm upgrade finalize started and has not seen
// end: the next finalize that finds the release left pending by it, with
// its helm process gone, rolls the release back before upgrading again.
const HelmNote = "cni-migrate.io/helm-upgrade"

// helmRun is what HelmNote holds.
type helmRun struct {
	// Release is namespace/name.
	Release string `json:"release"`
	// From is the release's deployed revision when the upgrade started.
	From int    `json:"from"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// Release is a Helm release's state, read from the labels of the Secrets
// helm keeps it in (its default storage driver).
type Release struct {
	// Revision and Status are the latest revision's; Deployed is the
	// latest revision with status deployed (0 if none).
	Revision int
	Status   string
	Deployed int
}

// Pending reports whether the latest revision's operation has not finished
// (pending-install, pending-upgrade, pending-rollback): helm refuses any
// other operation on the release until it is rolled back.
func (r Release) Pending() bool { return strings.HasPrefix(r.Status, "pending-") }

// ReadRelease reads release name in ns; found is false when helm keeps no
// Secret for it.
func ReadRelease(ctx context.Context, c kubernetes.Interface, ns, name string) (r Release, found bool, err error) {
	l, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		return r, false, err
	}
	for _, s := range l.Items {
		v, err := strconv.Atoi(s.Labels["version"])
		if err != nil {
			continue
		}
		found = true
		if v > r.Revision {
			r.Revision, r.Status = v, s.Labels["status"]
		}
		if s.Labels["status"] == "deployed" && v > r.Deployed {
			r.Deployed = v
		}
	}
	return r, found, nil
}

// settleHelm finds a release left pending by an interrupted helm operation
// before finalize runs its own. When the note says it was this plugin's
// helm upgrade, on this host, and that process is gone, it rolls the
// release back to its deployed revision (with --yes); in every other case
// it stops with the rollback to run by hand. It returns the release as it
// is then, and whether it rolled it back.
func (o Options) settleHelm(ctx context.Context, c kubernetes.Interface, ns string, notes Notes, say func(string, ...any)) (rel Release, rolledBack bool, err error) {
	rel, found, err := ReadRelease(ctx, c, ns, o.Release)
	if err != nil {
		if !o.Yes && apierrors.IsForbidden(err) {
			return rel, false, nil // without --yes, helm's Secrets are not finalize's to read
		}
		return rel, false, fmt.Errorf("reading Helm release %s/%s: %w", ns, o.Release, err)
	}
	if !found || !rel.Pending() {
		return rel, false, nil
	}
	rollback := []string{o.Helm, "rollback", o.Release}
	if rel.Deployed > 0 {
		rollback = append(rollback, strconv.Itoa(rel.Deployed))
	}
	rollback = append(rollback, "--namespace", ns, "--wait")
	var rec helmRun
	if notes != nil {
		_ = json.Unmarshal([]byte(notes.Noted(HelmNote)), &rec)
	}
	host, _ := os.Hostname()
	ours := rec.Release == ns+"/"+o.Release && rec.From == rel.Deployed && rel.Deployed > 0 && host != "" && rec.Host == host && rec.PID > 0
	switch {
	case ours && !lock.ProcessGone(rec.PID):
		return rel, false, errs.Newf(errs.HelmFailed, "wait for it to end, then run kubectl cni-migrate finalize again",
			"the helm upgrade (pid %d) of an interrupted finalize still runs: Helm release %s/%s is %s at revision %d", rec.PID, ns, o.Release, rel.Status, rel.Revision)
	case ours && o.Yes:
		say("the helm upgrade (pid %d) of an interrupted finalize is gone and left Helm release %s/%s %s at revision %d: rolling back to revision %d first",
			rec.PID, ns, o.Release, rel.Status, rel.Revision, rel.Deployed)
		if err := runHelmCmd(ctx, rollback, o.Out, nil); err != nil {
			return rel, false, errs.Wrap(errs.HelmFailed, err, "helm rollback failed: "+errs.OneLine(err.Error()),
				"fix what helm reported, or run it yourself ("+shell.Join(rollback)+"), then run kubectl cni-migrate finalize again")
		}
		if err := notes.Note(ctx, HelmNote, ""); err != nil {
			return rel, true, err
		}
		rel, _, err = ReadRelease(ctx, c, ns, o.Release)
		if err != nil {
			return rel, true, fmt.Errorf("reading Helm release %s/%s: %w", ns, o.Release, err)
		}
		return rel, true, nil
	}
	return rel, false, errs.Newf(errs.HelmFailed,
		fmt.Sprintf("if no helm runs on this release now, roll it back (%s), then run kubectl cni-migrate finalize again", shell.Join(rollback)),
		"Helm release %s/%s is %s at revision %d: an operation that did not finish, and not a helm upgrade of this plugin's that it can tell is over", ns, o.Release, rel.Status, rel.Revision)
}

// runHelm runs the helm upgrade args (args[0] is the binary) with its
// output to out when yes is set and the binary is on PATH; otherwise it
// prints the upgrade to run and stops with WaitingForUpgrade. started, if
// set, is told helm's pid once it runs; ended reports whether helm ran to
// its end (false when this run was interrupted and helm killed with it).
func runHelm(ctx context.Context, args []string, yes bool, out io.Writer, started func(pid int)) (ended bool, err error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	if _, lookErr := exec.LookPath(args[0]); !yes || lookErr != nil {
		if yes {
			say("%s not found on PATH: run the upgrade yourself", args[0])
		}
		say("Next, upgrade Cilium to the final values:\n  %s", shell.Join(args))
		return false, errs.New(errs.WaitingForUpgrade, "Cilium still runs with its migration values",
			"run the helm upgrade above (or finalize --yes), then run kubectl cni-migrate finalize again")
	}
	say("running: %s", shell.Join(args))
	if err := runHelmCmd(ctx, args, out, started); err != nil {
		if ctx.Err() != nil {
			return false, errs.Wrap(errs.Interrupted, ctx.Err(), "interrupted during the helm upgrade", "run kubectl cni-migrate finalize again")
		}
		return true, errs.Wrap(errs.HelmFailed, err, "helm upgrade failed: "+err.Error(), "fix what helm reported above, then run kubectl cni-migrate finalize again")
	}
	return true, nil
}

// runHelmCmd runs args (args[0] is the binary) with its output to out.
func runHelmCmd(ctx context.Context, args []string, out io.Writer, started func(pid int)) error {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	if started != nil {
		started(cmd.Process.Pid)
	}
	return cmd.Wait()
}
