package status

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// maxListed bounds the node names listed on one summary line.
const maxListed = 10

// PrintTable writes the report for people.
func (r *Report) PrintTable(w io.Writer, s output.Style) error {
	tw := printers.GetNewTabWriter(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	c := r.Cluster
	fmt.Fprintln(tw, s.Bold("CLUSTER"))
	if c.OldCNI != "" {
		row("  old CNI", fmt.Sprintf("%s, pod network %s", c.OldCNI, orNone(strings.Join(c.OldPodCIDRs, ", "))))
	} else {
		row("  old CNI", "none found, pod network "+orNone(strings.Join(c.OldPodCIDRs, ", ")))
	}
	if ci := c.Cilium; ci.Installed {
		mode := "owns the network"
		if ci.MigrationMode {
			mode = "migration mode"
		}
		ncs := "no CiliumNodeConfig"
		if len(ci.NodeConfigs) > 0 {
			ncs = "CiliumNodeConfig " + strings.Join(ci.NodeConfigs, ", ")
		}
		row("  cilium", fmt.Sprintf("%s in %s, %s, pod CIDR %s, agents %d/%d ready, %s, policies %s",
			orNone(ci.Version), ci.Namespace, mode, orNone(strings.Join(ci.PodCIDRs, ", ")), ci.AgentsReady, ci.AgentsDesired, ncs, orNone(ci.Policies)))
	} else {
		row("  cilium", "not installed")
	}
	p := r.Pods
	method := map[string]string{MethodEndpoints: "CiliumEndpoints", MethodPodIPs: "by address", MethodNone: "Cilium not installed"}[p.ManagedMethod]
	row("  pods", fmt.Sprintf("%d/%d managed by Cilium (%s); %d on the old pod CIDR, %d on Cilium's, %d other, %d without an address",
		p.ManagedByCilium, p.Total, method, p.OldCIDR, p.NewCIDR, p.Other, p.NoIP))
	ro := r.Rollout
	nodes := fmt.Sprintf("%d/%d done", ro.Done, ro.Nodes)
	if ro.InProgress > 0 {
		nodes += fmt.Sprintf(", %d in progress", ro.InProgress)
	}
	if ro.Remaining > 0 {
		nodes += fmt.Sprintf(", %d remaining in rollout order: %s", ro.Remaining, listNames(ro.Order))
	}
	if r.Next.Stage == StageFinalized {
		nodes = fmt.Sprintf("%d, all on Cilium: the migration is finalized", ro.Nodes)
	}
	row("  nodes", nodes)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, s.Bold("NODE\tROLE\tREADY\tPHASE\tCORDONED\tSELECTED\tAGENT\tOLD CIDR\tNEW CIDR\tOTHER"))
	for _, n := range r.Nodes {
		role := "worker"
		if n.ControlPlane {
			role = "control-plane"
		}
		phase := n.Phase
		switch n.Migration {
		case MigrationDone:
			phase = s.Green(phase)
		case MigrationInProgress:
			phase = s.Yellow(phase)
		case MigrationRollingBack:
			phase = s.Yellow("rollback:" + n.RollbackPhase)
		}
		agent := "-"
		switch {
		case n.CiliumAgent.Ready:
			agent = s.Green("ready")
		case n.CiliumAgent.Pod != "":
			agent = s.Red("not-ready")
		case c.Cilium.Installed:
			agent = s.Red("none")
		}
		ready := yesNo(n.Ready)
		if !n.Ready {
			ready = s.Red(ready)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", n.Name, role, ready, phase, yesNo(n.Cordoned), yesNo(n.Selected), agent,
			n.Pods.OldCIDR, n.Pods.NewCIDR, n.Pods.Other+n.Pods.NoIP)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if r.Next.Command != "" {
		fmt.Fprintf(w, "%s %s\n  %s\n", s.Bold("Next:"), r.Next.Command, r.Next.Reason)
	} else {
		fmt.Fprintf(w, "%s nothing: %s\n", s.Bold("Next:"), r.Next.Reason)
	}
	if c := r.Connectivity; c != nil {
		label := s.Bold("Connectivity:")
		fmt.Fprintf(w, "%s %s\n", label, c.Summary)
	}
	if b := r.PolicyBridge; b != nil {
		rules := "not deployed"
		if b.NodeRules != nil {
			rules = fmt.Sprintf("ready on %d of %d nodes", b.NodeRules.Ready, b.NodeRules.Desired)
		}
		fmt.Fprintf(w, "%s %d CiliumEndpoints for pods on the old network; node rules %s\n", s.Bold("Policy bridge:"), b.Endpoints, rules)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, s.Yellow("Warnings:"))
		for _, wn := range r.Warnings {
			fmt.Fprintf(w, "  %s\n", wn)
		}
	}
	return nil
}

func listNames(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, ... (%d more)", strings.Join(names[:maxListed], ", "), len(names)-maxListed)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
