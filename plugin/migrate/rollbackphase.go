package migrate

import (
	"fmt"
	"strings"
)

// Direction is which way a Migrator moves nodes.
type Direction int

const (
	// DirectionMigrate moves nodes onto Cilium (node, rollout). It is the
	// zero value.
	DirectionMigrate Direction = iota
	// DirectionRollback moves migrated nodes back to the old CNI
	// (rollback), before the migration is finalized.
	DirectionRollback
)

// RollbackPhase is the last rollback step completed on a node, recorded in
// AnnotationRollbackPhase. The zero value, RollbackNone, means no rollback
// step has completed.
type RollbackPhase string

// The rollback phases, in order. The rollback's last step (uncordon) records
// no phase: it removes every annotation, which leaves the node at PhaseNone,
// not migrated.
const (
	RollbackNone           RollbackPhase = ""
	RollbackCordoned       RollbackPhase = "cordoned"
	RollbackDrained        RollbackPhase = "drained"
	RollbackUnlabelled     RollbackPhase = "unlabelled"
	RollbackAgentRestarted RollbackPhase = "agent-restarted"
	RollbackRebooted       RollbackPhase = "rebooted"
	RollbackVerified       RollbackPhase = "verified"
)

// RollbackPhases returns every rollback phase after RollbackNone, in order.
func RollbackPhases() []RollbackPhase {
	return []RollbackPhase{RollbackCordoned, RollbackDrained, RollbackUnlabelled, RollbackAgentRestarted, RollbackRebooted, RollbackVerified}
}

// ParseRollbackPhase parses an AnnotationRollbackPhase value ("" is
// RollbackNone).
func ParseRollbackPhase(s string) (RollbackPhase, error) {
	if s == "" {
		return RollbackNone, nil
	}
	for _, p := range RollbackPhases() {
		if string(p) == s {
			return p, nil
		}
	}
	return RollbackNone, fmt.Errorf("unknown rollback phase %q", s)
}

// Index is the position of p: 0 for RollbackNone, 1 for RollbackCordoned,
// ..., 6 for RollbackVerified; -1 for a value that is not a rollback phase.
func (p RollbackPhase) Index() int {
	if p == RollbackNone {
		return 0
	}
	for i, q := range RollbackPhases() {
		if p == q {
			return i + 1
		}
	}
	return -1
}

// String returns the rollback phase, or "none" for RollbackNone.
func (p RollbackPhase) String() string {
	if p == RollbackNone {
		return "none"
	}
	return string(p)
}

func rollbackPhaseList() string {
	var out []string
	for _, p := range RollbackPhases() {
		out = append(out, string(p))
	}
	return strings.Join(out, ", ")
}

// RollbackSteps returns the steps of a rollback in order; each but the last
// ends by recording the rollback phase of the same position.
func RollbackSteps() []Step {
	return []Step{StepCordon, StepDrain, StepUnlabel, StepRestartAgent, StepReboot, StepVerify, StepUncordon}
}

// RollbackPhase returns the rollback phase a rollback step records when it
// completes: RollbackNone for StepUncordon (which clears the annotations
// instead) and for steps that are not rollback steps.
func (s Step) RollbackPhase() RollbackPhase {
	for i, st := range RollbackSteps() {
		if st == s && i < len(RollbackPhases()) {
			return RollbackPhases()[i]
		}
	}
	return RollbackNone
}

// RollbackStepsFrom returns the rollback steps still to run after the
// recorded rollback phase p: all of them for RollbackNone, only uncordon for
// RollbackVerified, nil for a value that is not a rollback phase.
func RollbackStepsFrom(p RollbackPhase) []Step {
	i := p.Index()
	if i < 0 {
		return nil
	}
	return RollbackSteps()[i:]
}

// RollbackPlan is the resume plan of a rollback: the steps still to run on a
// node whose annotations say st and which carries the migration label or
// not (labelled).
//
//   - A rollback under way continues after its recorded rollback phase.
//   - A node that carries the label, or whose migration got as far as the
//     label (PhaseLabelled or later), gets every rollback step.
//   - A node whose migration stopped before the label (PhaseCordoned,
//     PhaseDrained) was never handed to Cilium: it only needs uncordoning
//     and its annotations cleared.
//   - A node never migrated (PhaseNone, no label) needs nothing: nil.
func RollbackPlan(st State, labelled bool) []Step {
	switch {
	case st.RollingBack():
		return RollbackStepsFrom(st.Rollback)
	case labelled || st.Phase.AtLeast(PhaseLabelled):
		return RollbackSteps()
	case st.Phase != PhaseNone && st.Phase.Valid():
		return []Step{StepUncordon}
	}
	return nil
}

// rollbackOriginallyUnschedulable is whether a node was cordoned before the
// rollback began, given its state and spec.unschedulable now: a node the
// migration cordoned (between its cordon and uncordon steps) was as the
// migration recorded it; any other node is as it is now.
func rollbackOriginallyUnschedulable(st State, unschedulable bool) bool {
	if st.Phase != PhaseNone && !st.Phase.Done() && st.WasUnschedulable != nil {
		return *st.WasUnschedulable
	}
	return unschedulable
}

// rollbackLeaveCordoned is whether the rollback's last step leaves the node
// cordoned: it was cordoned before the rollback (or, for a node whose
// migration stopped before the label, before the migration).
func rollbackLeaveCordoned(st State) bool {
	switch {
	case st.RollbackWasUnschedulable != nil:
		return *st.RollbackWasUnschedulable
	case st.WasUnschedulable != nil:
		return *st.WasUnschedulable
	}
	return false
}
