package errs

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDocsExitCodes keeps docs/exit-codes.md and Codes() in step.
func TestDocsExitCodes(t *testing.T) {
	data, err := os.ReadFile("../../docs/exit-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| code") && !strings.HasPrefix(line, "| ---") {
			rows[strings.TrimSpace(line)] = true
		}
	}
	for _, c := range Codes() {
		row := fmt.Sprintf("| %d | %s | %s |", c.Code, c.Name, c.Meaning)
		if !rows[row] {
			t.Errorf("docs/exit-codes.md lacks the row %q", row)
		}
		delete(rows, row)
	}
	for r := range rows {
		t.Errorf("docs/exit-codes.md has a row the code does not: %q", r)
	}
}

func TestCode(t *testing.T) {
	if Code(nil) != OK || Code(fmt.Errorf("x")) != Internal {
		t.Fatal("nil or plain errors")
	}
	wrapped := fmt.Errorf("context: %w", New(Unsafe, "m", "f"))
	if Code(wrapped) != Unsafe {
		t.Fatal("wrapped")
	}
	if New(Usage, "bad thing", "do this").Error() != "bad thing; do this" {
		t.Fatal("format")
	}
}
