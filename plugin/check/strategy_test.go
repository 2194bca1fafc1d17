package check

import (
	"errors"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

func TestMigrationChecks(t *testing.T) {
	inPlaceInstalled := func(c *detect.Cluster) {
		c.Cilium = detect.Cilium{Installed: true, Version: "1.18.11", PodCIDRs: []string{"10.245.0.0/16"}, AgentsReady: 2, AgentsDesired: 2}
	}
	tests := []struct {
		name   string
		tweak  func(*detect.Cluster)
		opts   proposal.Options
		id     string
		status Status
		has    []string
		fix    string
	}{
		{name: "dual-overlay explains the other strategy", id: IDStrategy, status: Pass,
			has: []string{"dual-overlay: 2 nodes move to Cilium one at a time", "--strategy in-place instead restarts each pod once"}},
		{name: "dual-overlay on one node", tweak: func(c *detect.Cluster) { c.Nodes = c.Nodes[:1] }, id: IDStrategy, status: Warn,
			has: []string{"draining the only node leaves its pods nowhere to run"}, fix: "use --strategy in-place"},
		{name: "dual-overlay names blocking PDBs", tweak: func(c *detect.Cluster) {
			c.BlockingPDBs = []detect.PDB{{Namespace: "shop", Name: "db", ExpectedPods: 2}}
		}, id: IDStrategy, status: Pass, has: []string{"1 PodDisruptionBudget allows no disruption now"}},
		{name: "in-place explained", opts: proposal.Options{Strategy: proposal.InPlace}, id: IDStrategy, status: Pass,
			has: []string{"in-place (--strategy): Cilium takes the CNI config of all 2 nodes at once", "each pod still on flannel is restarted once", "choose dual-overlay to move one node at a time"}},
		{name: "in-place with a blocking PDB", opts: proposal.Options{Strategy: proposal.InPlace}, tweak: func(c *detect.Cluster) {
			c.BlockingPDBs = []detect.PDB{{Namespace: "shop", Name: "db", ExpectedPods: 2}, {Namespace: "shop", Name: "pay", ExpectedPods: 2}}
		}, id: IDStrategy, status: Warn, has: []string{"2 PodDisruptionBudgets allow no disruption now (shop/db, shop/pay): their namespaces stop the rollout"}, fix: "relax the PDBs"},
		{name: "in-place detected from the installed Cilium", tweak: inPlaceInstalled, id: IDStrategy, status: Pass,
			has: []string{"in-place (the installed Cilium owns the CNI configuration (custom-cni-conf false) while flannel is still there)"}},

		{name: "SNAT with the exclusion", id: IDPodSNAT, status: Warn,
			has: []string{"connections from flannel pods to Cilium pods arrive source-NATed: flanneld --ip-masq masquerades everything from 10.244.0.0/16 leaving it",
				"and across nodes Cilium's \"cilium host->cluster masquerade\" rule SNATs to cilium_host",
				"Cilium pods keep their address towards flannel pods (ipv4NativeRoutingCIDR 10.244.0.0/15)"},
			fix: "no flannel or Cilium setting removes it safely"},
		{name: "SNAT without the exclusion names the CIDR that would do", opts: proposal.Options{PodCIDR: "10.250.0.0/16"}, id: IDPodSNAT, status: Warn,
			has: []string{"Cilium pods reaching flannel pods on the same node are masqueraded too", "--pod-cidr 10.245.0.0/16 would avoid that"}},
		{name: "SNAT without flanneld --ip-masq", tweak: func(c *detect.Cluster) { c.CNI.IPMasq = new(bool) }, id: IDPodSNAT, status: Warn,
			has: []string{"arrive source-NATed: across nodes Cilium's"}, fix: "no Cilium setting removes it safely"},
		{name: "SNAT by Calico natOutgoing", tweak: func(c *detect.Cluster) {
			c.CNI.Name = "calico"
			c.CNI.Pools = []detect.IPPool{{Name: "default-ipv4-ippool", CIDR: "10.244.0.0/16", NATOutgoing: true}}
		}, id: IDPodSNAT, status: Warn,
			has: []string{"Calico masquerades traffic from default-ipv4-ippool 10.244.0.0/16 to addresses in none of its IPPools, 10.245.0.0/16 included"},
			fix: "a disabled IPPool for 10.245.0.0/16 (disabled: true, natOutgoing: false) stops Calico's NAT"},
		{name: "no SNAT by Calico when a pool covers Cilium's CIDR", tweak: func(c *detect.Cluster) {
			c.CNI.Name = "calico"
			c.CNI.Pools = []detect.IPPool{{Name: "default-ipv4-ippool", CIDR: "10.244.0.0/16", NATOutgoing: true}, {Name: "cilium", CIDR: "10.245.0.0/16", Disabled: true}}
		}, id: IDPodSNAT, status: Warn, has: []string{"Calico does not (IPPool cilium covers 10.245.0.0/16)"}},
		{name: "SNAT by a CNI not analysed", tweak: func(c *detect.Cluster) { c.CNI.Name = "weave" }, id: IDPodSNAT, status: Warn,
			has: []string{"weave's own masquerading may too (not analysed)"}},

		{name: "in-place under way passes the cilium check", tweak: inPlaceInstalled, id: IDCilium, status: Pass,
			has: []string{"owns every node's CNI config (custom-cni-conf off) while flannel is still there: the in-place migration is under way (2/2 agents ready)"}},
		{name: "dual-overlay asked for on an in-place install", tweak: inPlaceInstalled, opts: proposal.Options{Strategy: proposal.DualOverlay}, id: IDCilium, status: Fail,
			has: []string{"the in-place setup, but the plan is for dual-overlay"}, fix: "--strategy in-place"},
		{name: "in-place asked for on a dual-overlay install", tweak: func(c *detect.Cluster) {
			c.Cilium = detect.Cilium{Installed: true, MigrationMode: true, Version: "1.18.11"}
		}, opts: proposal.Options{Strategy: proposal.InPlace}, id: IDCilium, status: Fail,
			has: []string{"runs in migration mode (custom-cni-conf true), the dual-overlay setup, but the plan is for in-place"}, fix: "values --strategy in-place"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster()
			if tt.tweak != nil {
				tt.tweak(c)
			}
			p, err := proposal.Propose(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := find(t, Run(Input{Cluster: c, Proposal: p}), tt.id)
			if r.Status != tt.status {
				t.Errorf("status %s, want %s: %s", r.Status, tt.status, r.Message)
			}
			for _, h := range tt.has {
				if !strings.Contains(r.Message, h) {
					t.Errorf("message %q lacks %q", r.Message, h)
				}
			}
			if !strings.Contains(r.Fix, tt.fix) || (r.Status != Pass && r.Fix == "") {
				t.Errorf("fix %q, want it to contain %q", r.Fix, tt.fix)
			}
			if strings.Contains(r.Message+r.Fix, "\n") {
				t.Error("not one line")
			}
		})
	}
	// Without a CNI or a proposal there is nothing to say.
	c := cluster()
	c.CNI, c.Problem = nil, errors.New("no supported network provider found")
	for _, r := range Run(Input{Cluster: c}) {
		if r.ID == IDStrategy || r.ID == IDPodSNAT {
			t.Errorf("%s without a CNI", r.ID)
		}
	}
}
