package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

func TestPolicyCompat(t *testing.T) {
	np := detect.NamespacedName{Namespace: "shop", Name: "web"}
	block := func(dir, cidr string, except ...string) detect.PolicyIPBlock {
		return detect.PolicyIPBlock{Policy: np, Direction: dir, CIDR: cidr, Except: except}
	}
	tests := []struct {
		name     string
		policies []detect.NamespacedName
		blocks   []detect.PolicyIPBlock
		ports    []detect.PolicyPort
		named    []detect.NamedPort
		cilium   string // --cilium-version
		want     Status // "" when the check is left out
		has      []string
		hasNot   []string
	}{
		{name: "no policies, no check"},
		{name: "policies without ipBlocks pass", policies: []detect.NamespacedName{np}, want: Pass, has: []string{"1 NetworkPolicy"}},
		{name: "outside addresses pass", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("egress", "203.0.113.0/24"), block("ingress", "172.16.0.0/12")}, want: Pass},
		{name: "allow-all egress covers pods and nodes", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("egress", "0.0.0.0/0")}, want: Warn,
			has: []string{"1 ipBlock covers pod addresses (shop/web egress 0.0.0.0/0)", "1 ipBlock covers node addresses (shop/web egress 0.0.0.0/0 (node cp-1))", "podSelector", "policyCIDRMatchMode"}},
		{name: "except of the pod networks and nodes passes", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("egress", "0.0.0.0/0", "10.0.0.0/8", "192.168.10.0/24")}, want: Pass},
		{name: "the old pod network", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("ingress", "10.244.3.0/24")}, want: Warn,
			has: []string{"shop/web ingress 10.244.3.0/24"}, hasNot: []string{"node addresses"}},
		{name: "Cilium's new pod network", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("egress", "10.245.0.0/16", "10.245.9.0/24")}, want: Warn,
			has: []string{"pod addresses"}},
		{name: "the API server's node", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("egress", "192.168.10.10/32")}, want: Warn,
			has: []string{"covers node addresses (shop/web egress 192.168.10.10/32 (node cp-1))", "toEntities"}, hasNot: []string{"pod addresses"}},
		{name: "a node excepted", policies: []detect.NamespacedName{np},
			blocks: []detect.PolicyIPBlock{block("egress", "192.168.10.0/24", "192.168.10.0/28")}, want: Pass},

		// Port ranges: Cilium 1.15 and earlier read only the first port.
		{name: "a port range on Cilium 1.15", policies: []detect.NamespacedName{np}, cilium: "1.15",
			ports: []detect.PolicyPort{{Policy: np, Direction: "ingress", Protocol: "TCP", Port: "8000", EndPort: 8100}}, want: Warn,
			has: []string{"1 port range (shop/web ingress 8000-8100/TCP): Cilium 1.15 ignores endPort and allows only the first port", "Cilium 1.16 or later"}},
		{name: "a port range on Cilium 1.16 and later", policies: []detect.NamespacedName{np}, cilium: "1.16",
			ports: []detect.PolicyPort{{Policy: np, Direction: "ingress", Protocol: "TCP", Port: "8000", EndPort: 8100}}, want: Pass},
		{name: "a port range on the default Cilium", policies: []detect.NamespacedName{np},
			ports: []detect.PolicyPort{{Policy: np, Direction: "egress", Protocol: "UDP", Port: "30000", EndPort: 32767}}, want: Pass},

		// Egress port names: Cilium resolves them over every pod.
		{name: "an egress port name with two numbers", policies: []detect.NamespacedName{np},
			ports: []detect.PolicyPort{{Policy: np, Direction: "egress", Protocol: "TCP", Port: "http"}},
			named: []detect.NamedPort{
				{Name: "http", Protocol: "TCP", Port: 80, Pods: 3, Example: detect.NamespacedName{Namespace: "shop", Name: "web-1"}},
				{Name: "http", Protocol: "TCP", Port: 8080, Pods: 1, Example: detect.NamespacedName{Namespace: "shop", Name: "api-0"}},
			}, want: Warn,
			has: []string{`1 egress rule names a port (shop/web egress to port "http", which is 80 on shop/web-1 (3 pods) and 8080 on shop/api-0 (1 pod))`,
				"resolves an egress port name over every pod of the cluster", "port numbers"}},
		{name: "an egress port name with one number", policies: []detect.NamespacedName{np},
			ports: []detect.PolicyPort{{Policy: np, Direction: "egress", Protocol: "TCP", Port: "http"}},
			named: []detect.NamedPort{{Name: "http", Protocol: "TCP", Port: 80, Pods: 3}}, want: Pass},
		{name: "the other protocol's number does not clash", policies: []detect.NamespacedName{np},
			ports: []detect.PolicyPort{{Policy: np, Direction: "egress", Protocol: "TCP", Port: "dns"}},
			named: []detect.NamedPort{{Name: "dns", Protocol: "TCP", Port: 53, Pods: 2}, {Name: "dns", Protocol: "UDP", Port: 5353, Pods: 1}}, want: Pass},
		{name: "an ingress port name resolves on the pod itself", policies: []detect.NamespacedName{np},
			ports: []detect.PolicyPort{{Policy: np, Direction: "ingress", Protocol: "TCP", Port: "http"}},
			named: []detect.NamedPort{{Name: "http", Protocol: "TCP", Port: 80, Pods: 3}, {Name: "http", Protocol: "TCP", Port: 8080, Pods: 1}}, want: Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster()
			c.NetworkPolicies, c.PolicyIPBlocks = tt.policies, tt.blocks
			c.PolicyPorts, c.NamedPorts = tt.ports, tt.named
			p, err := proposal.Propose(c, proposal.Options{CiliumVersion: tt.cilium})
			if err != nil {
				t.Fatal(err)
			}
			r, ok := policyCompatCheck(c, p)
			if !ok {
				if tt.want != "" {
					t.Fatalf("no result, want %s", tt.want)
				}
				return
			}
			if r.Status != tt.want {
				t.Fatalf("got %+v, want %s", r, tt.want)
			}
			for _, h := range tt.has {
				if !strings.Contains(r.Message+" | "+r.Fix, h) {
					t.Errorf("no %q in %+v", h, r)
				}
			}
			for _, h := range tt.hasNot {
				if strings.Contains(r.Message+" | "+r.Fix, h) {
					t.Errorf("%q in %+v", h, r)
				}
			}
			if r.Status != Pass && r.Fix == "" {
				t.Errorf("no fix: %+v", r)
			}
		})
	}
}
