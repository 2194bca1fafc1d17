package migrate

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestRollbackPhaseOrder(t *testing.T) {
	want := []string{"cordoned", "drained", "unlabelled", "agent-restarted", "rebooted", "verified"}
	var got []string
	for i, p := range RollbackPhases() {
		got = append(got, string(p))
		if p.Index() != i+1 {
			t.Errorf("%q.Index() = %d", p, p.Index())
		}
		if q, err := ParseRollbackPhase(string(p)); err != nil || q != p {
			t.Errorf("ParseRollbackPhase(%q) = %q, %v", p, q, err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RollbackPhases() = %v, want %v (the values are an interface: other commands read them)", got, want)
	}
	if RollbackNone.Index() != 0 || RollbackNone.String() != "none" || RollbackPhase("done").Index() != -1 {
		t.Error("RollbackNone / unknown")
	}
	for _, bad := range []string{"done", "labelled", "none", "Cordoned"} {
		if _, err := ParseRollbackPhase(bad); err == nil {
			t.Errorf("ParseRollbackPhase(%q) accepted", bad)
		}
	}
	// Each rollback step but the last records the phase of its position.
	steps := RollbackSteps()
	for i, s := range steps[:len(steps)-1] {
		if s.RollbackPhase() != RollbackPhases()[i] {
			t.Errorf("%s records %q", s, s.RollbackPhase())
		}
	}
	if StepUncordon.RollbackPhase() != RollbackNone || StepLabel.RollbackPhase() != RollbackNone {
		t.Error("uncordon records nothing (it clears); label is not a rollback step")
	}
}

// TestRollbackPlan is the resume plan of a rollback: from the node's
// migration phase, rollback phase and label, the steps that remain.
func TestRollbackPlan(t *testing.T) {
	all := []Step{StepCordon, StepDrain, StepUnlabel, StepRestartAgent, StepReboot, StepVerify, StepUncordon}
	f, tr := false, true
	for _, tc := range []struct {
		name     string
		st       State
		labelled bool
		want     []Step
	}{
		{"never migrated", State{}, false, nil},
		{"labelled by hand, no phase", State{}, true, all},
		{"migration stopped after cordon", State{Phase: PhaseCordoned, WasUnschedulable: &f}, false, []Step{StepUncordon}},
		{"migration stopped after drain", State{Phase: PhaseDrained, WasUnschedulable: &f}, false, []Step{StepUncordon}},
		{"drained and labelled by hand", State{Phase: PhaseDrained}, true, all},
		{"labelled", State{Phase: PhaseLabelled}, true, all},
		{"label removed by hand after the agent restart", State{Phase: PhaseAgentRestarted}, false, all},
		{"done", State{Phase: PhaseDone}, true, all},
		{"rollback begun, nothing recorded but the cordon state", State{Phase: PhaseDone, RollbackWasUnschedulable: &f}, true, all},
		{"rollback cordoned", State{Phase: PhaseDone, Rollback: RollbackCordoned, RollbackWasUnschedulable: &f}, true, all[1:]},
		{"rollback drained", State{Phase: PhaseDone, Rollback: RollbackDrained, RollbackWasUnschedulable: &f}, true, all[2:]},
		{"rollback unlabelled (label gone)", State{Phase: PhaseDone, Rollback: RollbackUnlabelled, RollbackWasUnschedulable: &f}, false, all[3:]},
		{"rollback agent restarted", State{Phase: PhaseDone, Rollback: RollbackAgentRestarted, RollbackWasUnschedulable: &tr}, false, all[4:]},
		{"rollback rebooted", State{Phase: PhaseDone, Rollback: RollbackRebooted}, false, all[5:]},
		{"rollback verified", State{Phase: PhaseDone, Rollback: RollbackVerified}, false, []Step{StepUncordon}},
		{"rollback of a node whose migration stopped midway", State{Phase: PhaseRebooted, Rollback: RollbackDrained}, true, all[2:]},
	} {
		got := RollbackPlan(tc.st, tc.labelled)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: RollbackPlan = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Each recorded rollback phase resumes with the step after the one
	// that recorded it.
	for i, s := range all[:len(all)-1] {
		if got := RollbackStepsFrom(s.RollbackPhase()); !reflect.DeepEqual(got, all[i+1:]) {
			t.Errorf("after %s: %v, want %v", s, got, all[i+1:])
		}
	}
	if RollbackStepsFrom("bogus") != nil {
		t.Error("unknown rollback phase planned")
	}
}

func TestRollbackCordonState(t *testing.T) {
	f, tr := false, true
	for _, tc := range []struct {
		name          string
		st            State
		unschedulable bool
		want          bool
	}{
		{"done, schedulable", State{Phase: PhaseDone, WasUnschedulable: &f}, false, false},
		{"done, cordoned by the user since", State{Phase: PhaseDone, WasUnschedulable: &f}, true, true},
		{"done, left cordoned by the migration", State{Phase: PhaseDone, WasUnschedulable: &tr}, true, true},
		{"midway: the migration cordoned it", State{Phase: PhaseRebooted, WasUnschedulable: &f}, true, false},
		{"midway: cordoned before the migration", State{Phase: PhaseDrained, WasUnschedulable: &tr}, true, true},
		{"labelled by hand", State{}, false, false},
	} {
		if got := rollbackOriginallyUnschedulable(tc.st, tc.unschedulable); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !rollbackLeaveCordoned(State{RollbackWasUnschedulable: &tr, WasUnschedulable: &f}) ||
		rollbackLeaveCordoned(State{RollbackWasUnschedulable: &f, WasUnschedulable: &tr}) ||
		!rollbackLeaveCordoned(State{Phase: PhaseDrained, WasUnschedulable: &tr}) ||
		rollbackLeaveCordoned(State{}) {
		t.Error("rollbackLeaveCordoned")
	}
}

func TestStateOfRollback(t *testing.T) {
	node := func(ann map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Annotations: ann}}
	}
	st, err := StateOf(node(map[string]string{AnnotationPhase: "done", AnnotationRollbackPhase: "unlabelled", AnnotationRollbackWasUnschedulable: "true"}))
	if err != nil || st.Phase != PhaseDone || st.Rollback != RollbackUnlabelled || st.RollbackWasUnschedulable == nil || !*st.RollbackWasUnschedulable || !st.RollingBack() {
		t.Fatalf("%+v %v", st, err)
	}
	st, err = StateOf(node(map[string]string{AnnotationPhase: "done"}))
	if err != nil || st.RollingBack() {
		t.Fatalf("%+v %v", st, err)
	}
	_, err = StateOf(node(map[string]string{AnnotationRollbackPhase: "halfway"}))
	if errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), "not a rollback phase") {
		t.Fatalf("unknown rollback phase: %v", err)
	}
	for _, a := range []string{AnnotationRollbackPhase, AnnotationRollbackWasUnschedulable} {
		found := false
		for _, b := range Annotations() {
			found = found || a == b
		}
		if !found {
			t.Errorf("Annotations() lacks %s: the rollback's last step would not clear it", a)
		}
	}
}

func TestCNIConfigRestore(t *testing.T) {
	flannel := &Plan{OldCNI: &detect.CNI{Name: "flannel"}, CNIConfFile: "/etc/cni/net.d/05-cilium.conflist"}
	got := CNIConfigRestore("worker-1", flannel)
	for _, want := range []string{
		"as root on worker-1:\n",
		"  rm -f /etc/cni/net.d/05-cilium.conflist\n",
		"  mv -n /etc/cni/net.d/10-flannel.conflist.cilium_bak /etc/cni/net.d/10-flannel.conflist\n",
		"install-cni init container",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("flannel instruction lacks %q:\n%s", want, got)
		}
	}
	other := CNIConfigRestore("w", &Plan{CNIConfFile: "/var/lib/cni/conf/05-cilium.conflist"})
	if !strings.Contains(other, "rm -f /var/lib/cni/conf/05-cilium.conflist") || !strings.Contains(other, "mv -n /var/lib/cni/conf/NAME.cilium_bak") ||
		strings.Contains(other, "flannel") {
		t.Errorf("generic instruction:\n%s", other)
	}
	if d := CNIConfigRestore("w", nil); !strings.Contains(d, "rm -f "+DefaultCNIConfFile) {
		t.Errorf("default file: %s", d)
	}
}
