package rollout

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// NodesOptions are the settings of RunNodes.
type NodesOptions struct {
	// Migrate are the steps' options (Direction says migrate or roll back).
	Migrate migrate.Options
	// OpenGate, when set, deploys the gate passed before and after the
	// nodes.
	OpenGate func(context.Context) (*Gate, error)
	// Lock, when set, is held from the first change to the end (not for
	// a server dry run): a second run is refused, and a lost lock stops
	// this one before its next change.
	Lock *Lock
	// Out receives the progress and the summary for people (stderr).
	Out   io.Writer
	Style output.Style
}

// RunNodes is `node` and `rollback`: the per-node steps of the named nodes,
// one node after the other under the migration lock (o.Lock), with the
// gate before and after them. It writes its progress and the summary for people to o.Out and
// returns the summary (nil when it stopped before the first node) and the
// first error.
func RunNodes(ctx context.Context, cl *kube.Clients, cluster *detect.Cluster, names []string, o NodesOptions) (*migrate.Summary, error) {
	errOut := o.Out
	progress := migrate.NewProgress(errOut, output.IsTerminal(errOut), o.Style, nil)
	m := migrate.New(cl, o.Migrate, progress, nil)
	plan, err := m.Preflight(ctx, cluster, names)
	if err != nil {
		return nil, err
	}
	if plan.Namespace != "" && o.Migrate.Direction != migrate.DirectionRollback {
		if err := requireBridge(ctx, cl, cluster, plan.Namespace, false); err != nil {
			return nil, err
		}
	}
	if plan.Namespace != "" {
		mode := ""
		if o.Migrate.DryRun {
			mode = " (server dry run: every write is sent with dryRun=All)"
		}
		if o.Migrate.Direction == migrate.DirectionRollback {
			back := "the old CNI"
			if plan.OldCNI != nil {
				back = plan.OldCNI.Name
			}
			mode = ", rolling back to " + back + mode
		}
		fmt.Fprintf(errOut, "Cilium in %s, pod CIDR %s, %s, reboot: %s%s\n",
			plan.Namespace, prefixes(plan), plan.NodeConfig, o.Migrate.Reboot, mode)
	}
	rollback := o.Migrate.Direction == migrate.DirectionRollback
	var untranslate bool
	if rollback {
		if untranslate, err = translatedToRemove(ctx, cl, names, o.Migrate.NodeLabel, plan.Namespace); err != nil {
			return nil, err
		}
	}
	if o.Lock != nil && !o.Migrate.DryRun {
		held, release, err := o.Lock.Hold(ctx, cl, errOut)
		if err != nil {
			return nil, err
		}
		defer release()
		ctx = held
	}
	var gate *Gate
	if o.OpenGate != nil {
		gate, err = o.OpenGate(ctx)
	}
	if err == nil {
		err = gate.Pass(ctx, "before "+strings.Join(names, ", "))
	}
	if err != nil {
		if lost := LockLost(ctx); lost != nil {
			err = lost
		}
		return nil, err
	}
	summary, runErr := m.Run(ctx, plan)
	if lost := LockLost(ctx); lost != nil && runErr != nil {
		runErr = lost
		if summary != nil {
			summary.ExitCode = errs.Code(runErr)
			summary.Result = errs.Name(summary.ExitCode)
		}
	}
	if runErr == nil {
		runErr = gate.Pass(ctx, "after "+strings.Join(names, ", "))
		if runErr != nil && summary != nil {
			summary.ExitCode = errs.Code(runErr)
			summary.Result = errs.Name(summary.ExitCode)
			summary.Resume = o.Migrate.ResumeCommand
		}
	}
	migrate.PrintSummary(errOut, summary, o.Style)
	if runErr == nil && untranslate {
		runErr = removeTranslated(ctx, cl, o.Migrate.NodeLabel, plan.Namespace, names, o.Migrate.DryRun, errOut)
	}
	return summary, runErr
}

func prefixes(p *migrate.Plan) string {
	var s []string
	for _, x := range p.Pool {
		s = append(s, x.String())
	}
	return strings.Join(s, ", ")
}
