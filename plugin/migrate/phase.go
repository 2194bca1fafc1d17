// Package migrate runs the per-node steps of Cilium's dual-overlay
// migration: cordon, drain, label, restart the Cilium agent, reboot, verify,
// uncordon. Each step records its phase on the node (annotations under
// cni-migrate.io/) before the next begins, so an interrupted or failed run
// is resumed by running the same command again.
//
// The same steps run the other way for a rollback (DirectionRollback):
// cordon, drain, unlabel, restart the agent, reboot, verify that new pods
// get the old CNI's addresses, uncordon and clear the annotations. A
// rollback records its progress in its own annotation,
// cni-migrate.io/rollback-phase, so the migration's phase keeps saying how
// far the migration had gone until the rollback ends.
//
// The package holds no command-line code: plugin/cmd parses flags into
// Options and calls Migrator. The annotations, the Phase type and its
// ordering are exported for the other commands (status, rollout, finalize,
// rollback) that read what this package writes.
//
// Files: migrate.go holds Options, Migrator, Target and Plan; preflight.go
// the checks before anything changes; run.go the loop over nodes and steps
// and the node patches that record them; step_*.go one step each (cordon,
// drain, label, agent, reboot, verify, uncordon); phase.go and
// rollbackphase.go the phases; script.go and rollbackscript.go the
// --dry-run=client scripts.
package migrate

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Node annotations. They are the migration's state: other commands read
// them, so their names and values are part of the plugin's interface.
const (
	// AnnotationPrefix starts every annotation the plugin writes on nodes.
	AnnotationPrefix = "cni-migrate.io/"
	// AnnotationPhase is the last step completed on the node (a Phase).
	AnnotationPhase = AnnotationPrefix + "phase"
	// AnnotationPhaseTime is when AnnotationPhase was written (RFC 3339, UTC).
	AnnotationPhaseTime = AnnotationPrefix + "phase-time"
	// AnnotationWasUnschedulable is "true" when the node was cordoned before
	// the migration began ("false" otherwise); it is written before the
	// node is cordoned, and the last step leaves such a node cordoned.
	AnnotationWasUnschedulable = AnnotationPrefix + "was-unschedulable"
	// AnnotationBootID is the node's status.nodeInfo.bootID recorded before
	// the reboot step; the reboot is over once the node reports another.
	AnnotationBootID = AnnotationPrefix + "boot-id"
	// AnnotationAgentContainer is the ID of the Cilium agent's container
	// on the node, recorded with AnnotationBootID: after the reboot the
	// agent pod shows that container's Ready until the kubelet reports on
	// it again, so verify waits for a Ready agent in another container,
	// one of the node's new boot.
	AnnotationAgentContainer = AnnotationPrefix + "agent-container"
	// AnnotationReboot says how the reboot step was done: RebootCommand,
	// RebootManual or RebootSkip ("skip": the node still has the old CNI's
	// interfaces and iptables rules until it next reboots).
	AnnotationReboot = AnnotationPrefix + "reboot"
	// AnnotationRollbackPhase is the last rollback step completed on the
	// node (a RollbackPhase). It exists only while a rollback is under way:
	// the rollback's last step removes it with every other annotation.
	AnnotationRollbackPhase = AnnotationPrefix + "rollback-phase"
	// AnnotationRollbackWasUnschedulable is "true" when the node was
	// cordoned before the rollback began (by someone else than the
	// migration), "false" otherwise; it is written before the rollback
	// cordons the node, and the rollback's last step leaves such a node
	// cordoned.
	AnnotationRollbackWasUnschedulable = AnnotationPrefix + "rollback-was-unschedulable"
)

// Annotations lists every annotation the migration and the rollback write
// on a node, for commands that clean them up (rollback, finalize).
func Annotations() []string {
	return []string{AnnotationPhase, AnnotationPhaseTime, AnnotationWasUnschedulable, AnnotationBootID, AnnotationAgentContainer, AnnotationReboot,
		AnnotationRollbackPhase, AnnotationRollbackWasUnschedulable}
}

// Phase is the last step completed on a node. The zero value, PhaseNone,
// means the migration has not begun.
type Phase string

// The phases, in order.
const (
	PhaseNone           Phase = ""
	PhaseCordoned       Phase = "cordoned"
	PhaseDrained        Phase = "drained"
	PhaseLabelled       Phase = "labelled"
	PhaseAgentRestarted Phase = "agent-restarted"
	PhaseRebooted       Phase = "rebooted"
	PhaseVerified       Phase = "verified"
	PhaseDone           Phase = "done"
)

// Phases returns every phase after PhaseNone, in order.
func Phases() []Phase {
	return []Phase{PhaseCordoned, PhaseDrained, PhaseLabelled, PhaseAgentRestarted, PhaseRebooted, PhaseVerified, PhaseDone}
}

// ParsePhase parses an AnnotationPhase value ("" is PhaseNone).
func ParsePhase(s string) (Phase, error) {
	if s == "" {
		return PhaseNone, nil
	}
	for _, p := range Phases() {
		if string(p) == s {
			return p, nil
		}
	}
	return PhaseNone, fmt.Errorf("unknown phase %q", s)
}

// Index is the position of p: 0 for PhaseNone, 1 for PhaseCordoned, ...,
// 7 for PhaseDone; -1 for a value that is not a phase.
func (p Phase) Index() int {
	if p == PhaseNone {
		return 0
	}
	for i, q := range Phases() {
		if p == q {
			return i + 1
		}
	}
	return -1
}

// Valid reports whether p is a known phase (PhaseNone included).
func (p Phase) Valid() bool { return p.Index() >= 0 }

// Before reports whether p comes strictly before q.
func (p Phase) Before(q Phase) bool { return p.Index() < q.Index() }

// AtLeast reports whether p is q or a later phase.
func (p Phase) AtLeast(q Phase) bool { return p.Index() >= q.Index() }

// Done reports whether the node is migrated.
func (p Phase) Done() bool { return p == PhaseDone }

// String returns the phase, or "none" for PhaseNone.
func (p Phase) String() string {
	if p == PhaseNone {
		return "none"
	}
	return string(p)
}

// Step is one step of the per-node migration.
type Step string

// The steps, in order; each one ends by recording the phase of the same
// position (StepCordon records PhaseCordoned, and so on).
const (
	StepCordon       Step = "cordon"
	StepDrain        Step = "drain"
	StepLabel        Step = "label"
	StepRestartAgent Step = "restart-agent"
	StepReboot       Step = "reboot"
	StepVerify       Step = "verify"
	StepUncordon     Step = "uncordon"
	// StepUnlabel is the rollback's counterpart of StepLabel.
	StepUnlabel Step = "unlabel"
)

// Steps returns every step in order.
func Steps() []Step {
	return []Step{StepCordon, StepDrain, StepLabel, StepRestartAgent, StepReboot, StepVerify, StepUncordon}
}

// Phase returns the phase a step records when it completes.
func (s Step) Phase() Phase {
	for i, st := range Steps() {
		if st == s {
			return Phases()[i]
		}
	}
	return PhaseNone
}

// StepsFrom returns the steps still to run on a node whose recorded phase
// is p: all of them for PhaseNone, none for PhaseDone.
func StepsFrom(p Phase) []Step {
	i := p.Index()
	if i < 0 {
		return nil
	}
	return Steps()[i:]
}

// Reboot modes (also the values of AnnotationReboot).
const (
	RebootCommand = "command"
	RebootManual  = "manual"
	RebootSkip    = "skip"
)

// State is what the annotations of a node say about its migration.
type State struct {
	Phase Phase
	// PhaseTime is zero when not recorded or unreadable.
	PhaseTime time.Time
	// WasUnschedulable is nil until the first step recorded it.
	WasUnschedulable *bool
	// BootID is the bootID recorded before the reboot; HasBootID says
	// whether one was recorded (a node may report an empty bootID).
	BootID    string
	HasBootID bool
	// AgentContainer is the Cilium agent's container ID recorded with the
	// bootID ("" when none was).
	AgentContainer string
	// Reboot is how the reboot step was done, "" before it.
	Reboot string
	// Rollback is the last rollback step completed (RollbackNone when no
	// rollback is under way, or before its first step completed).
	Rollback RollbackPhase
	// RollbackWasUnschedulable is nil until a rollback recorded it.
	RollbackWasUnschedulable *bool
}

// RollingBack reports whether a rollback has begun on the node and not
// ended: it wrote its first annotation and has not cleared them yet.
func (s State) RollingBack() bool {
	return s.Rollback != RollbackNone || s.RollbackWasUnschedulable != nil
}

// StateOf reads the migration state from a node's annotations. An unknown
// phase value is an error: it was written by a newer plugin or by hand.
func StateOf(n *corev1.Node) (State, error) {
	a := n.Annotations
	var s State
	p, err := ParsePhase(a[AnnotationPhase])
	if err != nil {
		return s, errs.Newf(errs.Precondition,
			fmt.Sprintf("fix or remove it (kubectl annotate node %s %s-), then run the command again", n.Name, AnnotationPhase),
			"node %s has annotation %s=%q, which is not a phase this plugin knows (%s)", n.Name, AnnotationPhase, a[AnnotationPhase], phaseList())
	}
	s.Phase = p
	if t, err := time.Parse(time.RFC3339, a[AnnotationPhaseTime]); err == nil {
		s.PhaseTime = t
	}
	if v, ok := a[AnnotationWasUnschedulable]; ok {
		b := v == "true"
		s.WasUnschedulable = &b
	}
	s.BootID, s.HasBootID = a[AnnotationBootID]
	s.AgentContainer = a[AnnotationAgentContainer]
	s.Reboot = a[AnnotationReboot]
	if s.Rollback, err = ParseRollbackPhase(a[AnnotationRollbackPhase]); err != nil {
		return s, errs.Newf(errs.Precondition,
			fmt.Sprintf("fix or remove it (kubectl annotate node %s %s-), then run the command again", n.Name, AnnotationRollbackPhase),
			"node %s has annotation %s=%q, which is not a rollback phase this plugin knows (%s)", n.Name, AnnotationRollbackPhase, a[AnnotationRollbackPhase], rollbackPhaseList())
	}
	if v, ok := a[AnnotationRollbackWasUnschedulable]; ok {
		b := v == "true"
		s.RollbackWasUnschedulable = &b
	}
	return s, nil
}

func phaseList() string {
	var out []string
	for _, p := range Phases() {
		out = append(out, string(p))
	}
	return strings.Join(out, ", ")
}
