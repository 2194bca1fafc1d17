package migrate

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

func TestRollbackScriptGolden(t *testing.T) {
	command := testOptions()
	command.Reboot = RebootCommand
	command.RebootCommand = mustTemplate(t, `ssh {{.Node}} "sudo rm -f /etc/cni/net.d/05-cilium.conflist; sudo systemctl reboot"`)
	command.GracePeriodSeconds = 30

	skip := testOptions()
	skip.Reboot = RebootSkip
	skip.NodeLabel = "example.com/cilium=yes"
	skip.NodeConfigName = "migrate"
	skip.Force = true

	for _, tc := range []struct {
		name string
		opts Options
		in   ScriptInput
	}{
		{"manual", testOptions(), ScriptInput{Nodes: []string{"worker-1"}, Namespace: "kube-system", OldCNI: "flannel", Command: "kubectl cni-migrate rollback worker-1 --dry-run=client"}},
		{"command", command, ScriptInput{Nodes: []string{"worker-1", "worker-2"}, Namespace: "cilium", OldCNI: "flannel",
			KubectlFlags: []string{"--context=prod"}, Command: "kubectl cni-migrate rollback worker-1 worker-2 ..."}},
		{"skip", skip, ScriptInput{Nodes: []string{"ip-10-0-1-5.eu-west-1.compute.internal"}, Namespace: "kube-system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RollbackScript(tc.opts, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "rollback-script-"+tc.name+".golden.sh")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if got != string(want) {
				t.Errorf("script differs from %s (go test ./plugin/migrate -update rewrites it):\n%s", path, got)
			}
			if bash, err := exec.LookPath("bash"); err == nil {
				if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
					t.Errorf("bash -n %s: %v\n%s", path, err, out)
				}
			}
			for _, must := range []string{"set -euo pipefail", "kubectl cordon", "kubectl drain", "--ignore-daemonsets", "kubectl label node",
				"record_rollback", AnnotationRollbackPhase, "delete pod -l k8s-app=cilium --field-selector spec.nodeName=", "rm -f /etc/cni/net.d/05-cilium.conflist",
				"kubectl uncordon", "kubectl create -f -", "wait --for=condition=Complete job/", "custom-cni-conf", "spec.podCIDRs",
				AnnotationRollbackWasUnschedulable + "-", AnnotationPhase + "-"} {
				if !strings.Contains(got, must) {
					t.Errorf("script lacks %q", must)
				}
			}
			if strings.Contains(got, "\nrecord ") || strings.Contains(got, "  record ") {
				t.Error("the rollback script records migration phases")
			}
		})
	}
}

// rollbackWorld is the fake world with worker-1 migrated (phase done,
// label set) and its podCIDR 10.244.1.0/24.
func rollbackWorld(t *testing.T) (*world, context.Context) {
	t.Helper()
	w := newWorld(t, nil)
	n := w.node("worker-1")
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.1.0/24", []string{"10.244.1.0/24"}
	if _, err := w.kube.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.cluster.CNI = &detect.CNI{Name: "flannel", Namespace: "kube-flannel", DaemonSet: "kube-flannel-ds"}
	ctx := startControllers(t, w)
	var calls [][]string
	if _, err := w.run(ctx, commandOptions(t), w.reboots(&calls), "worker-1"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, w.stderr)
	}
	w.stderr.Reset()
	return w, ctx
}

func rollbackOptions(t *testing.T) Options {
	o := commandOptions(t)
	o.Direction = DirectionRollback
	return o
}

func TestRollbackEndToEndFake(t *testing.T) {
	w, ctx := rollbackWorld(t)
	w.probeIP.Store("10.244.1.9")
	var calls [][]string
	s, err := w.run(ctx, rollbackOptions(t), w.reboots(&calls), "worker-1")
	if err != nil {
		t.Fatalf("%v\n%s", err, w.stderr)
	}
	n := w.node("worker-1")
	for k := range n.Annotations {
		if strings.HasPrefix(k, AnnotationPrefix) {
			t.Errorf("annotation %s left", k)
		}
	}
	if _, ok := n.Labels["io.cilium.migration/cilium-default"]; ok || n.Spec.Unschedulable {
		t.Errorf("labels %v unschedulable %v", n.Labels, n.Spec.Unschedulable)
	}
	if len(calls) != 1 {
		t.Errorf("reboot calls %q", calls)
	}
	if s.Kind != "NodeRollback" || len(s.Nodes) != 1 {
		t.Fatalf("summary %+v", s)
	}
	r := s.Nodes[0]
	var steps []string
	for _, st := range r.Steps {
		steps = append(steps, string(st.Name))
	}
	if r.Result != ResultRolledBack || r.PhaseBefore != PhaseDone || r.PhaseAfter != PhaseNone || r.RollbackPhaseAfter != RollbackNone ||
		strings.Join(steps, ",") != "cordon,drain,unlabel,restart-agent,reboot,verify,uncordon" {
		t.Errorf("node summary %+v (steps %v)", r, steps)
	}
	out := w.stderr.String()
	for _, want := range []string{"worker-1: unlabel", "removed io.cilium.migration/cilium-default", "cilium-new-2 replaced cilium-new-1",
		"rm -f /etc/cni/net.d/05-cilium.conflist", "mv -n /etc/cni/net.d/10-flannel.conflist.cilium_bak /etc/cni/net.d/10-flannel.conflist",
		"probe pod got 10.244.1.9 (in 10.244.1.0/24, the node's podCIDR, outside Cilium's 10.245.0.0/16)", "annotations cleared (phase none)"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	// The CNI instruction comes before the reboot command runs.
	if strings.Index(out, "rm -f /etc/cni") > strings.Index(out, "running reboot-node") {
		t.Errorf("the CNI instruction comes after the reboot:\n%s", out)
	}

	// A second rollback changes nothing.
	w.kube.ClearActions()
	w.stderr.Reset()
	s, err = w.run(ctx, rollbackOptions(t), w.reboots(&calls), "worker-1")
	if err != nil || s.Nodes[0].Result != ResultNotMigrated || len(s.Nodes[0].Steps) != 0 {
		t.Fatalf("second rollback: %v %+v", err, s)
	}
	for _, a := range w.kube.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "get" && a.GetVerb() != "watch" {
			t.Errorf("second rollback wrote: %v", a)
		}
	}
	if !strings.Contains(w.stderr.String(), "nothing to roll back") {
		t.Errorf("stderr %s", w.stderr)
	}

	// node migrates it again.
	w.probeIP.Store("10.245.1.11")
	if s, err := w.run(ctx, commandOptions(t), w.reboots(&calls), "worker-1"); err != nil || s.Nodes[0].Result != ResultMigrated {
		t.Fatalf("migrate again: %v %+v\n%s", err, s, w.stderr)
	}
}

func TestRollbackVerificationFailsOnCilium(t *testing.T) {
	w, ctx := rollbackWorld(t)
	// Cilium's CNI config still wins on the node: the probe gets a Cilium address.
	w.probeIP.Store("10.245.1.12")
	var calls [][]string
	opts := rollbackOptions(t)
	opts.ResumeCommand = "kubectl cni-migrate rollback worker-1"
	s, err := w.run(ctx, opts, w.reboots(&calls), "worker-1")
	if errs.Code(err) != errs.VerificationFailed || !strings.Contains(err.Error(), "got address 10.245.1.12, inside Cilium's pod CIDR 10.245.0.0/16") ||
		!strings.Contains(err.Error(), "remove /etc/cni/net.d/05-cilium.conflist") || !strings.Contains(err.Error(), "the node stays cordoned") {
		t.Fatalf("err %v", err)
	}
	if r := s.Nodes[0]; r.Result != ResultFailed || r.RollbackPhaseAfter != RollbackRebooted || r.PhaseAfter != PhaseDone || s.Resume == "" {
		t.Errorf("summary %+v", s)
	}
	n := w.node("worker-1")
	if !n.Spec.Unschedulable || n.Annotations[AnnotationRollbackPhase] != "rebooted" || n.Annotations[AnnotationPhase] != "done" {
		t.Errorf("node unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	// node refuses a node being rolled back.
	if _, err := w.run(ctx, commandOptions(t), nil, "worker-1"); errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), "is being rolled back") {
		t.Errorf("node during a rollback: %v", err)
	}
	// An address outside the node's podCIDR is refused too.
	w.probeIP.Store("10.244.7.3")
	if _, err := w.run(ctx, opts, w.reboots(&calls), "worker-1"); errs.Code(err) != errs.VerificationFailed || !strings.Contains(err.Error(), "outside the node's podCIDR 10.244.1.0/24") {
		t.Fatalf("err %v", err)
	}
	// Fixed on the node: the same command resumes at the verification.
	w.probeIP.Store("10.244.1.20")
	w.stderr.Reset()
	s, err = w.run(ctx, opts, w.reboots(&calls), "worker-1")
	if err != nil || s.Nodes[0].RollbackPhaseBefore != RollbackRebooted || len(s.Nodes[0].Steps) != 2 || s.Nodes[0].Result != ResultRolledBack {
		t.Fatalf("resume: %v %+v", err, s)
	}
	if len(calls) != 1 {
		t.Errorf("rebooted %d times", len(calls))
	}
	var b strings.Builder
	PrintSummary(&b, s, output.Style{})
	if !strings.Contains(b.String(), "worker-1             rolled-back          phase done -> none, rollback phase rebooted -> none, 2 steps in") {
		t.Errorf("summary:\n%s", b.String())
	}
}

func TestRollbackKeepsCordonAndInterrupts(t *testing.T) {
	w, ctx := rollbackWorld(t)
	w.probeIP.Store("10.244.1.9")
	// Cordoned by someone after the migration: the rollback leaves it so.
	n := w.node("worker-1")
	n.Spec.Unschedulable = true
	if _, err := w.kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	opts := rollbackOptions(t)
	opts.ResumeCommand = "kubectl cni-migrate rollback worker-1"
	// Ctrl-C while the reboot command runs.
	run := func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	s, err := w.run(rctx, opts, run, "worker-1")
	if errs.Code(err) != errs.Interrupted || !strings.Contains(err.Error(), "rollback step reboot of node worker-1; its rollback phase agent-restarted is recorded") {
		t.Fatalf("err %v\n%s", err, w.stderr)
	}
	if s.Nodes[0].Result != ResultInterrupted || s.Nodes[0].RollbackPhaseAfter != RollbackAgentRestarted {
		t.Errorf("summary %+v", s)
	}
	n = w.node("worker-1")
	if n.Annotations[AnnotationRollbackWasUnschedulable] != "true" || n.Labels["io.cilium.migration/cilium-default"] != "" {
		t.Errorf("annotations %v labels %v", n.Annotations, n.Labels)
	}
	var calls [][]string
	w.stderr.Reset()
	if _, err := w.run(ctx, opts, w.reboots(&calls), "worker-1"); err != nil {
		t.Fatalf("resume: %v\n%s", err, w.stderr)
	}
	n = w.node("worker-1")
	if !n.Spec.Unschedulable || n.Annotations[AnnotationPhase] != "" || !strings.Contains(w.stderr.String(), "left cordoned: it was cordoned before the rollback") {
		t.Errorf("unschedulable %v annotations %v\n%s", n.Spec.Unschedulable, n.Annotations, w.stderr)
	}
}

func TestRollbackPreflight(t *testing.T) {
	done := map[string]string{AnnotationPhase: "done"}
	labelled := func(w *world) {
		n := w.node("worker-1")
		n.Labels["io.cilium.migration/cilium-default"] = "true"
		if _, err := w.kube.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		change  func(*world, *Options)
		code    int
		wantMsg string
	}{
		{name: "ok", ann: done, change: func(w *world, _ *Options) { labelled(w) }},
		{name: "never migrated needs no Cilium", change: func(w *world, _ *Options) { w.cluster.Cilium = detect.Cilium{} }},
		{name: "finalized", ann: done, change: func(w *world, _ *Options) { labelled(w); w.cluster.Cilium.MigrationMode = false },
			code: errs.Precondition, wantMsg: "the migration was finalized"},
		{name: "nodeconfig gone", ann: done, change: func(w *world, o *Options) { labelled(w); o.NodeConfigName = "deleted" },
			code: errs.Precondition, wantMsg: "works only between node and finalize"},
		{name: "nodeconfig selects the node without the label", ann: done, change: func(w *world, o *Options) { labelled(w); o.NodeLabel = "kubernetes.io/hostname=worker-1" },
			code: errs.Precondition, wantMsg: "selects node worker-1 even without the label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.ann)
			opts := testOptions()
			opts.Direction = DirectionRollback
			if tc.change != nil {
				tc.change(w, &opts)
			}
			_, err := w.migrator(opts, nil).Preflight(context.Background(), w.cluster, []string{"worker-1"})
			if tc.code != 0 {
				if errs.Code(err) != tc.code || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err %v, want code %d with %q", err, tc.code, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRollbackServerDryRun(t *testing.T) {
	w, ctx := rollbackWorld(t)
	w.kube.ClearActions()
	opts := rollbackOptions(t)
	opts.DryRun = true
	var calls [][]string
	s, err := w.run(ctx, opts, w.reboots(&calls), "worker-1")
	if err != nil {
		t.Fatalf("%v\n%s", err, w.stderr)
	}
	if s.DryRun != "server" || s.Kind != "NodeRollback" || s.Nodes[0].Result != ResultDryRun || s.Nodes[0].PhaseAfter != PhaseDone ||
		s.Nodes[0].RollbackPhaseAfter != RollbackNone || len(s.Nodes[0].Steps) != 7 || len(calls) != 0 {
		t.Errorf("summary %+v calls %v", s, calls)
	}
	writes := 0
	for _, a := range w.kube.Actions() {
		var dry []string
		switch a := a.(type) {
		case k8stesting.PatchActionImpl:
			dry = a.PatchOptions.DryRun
		case k8stesting.CreateActionImpl:
			if a.GetResource().Resource == "selfsubjectaccessreviews" {
				continue // a question, not a change
			}
			if a.GetResource().Resource == "pods" && a.GetSubresource() == "" {
				continue // the test's DaemonSet and Job controllers (the fake applies dry-run deletes)
			}
			dry = a.CreateOptions.DryRun
			if ev, ok := a.Object.(*policyv1.Eviction); ok {
				dry = ev.DeleteOptions.DryRun
			}
		case k8stesting.DeleteActionImpl:
			dry = a.DeleteOptions.DryRun
		case k8stesting.UpdateActionImpl:
			dry = a.UpdateOptions.DryRun
		default:
			continue
		}
		writes++
		if len(dry) != 1 || dry[0] != metav1.DryRunAll {
			t.Errorf("%s %s sent without dry run", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if writes == 0 {
		t.Error("no write was sent")
	}
	if !strings.Contains(w.stderr.String(), "rm -f /etc/cni/net.d/05-cilium.conflist") {
		t.Errorf("the dry run does not say what the reboot leaves:\n%s", w.stderr)
	}
}
