package migrate

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Progress writes the progress of a migration, one line per step with its
// elapsed time. On a terminal the running step shows a spinner that the
// step's line replaces when it ends; elsewhere only whole lines are
// written. Detail lines (from drain, the reboot command, ...) are indented
// under the running step. It is safe for concurrent use.
type Progress struct {
	w     io.Writer
	tty   bool
	style output.Style
	now   func() time.Time

	mu      sync.Mutex
	task    *Task
	spinner int
	stop    chan struct{}
	stopped chan struct{}
}

// NewProgress writes to w. tty turns the spinner on; style colours the
// result words (pass output.NewStyle(w, NO_COLOR)). now is the clock
// (time.Now when nil).
func NewProgress(w io.Writer, tty bool, style output.Style, now func() time.Time) *Progress {
	if now == nil {
		now = time.Now
	}
	return &Progress{w: w, tty: tty, style: style, now: now}
}

// Task is a running step.
type Task struct {
	p     *Progress
	node  string
	step  Step
	start time.Time
	what  string
	ended bool
}

// spinFrames are the spinner's frames, one rune each.
const spinFrames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

// Start begins a step; what says what it does ("evicting pods").
func (p *Progress) Start(node string, step Step, what string) *Task {
	t := &Task{p: p, node: node, step: step, start: p.now(), what: what}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.task = t
	if p.tty {
		p.drawLocked()
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.spin(p.stop, p.stopped)
	}
	return t
}

func (p *Progress) spin(stop, stopped chan struct{}) {
	defer close(stopped)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			p.mu.Lock()
			p.spinner++
			p.drawLocked()
			p.mu.Unlock()
		}
	}
}

// drawLocked redraws the spinner line of the running task.
func (p *Progress) drawLocked() {
	if !p.tty || p.task == nil {
		return
	}
	t := p.task
	fmt.Fprintf(p.w, "\r\x1b[K%s %s: %s %s (%s)", frame(p.spinner), t.node, t.step, t.what, formatDuration(p.now().Sub(t.start)))
}

func (p *Progress) clearLocked() {
	if p.tty && p.task != nil {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func (p *Progress) stopSpinner() {
	p.mu.Lock()
	stop, stopped := p.stop, p.stopped
	p.stop, p.stopped = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
}

// end writes the final line of a task.
func (t *Task) end(word func(string) string, result, detail string) time.Duration {
	if t.ended {
		return 0
	}
	t.ended = true
	t.p.stopSpinner()
	d := t.p.now().Sub(t.start)
	line := fmt.Sprintf("%s: %-13s %s in %s", t.node, t.step, word(result), formatDuration(d))
	if detail != "" {
		line += ": " + detail
	}
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	t.p.clearLocked()
	t.p.task = nil
	fmt.Fprintln(t.p.w, line)
	return d
}

// Done ends the step successfully.
func (t *Task) Done(detail string) time.Duration { return t.end(t.p.style.Green, "done", detail) }

// Fail ends the step with a failure; the error itself is printed by main.
func (t *Task) Fail(result string) time.Duration { return t.end(t.p.style.Red, result, "") }

// Stop ends the step without success or failure (interrupted, waiting).
func (t *Task) Stop(result, detail string) time.Duration {
	return t.end(t.p.style.Yellow, result, detail)
}

// Printf writes a detail line under the running step (or a plain line when
// no step runs).
func (p *Progress) Printf(format string, args ...any) {
	p.writeLine(fmt.Sprintf(format, args...))
}

func (p *Progress) writeLine(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	indent := ""
	if p.task != nil {
		indent = "    "
	}
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintln(p.w, indent+l)
	}
	p.drawLocked()
}

// Writer returns a writer whose lines become detail lines (for the drain
// helper's and the reboot command's output).
func (p *Progress) Writer() io.Writer { return &lineWriter{p: p} }

type lineWriter struct {
	p   *Progress
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(l.buf.Next(i + 1))
		if s := strings.TrimRight(line, "\r\n"); s != "" {
			l.p.writeLine(s)
		}
	}
	return len(b), nil
}

// formatDuration renders 0.4s, 12.3s, 2m05s, 1h02m.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func frame(i int) string {
	r := []rune(spinFrames)
	return string(r[i%len(r)])
}
