package detect

import (
	"reflect"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// What a CNI named by --from but not found is assumed to use, as the
// switch in manualCNI had it before the detectors held it.
func TestManualDefaults(t *testing.T) {
	tests := []struct {
		from     string
		udpPorts []int
		policy   bool
	}{
		{"flannel", []int{8472}, false},
		{"canal", []int{8472}, true},
		{"calico", []int{4789}, true},
		{"weave", []int{6783, 6784}, true},
		{"kube-router", nil, true},
		{"k3s-flannel", []int{8472}, true},
	}
	if len(tests) != len(Detectors()) {
		t.Errorf("%d cases for %d detectors", len(tests), len(Detectors()))
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			c := AnalyzeWith(&Snapshot{}, Override{From: tt.from, OldPodCIDRs: []string{"10.50.0.0/16"}})
			if c.Problem != nil || c.CNI == nil {
				t.Fatalf("problem %v, cni %+v", c.Problem, c.CNI)
			}
			if c.CNI.Name != tt.from || !reflect.DeepEqual(c.CNI.UDPPorts, tt.udpPorts) || c.CNI.EnforcesPolicy != tt.policy {
				t.Errorf("got %s ports %v policy %v, want ports %v policy %v", c.CNI.Name, c.CNI.UDPPorts, c.CNI.EnforcesPolicy, tt.udpPorts, tt.policy)
			}
		})
	}
}

// A --from that names no detector is refused, even past Override.Validate.
func TestUnknownFrom(t *testing.T) {
	c := AnalyzeWith(&Snapshot{}, Override{From: "antrea", OldPodCIDRs: []string{"10.50.0.0/16"}})
	if c.CNI != nil || errs.Code(c.Problem) != errs.Usage {
		t.Errorf("cni %+v, problem %v (code %d), want a Usage error", c.CNI, c.Problem, errs.Code(c.Problem))
	}
	if err := (Override{From: "antrea"}).Validate(); errs.Code(err) != errs.Usage {
		t.Errorf("Validate: %v", err)
	}
}

func TestDetectorsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Detectors() {
		switch {
		case d.Name == "" || seen[d.Name]:
			t.Errorf("detector name %q empty or repeated", d.Name)
		case d.DaemonSet == nil || d.Analyze == nil:
			t.Errorf("%s: DaemonSet or Analyze missing", d.Name)
		case len(d.Defaults.UDPPorts) == 0 && d.Defaults.NoUDPPorts == "":
			t.Errorf("%s: no default UDP ports and no reason", d.Name)
		}
		seen[d.Name] = true
	}
}
