package lab

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

func TestSources(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Sources {
		if s.Name == "" || seen[s.Name] || s.install == nil || s.DaemonSet == "" || s.Namespace == "" || s.Conflist == "" || !s.OldNetwork.IsValid() {
			t.Errorf("source %+v: incomplete or listed twice", s)
		}
		seen[s.Name] = true
		if got, err := SourceNamed(s.Name); err != nil || got.Name != s.Name {
			t.Errorf("SourceNamed(%q) = %v, %v", s.Name, got.Name, err)
		}
		if s.Enforces && !s.Policies.Kubernetes {
			t.Errorf("%s enforces NetworkPolicies but the lab gives it none", s.Name)
		}
	}
	if _, err := SourceNamed("weave"); err == nil {
		t.Error("SourceNamed(weave): want an error (Weave cannot be built here)")
	}
}

func TestLeftoversOf(t *testing.T) {
	st := NodeState{
		Links: []string{"lo", "eth0", "vxlan.calico", "cali1234567890a", "cilium_host", "flannel.1"},
		Routes: []string{
			"default via 192.168.100.1 dev eth0",
			"10.244.120.64/26 via 10.244.120.64 dev vxlan.calico onlink",
			"blackhole 10.244.81.0/26 proto 80",
			"10.245.0.0/24 via 10.245.1.10 dev cilium_host proto kernel src 10.245.1.10 mtu 1450",
		},
		Chains: []Chain{{"filter", "cali-FORWARD", "nft"}, {"filter", "KUBE-FORWARD", "nft"}, {"nat", "CILIUM_POST_nat", "legacy"}},
		IPSets: []string{"cali40all-ipam-pools", "cilium_node_set_v4"},
		Files:  []string{"05-cilium.conflist", "10-calico.conflist.cilium_bak", "calico-kubeconfig"},
	}
	got := calicoSource().Leftovers.Of(st, netip.MustParsePrefix("10.244.0.0/16"))
	want := []string{
		"chain filter cali-FORWARD (nft)",
		"file /etc/cni/net.d/10-calico.conflist.cilium_bak",
		"file /etc/cni/net.d/calico-kubeconfig",
		"ipset cali40all-ipam-pools",
		"link cali1234567890a",
		"link vxlan.calico",
		"route 10.244.120.64/26 via 10.244.120.64 dev vxlan.calico onlink",
		"route blackhole 10.244.81.0/26 proto 80",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Of:\n got %q\nwant %q", got, want)
	}
	if got := calicoSource().Leftovers.Of(NodeState{Links: []string{"eth0", "cilium_host"}}, netip.MustParsePrefix("10.244.0.0/16")); len(got) != 0 {
		t.Errorf("a clean node: %q", got)
	}
}

func TestSetEnv(t *testing.T) {
	objs, err := cluster.ParseYAML([]byte(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: calico-node}
spec:
  template:
    spec:
      containers:
      - name: calico-node
        env:
        - {name: CALICO_IPV4POOL_VXLAN, value: CrossSubnet}
        - name: NODENAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := objs[0]
	if err := setEnv(o, "DaemonSet", "calico-node", "calico-node", map[string]string{"CALICO_IPV4POOL_VXLAN": "Always", "CALICO_IPV4POOL_CIDR": "10.244.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	env := o.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["env"].([]any)
	var names []string
	for _, e := range env {
		m := e.(map[string]any)
		names = append(names, m["name"].(string)+"="+stringOr(m["value"]))
	}
	if want := []string{"CALICO_IPV4POOL_VXLAN=Always", "NODENAME=", "CALICO_IPV4POOL_CIDR=10.244.0.0/16"}; !slices.Equal(names, want) {
		t.Errorf("env = %q, want %q", names, want)
	}
	if err := setEnv(o, "DaemonSet", "calico-node", "nope", map[string]string{"A": "b"}); err == nil {
		t.Error("a missing container must be an error")
	}
}

func stringOr(v any) string {
	s, _ := v.(string)
	return s
}
