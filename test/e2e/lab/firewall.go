package lab

import (
	"context"
	"slices"
)

// Firewall inserts an iptables rule into the node's chain (filter table)
// now and at every boot after, as a machine's host firewall keeps its rules
// in its configuration: for example Block of Cilium's tunnel port, the
// fault the connectivity gate must catch.
func (n *Node) Firewall(ctx context.Context, chain string, spec ...string) error {
	n.mu.Lock()
	n.firewall = append(n.firewall, append([]string{chain}, spec...))
	n.mu.Unlock()
	return n.applyFirewall(ctx, append([]string{chain}, spec...))
}

// ClearFirewall removes the rules Firewall added, now and from later boots.
func (n *Node) ClearFirewall(ctx context.Context) error {
	n.mu.Lock()
	rules := n.firewall
	n.firewall = nil
	n.mu.Unlock()
	var first error
	for _, r := range rules {
		args := append([]string{"-w", "-D"}, r...)
		if _, err := execIn(ctx, n.NetNS(), "iptables", args...); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// BlockUDP drops every UDP datagram to port on the node (INPUT), now and
// after every reboot.
func (n *Node) BlockUDP(ctx context.Context, port string) error {
	return n.Firewall(ctx, "INPUT", "-p", "udp", "--dport", port, "-j", "DROP", "-m", "comment", "--comment", "lab: blocked by the test")
}

func (n *Node) applyFirewall(ctx context.Context, rule []string) error {
	_, err := execIn(ctx, n.NetNS(), "iptables", append([]string{"-w", "-I"}, rule...)...)
	return err
}

// rebootFirewall applies the node's rules in its new network namespace.
func (n *Node) rebootFirewall(ctx context.Context) error {
	n.mu.Lock()
	rules := slices.Clone(n.firewall)
	n.mu.Unlock()
	for _, r := range rules {
		if err := n.applyFirewall(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
