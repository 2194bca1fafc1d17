package output

import (
	"fmt"
	"io"
)

// The pieces of the end-of-run summaries for people (node, rollout,
// rollback and in-place), so that they read alike.

// SummaryTitle writes the summary's first line: SUMMARY, and that nothing
// was changed when dryRun (the summary's dryRun field) is set.
func SummaryTitle(w io.Writer, dryRun string) {
	suffix := ""
	if dryRun != "" {
		suffix = " (server dry run: nothing was changed)"
	}
	fmt.Fprintf(w, "SUMMARY%s\n", suffix)
}

// SummaryResume writes the summary's last line, the command that continues
// the run; nothing when resume is "".
func SummaryResume(w io.Writer, resume string) {
	if resume != "" {
		fmt.Fprintf(w, "to continue: %s\n", resume)
	}
}

// Verdict pads a result to width, then colours it (escape codes have no
// width): green when good, red when bad, else yellow.
func (s Style) Verdict(result string, width int, good, bad bool) string {
	word := fmt.Sprintf("%-*s", width, result)
	switch {
	case good:
		return s.Green(word)
	case bad:
		return s.Red(word)
	}
	return s.Yellow(word)
}
