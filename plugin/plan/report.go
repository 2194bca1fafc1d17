// Package plan assembles the `plan` report: what was detected, what is
// proposed, and the checks, as a table for people or JSON/YAML for scripts.
package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/proposal"
)

// APIVersion and Kind of the report's JSON form (docs/plan-schema.md).
const (
	APIVersion = "cni-migrate.io/v1alpha1"
	Kind       = "MigrationPlan"
)

// Report is the result of `plan`.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	Cluster         *detect.Cluster    `json:"cluster"`
	Proposal        *proposal.Proposal `json:"proposal,omitempty"`
	Checks          []check.Result     `json:"checks"`
	Summary         Summary            `json:"summary"`
}

// Summary counts the checks and says what to do next.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	// Safe is true when no check FAILed.
	Safe bool `json:"safe"`
	// Next is the command to run next.
	Next string `json:"next"`
}

// New assembles a report.
func New(c *detect.Cluster, p *proposal.Proposal, results []check.Result) *Report {
	r := &Report{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		Cluster:  c, Proposal: p, Checks: results,
	}
	r.Summary.Pass, r.Summary.Warn, r.Summary.Fail = check.Count(results)
	r.Summary.Safe = r.Summary.Fail == 0
	switch {
	case !r.Summary.Safe:
		r.Summary.Next = "fix the FAILed checks, then run `kubectl cni-migrate plan` again"
	case c.Cilium.Installed && c.Cilium.MigrationMode:
		r.Summary.Next = "migrate nodes one by one, workers first (see docs/user-guide.md)"
	case p != nil && p.Strategy == proposal.InPlace && c.Cilium.Installed:
		r.Summary.Next = "kubectl cni-migrate rollout --strategy in-place (restarts the pods still on the old network, namespace by namespace)"
	case p != nil && p.Strategy == proposal.InPlace:
		r.Summary.Next = "kubectl cni-migrate values --strategy in-place --output-dir . && helm install cilium cilium/cilium --version " +
			p.Version.HelmChartVersion() + " --namespace kube-system --values values-initial.yaml"
	default:
		r.Summary.Next = "kubectl cni-migrate values --output-dir . && helm install cilium cilium/cilium --version " +
			p.Version.HelmChartVersion() + " --namespace kube-system --values values-initial.yaml"
	}
	return r
}

func strategyFrom(p *proposal.Proposal) string {
	if p.StrategySource == "" || p.StrategySource == "default" {
		return ""
	}
	return " (" + p.StrategySource + ")"
}

// DeepCopyObject makes Report a runtime.Object for kubectl's printers.
func (r *Report) DeepCopyObject() runtime.Object {
	data, err := json.Marshal(r)
	if err != nil {
		panic(err) // Report is plain data: marshalling cannot fail
	}
	out := &Report{}
	if err := json.Unmarshal(data, out); err != nil {
		panic(err)
	}
	return out
}

// PrintTable writes the report for people.
func (r *Report) PrintTable(w io.Writer, s output.Style) error {
	c, p := r.Cluster, r.Proposal
	tw := printers.GetNewTabWriter(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }

	fmt.Fprintln(tw, s.Bold("CLUSTER"))
	row("  name", fmt.Sprintf("%s (%s)", orNone(c.Name), c.NameSource))
	row("  kubernetes", c.KubernetesVersion)
	row("  api server", c.APIServer)
	row("  nodes", fmt.Sprintf("%d (%d control-plane: %s)", len(c.Nodes), len(c.ControlPlaneNodes()), orNone(strings.Join(c.ControlPlaneNodes(), ", "))))
	if c.CNI != nil {
		if err := cniRows(row, c.CNI); err != nil {
			return err
		}
	} else {
		var seen []string
		for _, s := range c.CNIsSeen {
			seen = append(seen, s.Name+" ("+s.Object+")")
		}
		row("  cni", "none supported; seen: "+orNone(strings.Join(seen, ", ")))
	}
	for i, pc := range c.PodCIDRs {
		row(label(i, "  pod networks"), pc.CIDR+" ("+pc.Source+")")
	}
	if len(c.ServiceCIDRs) == 0 {
		row("  service networks", "not found")
	}
	for i, sc := range c.ServiceCIDRs {
		row(label(i, "  service networks"), sc.CIDR+" ("+sc.Source+")")
	}
	if c.KubeProxy.Present {
		row("  kube-proxy", fmt.Sprintf("%s %s, mode %s, clusterCIDR %s", c.KubeProxy.Kind, c.KubeProxy.Object, c.KubeProxy.Mode, orNone(c.KubeProxy.ClusterCIDR)))
	} else {
		row("  kube-proxy", "absent")
	}
	if c.Cilium.Installed {
		mode := "owns the network"
		if c.Cilium.MigrationMode {
			mode = "migration mode"
		}
		row("  cilium", fmt.Sprintf("%s in %s, %s, agents %d/%d ready", c.Cilium.Version, c.Cilium.Namespace, mode, c.Cilium.AgentsReady, c.Cilium.AgentsDesired))
	} else {
		row("  cilium", "not installed")
	}
	if p != nil {
		fmt.Fprintln(tw, s.Bold("PROPOSAL"))
		row("  strategy", p.Strategy+strategyFrom(p))
		if p.Strategy == proposal.InPlace {
			row("  cilium", p.CiliumVersion+" (owning every node's CNI config at once, no CiliumNodeConfig)")
		} else {
			row("  cilium", p.CiliumVersion+" (CiliumNodeConfig "+p.NodeConfigAPIVersion+")")
		}
		row("  pod CIDR", fmt.Sprintf("%s, /%d per node (%s)", p.PodCIDR, p.MaskSize, p.PodCIDRSource))
		row("  tunnel", fmt.Sprintf("%s, UDP port %d", p.TunnelProtocol, p.TunnelPort))
		if p.IPv4NativeRoutingCIDR != "" {
			row("  no SNAT to", p.IPv4NativeRoutingCIDR+" (ipv4NativeRoutingCIDR while the migration runs, see check pod-snat)")
		}
		if !p.KubeProxyReplacement && p.K8sServiceHost != "" {
			row("  API server", fmt.Sprintf("%s:%d, kube-proxy's own (k8sServiceHost: Cilium does not wait for the kubernetes Service on a booting node)", p.K8sServiceHost, p.K8sServicePort))
		}
		if p.KubeProxyReplacement {
			row("  kube-proxy", fmt.Sprintf("replaced by Cilium (k8sServiceHost %s, k8sServicePort %d)", p.K8sServiceHost, p.K8sServicePort))
		} else {
			row("  kube-proxy", "kept (kubeProxyReplacement=false)")
		}
		if p.PortMapChaining {
			row("  hostPorts", "portmap chained after Cilium (cni.chainingMode=portmap), as the old CNI's config chains it")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, s.Bold("CHECK\tRESULT\tDETAIL"))
	for _, res := range r.Checks {
		status := string(res.Status)
		switch res.Status {
		case check.Pass:
			status = s.Green(status)
		case check.Warn:
			status = s.Yellow(status)
		case check.Fail:
			status = s.Red(status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", res.ID, status, res.Message)
		if res.Fix != "" {
			fmt.Fprintf(tw, "\t\t-> %s\n", res.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed. Next: %s\n", r.Summary.Pass, r.Summary.Warn, r.Summary.Fail, r.Summary.Next)
	return nil
}

func label(i int, l string) string {
	if i == 0 {
		return l
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
