package plan

import (
	"bytes"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/snapfix"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// TestDistroTables: plan's table for the distributions, from detect's
// fixtures: k3s's embedded flannel, and RKE2's packaged Canal with and
// without --ignore-unsupported-distribution.
func TestDistroTables(t *testing.T) {
	tests := []struct {
		name   string
		files  []string
		ignore bool
		safe   bool
	}{
		{"k3s-flannel", []string{"k3s-nodes.yaml"}, false, true},
		{"rke2-canal", []string{"rke2-nodes.yaml", "rke2-canal.yaml"}, false, false},
		{"rke2-canal-ignored", []string{"rke2-nodes.yaml", "rke2-canal.yaml"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snapfix.Load(t, tt.files...)
			s.ServerVersion, s.KubeconfigCluster, s.APIServerURL = "v1.31.4", "default", "https://192.168.20.10:6443"
			c := detect.Analyze(s)
			p, err := proposal.Propose(c, proposal.Options{CiliumVersion: "1.18.11"})
			if err != nil {
				t.Fatal(err)
			}
			r := New(c, p, check.Run(check.Input{Cluster: c, Proposal: p, Access: &access.Result{Checked: 31, Missing: []access.Need{}}, IgnoreUnsupportedDistribution: tt.ignore}))
			if r.Summary.Safe != tt.safe {
				t.Errorf("summary %+v, want safe %v", r.Summary, tt.safe)
			}
			var table bytes.Buffer
			if err := r.PrintTable(&table, output.NewStyle(&table, "")); err != nil {
				t.Fatal(err)
			}
			golden(t, "plan-"+tt.name+"-table.golden", table.Bytes())
		})
	}
}
