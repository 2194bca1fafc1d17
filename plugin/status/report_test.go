package status

import (
	"bytes"
	"encoding/json"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/connectivity"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/testdoc"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testdoc.Golden(t, name, got, *update)
}

const migrationLabel = "io.cilium.migration/cilium-default"

func node(name string, cp bool, phase string, cordoned, labelled bool) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	if cp {
		n.Labels[detect.LabelControlPlane] = ""
	}
	if labelled {
		n.Labels[migrationLabel] = "true"
	}
	if phase != "" {
		n.Annotations = map[string]string{"cni-migrate.io/phase": phase, "cni-migrate.io/phase-time": "2026-11-21T10:00:00Z"}
	}
	n.Spec.Unschedulable = cordoned
	return n
}

// midMigration is a cluster half way: worker-1 done, worker-2 drained,
// worker-5 with a phase this plugin does not know.
func midMigration(t *testing.T) Input {
	t.Helper()
	nodes := []corev1.Node{
		node("cp-1", true, "", false, false),
		node("worker-4", false, "", false, false),
		node("worker-3", false, "", false, false),
		node("worker-2", false, "drained", true, true),
		node("worker-1", false, "done", false, true),
		node("worker-5", false, "half-done", false, false),
	}
	c := &detect.Cluster{
		CNI:      &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds", Network: "10.244.0.0/16"},
		PodCIDRs: []detect.SourcedCIDR{{CIDR: "10.244.0.0/16", Source: "flannel net-conf.json Network"}},
		Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", DaemonSet: "cilium", Version: "1.18.11", MigrationMode: true,
			PodCIDRs: []string{"10.245.0.0/16"}, AgentsReady: 5, AgentsDesired: 6},
	}
	for _, n := range nodes {
		_, cp := n.Labels[detect.LabelControlPlane]
		c.Nodes = append(c.Nodes, detect.Node{Name: n.Name, ControlPlane: cp, Ready: n.Name != "worker-4"})
	}
	nw, _ := NetworksOf(c)
	tl := NewTally(nw)
	add := func(node, ip string, phase corev1.PodPhase, hostNetwork bool) {
		tl.Add(PodFrom(pod(node, ip, phase, hostNetwork), false))
	}
	agent := func(node string, ready bool) {
		p := pod(node, "", corev1.PodRunning, true)
		p.Namespace, p.Name = "kube-system", "cilium-"+node
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		tl.Add(PodFrom(p, true))
	}
	for _, n := range []string{"cp-1", "worker-1", "worker-2", "worker-3", "worker-5"} {
		agent(n, true)
	}
	agent("worker-4", false)
	add("worker-1", "10.245.0.10", corev1.PodRunning, false)
	add("worker-1", "10.245.0.11", corev1.PodRunning, false)
	add("worker-1", "10.245.0.12", corev1.PodPending, false)
	add("worker-1", "10.244.1.7", corev1.PodRunning, false) // a DaemonSet pod that kept its address
	add("worker-1", "10.244.1.8", corev1.PodSucceeded, false)
	add("worker-3", "10.244.3.2", corev1.PodRunning, false)
	add("worker-3", "10.244.3.3", corev1.PodRunning, false)
	add("worker-3", "", corev1.PodPending, false)
	add("worker-4", "10.244.4.2", corev1.PodRunning, false)
	add("worker-4", "10.244.4.3", corev1.PodFailed, false)
	add("worker-5", "10.244.5.2", corev1.PodRunning, false)
	add("cp-1", "10.244.0.2", corev1.PodRunning, false)
	add("cp-1", "127.1.0.1", corev1.PodRunning, true)
	sel := labels.SelectorFromSet(labels.Set{migrationLabel: "true"})
	return Input{
		Cluster: c, Nodes: nodes, Tally: tl, CiliumNamespace: "kube-system",
		Endpoints: 3, EndpointsServed: true,
		NodeConfigs: []NodeConfig{{Name: "cilium-default", Selector: sel}}, NodeConfigsServed: true,
	}
}

func TestReportOutputs(t *testing.T) {
	r := Assemble(midMigration(t))
	var table bytes.Buffer
	if err := r.PrintTable(&table, output.NewStyle(&table, "")); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-table.golden", table.Bytes())
	for _, f := range []string{"json", "yaml"} {
		var b bytes.Buffer
		if err := output.PrintStructured(r, f, &b); err != nil {
			t.Fatal(err)
		}
		golden(t, "status."+f+".golden", b.Bytes())
	}
}

func TestAssembleMidMigration(t *testing.T) {
	r := Assemble(midMigration(t))
	if r.Kind != Kind || r.APIVersion != APIVersion {
		t.Errorf("type %v", r.TypeMeta)
	}
	if want := (Pods{Total: 10, ManagedByCilium: 3, ManagedMethod: MethodEndpoints, OldCIDR: 6, NewCIDR: 3, NoIP: 1}); r.Pods != want {
		t.Errorf("pods %+v, want %+v", r.Pods, want)
	}
	var names []string
	for _, n := range r.Nodes {
		names = append(names, n.Name+":"+n.Migration)
	}
	want := []string{"worker-1:done", "worker-2:in-progress", "worker-5:in-progress", "worker-3:not-started", "worker-4:not-started", "cp-1:not-started"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("nodes %v, want %v", names, want)
	}
	if !reflect.DeepEqual(r.Rollout.Order, []string{"worker-2", "worker-5", "worker-3", "worker-4", "cp-1"}) ||
		!reflect.DeepEqual(r.Rollout.DoneNodes, []string{"worker-1"}) ||
		r.Rollout.Done != 1 || r.Rollout.InProgress != 2 || r.Rollout.Remaining != 5 || r.Rollout.Nodes != 6 {
		t.Errorf("rollout %+v", r.Rollout)
	}
	w1 := r.Nodes[0]
	if w1.Phase != "done" || !w1.Selected || w1.Cordoned || !w1.CiliumAgent.Ready || w1.CiliumAgent.Pod != "cilium-worker-1" ||
		w1.Pods != (NodePods{OldCIDR: 1, NewCIDR: 3}) || w1.PhaseTime != "2026-11-21T10:00:00Z" {
		t.Errorf("worker-1 %+v", w1)
	}
	if w5 := r.Nodes[2]; w5.Phase != "half-done" {
		t.Errorf("worker-5 keeps the unknown phase: %+v", w5)
	}
	if r.Next.Command != "kubectl cni-migrate node worker-2" || r.Next.Stage != StageMigrateNodes || !strings.Contains(r.Next.Reason, "stopped at phase drained") {
		t.Errorf("next %+v", r.Next)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `cni-migrate.io/phase="half-done"`) {
		t.Errorf("warnings %q", r.Warnings)
	}
}

func TestRolloutOrder(t *testing.T) {
	nodes := []Node{
		{Name: "cp-2", ControlPlane: true, Phase: "none", Migration: MigrationNotStarted},
		{Name: "b", Phase: "none", Migration: MigrationNotStarted},
		{Name: "cp-1", ControlPlane: true, Phase: "drained", Migration: MigrationInProgress},
		{Name: "c", Phase: "none", Migration: MigrationInProgress}, // labelled by hand, no phase
		{Name: "a", Phase: "none", Migration: MigrationNotStarted},
		{Name: "z", Phase: "rebooted", Migration: MigrationInProgress},
		{Name: "w", Phase: "half-done", Migration: MigrationInProgress}, // unknown phase: under way
		{Name: "cp-0", ControlPlane: true, Phase: "done", Migration: MigrationDone},
		{Name: "y", Phase: "done", Migration: MigrationDone},
		{Name: "x", Phase: "done", Migration: MigrationDone},
	}
	SortRollout(nodes)
	var got []string
	for _, n := range nodes {
		got = append(got, n.Name)
	}
	// Done first (workers, then control plane), then as `rollout` takes
	// them: workers under way, the other workers, control-plane nodes
	// under way (after every worker: `node` refuses them before), the
	// other control-plane nodes; each group by name.
	want := []string{"x", "y", "cp-0", "w", "z", "a", "b", "c", "cp-1", "cp-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestNextStep(t *testing.T) {
	install := "kubectl cni-migrate values --output-dir . && helm install cilium cilium/cilium --version " +
		ciliumver.Default().HelmChartVersion() + " --namespace kube-system --values values-initial.yaml"
	mode := Cilium{Installed: true, Namespace: "kube-system", Version: "1.18.11", MigrationMode: true, NodeConfigs: []string{"cilium-default"}}
	for _, tc := range []struct {
		name        string
		oldCNI      string
		cilium      Cilium
		ncServed    bool
		nodes       []Node
		wantStage   string
		wantCommand string
	}{
		{name: "before Cilium", oldCNI: "flannel", nodes: []Node{{Name: "w1", Migration: MigrationNotStarted}},
			wantStage: StageInstallCilium, wantCommand: install},
		{name: "before Cilium, no CNI annotations or nodes", oldCNI: "flannel",
			wantStage: StageInstallCilium, wantCommand: install},
		{name: "Cilium without migration values", oldCNI: "flannel", cilium: Cilium{Installed: true, Namespace: "cilium", Version: "1.17.6"},
			nodes:     []Node{{Name: "w1", Migration: MigrationNotStarted}},
			wantStage: StageNotMigration, wantCommand: "kubectl cni-migrate values --output-dir . && helm upgrade cilium cilium/cilium --namespace cilium --version 1.17.6 --values values-initial.yaml"},
		{name: "finalized, flannel removed", cilium: Cilium{Installed: true, Namespace: "kube-system"},
			nodes: []Node{{Name: "w1", Migration: MigrationNotStarted}}, wantStage: StageFinalized},
		{name: "finalized with state kept, flannel left", oldCNI: "flannel", cilium: Cilium{Installed: true, Namespace: "kube-system"},
			nodes: []Node{{Name: "w1", Migration: MigrationDone}}, wantStage: StageFinalized},
		{name: "no CiliumNodeConfig yet", oldCNI: "flannel", cilium: Cilium{Installed: true, Namespace: "kube-system", MigrationMode: true}, ncServed: true,
			nodes: []Node{{Name: "w1", Migration: MigrationNotStarted}}, wantStage: StageApplyNodeConfig, wantCommand: "kubectl cni-migrate nodeconfig --apply"},
		{name: "first worker", oldCNI: "flannel", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "w2", Migration: MigrationNotStarted}, {Name: "cp", ControlPlane: true, Migration: MigrationNotStarted}, {Name: "w1", Migration: MigrationNotStarted}},
			wantStage: StageMigrateNodes, wantCommand: "kubectl cni-migrate node w1"},
		{name: "a node in progress goes first", oldCNI: "flannel", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "w1", Migration: MigrationDone}, {Name: "w2", Migration: MigrationNotStarted}, {Name: "w3", Phase: "rebooted", Migration: MigrationInProgress}},
			wantStage: StageMigrateNodes, wantCommand: "kubectl cni-migrate node w3"},
		{name: "control plane last", oldCNI: "flannel", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "a-cp", ControlPlane: true, Migration: MigrationNotStarted}, {Name: "w1", Migration: MigrationDone}, {Name: "z", Migration: MigrationNotStarted}},
			wantStage: StageMigrateNodes, wantCommand: "kubectl cni-migrate node z"},
		{name: "a control-plane node under way waits for the workers", oldCNI: "flannel", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "cp", ControlPlane: true, Phase: "drained", Migration: MigrationInProgress}, {Name: "w1", Migration: MigrationNotStarted}},
			wantStage: StageMigrateNodes, wantCommand: "kubectl cni-migrate node w1"},
		{name: "only the control plane left", oldCNI: "flannel", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "cp", ControlPlane: true, Migration: MigrationNotStarted}, {Name: "w1", Migration: MigrationDone}},
			wantStage: StageMigrateNodes, wantCommand: "kubectl cni-migrate node cp"},
		{name: "all done", oldCNI: "flannel", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "cp", ControlPlane: true, Migration: MigrationDone}, {Name: "w1", Migration: MigrationDone}},
			wantStage: StageFinalize, wantCommand: "kubectl cni-migrate finalize"},
		{name: "all done, flannel already gone", cilium: mode, ncServed: true,
			nodes:     []Node{{Name: "w1", Migration: MigrationDone}},
			wantStage: StageFinalize, wantCommand: "kubectl cni-migrate finalize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Cluster: Cluster{OldCNI: tc.oldCNI, Cilium: tc.cilium}, Nodes: tc.nodes}
			SortRollout(r.Nodes)
			for _, n := range r.Nodes {
				switch n.Migration {
				case MigrationDone:
					r.Rollout.Done++
				case MigrationInProgress:
					r.Rollout.InProgress++
					r.Rollout.Order = append(r.Rollout.Order, n.Name)
				default:
					r.Rollout.Order = append(r.Rollout.Order, n.Name)
				}
			}
			r.Rollout.Remaining = len(r.Rollout.Order)
			got := NextStep(r, tc.ncServed)
			if got.Stage != tc.wantStage || got.Command != tc.wantCommand || got.Reason == "" {
				t.Errorf("got %+v, want stage %s command %q", got, tc.wantStage, tc.wantCommand)
			}
		})
	}
}

// TestAssembleBeforeCilium: a plain Flannel cluster without any of the
// plugin's annotations.
func TestAssembleBeforeCilium(t *testing.T) {
	c := &detect.Cluster{
		CNI:      &detect.CNI{Name: "flannel", Network: "10.244.0.0/16"},
		PodCIDRs: []detect.SourcedCIDR{{CIDR: "10.244.0.0/16"}},
		Nodes:    []detect.Node{{Name: "cp", ControlPlane: true, Ready: true}, {Name: "w1", Ready: true}},
	}
	nw, warnings := NetworksOf(c)
	if len(warnings) != 0 {
		t.Fatal(warnings)
	}
	tl := NewTally(nw)
	tl.Add(Pod{Node: "w1", IP: mustAddr("10.244.1.2"), Phase: corev1.PodRunning})
	tl.Add(Pod{Node: "w1", IP: mustAddr("10.244.1.3"), Phase: corev1.PodRunning})
	r := Assemble(Input{Cluster: c, Nodes: []corev1.Node{node("w1", false, "", false, false), node("cp", true, "", false, false)}, Tally: tl, CiliumNamespace: "kube-system"})
	if r.Pods != (Pods{Total: 2, OldCIDR: 2, ManagedMethod: MethodNone}) {
		t.Errorf("pods %+v", r.Pods)
	}
	if r.Cluster.Cilium.Installed || r.Cluster.Cilium.Namespace != "" || len(r.Cluster.Cilium.PodCIDRs) != 0 {
		t.Errorf("cilium %+v", r.Cluster.Cilium)
	}
	if r.Next.Stage != StageInstallCilium || r.Rollout.Remaining != 2 || r.Rollout.Order[0] != "w1" || r.Nodes[0].Phase != "none" {
		t.Errorf("next %+v rollout %+v nodes %+v", r.Next, r.Rollout, r.Nodes)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q", r.Warnings)
	}
	// JSON lists are [] rather than null, for scripts.
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("null")) {
		t.Errorf("null in %s", data)
	}
}

func TestAssembleWarnings(t *testing.T) {
	in := midMigration(t)
	in.EndpointsServed = false
	in.Nodes[4].Labels = map[string]string{} // worker-1 done but not selected
	in.Tally.Add(Pod{Node: "worker-3", IP: mustAddr("192.168.7.7"), Phase: corev1.PodRunning})
	r := Assemble(in)
	if r.Pods.ManagedMethod != MethodPodIPs || r.Pods.ManagedByCilium != 3 || r.Pods.Other != 1 {
		t.Errorf("pods %+v", r.Pods)
	}
	all := strings.Join(r.Warnings, "\n")
	for _, want := range []string{"CiliumEndpoints cannot be listed", "1 pod has an address in neither", "node worker-1 is migrated but no CiliumNodeConfig selects it"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	// An agent not Ready on a migrated node.
	in = midMigration(t)
	in.Tally.Nodes["worker-1"].AgentReady = false
	if all := strings.Join(Assemble(in).Warnings, "\n"); !strings.Contains(all, "node worker-1 is migrated but its Cilium agent is not Ready") {
		t.Errorf("warnings %s", all)
	}
}

func TestAssembleRollingBack(t *testing.T) {
	in := midMigration(t)
	// worker-1 was migrated and a rollback of it stopped after the drain.
	in.Nodes[4].Annotations["cni-migrate.io/rollback-phase"] = "drained"
	in.Nodes[4].Annotations["cni-migrate.io/rollback-was-unschedulable"] = "false"
	r := Assemble(in)
	var names []string
	for _, n := range r.Nodes {
		names = append(names, n.Name+":"+n.Migration)
	}
	want := []string{"worker-1:rolling-back", "worker-2:in-progress", "worker-5:in-progress", "worker-3:not-started", "worker-4:not-started", "cp-1:not-started"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("nodes %v, want %v", names, want)
	}
	if r.Nodes[0].RollbackPhase != "drained" {
		t.Errorf("rollback phase %q", r.Nodes[0].RollbackPhase)
	}
	if !reflect.DeepEqual(r.Rollout.RollingBack, []string{"worker-1"}) || r.Rollout.Done != 0 || r.Rollout.Remaining != 6 ||
		!reflect.DeepEqual(r.Rollout.Order, []string{"worker-2", "worker-5", "worker-3", "worker-4", "cp-1"}) {
		t.Errorf("rollout %+v", r.Rollout)
	}
	if r.Next.Stage != StageRollback || r.Next.Command != "kubectl cni-migrate rollback worker-1" {
		t.Errorf("next %+v", r.Next)
	}
	// A rollback that began but recorded no step yet.
	in = midMigration(t)
	in.Nodes[4].Annotations["cni-migrate.io/rollback-was-unschedulable"] = "false"
	if n := Assemble(in).Nodes[0]; n.Migration != MigrationRollingBack || n.RollbackPhase != "none" {
		t.Errorf("begun rollback %+v", n)
	}
}

// TestAssembleFinalized: after finalize the nodes carry no phase; they are
// on Cilium, not waiting for a rollout (found on the real datapath: status
// said "0/3 done, 3 remaining" next to "the migration is finalized").
func TestAssembleFinalized(t *testing.T) {
	c := &detect.Cluster{
		Cilium:   detect.Cilium{Installed: true, Namespace: "kube-system", Version: "1.18.11", PodCIDRs: []string{"10.245.0.0/16"}},
		PodCIDRs: []detect.SourcedCIDR{{CIDR: "10.244.0.0/16"}},
		Nodes:    []detect.Node{{Name: "cp", ControlPlane: true, Ready: true}, {Name: "w1", Ready: true}},
	}
	nw, _ := NetworksOf(c)
	tl := NewTally(nw)
	tl.Add(Pod{Node: "w1", IP: mustAddr("10.245.1.2"), Phase: corev1.PodRunning})
	r := Assemble(Input{Cluster: c, Nodes: []corev1.Node{node("w1", false, "", false, false), node("cp", true, "", false, false)}, Tally: tl, CiliumNamespace: "kube-system"})
	if r.Next.Stage != StageFinalized || r.Rollout.Remaining != 0 || len(r.Rollout.Order) != 0 || r.Rollout.Nodes != 2 {
		t.Fatalf("next %+v rollout %+v", r.Next, r.Rollout)
	}
	var b bytes.Buffer
	if err := r.PrintTable(&b, output.Style{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "nodes     2, all on Cilium: the migration is finalized") || strings.Contains(b.String(), "remaining") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestAssembleConnectivity(t *testing.T) {
	c := &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", PodCIDRs: []string{"10.245.0.0/16"}}}
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tr := connectivity.NewTracker()
	probes := []connectivity.Probe{{Pod: "p1", Node: "w1", IP: "10.244.1.2", Network: connectivity.NetOld, Ready: true}, {Pod: "p2", Node: "w2", IP: "10.245.2.3", Network: connectivity.NetNew, Ready: true}}
	m := tr.Observe(at, probes, []string{"w1", "w2"}, []connectivity.Result{
		{Check: connectivity.CheckPod, SrcPod: "p1", SrcNode: "w1", SrcNet: connectivity.NetOld, Target: "10.245.2.3", DstPod: "p2", DstNode: "w2", DstNet: connectivity.NetNew, Error: "timeout"},
	})
	r := Assemble(Input{Cluster: c, Connectivity: &m})
	if r.Connectivity == nil || r.Connectivity.Green || r.Connectivity.Failures != 1 || !r.Connectivity.Time.Time.Equal(at) {
		t.Fatalf("connectivity %+v", r.Connectivity)
	}
	var b bytes.Buffer
	if err := r.PrintTable(&b, output.Style{}); err != nil {
		t.Fatal(err)
	}
	if want := "Connectivity: FAILING at 12:00:00 (round 1, 2 probe(s): 1 on the old network, 1 on the new): 1 failing check(s), first pod: w1 (old) -> w2 (new, 10.245.2.3): timeout"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
	if r := Assemble(Input{Cluster: c}); r.Connectivity != nil {
		t.Errorf("no matrix kept, yet %+v", r.Connectivity)
	}
}

// TestAssemblePolicyBridge: the bridge's endpoints and node rules are
// reported, and not counted as Cilium's endpoints.
func TestAssemblePolicyBridge(t *testing.T) {
	c := &detect.Cluster{Cilium: detect.Cilium{Installed: true, Namespace: "kube-system", PodCIDRs: []string{"10.245.0.0/16"}}}
	r := Assemble(Input{Cluster: c, Endpoints: 3, EndpointsServed: true, BridgedEndpoints: 15, NodeRules: &NodeRules{Desired: 1, Ready: 1}})
	if r.PolicyBridge == nil || r.PolicyBridge.Endpoints != 15 || r.PolicyBridge.NodeRules == nil || r.PolicyBridge.NodeRules.Ready != 1 {
		t.Fatalf("policy bridge %+v", r.PolicyBridge)
	}
	var b bytes.Buffer
	if err := r.PrintTable(&b, output.Style{}); err != nil {
		t.Fatal(err)
	}
	if want := "Policy bridge: 15 CiliumEndpoints for pods on the old network; node rules ready on 1 of 1 nodes"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
	if r := Assemble(Input{Cluster: c, Endpoints: 3, EndpointsServed: true}); r.PolicyBridge != nil {
		t.Errorf("no bridge, yet %+v", r.PolicyBridge)
	}
}

// TestAssemblePolicies: what Cilium does with network policies, from
// cilium-config's enable-policy and policy-audit-mode.
func TestAssemblePolicies(t *testing.T) {
	for _, tc := range []struct {
		cilium detect.Cilium
		want   string
	}{
		{detect.Cilium{}, ""},
		{detect.Cilium{Installed: true, PolicyEnforcement: "never"}, "off"},
		{detect.Cilium{Installed: true, PolicyEnforcement: "default", PolicyAudit: true}, "audited"},
		{detect.Cilium{Installed: true, PolicyEnforcement: "default"}, "enforced"},
		{detect.Cilium{Installed: true}, "enforced"},
	} {
		r := Assemble(Input{Cluster: &detect.Cluster{Cilium: tc.cilium}, EndpointsServed: true})
		if r.Cluster.Cilium.Policies != tc.want {
			t.Errorf("%+v: policies %q, want %q", tc.cilium, r.Cluster.Cilium.Policies, tc.want)
		}
	}
}
