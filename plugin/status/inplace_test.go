package status

import (
	"strings"
	"testing"
)

// TestNextStepInPlace: Cilium owning every node's CNI config beside the old
// CNI with pods still on its network is the in-place method under way.
func TestNextStepInPlace(t *testing.T) {
	r := &Report{}
	r.Cluster.OldCNI = "flannel"
	r.Cluster.Cilium = Cilium{Installed: true, Namespace: "kube-system", Version: "1.18.11"}
	r.Pods.OldCIDR = 12
	r.Nodes = []Node{{Name: "w1", Migration: MigrationNotStarted}}
	n := NextStep(r, true)
	if n.Stage != StageRestartPods || n.Command != "kubectl cni-migrate rollout --strategy in-place" || !strings.Contains(n.Reason, "12 pods are still on its network") {
		t.Errorf("next %+v", n)
	}
	// Once every pod moved, the rules before the in-place method apply.
	r.Pods.OldCIDR = 0
	if n := NextStep(r, true); n.Stage != StageNotMigration {
		t.Errorf("next %+v", n)
	}
}
