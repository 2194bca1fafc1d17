package proposal

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// TestBridgeFor: the policy bridge is on by default where it is proven
// (Calico, Canal), follows the installed Cilium while it runs beside the
// old CNI, and the user's flag wins on the dual overlay.
func TestBridgeFor(t *testing.T) {
	on, off := true, false
	tests := []struct {
		name     string
		cni      string
		enforces bool
		cilium   *detect.Cilium
		user     *bool
		want     bool
		why      string
	}{
		{name: "flannel", cni: "flannel", want: false, why: "flannel enforces no NetworkPolicy today"},
		{name: "calico", cni: "calico", enforces: true, want: true, why: "calico enforces NetworkPolicies today"},
		{name: "canal", cni: "canal", enforces: true, want: true, why: "canal enforces NetworkPolicies today"},
		{name: "weave is not proven", cni: "weave", enforces: true, want: false, why: "proven on Calico's and Canal's nodes only: pass --policy-bridge"},
		{name: "kube-router is not proven", cni: "kube-router", enforces: true, want: false, why: "proven on Calico's and Canal's nodes only"},
		{name: "weave asked for", cni: "weave", enforces: true, user: &on, want: true, why: "--policy-bridge"},
		{name: "calico turned off", cni: "calico", enforces: true, user: &off, want: false, why: "--policy-bridge=false"},
		{name: "flannel asked for", cni: "flannel", user: &on, want: true, why: "--policy-bridge"},
		{name: "installed Cilium enforcing", cni: "flannel", cilium: &detect.Cilium{Installed: true, MigrationMode: true}, want: true, why: "the installed Cilium enforces policies beside flannel"},
		{name: "installed Cilium auditing", cni: "flannel", cilium: &detect.Cilium{Installed: true, MigrationMode: true, PolicyAudit: true}, want: false, why: "only audits"},
		{name: "installed Cilium not enforcing", cni: "calico", enforces: true, cilium: &detect.Cilium{Installed: true, MigrationMode: true, PolicyEnforcement: "never"}, want: false, why: "enable-policy never"},
		{name: "finalized Cilium is not the migration's", cni: "calico", enforces: true, cilium: &detect.Cilium{Installed: true, PolicyEnforcement: "never"}, want: true, why: "calico enforces"},
		{name: "no old CNI", want: false, why: "no old CNI found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := flannelCluster()
			c.CNI = nil
			if tt.cni != "" {
				c.CNI = &detect.CNI{Name: tt.cni, EnforcesPolicy: tt.enforces}
			}
			if tt.cilium != nil {
				c.Cilium = *tt.cilium
			}
			got, why := BridgeFor(c, tt.user)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("BridgeFor = %v, %q; want %v, %q", got, why, tt.want, tt.why)
			}
		})
	}
}

// TestAuditFor: audit mode whenever the dual overlay runs without the
// bridge, unless the user says otherwise or the installed Cilium does.
func TestAuditFor(t *testing.T) {
	on, off := true, false
	tests := []struct {
		name   string
		cilium *detect.Cilium
		bridge bool
		user   *bool
		want   bool
		why    string
	}{
		{name: "flannel", want: true, why: "audits them meanwhile"},
		{name: "with the bridge", bridge: true, want: false, why: "the policy bridge keeps the policies enforced"},
		{name: "asked for with the bridge", bridge: true, user: &on, want: false, why: "does not apply with the policy bridge"},
		{name: "turned off", user: &off, want: false, why: "--policy-audit=false"},
		{name: "asked for", user: &on, want: true, why: "--policy-audit"},
		{name: "installed, auditing", cilium: &detect.Cilium{Installed: true, MigrationMode: true, PolicyAudit: true}, want: true, why: "the installed Cilium audits"},
		{name: "installed, not auditing", cilium: &detect.Cilium{Installed: true, MigrationMode: true, PolicyEnforcement: "never"}, want: false, why: "does not audit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := flannelCluster()
			if tt.cilium != nil {
				c.Cilium = *tt.cilium
			}
			got, why := AuditFor(c, tt.bridge, tt.user)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("AuditFor = %v, %q; want %v, %q", got, why, tt.want, tt.why)
			}
		})
	}
}
