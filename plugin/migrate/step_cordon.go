package migrate

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubectl/pkg/drain"
)

// setUnschedulable cordons or uncordons with kubectl's cordon helper.
func (m *Migrator) setUnschedulable(ctx context.Context, n *corev1.Node, desired bool) error {
	h := drain.NewCordonHelper(n)
	if !h.UpdateIfRequired(desired) {
		return nil
	}
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	err, patchErr := h.PatchOrReplaceWithContext(wctx, m.cl.Kube, m.opts.DryRun)
	if err != nil {
		return m.cl.Classify(err, "cordoning node "+n.Name)
	}
	if patchErr != nil {
		return m.cl.Classify(patchErr, "cordoning node "+n.Name)
	}
	return nil
}

func (m *Migrator) cordon(ctx context.Context, name string) (string, error) {
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	// Whether the node was cordoned before: written before cordoning, so a
	// run interrupted between the two still knows the node's original state.
	// Clear what an earlier migration (or rolled-back migration) left of a
	// reboot: the reboot step records a fresh bootID.
	wasKey, was, original := AnnotationWasUnschedulable, st.WasUnschedulable, n.Spec.Unschedulable
	if m.rollback() {
		wasKey, was, original = AnnotationRollbackWasUnschedulable, st.RollbackWasUnschedulable, rollbackOriginallyUnschedulable(st, n.Spec.Unschedulable)
	}
	if was == nil {
		if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": map[string]any{
			wasKey:                   strconv.FormatBool(original),
			AnnotationBootID:         nil,
			AnnotationAgentContainer: nil,
			AnnotationReboot:         nil,
		}}}); err != nil {
			return "", err
		}
		was = &original
	}
	detail := ""
	if n.Spec.Unschedulable {
		detail = "was already cordoned"
		if !*was {
			detail = "cordoned by an earlier run"
			if m.rollback() && st.RollbackWasUnschedulable == nil {
				detail = "cordoned by the migration"
			}
		}
	}
	if err := m.setUnschedulable(ctx, n, true); err != nil {
		return "", err
	}
	return m.dryNote(detail), m.record(ctx, name, StepCordon, nil)
}
