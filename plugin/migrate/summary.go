package migrate

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Results of a node and of a step.
const (
	// ResultMigrated: every remaining step ran; the node is done.
	ResultMigrated = "migrated"
	// ResultAlreadyDone: the node was done before; nothing was changed.
	ResultAlreadyDone = "already-done"
	// ResultFailed: a step failed; the node keeps the phase it reached.
	ResultFailed = "failed"
	// ResultInterrupted: the run was stopped; the phase reached is recorded.
	ResultInterrupted = "interrupted"
	// ResultWaitingForReboot: --reboot=manual waits for the user.
	ResultWaitingForReboot = "waiting-for-reboot"
	// ResultNotStarted: an earlier node failed, so this one was not begun.
	ResultNotStarted = "not-started"
	// ResultDryRun: every step was sent with server-side dry run.
	ResultDryRun = "dry-run"
	// ResultDone is the result of a step that completed.
	ResultDone = "done"
	// ResultRolledBack: every remaining rollback step ran; the node is back
	// on the old CNI and not migrated (phase none).
	ResultRolledBack = "rolled-back"
	// ResultNotMigrated: a rollback found nothing to undo (phase none, no
	// migration label); nothing was changed.
	ResultNotMigrated = "not-migrated"
)

// Summary is the machine-readable result of `node -o json` (kind
// NodeMigration) and `rollback -o json` (kind NodeRollback).
type Summary struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// DryRun is "server" when every write was a server-side dry run.
	DryRun string       `json:"dryRun,omitempty"`
	Nodes  []NodeResult `json:"nodes"`
	// Result is "ok" or the name of the exit code (errs.Codes).
	Result   string `json:"result"`
	ExitCode int    `json:"exitCode"`
	// Resume is the command that continues an unfinished migration.
	Resume string `json:"resume,omitempty"`
}

// NodeResult is what happened to one node.
type NodeResult struct {
	Name string `json:"name"`
	// PhaseBefore and PhaseAfter are the recorded phases ("" before the
	// first step).
	PhaseBefore Phase `json:"phaseBefore"`
	PhaseAfter  Phase `json:"phaseAfter"`
	// RollbackPhaseBefore and RollbackPhaseAfter are the recorded rollback
	// phases (omitted when none: always for node).
	RollbackPhaseBefore RollbackPhase `json:"rollbackPhaseBefore,omitempty"`
	RollbackPhaseAfter  RollbackPhase `json:"rollbackPhaseAfter,omitempty"`
	Result              string        `json:"result"`
	Error               string        `json:"error,omitempty"`
	Steps               []StepResult  `json:"steps"`
	Seconds             float64       `json:"durationSeconds"`
}

// StepResult is one step that ran.
type StepResult struct {
	Name    Step    `json:"name"`
	Result  string  `json:"result"`
	Detail  string  `json:"detail,omitempty"`
	Seconds float64 `json:"durationSeconds"`
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// PrintSummary writes the end-of-run summary for people (to stderr).
func PrintSummary(w io.Writer, s *Summary, style output.Style) {
	if len(s.Nodes) == 0 {
		return
	}
	output.SummaryTitle(w, s.DryRun)
	for _, n := range s.Nodes {
		var good bool
		switch n.Result {
		case ResultMigrated, ResultAlreadyDone, ResultDryRun, ResultRolledBack, ResultNotMigrated:
			good = true
		}
		word := style.Verdict(n.Result, 20, good, n.Result == ResultFailed)
		line := fmt.Sprintf("  %-20s %s phase %s", n.Name, word, n.PhaseAfter)
		if n.PhaseBefore != n.PhaseAfter {
			line = fmt.Sprintf("  %-20s %s phase %s -> %s", n.Name, word, n.PhaseBefore, n.PhaseAfter)
		}
		if n.RollbackPhaseBefore != RollbackNone || n.RollbackPhaseAfter != RollbackNone {
			if n.RollbackPhaseBefore != n.RollbackPhaseAfter {
				line += fmt.Sprintf(", rollback phase %s -> %s", n.RollbackPhaseBefore, n.RollbackPhaseAfter)
			} else {
				line += fmt.Sprintf(", rollback phase %s", n.RollbackPhaseAfter)
			}
		}
		if len(n.Steps) > 0 {
			line += fmt.Sprintf(", %d %s in %s", len(n.Steps), output.Plural(len(n.Steps), "step", "steps"), formatDuration(time.Duration(n.Seconds*float64(time.Second))))
		}
		fmt.Fprintln(w, line)
	}
	output.SummaryResume(w, s.Resume)
}
