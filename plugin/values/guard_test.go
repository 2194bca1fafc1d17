package values

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/cidr"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// flannelNetwork is a kind cluster with flannel's vxlan on 8472.
func flannelNetwork(t *testing.T) OldNetwork {
	t.Helper()
	var reserved []cidr.Reserved
	for _, r := range [][2]string{
		{"10.244.0.0/16", "pod network 10.244.0.0/16 (flannel net-conf.json)"},
		{"10.96.0.0/12", "service network 10.96.0.0/12 (kubeadm-config)"},
		{"172.18.0.2", "node kind-control-plane InternalIP 172.18.0.2"},
	} {
		res, err := cidr.ParseReserved(r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		reserved = append(reserved, res)
	}
	return OldNetwork{CNI: "flannel", Backend: "vxlan", BackendPort: 8472, Reserved: reserved}
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		user     map[string]any
		policies int
		// want are substrings of the messages, one per finding, in order;
		// none means accepted.
		want []string
		keys []string
	}{
		{name: "no user values"},
		{name: "harmless values", user: map[string]any{"hubble": map[string]any{"enabled": true}, "routingMode": "tunnel", "tunnelPort": 8473}},
		{name: "the guide's values", user: map[string]any{
			"routingMode": "tunnel", "tunnelProtocol": "vxlan", "tunnelPort": 8473,
			"cni":                   map[string]any{"customConf": true, "uninstall": false},
			"ipam":                  map[string]any{"mode": "cluster-pool", "operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{"10.245.0.0/16"}}},
			"policyEnforcementMode": "never",
			"bpf":                   map[string]any{"hostLegacyRouting": true},
			"operator":              map[string]any{"unmanagedPodWatcher": map[string]any{"restart": false}},
		}},
		{name: "ipam kubernetes", user: map[string]any{"ipam": map[string]any{"mode": "kubernetes"}},
			keys: []string{"ipam.mode"},
			want: []string{`--values v.yaml sets ipam.mode to "kubernetes" in values-initial.yaml: Cilium would hand out pod addresses from the nodes' podCIDRs, the pod network flannel uses`}},
		{name: "ipam multi-pool", user: map[string]any{"ipam": map[string]any{"mode": "multi-pool"}},
			keys: []string{"ipam.mode"},
			want: []string{`"multi-pool" IPAM gives addresses the migration cannot check`}},
		{name: "ipam mode removed falls back to cluster-pool", user: map[string]any{"ipam": map[string]any{"mode": nil}}},
		{name: "cluster-pool CIDR overlapping the old pod network", user: map[string]any{"ipam": map[string]any{"operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{"10.244.128.0/17"}}}},
			keys: []string{"ipam.operator.clusterPoolIPv4PodCIDRList"},
			want: []string{`sets ipam.operator.clusterPoolIPv4PodCIDRList to ["10.244.128.0/17"] in values-initial.yaml: Cilium's pod CIDR 10.244.128.0/17 overlaps pod network 10.244.0.0/16 (flannel net-conf.json)`}},
		{name: "cluster-pool CIDR overlapping the services", user: map[string]any{"ipam": map[string]any{"operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{"10.245.0.0/16", "10.0.0.0/8"}}}},
			keys: []string{"ipam.operator.clusterPoolIPv4PodCIDRList"},
			want: []string{"overlaps pod network 10.244.0.0/16 (flannel net-conf.json); service network 10.96.0.0/12"}},
		{name: "cluster-pool CIDR free", user: map[string]any{"ipam": map[string]any{"operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{"10.250.0.0/16"}}}}},
		{name: "cluster-pool CIDR list removed", user: map[string]any{"ipam": map[string]any{"operator": nil}},
			keys: []string{"ipam.operator.clusterPoolIPv4PodCIDRList"},
			want: []string{`removes ipam.operator.clusterPoolIPv4PodCIDRList (the chart default is ["10.0.0.0/8"]) in values-initial.yaml: Cilium's pod CIDR 10.0.0.0/8 overlaps pod network 10.244.0.0/16`}},
		{name: "cluster-pool CIDR list empty", user: map[string]any{"ipam": map[string]any{"operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{}}}},
			keys: []string{"ipam.operator.clusterPoolIPv4PodCIDRList"},
			want: []string{"Cilium would have no pod CIDR of the migration's choosing"}},
		{name: "cluster-pool CIDR not a CIDR", user: map[string]any{"ipam": map[string]any{"operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{"ten"}}}},
			keys: []string{"ipam.operator.clusterPoolIPv4PodCIDRList"},
			want: []string{`"ten" is not a CIDR`}},
		{name: "customConf off", user: map[string]any{"cni": map[string]any{"customConf": false}},
			keys: []string{"cni.customConf"},
			want: []string{"sets cni.customConf to false in values-initial.yaml: Cilium would write its CNI config on every node as soon as its agent starts"}},
		{name: "customConf removed", user: map[string]any{"cni": map[string]any{"customConf": nil}},
			keys: []string{"cni.customConf"},
			want: []string{"sets cni.customConf to null (the chart default is false)"}},
		{name: "customConf as the string true", user: map[string]any{"cni": map[string]any{"customConf": "true"}}},
		{name: "cni replaced by a string", user: map[string]any{"cni": "none"},
			keys: []string{"cni.customConf"},
			want: []string{"removes cni.customConf"}},
		{name: "tunnel port of flannel", user: map[string]any{"tunnelPort": 8472},
			keys: []string{"tunnelPort"},
			want: []string{`sets tunnelPort to 8472 in values-initial.yaml: UDP port 8472 is the one flannel's vxlan backend uses; both overlays would bind it ("address already in use")`}},
		{name: "tunnel port as a string", user: map[string]any{"tunnelPort": "8472"},
			keys: []string{"tunnelPort"},
			want: []string{"UDP port 8472 is the one flannel's vxlan backend uses"}},
		{name: "tunnel port 0 means vxlan's 8472", user: map[string]any{"tunnelPort": 0},
			keys: []string{"tunnelPort"},
			want: []string{"sets tunnelPort to 0, so Cilium's vxlan port is 8472 in values-initial.yaml"}},
		{name: "tunnel port removed", user: map[string]any{"tunnelPort": nil},
			keys: []string{"tunnelPort"},
			want: []string{"so Cilium's vxlan port is 8472"}},
		{name: "geneve with the default port", user: map[string]any{"tunnelProtocol": "geneve", "tunnelPort": 0}},
		{name: "geneve on the migration's port", user: map[string]any{"tunnelProtocol": "geneve"}},
		{name: "other free port", user: map[string]any{"tunnelPort": 9000}},
		{name: "tunnel port not a port", user: map[string]any{"tunnelPort": "eighty"},
			keys: []string{"tunnelPort"}, want: []string{"it is not a UDP port"}},
		{name: "tunnel protocol unknown", user: map[string]any{"tunnelProtocol": "gre"},
			keys: []string{"tunnelProtocol"}, want: []string{"Cilium's overlay is vxlan or geneve"}},
		{name: "native routing", user: map[string]any{"routingMode": "native"},
			keys: []string{"routingMode"}, want: []string{`sets routingMode to "native" in values-initial.yaml: the dual-overlay migration needs Cilium's own overlay`}},
		{name: "policy always", user: map[string]any{"policyEnforcementMode": "always"},
			keys: []string{"policyEnforcementMode"},
			want: []string{`sets policyEnforcementMode to "always" in values-initial.yaml: Cilium would drop traffic no policy allows`}},
		{name: "policy default with policies", user: map[string]any{"policyEnforcementMode": "default"}, policies: 3,
			keys: []string{"policyEnforcementMode"},
			want: []string{"Cilium would enforce the cluster's 3 NetworkPolicies on migrated nodes"}},
		{name: "policy default without policies", user: map[string]any{"policyEnforcementMode": "default"}},
		{name: "policy removed with policies", user: map[string]any{"policyEnforcementMode": nil}, policies: 1,
			keys: []string{"policyEnforcementMode"},
			want: []string{`sets policyEnforcementMode to null (the chart default is "default")`}},
		{name: "host routing off", user: map[string]any{"bpf": map[string]any{"hostLegacyRouting": false}},
			keys: []string{"bpf.hostLegacyRouting"}, want: []string{"eBPF host routing bypasses the host's routing table"}},
		{name: "host routing removed", user: map[string]any{"bpf": map[string]any{"hostLegacyRouting": nil}},
			keys: []string{"bpf.hostLegacyRouting"}, want: []string{"sets bpf.hostLegacyRouting to null"}},
		{name: "unmanaged pod watcher on", user: map[string]any{"operator": map[string]any{"unmanagedPodWatcher": map[string]any{"restart": true}}},
			keys: []string{"operator.unmanagedPodWatcher.restart"}, want: []string{"the operator would restart pods on nodes not yet migrated"}},
		{name: "chaining", user: map[string]any{"cni": map[string]any{"chainingMode": "generic-veth"}},
			keys: []string{"cni.chainingMode"}, want: []string{"chaining Cilium onto another CNI"}},
		{name: "chaining none", user: map[string]any{"cni": map[string]any{"chainingMode": "none"}}},
		{name: "chaining portmap", user: map[string]any{"cni": map[string]any{"chainingMode": "portmap"}}},
		{name: "several at once", user: map[string]any{"tunnelPort": 8472, "ipam": map[string]any{"mode": "kubernetes"}, "cni": map[string]any{"customConf": false}},
			keys: []string{"ipam.mode", "cni.customConf", "tunnelPort"},
			want: []string{"ipam.mode", "cni.customConf", "tunnelPort"}},

		// The in-place method.
		{name: "in-place: customConf off is what it needs", strategy: InPlace, user: map[string]any{"cni": map[string]any{"customConf": false}}},
		{name: "in-place: customConf on", strategy: InPlace, user: map[string]any{"cni": map[string]any{"customConf": true}},
			keys: []string{"cni.customConf"}, want: []string{"the in-place migration needs Cilium to write its CNI config on every node"}},
		{name: "in-place: the watcher is not refused", strategy: InPlace, user: map[string]any{"operator": map[string]any{"unmanagedPodWatcher": map[string]any{"restart": true}}}},
		{name: "in-place: ipam kubernetes", strategy: InPlace, user: map[string]any{"ipam": map[string]any{"mode": "kubernetes"}},
			keys: []string{"ipam.mode"}, want: []string{"the nodes' podCIDRs"}},
		{name: "in-place: tunnel port clash", strategy: InPlace, user: map[string]any{"tunnelPort": 8472},
			keys: []string{"tunnelPort"}, want: []string{"flannel's vxlan backend"}},
		{name: "in-place: native routing", strategy: InPlace, user: map[string]any{"routingMode": "native"},
			keys: []string{"routingMode"}, want: []string{"the in-place migration needs Cilium's own overlay"}},
		{name: "in-place: policy always", strategy: InPlace, user: map[string]any{"policyEnforcementMode": "always"},
			keys: []string{"policyEnforcementMode"}, want: []string{"no policy allows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t, "1.18")
			in.Strategy, in.User, in.UserFile = tt.strategy, tt.user, "v.yaml"
			initial, _, _, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			old := flannelNetwork(t)
			old.NetworkPolicies = tt.policies
			got := Guard(in, initial, old)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, u := range got {
				if !strings.Contains(u.Msg, tt.want[i]) {
					t.Errorf("finding %d: %q does not contain %q", i, u.Msg, tt.want[i])
				}
				if u.Key != tt.keys[i] {
					t.Errorf("finding %d: key %q, want %q", i, u.Key, tt.keys[i])
				}
				if u.Fix == "" || strings.ContainsAny(u.Msg+u.Fix, "\n") {
					t.Errorf("finding %d: want a one-line message and a fix: %+v", i, u)
				}
			}
		})
	}
}

func TestGuardCalicoPorts(t *testing.T) {
	in := baseInput(t, "1.18")
	in.User, in.UserFile = map[string]any{"tunnelPort": 4789}, "v.yaml"
	initial, _, _, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	// Calico on IPIP: its VXLAN port is still bound (UDPPorts), its backend is not VXLAN.
	got := Guard(in, initial, OldNetwork{CNI: "calico", Backend: "ipip", UDPPorts: []int{4789}})
	if len(got) != 1 || !strings.Contains(got[0].Msg, "UDP port 4789 is the one calico uses") {
		t.Fatalf("got %+v", got)
	}
}

func TestRefuse(t *testing.T) {
	two := []Unsafe{
		{Key: "ipam.mode", Msg: "--values v.yaml sets ipam.mode to \"kubernetes\" in values-initial.yaml: why", Fix: "set ipam.mode to cluster-pool"},
		{Key: "tunnelPort", Msg: "--values v.yaml sets tunnelPort to 8472 in values-initial.yaml: why", Fix: "set tunnelPort"},
	}
	t.Run("nothing unsafe", func(t *testing.T) {
		w, err := Refuse(nil, false)
		if w != nil || err != nil {
			t.Fatalf("got %v, %v", w, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		w, err := Refuse(two, false)
		if w != nil || errs.Code(err) != errs.Unsafe {
			t.Fatalf("got %v, %v (code %d), want an unsafe error", w, err, errs.Code(err))
		}
		want := `--values v.yaml sets ipam.mode to "kubernetes" in values-initial.yaml: why (and 1 more unsafe: tunnelPort); set ipam.mode to cluster-pool, or pass --allow-unsafe-values to write the values anyway`
		if err.Error() != want {
			t.Errorf("got  %s\nwant %s", err, want)
		}
	})
	t.Run("overridden", func(t *testing.T) {
		w, err := Refuse(two, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			`--allow-unsafe-values: writing it anyway: --values v.yaml sets ipam.mode to "kubernetes" in values-initial.yaml: why`,
			`--allow-unsafe-values: writing it anyway: --values v.yaml sets tunnelPort to 8472 in values-initial.yaml: why`,
		}
		if strings.Join(w, "\n") != strings.Join(want, "\n") {
			t.Errorf("got %q, want %q", w, want)
		}
	})
}

// TestPolicyBridgeValues: with the policy bridge, values-initial keeps
// policies enforced (dual overlay only), and the guard accepts a user's
// policyEnforcementMode: default, which it refuses without the bridge.
func TestPolicyBridgeValues(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy string
		bridge   bool
		want     string
	}{
		{name: "dual overlay", want: "never"},
		{name: "dual overlay with the bridge", bridge: true, want: "default"},
		{name: "in-place with the bridge", strategy: InPlace, bridge: true, want: "default"},
		{name: "in-place", strategy: InPlace, want: "never"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t, "1.20")
			in.Strategy, in.PolicyBridge = tc.strategy, tc.bridge
			initial, final, _, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := initial.Map()["policyEnforcementMode"]; got != tc.want {
				t.Errorf("values-initial policyEnforcementMode %v, want %s", got, tc.want)
			}
			if got := final.Map()["policyEnforcementMode"]; got != "default" {
				t.Errorf("values-final policyEnforcementMode %v", got)
			}
		})
	}
	in := baseInput(t, "1.20")
	in.User, in.UserFile = map[string]any{"policyEnforcementMode": "default"}, "v.yaml"
	initial, _, _, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := Guard(in, initial, OldNetwork{CNI: "calico", NetworkPolicies: 3}); len(got) != 1 {
		t.Errorf("without the bridge: %+v", got)
	}
	in.PolicyBridge = true
	if got := Guard(in, initial, OldNetwork{CNI: "calico", NetworkPolicies: 3}); len(got) != 0 {
		t.Errorf("with the bridge: %+v", got)
	}
}

// TestPolicyAuditValues: audit mode (without the bridge, either method)
// turns Cilium's policy verdicts on in values-initial and off in
// values-final; the guard accepts a user's policyEnforcementMode: default
// then, and refuses a user's policyAuditMode: false.
func TestPolicyAuditValues(t *testing.T) {
	for _, tc := range []struct {
		name          string
		strategy      string
		bridge, audit bool
		mode          string
		auditInitial  any
		auditFinal    any
	}{
		{name: "audit", audit: true, mode: "default", auditInitial: true, auditFinal: false},
		{name: "neither", mode: "never"},
		{name: "the bridge wins", bridge: true, audit: true, mode: "default"},
		{name: "in-place audits too", strategy: InPlace, audit: true, mode: "default", auditInitial: true, auditFinal: false},
		{name: "in-place with the bridge", strategy: InPlace, bridge: true, audit: true, mode: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t, "1.20")
			in.Strategy, in.PolicyBridge, in.PolicyAudit = tc.strategy, tc.bridge, tc.audit
			initial, final, _, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := initial.Map()["policyEnforcementMode"]; got != tc.mode {
				t.Errorf("values-initial policyEnforcementMode %v, want %s", got, tc.mode)
			}
			if got := initial.Map()["policyAuditMode"]; got != tc.auditInitial {
				t.Errorf("values-initial policyAuditMode %v, want %v", got, tc.auditInitial)
			}
			if got := final.Map()["policyAuditMode"]; got != tc.auditFinal {
				t.Errorf("values-final policyAuditMode %v, want %v", got, tc.auditFinal)
			}
			if got := final.Map()["policyEnforcementMode"]; got != "default" {
				t.Errorf("values-final policyEnforcementMode %v", got)
			}
		})
	}
	in := baseInput(t, "1.20")
	in.PolicyAudit = true
	in.User, in.UserFile = map[string]any{"policyEnforcementMode": "default"}, "v.yaml"
	initial, _, _, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := Guard(in, initial, OldNetwork{CNI: "flannel", NetworkPolicies: 3}); len(got) != 0 {
		t.Errorf("enforcement default in audit mode: %+v", got)
	}
	in.User = map[string]any{"policyAuditMode": false}
	if initial, _, _, err = Generate(in); err != nil {
		t.Fatal(err)
	}
	got := Guard(in, initial, OldNetwork{CNI: "flannel", NetworkPolicies: 3})
	if len(got) != 1 || got[0].Key != "policyAuditMode" || !strings.Contains(got[0].Fix, "--policy-audit=false") {
		t.Errorf("audit mode turned off by the user: %+v", got)
	}
}
