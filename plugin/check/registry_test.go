package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// A CNI without a registry entry gets an explicit FAIL, never another
// CNI's checks (the backend check used to judge it as flannel).
func TestUnregisteredCNIFails(t *testing.T) {
	tests := []struct {
		name, id string
	}{
		{"backend", IDBackend},
		{"pod SNAT", IDPodSNAT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster()
			c.CNI.Name, c.CNI.Namespace, c.CNI.DaemonSet = "antrea", "kube-system", "antrea-agent"
			p, err := proposal.Propose(c, proposal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := find(t, Run(Input{Cluster: c, Proposal: p, Access: &access.Result{Checked: 30, Missing: []access.Need{}}}), tt.id)
			if r.Status != Fail || !strings.Contains(r.Message, `"antrea" is not a source CNI`) || !strings.Contains(r.Fix, "--from") {
				t.Errorf("got %+v, want a FAIL naming antrea and --from", r)
			}
			if strings.Contains(r.Message, "flannel") {
				t.Errorf("judged as flannel: %+v", r)
			}
		})
	}
}
