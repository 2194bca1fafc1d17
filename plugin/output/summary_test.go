package output

import (
	"bytes"
	"testing"
)

func TestSummaryPieces(t *testing.T) {
	var b bytes.Buffer
	SummaryTitle(&b, "")
	SummaryTitle(&b, "server")
	SummaryResume(&b, "")
	SummaryResume(&b, "kubectl cni-migrate rollout")
	want := "SUMMARY\nSUMMARY (server dry run: nothing was changed)\nto continue: kubectl cni-migrate rollout\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	on := Style{enabled: true}
	for _, tc := range []struct {
		good, bad bool
		want      string
	}{
		{true, false, "\x1b[32mok   \x1b[0m"},
		{false, true, "\x1b[31mok   \x1b[0m"},
		{false, false, "\x1b[33mok   \x1b[0m"},
	} {
		if got := on.Verdict("ok", 5, tc.good, tc.bad); got != tc.want {
			t.Errorf("Verdict(%v, %v) = %q, want %q", tc.good, tc.bad, got, tc.want)
		}
	}
	if got := (Style{}).Verdict("failed", 8, false, true); got != "failed  " {
		t.Errorf("no colour: %q", got)
	}
}
