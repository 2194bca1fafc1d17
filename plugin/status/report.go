// Package status assembles `kubectl cni-migrate status`: where each node
// stands in the migration (the phase annotations written by plugin/migrate,
// cordon, its Cilium agent, its pods by pod CIDR), the cluster totals as
// `cilium status` counts them, the nodes in the order a rollout takes them,
// and the next command to run.
//
// Collect reads the cluster with a bounded number of paginated LISTs (no
// request per pod or per node) and keeps only a few fields per pod; Watch
// follows nodes, pods and CiliumEndpoints with watches and re-renders on
// changes. Assemble is pure: it turns what was read into a Report, so the
// rules (counting, ordering, next step) are tested without an API server.
package status

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/connectivity"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/rollout"
)

// APIVersion and Kind of the report's JSON form (docs/status-schema.md).
const (
	APIVersion = "cni-migrate.io/v1alpha1"
	Kind       = "MigrationStatus"
)

// How the pods managed by Cilium were counted (Pods.ManagedMethod).
const (
	// MethodEndpoints: the number of CiliumEndpoints, as `cilium status`.
	MethodEndpoints = "ciliumEndpoints"
	// MethodPodIPs: the counted pods with an address in Cilium's pool
	// (the CiliumEndpoint CRD is not served).
	MethodPodIPs = "podIPs"
	// MethodNone: Cilium is not installed.
	MethodNone = "none"
)

// Where a node stands (Node.Migration).
const (
	MigrationDone       = "done"
	MigrationInProgress = "in-progress"
	MigrationNotStarted = "not-started"
	// MigrationRollingBack: `kubectl cni-migrate rollback` began on the
	// node and has not finished.
	MigrationRollingBack = "rolling-back"
)

// The stages of the whole migration (Next.Stage).
const (
	StageInstallCilium = "install-cilium"
	StageNotMigration  = "cilium-not-in-migration-mode"
	// StageRollback: a rollback is under way on a node.
	StageRollback        = "rollback"
	StageApplyNodeConfig = "apply-nodeconfig"
	StageMigrateNodes    = "migrate-nodes"
	StageFinalize        = "finalize"
	StageFinalized       = "finalized"
	// StageRestartPods: Cilium owns every node's CNI config while the old
	// CNI is still there and pods still have its addresses: the in-place
	// method (or a plain install), whose next step restarts them.
	StageRestartPods = "restart-pods"
)

// Report is the result of `status`. Its JSON form is documented in
// docs/status-schema.md: add fields, never rename or remove them.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	Cluster         Cluster  `json:"cluster"`
	Pods            Pods     `json:"pods"`
	Rollout         Rollout  `json:"rollout"`
	Next            Next     `json:"next"`
	Nodes           []Node   `json:"nodes"`
	Warnings        []string `json:"warnings"`
	// Connectivity is the latest connectivity matrix (kubectl cni-migrate
	// connectivity, or a gate of rollout or node), when one was kept.
	Connectivity *Connectivity `json:"connectivity,omitempty"`
	// PolicyBridge is the policy bridge (kubectl cni-migrate policy-bridge),
	// when it is deployed or has CiliumEndpoints.
	PolicyBridge *PolicyBridge `json:"policyBridge,omitempty"`
}

// PolicyBridge is the state of the policy bridge.
type PolicyBridge struct {
	// Endpoints counts its CiliumEndpoints, one per pod on the old network.
	Endpoints int `json:"endpoints"`
	// NodeRules are its node rules' DaemonSet; absent when it is not
	// deployed.
	NodeRules *NodeRules `json:"nodeRules,omitempty"`
}

// NodeRules counts the pods of the policy bridge's node rules.
type NodeRules struct {
	// Desired is the number of nodes they run on (every node).
	Desired int `json:"desired"`
	// Ready is the number of them Ready (their rules in place).
	Ready int `json:"ready"`
}

// Connectivity sums up the latest connectivity matrix
// (docs/connectivity-schema.md has the whole matrix).
type Connectivity struct {
	// Time is when its round ended.
	Time metav1.Time `json:"time"`
	// Green: every check of the round passed.
	Green bool `json:"green"`
	// Failures counts the failing checks.
	Failures int `json:"failures"`
	// Summary says it in one line, as the table prints it.
	Summary string `json:"summary"`
}

// Cluster is what the migration runs between.
type Cluster struct {
	// OldCNI is the network provider migrated from ("flannel"), "" when
	// none was found (for example after finalize removed it).
	OldCNI string `json:"oldCNI"`
	// OldPodCIDRs are the pod networks of the old CNI: flannel's
	// net-conf.json Network and node podCIDRs outside it.
	OldPodCIDRs []string `json:"oldPodCIDRs"`
	Cilium      Cilium   `json:"cilium"`
}

// Cilium describes the installed Cilium.
type Cilium struct {
	Installed bool   `json:"installed"`
	Namespace string `json:"namespace,omitempty"`
	Version   string `json:"version,omitempty"`
	// MigrationMode is true while Cilium runs beside the old CNI
	// (custom-cni-conf on, from values-initial.yaml).
	MigrationMode bool `json:"migrationMode"`
	// PodCIDRs is cilium-config's cluster-pool-ipv4-cidr.
	PodCIDRs      []string `json:"podCIDRs"`
	AgentsReady   int32    `json:"agentsReady"`
	AgentsDesired int32    `json:"agentsDesired"`
	// NodeConfigs names the CiliumNodeConfigs in Cilium's namespace.
	NodeConfigs []string `json:"nodeConfigs"`
	// Policies is what Cilium does with network policies: "enforced",
	// "audited" (policyAuditMode: verdicts computed, nothing dropped;
	// policy-report shows them) or "off" (enable-policy never); absent
	// when Cilium is not installed.
	Policies string `json:"policies,omitempty"`
}

// Pods are the cluster totals.
type Pods struct {
	// Total is the Y of `cilium status` "Cluster Pods X/Y managed by
	// Cilium": pods not on the host network that are Running or Pending.
	Total int `json:"total"`
	// ManagedByCilium is the X: see ManagedMethod.
	ManagedByCilium int    `json:"managedByCilium"`
	ManagedMethod   string `json:"managedMethod"`
	// OldCIDR, NewCIDR, Other and NoIP split Total by the pod's address:
	// in the old pod CIDR, in Cilium's pool, in neither, none yet.
	OldCIDR int `json:"oldCIDR"`
	NewCIDR int `json:"newCIDR"`
	Other   int `json:"other"`
	NoIP    int `json:"noIP"`
}

// Rollout counts the nodes and lists them in the order a rollout takes them.
type Rollout struct {
	Nodes      int `json:"nodes"`
	Done       int `json:"done"`
	InProgress int `json:"inProgress"`
	// Remaining is the number of nodes not done (in progress included).
	Remaining int `json:"remaining"`
	// DoneNodes lists the migrated nodes.
	DoneNodes []string `json:"doneNodes"`
	// Order lists the nodes not done in the order a rollout takes them:
	// workers under way (a phase recorded) first, then the other workers,
	// then control-plane nodes under way, then the other control-plane
	// nodes, each group by name (see SortRollout).
	Order []string `json:"order"`
	// RollingBack lists the nodes a rollback is under way on; they are not
	// in Order (node and rollout refuse them until the rollback ends).
	RollingBack []string `json:"rollingBack"`
}

// Next is what to do next.
type Next struct {
	// Stage of the whole migration; see docs/status-schema.md.
	Stage string `json:"stage"`
	// Command to run next, "" when there is nothing left to do.
	Command string `json:"command"`
	Reason  string `json:"reason"`
}

// Node is one node.
type Node struct {
	Name         string `json:"name"`
	ControlPlane bool   `json:"controlPlane"`
	// Ready is the node's Ready condition.
	Ready bool `json:"ready"`
	// Phase is the cni-migrate.io/phase annotation: none, cordoned, ...,
	// done (or the annotation's value when this plugin does not know it).
	Phase string `json:"phase"`
	// PhaseTime is the cni-migrate.io/phase-time annotation.
	PhaseTime string `json:"phaseTime,omitempty"`
	// Migration is done, in-progress, not-started or rolling-back.
	Migration string `json:"migration"`
	// RollbackPhase is the cni-migrate.io/rollback-phase annotation while a
	// rollback is under way ("none" when it began but recorded no step).
	RollbackPhase string `json:"rollbackPhase,omitempty"`
	// Cordoned is spec.unschedulable.
	Cordoned bool `json:"cordoned"`
	// Selected is true when a CiliumNodeConfig selects the node (before
	// one exists: when the node carries the default migration label).
	Selected    bool     `json:"selected"`
	CiliumAgent Agent    `json:"ciliumAgent"`
	Pods        NodePods `json:"pods"`
}

// Agent is the Cilium agent pod on a node.
type Agent struct {
	// Pod is the agent pod's name, "" when the node runs none.
	Pod   string `json:"pod,omitempty"`
	Ready bool   `json:"ready"`
}

// NodePods counts a node's pods (not on the host network, Running or
// Pending) by address.
type NodePods struct {
	OldCIDR int `json:"oldCIDR"`
	NewCIDR int `json:"newCIDR"`
	Other   int `json:"other"`
	NoIP    int `json:"noIP"`
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

// NodeConfig is a CiliumNodeConfig: its name and the nodes it selects.
type NodeConfig struct {
	Name     string
	Selector labels.Selector
}

// Input is everything a report is made from.
type Input struct {
	// Cluster is what detection found (nodes, old CNI, Cilium).
	Cluster *detect.Cluster
	// Nodes are the node objects; only names, labels, the cni-migrate.io
	// annotations and spec.unschedulable are read.
	Nodes []corev1.Node
	// Tally holds the pods.
	Tally *Tally
	// CiliumNamespace is where Cilium runs (or would).
	CiliumNamespace string
	// Endpoints is the number of CiliumEndpoints when EndpointsServed.
	Endpoints       int
	EndpointsServed bool
	// NodeConfigs are the CiliumNodeConfigs of Cilium's namespace when
	// NodeConfigsServed.
	NodeConfigs       []NodeConfig
	NodeConfigsServed bool
	// Warnings found while reading the cluster.
	Warnings []string
	// Connectivity is the latest connectivity matrix, nil when none was kept.
	Connectivity *connectivity.Matrix
	// BridgedEndpoints counts the policy bridge's CiliumEndpoints (pods
	// still on the old network; not in Endpoints).
	BridgedEndpoints int
	// NodeRules is the policy bridge's node rules' DaemonSet, nil when
	// there is none.
	NodeRules *NodeRules
}

// NetworksOf returns the old and new pod networks of a cluster, and a
// warning for each CIDR that does not parse.
func NetworksOf(c *detect.Cluster) (Networks, []string) {
	var old []string
	for _, pc := range c.PodCIDRs {
		old = append(old, pc.CIDR)
	}
	var n Networks
	var bad, bad2 []string
	n.Old, bad = ParsePrefixes(old)
	n.New, bad2 = ParsePrefixes(c.Cilium.PodCIDRs)
	var warnings []string
	for _, b := range append(bad, bad2...) {
		warnings = append(warnings, fmt.Sprintf("pod CIDR %q does not parse: its pods are counted as other", b))
	}
	return n, warnings
}

// Assemble makes the report.
func Assemble(in Input) *Report {
	c := in.Cluster
	tally := in.Tally
	if tally == nil {
		tally = NewTally(Networks{})
	}
	r := &Report{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		Nodes:    []Node{},
		Warnings: []string{},
	}
	r.Warnings = append(r.Warnings, in.Warnings...)
	if m := in.Connectivity; m != nil {
		r.Connectivity = &Connectivity{Time: m.Time, Green: m.Green, Failures: len(m.Failures), Summary: m.Summary()}
	}
	r.PolicyBridge = policyBridgeOf(in)

	// Cluster.
	r.Cluster.OldPodCIDRs = []string{}
	if c.CNI != nil {
		r.Cluster.OldCNI = c.CNI.Name
	}
	for _, pc := range c.PodCIDRs {
		r.Cluster.OldPodCIDRs = append(r.Cluster.OldPodCIDRs, pc.CIDR)
	}
	ci := c.Cilium
	r.Cluster.Cilium = Cilium{
		Installed: ci.Installed, Version: ci.Version, MigrationMode: ci.MigrationMode,
		PodCIDRs: append([]string{}, ci.PodCIDRs...), AgentsReady: ci.AgentsReady, AgentsDesired: ci.AgentsDesired,
		NodeConfigs: []string{},
	}
	if ci.Installed {
		r.Cluster.Cilium.Namespace = in.CiliumNamespace
		switch {
		case ci.PolicyEnforcement == "never":
			r.Cluster.Cilium.Policies = "off"
		case ci.PolicyAudit:
			r.Cluster.Cilium.Policies = "audited"
		default:
			r.Cluster.Cilium.Policies = "enforced"
		}
	}
	for _, nc := range in.NodeConfigs {
		r.Cluster.Cilium.NodeConfigs = append(r.Cluster.Cilium.NodeConfigs, nc.Name)
	}
	sort.Strings(r.Cluster.Cilium.NodeConfigs)

	// Pods.
	r.Pods = Pods{Total: tally.Counted, OldCIDR: tally.OldCIDR, NewCIDR: tally.NewCIDR, Other: tally.Other, NoIP: tally.NoIP}
	switch {
	case in.EndpointsServed:
		r.Pods.ManagedByCilium, r.Pods.ManagedMethod = in.Endpoints, MethodEndpoints
	case ci.Installed:
		r.Pods.ManagedByCilium, r.Pods.ManagedMethod = tally.NewCIDR, MethodPodIPs
		r.Warnings = append(r.Warnings, "CiliumEndpoints cannot be listed (the CRD is not served, or listing them is not allowed): pods managed by Cilium are counted by their address in Cilium's pool")
	default:
		r.Pods.ManagedMethod = MethodNone
	}
	if tally.Other > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d %s an address in neither the old pod CIDR (%s) nor Cilium's pool (%s)",
			tally.Other, output.Plural(tally.Other, "pod has", "pods have"), orNone(strings.Join(r.Cluster.OldPodCIDRs, ", ")), orNone(strings.Join(ci.PodCIDRs, ", "))))
	}

	// Nodes.
	controlPlane := map[string]bool{}
	ready := map[string]bool{}
	for _, n := range c.Nodes {
		controlPlane[n.Name], ready[n.Name] = n.ControlPlane, n.Ready
	}
	defaultLabel := labels.SelectorFromSet(labels.Set{defaultLabelKey(): defaultLabelValue()})
	for i := range in.Nodes {
		n := &in.Nodes[i]
		out := Node{Name: n.Name, ControlPlane: controlPlane[n.Name] || kube.IsControlPlane(n), Ready: ready[n.Name], Cordoned: n.Spec.Unschedulable}
		raw := n.Annotations[migrate.AnnotationPhase]
		phase, err := migrate.ParsePhase(raw)
		if err != nil {
			out.Phase = raw
			r.Warnings = append(r.Warnings, fmt.Sprintf("node %s has %s=%q, which this plugin does not know: fix or remove it (kubectl annotate node %s %s-)",
				n.Name, migrate.AnnotationPhase, raw, n.Name, migrate.AnnotationPhase))
		} else {
			out.Phase = phase.String()
		}
		out.PhaseTime = n.Annotations[migrate.AnnotationPhaseTime]
		set := labels.Set(n.Labels)
		if len(in.NodeConfigs) == 0 {
			out.Selected = defaultLabel.Matches(set)
		}
		for _, nc := range in.NodeConfigs {
			if nc.Selector != nil && nc.Selector.Matches(set) {
				out.Selected = true
			}
		}
		rbRaw, rolling := n.Annotations[migrate.AnnotationRollbackPhase]
		if _, begun := n.Annotations[migrate.AnnotationRollbackWasUnschedulable]; begun {
			rolling = true
		}
		switch {
		case rolling:
			out.Migration, out.RollbackPhase = MigrationRollingBack, rbRaw
			if rbRaw == "" {
				out.RollbackPhase = "none"
			}
		case err == nil && phase.Done():
			out.Migration = MigrationDone
		case err != nil || phase != migrate.PhaseNone || out.Selected:
			out.Migration = MigrationInProgress
		default:
			out.Migration = MigrationNotStarted
		}
		if nt := tally.Nodes[n.Name]; nt != nil {
			out.CiliumAgent = Agent{Pod: nt.AgentPod, Ready: nt.AgentReady}
			out.Pods = NodePods{OldCIDR: nt.OldCIDR, NewCIDR: nt.NewCIDR, Other: nt.Other, NoIP: nt.NoIP}
		}
		if out.Migration == MigrationDone {
			switch {
			case ci.Installed && !out.CiliumAgent.Ready:
				r.Warnings = append(r.Warnings, fmt.Sprintf("node %s is migrated but its Cilium agent is not Ready", n.Name))
			case ci.Installed && ci.MigrationMode && !out.Selected:
				r.Warnings = append(r.Warnings, fmt.Sprintf("node %s is migrated but no CiliumNodeConfig selects it: its agent falls back to the old CNI when it restarts", n.Name))
			}
		}
		r.Nodes = append(r.Nodes, out)
	}
	SortRollout(r.Nodes)

	// Rollout.
	r.Rollout = Rollout{Nodes: len(r.Nodes), DoneNodes: []string{}, Order: []string{}, RollingBack: []string{}}
	for _, n := range r.Nodes {
		switch n.Migration {
		case MigrationDone:
			r.Rollout.Done++
			r.Rollout.DoneNodes = append(r.Rollout.DoneNodes, n.Name)
		case MigrationInProgress:
			r.Rollout.InProgress++
			r.Rollout.Order = append(r.Rollout.Order, n.Name)
		case MigrationRollingBack:
			r.Rollout.RollingBack = append(r.Rollout.RollingBack, n.Name)
		default:
			r.Rollout.Order = append(r.Rollout.Order, n.Name)
		}
	}
	r.Rollout.Remaining = len(r.Rollout.Order) + len(r.Rollout.RollingBack)

	r.Next = NextStep(r, in.NodeConfigsServed)
	if r.Next.Stage == StageFinalized {
		// finalize removes the nodes' annotations: a node without a phase
		// is then on Cilium, not one a rollout has yet to take.
		r.Rollout.Order = []string{}
		r.Rollout.Remaining = len(r.Rollout.RollingBack)
	}
	if c.Problem != nil && r.Next.Stage != StageFinalized {
		r.Warnings = append(r.Warnings, errs.OneLine(c.Problem.Error()))
	}
	return r
}

func defaultLabelKey() string {
	k, _, _ := strings.Cut(nodeconfig.DefaultLabel, "=")
	return k
}

func defaultLabelValue() string {
	_, v, _ := strings.Cut(nodeconfig.DefaultLabel, "=")
	return v
}

// SortRollout puts nodes in the order a rollout takes them, the order of
// `kubectl cni-migrate rollout` (plugin/rollout): the nodes done first (so
// the list reads as progress; workers, then control-plane nodes, by name),
// then the nodes being rolled back (by name), then workers under way (a phase recorded, not done), then the other
// workers, then control-plane nodes under way, then the other
// control-plane nodes, each group by name. A phase this plugin does not
// know counts as under way.
func SortRollout(nodes []Node) {
	var done, rolling []Node
	var todo []rollout.Node
	byName := map[string]Node{}
	for _, n := range nodes {
		switch n.Migration {
		case MigrationDone:
			done = append(done, n)
			continue
		case MigrationRollingBack:
			rolling = append(rolling, n)
			continue
		}
		phase := migrate.Phase(n.Phase)
		if n.Phase == migrate.PhaseNone.String() {
			phase = migrate.PhaseNone
		}
		byName[n.Name] = n
		todo = append(todo, rollout.Node{Name: n.Name, ControlPlane: n.ControlPlane, Phase: phase})
	}
	sort.SliceStable(done, func(i, j int) bool {
		if done[i].ControlPlane != done[j].ControlPlane {
			return !done[i].ControlPlane
		}
		return done[i].Name < done[j].Name
	})
	sort.SliceStable(rolling, func(i, j int) bool { return rolling[i].Name < rolling[j].Name })
	ordered, _ := rollout.Order(todo)
	out := append(append(nodes[:0:0], done...), rolling...)
	for _, n := range ordered {
		out = append(out, byName[n.Name])
	}
	copy(nodes, out)
}

// NextStep says what to run next, from a report whose nodes, rollout and
// cluster are filled in. nodeConfigsServed says whether the cluster serves
// CiliumNodeConfigs (the report's list of them is then authoritative).
func NextStep(r *Report, nodeConfigsServed bool) Next {
	ci := r.Cluster.Cilium
	old := r.Cluster.OldCNI
	if old == "" {
		old = "the old CNI"
	}
	started := r.Rollout.Done+r.Rollout.InProgress > 0
	switch {
	case !ci.Installed:
		return Next{
			Stage: StageInstallCilium,
			Command: "kubectl cni-migrate values --output-dir . && helm install cilium cilium/cilium --version " +
				ciliumver.Default().HelmChartVersion() + " --namespace kube-system --values values-initial.yaml",
			Reason: "Cilium is not installed: install it beside " + old + " with the migration values (check first with kubectl cni-migrate plan)",
		}
	case !ci.MigrationMode && r.Cluster.OldCNI != "" && r.Pods.OldCIDR > 0:
		return Next{Stage: StageRestartPods, Command: "kubectl cni-migrate rollout --strategy in-place",
			Reason: fmt.Sprintf("Cilium owns every node's CNI config (custom-cni-conf is off) while %s is still there, and %d %s still on its network: restart them, namespace by namespace, with PodDisruptionBudgets honoured (docs/in-place.md)",
				old, r.Pods.OldCIDR, output.Plural(r.Pods.OldCIDR, "pod is", "pods are"))}
	case !ci.MigrationMode && (r.Cluster.OldCNI == "" || started):
		return Next{Stage: StageFinalized, Reason: "Cilium owns the network (custom-cni-conf is off): the migration is finalized"}
	case !ci.MigrationMode:
		return Next{
			Stage: StageNotMigration,
			Command: "kubectl cni-migrate values --output-dir . && helm upgrade cilium cilium/cilium --namespace " + ci.Namespace +
				" --version " + ci.Version + " --values values-initial.yaml",
			Reason: "Cilium runs beside " + old + " without the migration values (custom-cni-conf is off): it would take over every node's CNI",
		}
	case len(r.Rollout.RollingBack) > 0:
		name := r.Rollout.RollingBack[0]
		return Next{Stage: StageRollback, Command: "kubectl cni-migrate rollback " + name,
			Reason: "a rollback of " + name + " is under way: the same command finishes it (node and rollout refuse the node until then)"}
	case r.Rollout.Remaining > 0 && nodeConfigsServed && len(ci.NodeConfigs) == 0:
		return Next{
			Stage:   StageApplyNodeConfig,
			Command: "kubectl cni-migrate nodeconfig --apply",
			Reason:  "no CiliumNodeConfig in " + ci.Namespace + ": it is what hands a labelled node to Cilium",
		}
	case r.Rollout.Remaining > 0:
		name := r.Rollout.Order[0]
		var n Node
		for _, x := range r.Nodes {
			if x.Name == name {
				n = x
			}
		}
		reason := name + " is the next node in rollout order (workers first, control-plane nodes last)"
		if n.Migration == MigrationInProgress {
			reason = fmt.Sprintf("%s stopped at phase %s: the same command continues where it stopped", name, n.Phase)
			if n.Phase == migrate.PhaseNone.String() {
				reason = name + " is selected by a CiliumNodeConfig but has no recorded phase (migrated by hand?): the command checks each step"
			}
		}
		return Next{Stage: StageMigrateNodes, Command: "kubectl cni-migrate node " + name, Reason: reason}
	default:
		return Next{Stage: StageFinalize, Command: "kubectl cni-migrate finalize", Reason: "every node is migrated"}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// policyBridgeOf is the policy bridge's state, nil when there is none.
func policyBridgeOf(in Input) *PolicyBridge {
	if in.BridgedEndpoints == 0 && in.NodeRules == nil {
		return nil
	}
	return &PolicyBridge{Endpoints: in.BridgedEndpoints, NodeRules: in.NodeRules}
}
