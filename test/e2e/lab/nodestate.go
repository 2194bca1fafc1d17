package lab

import (
	"context"
	"os/exec"
	"slices"
	"strings"
)

// Chain is an iptables chain of a node.
type Chain struct {
	// Table is the iptables table ("filter", "nat", ...), Backend
	// "legacy" or "nft".
	Table, Name, Backend string
}

// NodeState is what the CNIs leave in a node's network namespace and
// CNI configuration directory: what a reboot of a real machine clears
// (all but the files) and what it keeps.
type NodeState struct {
	Links  []string
	Routes []string
	Chains []Chain
	IPSets []string
	// Files are the entries of /etc/cni/net.d.
	Files []string
}

// State reads the node's interfaces, IPv4 routes, iptables chains (both
// backends), ipsets and CNI configuration files.
func (n *Node) State(ctx context.Context) (NodeState, error) {
	var st NodeState
	out, err := n.Exec(ctx, "ip", "-o", "link", "show")
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		st.Links = append(st.Links, name)
	}
	if out, err = n.Exec(ctx, "ip", "-4", "route", "show", "table", "main"); err != nil {
		return st, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			st.Routes = append(st.Routes, line)
		}
	}
	for _, b := range []string{"legacy", "nft"} {
		save := "iptables-" + b + "-save"
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out, err := n.Exec(ctx, save)
		if err != nil {
			continue // the backend's tables are not there
		}
		table := ""
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				name, _, _ := strings.Cut(line[1:], " ")
				st.Chains = append(st.Chains, Chain{Table: table, Name: name, Backend: b})
			}
		}
	}
	if out, err := n.Exec(ctx, "ipset", "list", "-n"); err == nil {
		st.IPSets = strings.Fields(string(out))
	}
	if out, err := n.Exec(ctx, "ls", "-A", "/etc/cni/net.d"); err == nil {
		st.Files = strings.Fields(string(out))
	}
	slices.Sort(st.IPSets)
	slices.Sort(st.Files)
	return st, nil
}
