package inplace

import (
	"fmt"
	"io"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Summary is the result of a run (-o json|yaml), kind InPlaceMigration.
type Summary struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Strategy   string `json:"strategy"`
	// DryRun is "server" when every write was a server-side dry run.
	DryRun string `json:"dryRun,omitempty"`
	// PodCIDRs is Cilium's pod CIDR: pods outside it are restarted.
	PodCIDRs   []string          `json:"podCIDRs"`
	Namespaces []NamespaceResult `json:"namespaces"`
	Nodes      []NodeResult      `json:"nodes"`
	// Result is "ok" or the name of the exit code (errs.Codes).
	Result   string `json:"result"`
	ExitCode int    `json:"exitCode"`
	Resume   string `json:"resume,omitempty"`
}

// NamespaceResult is what happened in one namespace.
type NamespaceResult struct {
	Name string `json:"name"`
	// Pods are the pods evicted (or, before the run, to evict).
	Pods    []string `json:"pods"`
	Result  string   `json:"result"`
	Detail  string   `json:"detail,omitempty"`
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"durationSeconds"`
}

// NodeResult is the recorded phase of a node before and after the run.
type NodeResult struct {
	Name        string        `json:"name"`
	PhaseBefore migrate.Phase `json:"phaseBefore"`
	PhaseAfter  migrate.Phase `json:"phaseAfter"`
	// OldPods counts the pods on the node still on the old network at the
	// end (0 once the node is done).
	OldPods int `json:"oldPods"`
}

// PrintSummary writes the end-of-run summary for people.
func PrintSummary(w io.Writer, s *Summary, style output.Style) {
	if len(s.Namespaces) == 0 && len(s.Nodes) == 0 {
		return
	}
	output.SummaryTitle(w, s.DryRun)
	for _, n := range s.Namespaces {
		good := n.Result == ResultRestarted || n.Result == ResultAlreadyDone || n.Result == ResultDryRun
		word := style.Verdict(n.Result, 13, good, n.Result == ResultFailed)
		line := fmt.Sprintf("  namespace %-20s %s %d %s", n.Name, word, len(n.Pods), output.Plural(len(n.Pods), "pod", "pods"))
		if n.Seconds > 0 {
			line += fmt.Sprintf(" in %.1fs", n.Seconds)
		}
		if n.Result == ResultAlreadyDone && n.Detail != "" {
			line += " (" + n.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range s.Nodes {
		line := fmt.Sprintf("  node      %-20s phase %s", n.Name, orNone(string(n.PhaseAfter)))
		if n.PhaseBefore != n.PhaseAfter {
			line = fmt.Sprintf("  node      %-20s phase %s -> %s", n.Name, orNone(string(n.PhaseBefore)), n.PhaseAfter)
		}
		if n.OldPods > 0 {
			line += fmt.Sprintf(", %d %s still on the old network", n.OldPods, output.Plural(n.OldPods, "pod", "pods"))
		}
		fmt.Fprintln(w, line)
	}
	output.SummaryResume(w, s.Resume)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
