package migrate

import (
	"context"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// label sets the migration label, or in a rollback removes it, in the same
// patch as the phase that records it.
func (m *Migrator) label(ctx context.Context, name string) (string, error) {
	key, value, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
	var v any = value
	step, detail := StepLabel, m.opts.NodeLabel
	if m.rollback() {
		v, step, detail = nil, StepUnlabel, "removed "+key
	}
	err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{key: v},
		"annotations": m.phaseAnnotations(step),
	}})
	return m.dryNote(detail), err
}
