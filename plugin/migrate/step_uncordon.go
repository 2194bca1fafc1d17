package migrate

import (
	"context"
	"strings"
)

func (m *Migrator) uncordon(ctx context.Context, name string) (string, error) {
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	detail := ""
	if m.rollback() {
		if rollbackLeaveCordoned(st) {
			detail = "left cordoned: it was cordoned before the rollback"
		} else if err := m.setUnschedulable(ctx, n, false); err != nil {
			return "", err
		}
		// The node is not migrated any more: no cni-migrate.io/ annotation
		// is left, so node and rollout see it as never migrated.
		clear := map[string]any{}
		for _, a := range Annotations() {
			if _, ok := n.Annotations[a]; ok {
				clear[a] = nil
			}
		}
		if len(clear) > 0 {
			if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": clear}}); err != nil {
				return "", err
			}
		}
		return m.dryNote(strings.TrimPrefix(detail+"; annotations cleared (phase none)", "; ")), nil
	}
	if st.WasUnschedulable != nil && *st.WasUnschedulable {
		detail = "left cordoned: it was cordoned before the migration"
	} else if err := m.setUnschedulable(ctx, n, false); err != nil {
		return "", err
	}
	return m.dryNote(detail), m.record(ctx, name, StepUncordon, nil)
}
