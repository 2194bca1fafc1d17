package migrate

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestPhaseOrder(t *testing.T) {
	all := append([]Phase{PhaseNone}, Phases()...)
	for i, p := range all {
		if p.Index() != i {
			t.Errorf("%q.Index() = %d, want %d", p, p.Index(), i)
		}
		for j, q := range all {
			if got := p.Before(q); got != (i < j) {
				t.Errorf("%q.Before(%q) = %v", p, q, got)
			}
			if got := p.AtLeast(q); got != (i >= j) {
				t.Errorf("%q.AtLeast(%q) = %v", p, q, got)
			}
		}
	}
	if Phase("bogus").Valid() || Phase("bogus").Index() != -1 {
		t.Error("unknown phase is valid")
	}
	want := []string{"cordoned", "drained", "labelled", "agent-restarted", "rebooted", "verified", "done"}
	var got []string
	for _, p := range Phases() {
		got = append(got, string(p))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Phases() = %v, want %v (the values are an interface: other commands read them)", got, want)
	}
	if PhaseNone.String() != "none" || !PhaseDone.Done() || PhaseVerified.Done() {
		t.Error("String/Done")
	}
}

func TestParsePhase(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Phase
		wantErr bool
	}{
		{"", PhaseNone, false},
		{"cordoned", PhaseCordoned, false},
		{"agent-restarted", PhaseAgentRestarted, false},
		{"done", PhaseDone, false},
		{"Done", PhaseNone, true},
		{"none", PhaseNone, true},
		{"rebooting", PhaseNone, true},
	} {
		got, err := ParsePhase(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParsePhase(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// TestStepsFrom is the resume plan: after a recorded phase, the steps that
// remain.
func TestStepsFrom(t *testing.T) {
	for _, tc := range []struct {
		phase Phase
		want  []Step
	}{
		{PhaseNone, []Step{StepCordon, StepDrain, StepLabel, StepRestartAgent, StepReboot, StepVerify, StepUncordon}},
		{PhaseCordoned, []Step{StepDrain, StepLabel, StepRestartAgent, StepReboot, StepVerify, StepUncordon}},
		{PhaseDrained, []Step{StepLabel, StepRestartAgent, StepReboot, StepVerify, StepUncordon}},
		{PhaseLabelled, []Step{StepRestartAgent, StepReboot, StepVerify, StepUncordon}},
		{PhaseAgentRestarted, []Step{StepReboot, StepVerify, StepUncordon}},
		{PhaseRebooted, []Step{StepVerify, StepUncordon}},
		{PhaseVerified, []Step{StepUncordon}},
		{PhaseDone, []Step{}},
		{Phase("bogus"), nil},
	} {
		got := StepsFrom(tc.phase)
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("StepsFrom(%q) = %v, want %v", tc.phase, got, tc.want)
		}
	}
	// Each step records the phase from which the next step resumes.
	for _, s := range Steps() {
		next := StepsFrom(s.Phase())
		all := Steps()
		for i, x := range all {
			if x == s {
				if !reflect.DeepEqual(next, all[i+1:]) {
					t.Errorf("after %s: %v, want %v", s, next, all[i+1:])
				}
			}
		}
	}
}

func TestStateOf(t *testing.T) {
	node := func(ann map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Annotations: ann}}
	}
	st, err := StateOf(node(nil))
	if err != nil || st.Phase != PhaseNone || st.WasUnschedulable != nil || st.HasBootID {
		t.Fatalf("empty: %+v %v", st, err)
	}
	st, err = StateOf(node(map[string]string{
		AnnotationPhase: "agent-restarted", AnnotationPhaseTime: "2025-01-02T03:04:05Z",
		AnnotationWasUnschedulable: "true", AnnotationBootID: "", AnnotationReboot: "manual",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if st.Phase != PhaseAgentRestarted || !st.PhaseTime.Equal(want) || st.WasUnschedulable == nil || !*st.WasUnschedulable ||
		!st.HasBootID || st.BootID != "" || st.Reboot != "manual" {
		t.Fatalf("state %+v", st)
	}
	_, err = StateOf(node(map[string]string{AnnotationPhase: "halfway"}))
	if errs.Code(err) != errs.Precondition {
		t.Fatalf("unknown phase: %v", err)
	}
}
