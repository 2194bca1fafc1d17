package migrate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := NewProgress(&b, false, output.Style{}, clock)
	task := p.Start("worker-1", StepDrain, "evicting pods")
	fmt.Fprint(p.Writer(), "evicting pod demo/a\nevicting ")
	fmt.Fprint(p.Writer(), "pod demo/b\n")
	now = now.Add(75 * time.Second)
	if d := task.Done("evicted 2 pods"); d != 75*time.Second {
		t.Errorf("duration %v", d)
	}
	task.Done("twice") // a second end is ignored
	p.Printf("worker-2: already migrated")
	want := "    evicting pod demo/a\n" +
		"worker-1: drain         done in 1m15s: evicted 2 pods\n" +
		"worker-2: already migrated\n"
	// The writer keeps partial lines per writer; the second writer's line
	// is whole.
	got := b.String()
	if !strings.Contains(got, "    evicting pod demo/a\n") || !strings.Contains(got, "    pod demo/b\n") ||
		!strings.HasSuffix(got, "worker-1: drain         done in 1m15s: evicted 2 pods\nworker-2: already migrated\n") {
		t.Errorf("got\n%s\nwant like\n%s", got, want)
	}
	if strings.Contains(got, "\r") || strings.Contains(got, "\x1b") {
		t.Errorf("terminal codes in plain output: %q", got)
	}
}

func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, true, output.Style{}, nil)
	task := p.Start("worker-1", StepReboot, "waiting for the node to reboot")
	time.Sleep(250 * time.Millisecond)
	p.Printf("running ssh worker-1 reboot")
	task.Stop("waiting", "bootID recorded")
	got := b.String()
	for _, want := range []string{"\r\x1b[K⠋ worker-1: reboot waiting for the node to reboot (0.0s)", "\r\x1b[K    running ssh worker-1 reboot\n",
		"\r\x1b[Kworker-1: reboot        waiting in 0.", ": bootID recorded\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if !strings.Contains(got, "⠙") {
		t.Errorf("the spinner did not turn: %q", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond: "0.4s", 12300 * time.Millisecond: "12.3s", 125 * time.Second: "2m05s", 62 * time.Minute: "1h02m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %s, want %s", d, got, want)
		}
	}
}
