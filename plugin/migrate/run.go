package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// Run migrates (or rolls back) the plan's nodes one after the other and
// stops at the first that fails. The summary lists every node, including
// those not begun.
func (m *Migrator) Run(ctx context.Context, plan *Plan) (*Summary, error) {
	s := &Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: "NodeMigration", Result: "ok"}
	if m.rollback() {
		s.Kind = "NodeRollback"
	}
	if m.opts.DryRun {
		s.DryRun = "server"
	}
	var firstErr error
	for _, t := range plan.Targets {
		if t.UID != "" {
			m.uids.Store(t.Name, t.UID)
		}
	}
	for _, t := range plan.Targets {
		if firstErr != nil {
			s.Nodes = append(s.Nodes, NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase,
				RollbackPhaseBefore: t.State.Rollback, RollbackPhaseAfter: t.State.Rollback, Result: ResultNotStarted, Steps: []StepResult{}})
			continue
		}
		res, err := m.migrateNode(ctx, plan, t)
		s.Nodes = append(s.Nodes, res)
		if err != nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		s.ExitCode = errs.Code(firstErr)
		s.Result = errs.Name(s.ExitCode)
		if s.ExitCode != errs.Usage {
			s.Resume = m.opts.ResumeCommand
		}
	}
	return s, firstErr
}

// stepWhat says what a step is doing, for the spinner.
func (m *Migrator) stepWhat(s Step) string {
	switch s {
	case StepCordon:
		return "marking the node unschedulable"
	case StepDrain:
		return "evicting pods"
	case StepLabel:
		return "setting " + m.opts.NodeLabel
	case StepUnlabel:
		key, _, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
		return "removing " + key
	case StepRestartAgent:
		return "waiting for a new Cilium agent to be Ready"
	case StepReboot:
		return "waiting for the node to reboot"
	case StepVerify:
		return "running the probe pod"
	case StepUncordon:
		return "marking the node schedulable"
	}
	return ""
}

// position is what a node's annotations record: the migration's phase and
// the rollback's.
type position struct {
	phase    Phase
	rollback RollbackPhase
}

// after returns the position a step records when it completes.
func (m *Migrator) after(p position, s Step) position {
	if !m.rollback() {
		return position{phase: s.Phase()}
	}
	if s == StepUncordon {
		return position{} // the rollback's last step clears every annotation
	}
	return position{phase: p.phase, rollback: s.RollbackPhase()}
}

func (m *Migrator) migrateNode(ctx context.Context, plan *Plan, t Target) (res NodeResult, err error) {
	res = NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase,
		RollbackPhaseBefore: t.State.Rollback, RollbackPhaseAfter: t.State.Rollback, Steps: []StepResult{}}
	var steps []Step
	if m.rollback() {
		steps = RollbackPlan(t.State, t.Labelled)
		if steps == nil {
			key, _, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
			m.progress.Printf("%s: not migrated (phase none, no label %s); nothing to roll back", t.Name, key)
			res.Result = ResultNotMigrated
			return res, nil
		}
	} else {
		if t.State.Phase.Done() {
			since := ""
			if !t.State.PhaseTime.IsZero() {
				since = " since " + t.State.PhaseTime.UTC().Format(time.RFC3339)
			}
			m.progress.Printf("%s: already migrated (phase done%s); nothing to do", t.Name, since)
			res.Result = ResultAlreadyDone
			return res, nil
		}
		steps = StepsFrom(t.State.Phase)
	}
	start := m.now()
	defer func() { res.Seconds = seconds(m.now().Sub(start)) }()
	pos := position{phase: t.State.Phase, rollback: t.State.Rollback}
	record := func(p position) {
		if !m.opts.DryRun {
			res.PhaseAfter, res.RollbackPhaseAfter = p.phase, p.rollback
		}
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			res.Result = ResultInterrupted
			err := m.interrupted(t.Name, step, pos)
			res.Error = err.Error()
			return res, err
		}
		task := m.progress.Start(t.Name, step, m.stepWhat(step))
		var detail string
		detail, err = m.runStep(ctx, plan, t, step)
		sr := StepResult{Name: step, Detail: detail}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				err = m.interrupted(t.Name, step, pos)
				sr.Result, res.Result = ResultInterrupted, ResultInterrupted
				sr.Seconds = seconds(task.Stop("interrupted", ""))
			case errs.Code(err) == errs.WaitingForReboot:
				sr.Result, res.Result = ResultWaitingForReboot, ResultWaitingForReboot
				sr.Seconds = seconds(task.Stop("waiting", detail))
			default:
				sr.Result, res.Result = ResultFailed, ResultFailed
				sr.Seconds = seconds(task.Fail("failed"))
			}
			res.Steps = append(res.Steps, sr)
			res.Error = err.Error()
			record(pos)
			return res, err
		}
		sr.Result = ResultDone
		sr.Seconds = seconds(task.Done(detail))
		res.Steps = append(res.Steps, sr)
		pos = m.after(pos, step)
		record(pos)
	}
	res.Result = ResultMigrated
	if m.rollback() {
		res.Result = ResultRolledBack
	}
	if m.opts.DryRun {
		res.Result = ResultDryRun
	}
	return res, nil
}

func (m *Migrator) interrupted(node string, step Step, p position) error {
	fix := "run the same command again to continue"
	if m.opts.ResumeCommand != "" {
		fix = "run " + m.opts.ResumeCommand + " to continue"
	}
	if m.rollback() {
		return errs.Newf(errs.Interrupted, fix, "interrupted during rollback step %s of node %s; its rollback phase %s is recorded", step, node, p.rollback)
	}
	return errs.Newf(errs.Interrupted, fix, "interrupted during step %s of node %s; its phase %s is recorded", step, node, p.phase)
}

func (m *Migrator) runStep(ctx context.Context, plan *Plan, t Target, step Step) (string, error) {
	switch step {
	case StepCordon:
		return m.cordon(ctx, t.Name)
	case StepDrain:
		return m.drain(ctx, t.Name)
	case StepLabel, StepUnlabel:
		return m.label(ctx, t.Name)
	case StepRestartAgent:
		return m.restartAgent(ctx, plan, t.Name)
	case StepReboot:
		return m.reboot(ctx, plan, t)
	case StepVerify:
		return m.verify(ctx, plan, t.Name)
	case StepUncordon:
		return m.uncordon(ctx, t.Name)
	}
	return "", fmt.Errorf("unknown step %q", step)
}

// writeCtx lets a write that has begun finish after an interrupt, so the
// run stops between API calls rather than in the middle of one.
func writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

func (m *Migrator) dryRun() []string {
	if m.opts.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func (m *Migrator) dryNote(s string) string {
	if m.opts.DryRun {
		if s == "" {
			return "server dry run"
		}
		return s + " (server dry run)"
	}
	return s
}

func (m *Migrator) getNode(ctx context.Context, name string) (*corev1.Node, State, error) {
	n, err := m.cl.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, State{}, m.nodeGone(name)
		}
		return nil, State{}, m.cl.Classify(err, "reading node "+name)
	}
	if err := m.sameNode(n); err != nil {
		return nil, State{}, err
	}
	st, err := StateOf(n)
	return n, st, err
}

// nodeGone is the error of a node deleted while it was being migrated.
func (m *Migrator) nodeGone(name string) error {
	return errs.Newf(errs.Precondition,
		"if the machine comes back (kubectl get node "+name+"), run the same command again: it starts over on the new node object",
		"node %s was deleted while it was being migrated", name)
}

// sameNode fails when n is not the node object the run began with: it was
// deleted and created again (a replaced machine, or one that registered
// anew) and has none of the migration's state.
func (m *Migrator) sameNode(n *corev1.Node) error {
	if uid, ok := m.uids.Load(n.Name); ok && n.UID != "" && uid.(types.UID) != n.UID {
		return errs.Newf(errs.Precondition,
			"run the same command again: it starts over on the new node (cordon, drain, label, ...)",
			"node %s was replaced while it was being migrated (it was deleted and registered again, UID %s -> %s): the new node has none of the migration's state", n.Name, uid, n.UID)
	}
	return nil
}

// patchNode sends a JSON merge patch to a node.
func (m *Migrator) patchNode(ctx context.Context, name string, patch map[string]any) error {
	// The node's UID in the patch is a precondition: the API server
	// refuses the patch (409) when the node was replaced meanwhile.
	uid, pinned := m.uids.Load(name)
	if pinned {
		md := map[string]any{}
		if old, ok := patch["metadata"].(map[string]any); ok {
			for k, v := range old {
				md[k] = v
			}
		}
		md["uid"] = string(uid.(types.UID))
		withUID := map[string]any{}
		for k, v := range patch {
			withUID[k] = v
		}
		withUID["metadata"] = md
		patch = withUID
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	_, err = m.cl.Kube.CoreV1().Nodes().Patch(wctx, name, types.MergePatchType, data,
		metav1.PatchOptions{DryRun: m.dryRun(), FieldManager: nodeconfig.FieldManager})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return m.nodeGone(name)
	case pinned && apierrors.IsConflict(err) && strings.Contains(err.Error(), "UID"):
		if n, gerr := m.cl.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); gerr == nil {
			if serr := m.sameNode(n); serr != nil {
				return serr
			}
		}
	}
	return m.cl.Classify(err, "patching node "+name)
}

// record writes the phase a completed step records (and extra
// annotations; nil deletes): the migration's phase, or in a rollback the
// rollback phase.
func (m *Migrator) record(ctx context.Context, name string, s Step, extra map[string]any) error {
	ann := m.phaseAnnotations(s)
	for k, v := range extra {
		ann[k] = v
	}
	return m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": ann}})
}

// phaseAnnotations are the annotations that record a completed step.
func (m *Migrator) phaseAnnotations(s Step) map[string]any {
	now := m.now().UTC().Format(time.RFC3339)
	if m.rollback() {
		return map[string]any{AnnotationRollbackPhase: string(s.RollbackPhase()), AnnotationPhaseTime: now}
	}
	return map[string]any{AnnotationPhase: string(s.Phase()), AnnotationPhaseTime: now}
}
