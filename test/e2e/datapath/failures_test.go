package datapath

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// failures keeps what each run of a test reported as failed, so that the
// test can print all of it last: CI shows only the tail of a long log.
type failures struct {
	mu    sync.Mutex
	order []string
	byRun map[string][]string
}

func (f *failures) add(run, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byRun == nil {
		f.byRun = map[string][]string{}
	}
	if _, ok := f.byRun[run]; !ok {
		f.order = append(f.order, run)
	}
	f.byRun[run] = append(f.byRun[run], msg)
}

// String lists each run's failures, each cut to its first lines.
func (f *failures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, run := range f.order {
		fmt.Fprintf(&b, "%s:\n", run)
		for _, m := range f.byRun[run] {
			lines := strings.Split(strings.TrimSpace(m), "\n")
			if len(lines) > 6 {
				lines = append(lines[:6], fmt.Sprintf("(%d more lines in the log above)", len(lines)-6))
			}
			fmt.Fprintf(&b, "  - %s\n", strings.Join(lines, "\n    "))
		}
	}
	return b.String()
}

// recT is a test that also records its failures in rec.
type recT struct {
	*testing.T
	rec *failures
}

func (t recT) Errorf(format string, args ...any) {
	t.T.Helper()
	t.rec.add(t.Name(), fmt.Sprintf(format, args...))
	t.T.Errorf(format, args...)
}

func (t recT) Error(args ...any) {
	t.T.Helper()
	t.rec.add(t.Name(), fmt.Sprint(args...))
	t.T.Error(args...)
}

func (t recT) Fatalf(format string, args ...any) {
	t.T.Helper()
	t.rec.add(t.Name(), fmt.Sprintf(format, args...))
	t.T.Fatalf(format, args...)
}

func (t recT) Fatal(args ...any) {
	t.T.Helper()
	t.rec.add(t.Name(), fmt.Sprint(args...))
	t.T.Fatal(args...)
}

func TestFailuresString(t *testing.T) {
	var f failures
	f.add("T/a", "one\n2\n3\n4\n5\n6\n7\n8")
	f.add("T/b", "two")
	f.add("T/a", "three")
	want := "T/a:\n  - one\n    2\n    3\n    4\n    5\n    6\n    (2 more lines in the log above)\n  - three\nT/b:\n  - two\n"
	if got := f.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
