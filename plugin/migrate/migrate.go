package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/drain"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// Defaults of Options.
const (
	DefaultDrainTimeout  = 5 * time.Minute
	DefaultAgentTimeout  = 3 * time.Minute
	DefaultRebootTimeout = 10 * time.Minute
	DefaultProbeTimeout  = 2 * time.Minute
	// AgentLabel selects the Cilium agent pods.
	AgentLabel = "k8s-app=cilium"
	// writeTimeout bounds one write that is let finish after an interrupt.
	writeTimeout = 30 * time.Second
)

// Options configure a Migrator.
type Options struct {
	// Namespace is where Cilium runs ("" = where it is installed).
	Namespace string
	// NodeLabel is the "key=value" label the CiliumNodeConfig selects.
	NodeLabel string
	// NodeConfigName is the CiliumNodeConfig's name, in Namespace.
	NodeConfigName string
	// AllowControlPlane lets a control-plane node go before the workers.
	AllowControlPlane bool

	// Drain settings, as kubectl drain's flags.
	DrainTimeout       time.Duration // 0 waits forever
	GracePeriodSeconds int           // negative: each pod's own
	DeleteEmptyDirData bool
	DisableEviction    bool
	Force              bool

	AgentTimeout time.Duration

	// Reboot is RebootCommand, RebootManual or RebootSkip.
	Reboot        string
	RebootCommand *RebootTemplate
	RebootTimeout time.Duration

	ProbeImage   string
	ProbeTimeout time.Duration

	// DryRun sends every write with server-side dry run; nothing is
	// changed, nothing is waited for and no reboot command runs.
	DryRun bool

	// ResumeCommand is the command line that continues an unfinished run
	// (printed on interrupts and failures).
	ResumeCommand string
}

// Validate checks the options that do not need the cluster.
func (o Options) Validate() error {
	if _, _, err := nodeconfig.ParseLabel(o.NodeLabel); err != nil {
		return err
	}
	switch o.Reboot {
	case RebootCommand:
		if o.RebootCommand == nil {
			return errs.New(errs.Usage, "--reboot=command needs --reboot-command", "pass e.g. --reboot-command 'ssh {{.Node}} sudo systemctl reboot'")
		}
	case RebootManual, RebootSkip:
		if o.RebootCommand != nil {
			return errs.Newf(errs.Usage, "drop --reboot-command, or use --reboot=command", "--reboot=%s does not run --reboot-command", o.Reboot)
		}
	default:
		return errs.Newf(errs.Usage, "use --reboot=command, manual or skip", "unknown --reboot %q", o.Reboot)
	}
	for name, d := range map[string]time.Duration{"--timeout": o.DrainTimeout, "--agent-timeout": o.AgentTimeout, "--reboot-timeout": o.RebootTimeout, "--probe-timeout": o.ProbeTimeout} {
		if d < 0 || (d == 0 && name != "--timeout") {
			return errs.Newf(errs.Usage, "pass a positive duration such as 5m", "%s %s is not a positive duration", name, d)
		}
	}
	if strings.TrimSpace(o.ProbeImage) == "" {
		return errs.New(errs.Usage, "--probe-image is empty", "pass an image with sh and curl, e.g. "+DefaultProbeImage)
	}
	return nil
}

// CommandRunner runs a reboot command and returns when it exits.
type CommandRunner func(ctx context.Context, argv []string, stdout, stderr io.Writer) error

// ExecRunner runs argv with os/exec, without a shell, in the plugin's
// environment.
func ExecRunner(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdout, c.Stderr = stdout, stderr
	c.WaitDelay = 5 * time.Second
	return c.Run()
}

// Migrator runs the per-node steps.
type Migrator struct {
	cl       *kube.Clients
	opts     Options
	progress *Progress
	now      func() time.Time
	run      CommandRunner
}

// New returns a Migrator. progress receives the progress lines; run runs
// reboot commands (ExecRunner when nil).
func New(cl *kube.Clients, opts Options, progress *Progress, run CommandRunner) *Migrator {
	if run == nil {
		run = ExecRunner
	}
	return &Migrator{cl: cl, opts: opts, progress: progress, now: time.Now, run: run}
}

// Target is a node to migrate and its state when the run began.
type Target struct {
	Name         string
	ControlPlane bool
	InternalIP   string
	State        State
}

// Plan is what Preflight found: the nodes in the order they will be
// migrated and the migration's settings read from the cluster.
type Plan struct {
	Targets []Target
	// Namespace is where Cilium runs; Pool is its cluster-pool pod CIDR.
	Namespace string
	Pool      []netip.Prefix
	// NodeConfig is "apiVersion namespace/name" of the CiliumNodeConfig.
	NodeConfig string
}

// Preflight checks, before anything changes, that the named nodes can be
// migrated, and orders them (workers first, control-plane nodes last).
// Nodes already done need nothing, so when all are done nothing else is
// checked.
func (m *Migrator) Preflight(ctx context.Context, cluster *detect.Cluster, names []string) (*Plan, error) {
	nodes, err := m.cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, m.cl.Classify(err, "listing nodes")
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	plan := &Plan{}
	seen := map[string]bool{}
	allDone := true
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		n := byName[name]
		if n == nil {
			return nil, errs.Newf(errs.Precondition, "check the name with kubectl get nodes (and --context)", "node %s not found", name)
		}
		st, err := StateOf(n)
		if err != nil {
			return nil, err
		}
		allDone = allDone && st.Phase.Done()
		plan.Targets = append(plan.Targets, Target{Name: name, ControlPlane: isControlPlane(n), InternalIP: internalIP(n), State: st})
	}
	// Workers first, control-plane nodes last, each group in the order given.
	sort.SliceStable(plan.Targets, func(i, j int) bool {
		return !plan.Targets[i].ControlPlane && plan.Targets[j].ControlPlane
	})
	if allDone {
		return plan, nil
	}

	c := cluster.Cilium
	if !c.Installed {
		return nil, errs.New(errs.Precondition, "Cilium is not installed",
			"install it beside the old CNI first: kubectl cni-migrate values --output-dir . && helm install cilium cilium/cilium --namespace kube-system --values values-initial.yaml")
	}
	plan.Namespace = m.opts.Namespace
	if plan.Namespace == "" {
		plan.Namespace = c.Namespace
	}
	if plan.Namespace != c.Namespace {
		return nil, errs.Newf(errs.Precondition, "pass -n "+c.Namespace+" or drop -n",
			"Cilium runs in namespace %s (DaemonSet %s), not %s", c.Namespace, c.DaemonSet, plan.Namespace)
	}
	if !c.MigrationMode {
		return nil, errs.Newf(errs.Precondition, "install or upgrade Cilium with values-initial.yaml (cni.customConf=true) from kubectl cni-migrate values",
			"Cilium %s in %s is not in migration mode (cilium-config custom-cni-conf is not \"true\"): restarting its agent would take over the node's network at once", c.Version, c.Namespace)
	}
	if plan.Pool, err = ParsePool(c.PodCIDRs); err != nil {
		return nil, err
	}
	if len(plan.Pool) == 0 {
		return nil, errs.Newf(errs.Precondition, "install Cilium with ipam.mode=cluster-pool and ipam.operator.clusterPoolIPv4PodCIDRList (values-initial.yaml does)",
			"the cilium-config ConfigMap in %s has no cluster-pool-ipv4-cidr: the dual-overlay migration needs Cilium's cluster-pool IPAM", c.Namespace)
	}

	sel, ref, err := m.nodeConfigSelector(ctx, plan.Namespace)
	if err != nil {
		return nil, err
	}
	plan.NodeConfig = ref
	key, value, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
	for _, t := range plan.Targets {
		if t.State.Phase.Done() {
			continue
		}
		set := labels.Set{}
		for k, v := range byName[t.Name].Labels {
			set[k] = v
		}
		set[key] = value
		if !sel.Matches(set) {
			return nil, errs.Newf(errs.Precondition,
				"pass the label it selects with --node-label, or re-apply it with kubectl cni-migrate nodeconfig --apply --node-label "+m.opts.NodeLabel,
				"CiliumNodeConfig %s selects %q, which node %s does not match even with the label %s", ref, sel.String(), t.Name, m.opts.NodeLabel)
		}
	}

	if !m.opts.AllowControlPlane {
		before := map[string]bool{}
		for _, t := range plan.Targets {
			if t.ControlPlane && !t.State.Phase.Done() {
				var pending []string
				for i := range nodes.Items {
					n := &nodes.Items[i]
					st, _ := StateOf(n)
					if !isControlPlane(n) && !st.Phase.Done() && !before[n.Name] {
						pending = append(pending, n.Name)
					}
				}
				if len(pending) > 0 {
					sort.Strings(pending)
					return nil, errs.Newf(errs.Precondition, "migrate the workers first (name them before it, or run them first), or pass --allow-control-plane",
						"node %s is a control-plane node and %d %s not migrated yet (%s): the guide migrates the control plane last",
						t.Name, len(pending), plural(len(pending), "worker is", "workers are"), list(pending))
				}
			}
			before[t.Name] = true
		}
	}
	return plan, nil
}

// nodeConfigSelector finds the CiliumNodeConfig (through cilium.io/v2 when
// served, else v2alpha1, so a deprecated version is not asked for when a
// newer one serves the same object) and returns its node selector and
// "apiVersion ns/name".
func (m *Migrator) nodeConfigSelector(ctx context.Context, ns string) (labels.Selector, string, error) {
	name := m.opts.NodeConfigName
	served, err := nodeconfig.Served(m.cl.Kube.Discovery())
	if err != nil {
		return nil, "", m.cl.Classify(err, "reading the cilium.io API versions")
	}
	if len(served) == 0 {
		return nil, "", errs.New(errs.Precondition, "this cluster has no CiliumNodeConfig CRD",
			"install Cilium with values-initial.yaml first (kubectl cni-migrate values), then kubectl cni-migrate nodeconfig --apply")
	}
	for _, v := range []string{"cilium.io/v2", "cilium.io/v2alpha1"} {
		if !contains(served, v) {
			continue
		}
		u, err := m.cl.Dynamic.Resource(nodeconfig.GVR(v)).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			return nil, "", m.cl.Classify(err, fmt.Sprintf("reading CiliumNodeConfig %s/%s", ns, name))
		}
		ref := fmt.Sprintf("%s %s/%s", v, ns, name)
		raw, found := u.Object["spec"].(map[string]any)["nodeSelector"]
		if !found || raw == nil {
			return nil, "", errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has no spec.nodeSelector", ref)
		}
		var ls metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw.(map[string]any), &ls); err != nil {
			return nil, "", errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has an unreadable spec.nodeSelector: %v", ref, err)
		}
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			return nil, "", errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has an invalid spec.nodeSelector: %v", ref, err)
		}
		return sel, ref, nil
	}
	return nil, "", errs.Newf(errs.Precondition,
		fmt.Sprintf("create it with kubectl cni-migrate nodeconfig --apply --name %s --node-label %s", name, m.opts.NodeLabel),
		"CiliumNodeConfig %s/%s not found (served as %s)", ns, name, strings.Join(served, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels[detect.LabelControlPlane]
	_, master := n.Labels["node-role.kubernetes.io/master"]
	return cp || master
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// Run migrates the plan's nodes one after the other and stops at the first
// that fails. The summary lists every node, including those not begun.
func (m *Migrator) Run(ctx context.Context, plan *Plan) (*Summary, error) {
	s := &Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: "NodeMigration", Result: "ok"}
	if m.opts.DryRun {
		s.DryRun = "server"
	}
	var firstErr error
	for _, t := range plan.Targets {
		if firstErr != nil {
			s.Nodes = append(s.Nodes, NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase, Result: ResultNotStarted, Steps: []StepResult{}})
			continue
		}
		res, err := m.migrateNode(ctx, plan, t)
		s.Nodes = append(s.Nodes, res)
		if err != nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		s.ExitCode = errs.Code(firstErr)
		s.Result = "internal"
		for _, c := range errs.Codes() {
			if c.Code == s.ExitCode {
				s.Result = c.Name
			}
		}
		if s.ExitCode != errs.Usage {
			s.Resume = m.opts.ResumeCommand
		}
	}
	return s, firstErr
}

// stepWhat says what a step is doing, for the spinner.
func (m *Migrator) stepWhat(s Step) string {
	switch s {
	case StepCordon:
		return "marking the node unschedulable"
	case StepDrain:
		return "evicting pods"
	case StepLabel:
		return "setting " + m.opts.NodeLabel
	case StepRestartAgent:
		return "waiting for a new Cilium agent to be Ready"
	case StepReboot:
		return "waiting for the node to reboot"
	case StepVerify:
		return "running the probe pod"
	case StepUncordon:
		return "marking the node schedulable"
	}
	return ""
}

func (m *Migrator) migrateNode(ctx context.Context, plan *Plan, t Target) (res NodeResult, err error) {
	res = NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase, Steps: []StepResult{}}
	if t.State.Phase.Done() {
		since := ""
		if !t.State.PhaseTime.IsZero() {
			since = " since " + t.State.PhaseTime.UTC().Format(time.RFC3339)
		}
		m.progress.Printf("%s: already migrated (phase done%s); nothing to do", t.Name, since)
		res.Result = ResultAlreadyDone
		return res, nil
	}
	start := m.now()
	defer func() { res.Seconds = seconds(m.now().Sub(start)) }()
	phase := t.State.Phase
	for _, step := range StepsFrom(phase) {
		if ctx.Err() != nil {
			res.Result = ResultInterrupted
			err := m.interrupted(t.Name, step, phase)
			res.Error = err.Error()
			return res, err
		}
		task := m.progress.Start(t.Name, step, m.stepWhat(step))
		var detail string
		detail, err = m.runStep(ctx, plan, t, step)
		sr := StepResult{Name: step, Detail: detail}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				err = m.interrupted(t.Name, step, phase)
				sr.Result, res.Result = ResultInterrupted, ResultInterrupted
				sr.Seconds = seconds(task.Stop("interrupted", ""))
			case errs.Code(err) == errs.WaitingForReboot:
				sr.Result, res.Result = ResultWaitingForReboot, ResultWaitingForReboot
				sr.Seconds = seconds(task.Stop("waiting", detail))
			default:
				sr.Result, res.Result = ResultFailed, ResultFailed
				sr.Seconds = seconds(task.Fail("failed"))
			}
			res.Steps = append(res.Steps, sr)
			res.Error = err.Error()
			if !m.opts.DryRun {
				res.PhaseAfter = phase
			}
			return res, err
		}
		sr.Result = ResultDone
		sr.Seconds = seconds(task.Done(detail))
		res.Steps = append(res.Steps, sr)
		phase = step.Phase()
		if !m.opts.DryRun {
			res.PhaseAfter = phase
		}
	}
	res.Result = ResultMigrated
	if m.opts.DryRun {
		res.Result = ResultDryRun
	}
	return res, nil
}

func (m *Migrator) interrupted(node string, step Step, phase Phase) error {
	fix := "run the same command again to continue"
	if m.opts.ResumeCommand != "" {
		fix = "run " + m.opts.ResumeCommand + " to continue"
	}
	return errs.Newf(errs.Interrupted, fix, "interrupted during step %s of node %s; its phase %s is recorded", step, node, phase)
}

func (m *Migrator) runStep(ctx context.Context, plan *Plan, t Target, step Step) (string, error) {
	switch step {
	case StepCordon:
		return m.cordon(ctx, t.Name)
	case StepDrain:
		return m.drain(ctx, t.Name)
	case StepLabel:
		return m.label(ctx, t.Name)
	case StepRestartAgent:
		return m.restartAgent(ctx, plan, t.Name)
	case StepReboot:
		return m.reboot(ctx, t)
	case StepVerify:
		return m.verify(ctx, plan, t.Name)
	case StepUncordon:
		return m.uncordon(ctx, t.Name)
	}
	return "", fmt.Errorf("unknown step %q", step)
}

// writeCtx lets a write that has begun finish after an interrupt, so the
// run stops between API calls rather than in the middle of one.
func writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

func (m *Migrator) dryRun() []string {
	if m.opts.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func (m *Migrator) dryNote(s string) string {
	if m.opts.DryRun {
		if s == "" {
			return "server dry run"
		}
		return s + " (server dry run)"
	}
	return s
}

func (m *Migrator) getNode(ctx context.Context, name string) (*corev1.Node, State, error) {
	n, err := m.cl.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, State{}, m.cl.Classify(err, "reading node "+name)
	}
	st, err := StateOf(n)
	return n, st, err
}

// patchNode sends a JSON merge patch to a node.
func (m *Migrator) patchNode(ctx context.Context, name string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	_, err = m.cl.Kube.CoreV1().Nodes().Patch(wctx, name, types.MergePatchType, data,
		metav1.PatchOptions{DryRun: m.dryRun(), FieldManager: nodeconfig.FieldManager})
	if err != nil {
		return m.cl.Classify(err, "patching node "+name)
	}
	return nil
}

// record writes a completed phase (and extra annotations; nil deletes).
func (m *Migrator) record(ctx context.Context, name string, p Phase, extra map[string]any) error {
	ann := map[string]any{AnnotationPhase: string(p), AnnotationPhaseTime: m.now().UTC().Format(time.RFC3339)}
	for k, v := range extra {
		ann[k] = v
	}
	return m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": ann}})
}

// setUnschedulable cordons or uncordons with kubectl's cordon helper.
func (m *Migrator) setUnschedulable(ctx context.Context, n *corev1.Node, desired bool) error {
	h := drain.NewCordonHelper(n)
	if !h.UpdateIfRequired(desired) {
		return nil
	}
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	err, patchErr := h.PatchOrReplaceWithContext(wctx, m.cl.Kube, m.opts.DryRun)
	if err != nil {
		return m.cl.Classify(err, "cordoning node "+n.Name)
	}
	if patchErr != nil {
		return m.cl.Classify(patchErr, "cordoning node "+n.Name)
	}
	return nil
}

func (m *Migrator) cordon(ctx context.Context, name string) (string, error) {
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	if st.WasUnschedulable == nil {
		// Written before cordoning, so a run interrupted between the two
		// still knows the node's original state. Clear what an earlier,
		// rolled-back migration may have left.
		if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": map[string]any{
			AnnotationWasUnschedulable: strconv.FormatBool(n.Spec.Unschedulable),
			AnnotationBootID:           nil,
			AnnotationReboot:           nil,
		}}}); err != nil {
			return "", err
		}
	}
	detail := ""
	if n.Spec.Unschedulable {
		detail = "was already cordoned"
		if st.WasUnschedulable != nil && !*st.WasUnschedulable {
			detail = "cordoned by an earlier run"
		}
	}
	if err := m.setUnschedulable(ctx, n, true); err != nil {
		return "", err
	}
	return m.dryNote(detail), m.record(ctx, name, PhaseCordoned, nil)
}

func (m *Migrator) drainHelper(ctx context.Context) *drain.Helper {
	// The helper repeats "evicting pod" and "will retry after 5s" for every
	// attempt; show each line once.
	w := &onceWriter{w: m.progress.Writer(), seen: map[string]bool{}}
	h := &drain.Helper{
		Ctx:                 ctx,
		Client:              m.cl.Kube,
		Force:               m.opts.Force,
		GracePeriodSeconds:  m.opts.GracePeriodSeconds,
		IgnoreAllDaemonSets: true,
		Timeout:             m.opts.DrainTimeout,
		DeleteEmptyDirData:  m.opts.DeleteEmptyDirData,
		DisableEviction:     m.opts.DisableEviction,
		Out:                 w,
		ErrOut:              w,
	}
	if m.opts.DryRun {
		h.DryRunStrategy = cmdutil.DryRunServer
	}
	return h
}

func (m *Migrator) drain(ctx context.Context, name string) (string, error) {
	h := m.drainHelper(ctx)
	list, listErrs := h.GetPodsForDeletion(name)
	if len(listErrs) > 0 {
		return "", m.drainListError(name, listErrs)
	}
	if w := list.Warnings(); w != "" {
		m.progress.Printf("%s", w)
	}
	pods := list.Pods()
	verb := "evicted"
	if m.opts.DisableEviction {
		verb = "deleted"
	}
	if len(pods) > 0 {
		start := m.now()
		// The helper sleeps 5s between refused evictions without looking at
		// the context: on an interrupt, stop waiting for it (its goroutines
		// end on their own after the sleep).
		done := make(chan error, 1)
		go func() { done <- h.DeleteOrEvictPods(pods) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			elapsed := m.now().Sub(start)
			if strings.Contains(err.Error(), "global timeout reached") || (m.opts.DrainTimeout > 0 && elapsed >= m.opts.DrainTimeout) {
				return "", m.drainBlocked(ctx, name)
			}
			return "", m.cl.Classify(err, "draining node "+name)
		}
	}
	detail := fmt.Sprintf("%s %d %s", verb, len(pods), plural(len(pods), "pod", "pods"))
	if len(pods) == 0 {
		detail = "no pods to move"
	}
	return m.dryNote(detail), m.record(ctx, name, PhaseDrained, nil)
}

// drainListError turns the drain helper's refusals (pods with local
// storage, pods without a controller) into one line.
func (m *Migrator) drainListError(name string, list []error) error {
	var msgs []string
	for _, e := range list {
		var status apierrors.APIStatus
		if errors.As(e, &status) {
			return m.cl.Classify(e, "listing the pods on node "+name)
		}
		msgs = append(msgs, oneLine(e.Error()))
	}
	return errs.Newf(errs.DrainBlocked, "pass the flag it names (as for kubectl drain) or move those pods, then run the same command again; the node stays cordoned",
		"cannot drain node %s: %s", name, strings.Join(msgs, "; "))
}

// drainBlocked builds the error of a drain past its timeout: the pods left
// and the PodDisruptionBudgets that select them.
func (m *Migrator) drainBlocked(ctx context.Context, name string) error {
	h := m.drainHelper(ctx)
	list, listErrs := h.GetPodsForDeletion(name)
	var remaining []corev1.Pod
	if len(listErrs) == 0 {
		remaining = list.Pods()
	}
	var pdbs []policyv1.PodDisruptionBudget
	seenNS := map[string]bool{}
	for _, p := range remaining {
		if seenNS[p.Namespace] {
			continue
		}
		seenNS[p.Namespace] = true
		l, err := m.cl.Kube.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue // the error is about the drain; the budgets are a hint
		}
		pdbs = append(pdbs, l.Items...)
	}
	return DrainBlockedError(name, m.opts.DrainTimeout, remaining, BlockingPDBs(remaining, pdbs))
}

func (m *Migrator) label(ctx context.Context, name string) (string, error) {
	key, value, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
	err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{
		"labels": map[string]any{key: value},
		"annotations": map[string]any{
			AnnotationPhase:     string(PhaseLabelled),
			AnnotationPhaseTime: m.now().UTC().Format(time.RFC3339),
		},
	}})
	return m.dryNote(m.opts.NodeLabel), err
}

func agentListOptions(node string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: AgentLabel, FieldSelector: "spec.nodeName=" + node}
}

func (m *Migrator) restartAgent(ctx context.Context, plan *Plan, name string) (string, error) {
	pods := m.cl.Kube.CoreV1().Pods(plan.Namespace)
	l, err := pods.List(ctx, agentListOptions(name))
	if err != nil {
		return "", m.cl.Classify(err, "listing the Cilium agent on node "+name)
	}
	old := map[types.UID]bool{}
	var oldNames []string
	for _, p := range l.Items {
		old[p.UID] = true
		oldNames = append(oldNames, p.Name)
		wctx, cancel := writeCtx(ctx)
		err := pods.Delete(wctx, p.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(p.UID)), DryRun: m.dryRun()})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return "", m.cl.Classify(err, "deleting Cilium agent pod "+plan.Namespace+"/"+p.Name)
		}
	}
	if m.opts.DryRun {
		return m.dryNote("would delete " + strings.Join(oldNames, ", ")), m.record(ctx, name, PhaseAgentRestarted, nil)
	}
	start := m.now()
	p, err := m.waitAgent(ctx, plan.Namespace, name, old)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%s Ready after %s", p.Name, formatDuration(m.now().Sub(start)))
	if len(oldNames) > 0 {
		detail = fmt.Sprintf("%s replaced %s, Ready after %s", p.Name, strings.Join(oldNames, ", "), formatDuration(m.now().Sub(start)))
	}
	return detail, m.record(ctx, name, PhaseAgentRestarted, nil)
}

// waitAgent watches until a Cilium agent pod on node that is not in old is
// Ready, for at most the agent timeout.
func (m *Migrator) waitAgent(ctx context.Context, ns, node string, old map[types.UID]bool) (*corev1.Pod, error) {
	wctx, cancel := context.WithTimeout(ctx, m.opts.AgentTimeout)
	defer cancel()
	pods := m.cl.Kube.CoreV1().Pods(ns)
	var last, ready *corev1.Pod
	err := watchUntil(wctx, agentListOptions(node), podLister(pods.List), pods.Watch, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || old[p.UID] || e.Type == watch.Deleted || p.DeletionTimestamp != nil {
			return false, nil
		}
		last = p
		if podReady(p) {
			ready = p
			return true, nil
		}
		return false, nil
	})
	switch {
	case err == nil:
		return ready, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		state := "no new agent pod was created (is the DaemonSet " + ns + "/cilium scheduling on it?)"
		fix := fmt.Sprintf("check kubectl -n %s get ds cilium and the node, then run the same command again", ns)
		if last != nil {
			state = fmt.Sprintf("pod %s is %s", last.Name, podState(last))
			fix = fmt.Sprintf("check kubectl -n %s logs pod/%s -c cilium-agent and kubectl -n %s describe pod %s, then run the same command again", ns, last.Name, ns, last.Name)
		}
		return nil, errs.Newf(errs.AgentNotReady, fix+"; the node stays cordoned",
			"the Cilium agent on node %s is not Ready after %s: %s", node, m.opts.AgentTimeout, state)
	}
	return nil, m.cl.Classify(err, "watching the Cilium agent on node "+node)
}

func podLister(list func(context.Context, metav1.ListOptions) (*corev1.PodList, error)) listFunc {
	return func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
		l, err := list(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]runtime.Object, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out, l.ResourceVersion, nil
	}
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			s += ", not Ready"
			if c.Reason != "" {
				s += " (" + c.Reason + ")"
			}
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			s += ", container " + cs.Name + " " + w.Reason
		}
	}
	return s
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (m *Migrator) reboot(ctx context.Context, t Target) (string, error) {
	name := t.Name
	if m.opts.Reboot == RebootSkip {
		left := m.leftBehind(ctx, name)
		return m.dryNote("skipped: " + left), m.record(ctx, name, PhaseRebooted, map[string]any{AnnotationReboot: RebootSkip})
	}
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	recorded := st.BootID
	if !st.HasBootID {
		recorded = n.Status.NodeInfo.BootID
		if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": map[string]any{
			AnnotationBootID: recorded,
			AnnotationReboot: m.opts.Reboot,
		}}}); err != nil {
			return "", err
		}
	}
	rebooted := n.Status.NodeInfo.BootID != recorded
	if m.opts.DryRun {
		what := "would wait for you to reboot it"
		if m.opts.Reboot == RebootCommand {
			argv, err := m.opts.RebootCommand.Argv(RebootTarget{Node: name, InternalIP: t.InternalIP})
			if err != nil {
				return "", err
			}
			what = "would run " + ShellJoin(argv)
		}
		return m.dryNote(what), m.record(ctx, name, PhaseRebooted, map[string]any{AnnotationReboot: m.opts.Reboot})
	}
	if !rebooted && m.opts.Reboot == RebootManual {
		resume := "run the same command again"
		if m.opts.ResumeCommand != "" {
			resume = "run " + m.opts.ResumeCommand
		}
		detail := fmt.Sprintf("bootID %s recorded; reboot the node now", shortID(recorded))
		return detail, errs.Newf(errs.WaitingForReboot, "reboot it (e.g. ssh "+name+" sudo systemctl reboot), wait until it is Ready, then "+resume+" to continue",
			"node %s waits for a manual reboot (its Cilium agent runs; bootID %s recorded)", name, shortID(recorded))
	}
	var cmdErr error
	var argvText string
	if !rebooted {
		argv, err := m.opts.RebootCommand.Argv(RebootTarget{Node: name, InternalIP: t.InternalIP})
		if err != nil {
			return "", err
		}
		argvText = ShellJoin(argv)
		m.progress.Printf("running %s", argvText)
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		cmdDone := make(chan error, 1)
		w := m.progress.Writer()
		go func() { cmdDone <- m.run(cctx, argv, w, w) }()
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		waitDone := make(chan error, 1)
		var last *corev1.Node
		go func() {
			var err error
			last, err = m.waitRebooted(wctx, name, recorded)
			waitDone <- err
		}()
		timer := time.NewTimer(m.opts.RebootTimeout)
		defer timer.Stop()
	loop:
		for {
			select {
			case err := <-cmdDone:
				cmdDone = nil
				if err == nil {
					continue
				}
				if ctx.Err() != nil {
					wcancel()
					<-waitDone
					return "", ctx.Err()
				}
				if commandNotRunnable(err) {
					wcancel()
					<-waitDone
					return "", errs.Newf(errs.RebootFailed, "fix --reboot-command, then run the same command again; the node stays cordoned",
						"the reboot command %s of node %s could not run: %v", argvText, name, oneLine(err.Error()))
				}
				cmdErr = err
				m.progress.Printf("the reboot command exited: %v; waiting for the node to come back anyway (ssh often reports a reboot as a dropped connection)", oneLine(err.Error()))
			case err := <-waitDone:
				if err != nil {
					if ctx.Err() != nil {
						return "", ctx.Err()
					}
					return "", m.cl.Classify(err, "watching node "+name)
				}
				if cmdDone != nil {
					// Let the command finish on its own for a moment.
					select {
					case <-cmdDone:
					case <-time.After(10 * time.Second):
						ccancel()
						<-cmdDone
					}
				}
				break loop
			case <-timer.C:
				wcancel()
				<-waitDone
				why := fmt.Sprintf("its bootID is still %s", shortID(recorded))
				if last != nil && last.Status.NodeInfo.BootID != recorded {
					why = "it rebooted but is not Ready"
				}
				if cmdErr != nil {
					why += fmt.Sprintf(" and the reboot command failed (%s)", oneLine(cmdErr.Error()))
				}
				return "", errs.Newf(errs.RebootFailed, "check the node (and --reboot-command), then run the same command again; the node stays cordoned",
					"node %s did not come back within %s after %s: %s", name, m.opts.RebootTimeout, argvText, why)
			}
		}
		n = last
	} else if !nodeReady(n) {
		// Rebooted (by hand or by an interrupted run): wait for Ready.
		wctx, cancel := context.WithTimeout(ctx, m.opts.RebootTimeout)
		defer cancel()
		n, err = m.waitRebooted(wctx, name, recorded)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			if wctx.Err() != nil {
				return "", errs.Newf(errs.RebootFailed, "check the node, then run the same command again; the node stays cordoned",
					"node %s rebooted but is not Ready after %s", name, m.opts.RebootTimeout)
			}
			return "", m.cl.Classify(err, "watching node "+name)
		}
	}
	detail := fmt.Sprintf("bootID %s -> %s, Ready", shortID(recorded), shortID(n.Status.NodeInfo.BootID))
	return detail, m.record(ctx, name, PhaseRebooted, map[string]any{AnnotationReboot: m.opts.Reboot})
}

// waitRebooted watches a node until its bootID differs from old and it is
// Ready; it returns the last node seen (also on error).
func (m *Migrator) waitRebooted(ctx context.Context, name, old string) (*corev1.Node, error) {
	nodes := m.cl.Kube.CoreV1().Nodes()
	var last *corev1.Node
	err := watchUntil(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name},
		func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
			l, err := nodes.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			out := make([]runtime.Object, len(l.Items))
			for i := range l.Items {
				out[i] = &l.Items[i]
			}
			return out, l.ResourceVersion, nil
		}, nodes.Watch,
		func(e watch.Event) (bool, error) {
			n, ok := e.Object.(*corev1.Node)
			if !ok || e.Type == watch.Deleted {
				return false, nil
			}
			last = n
			return n.Status.NodeInfo.BootID != old && nodeReady(n), nil
		})
	return last, err
}

// commandNotRunnable reports errors that mean the command never ran: not
// found, not executable (exit codes 126 and 127 of a wrapper included).
func commandNotRunnable(err error) bool {
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return true
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode() == 126 || exitErr.ExitCode() == 127
	}
	return false
}

// leftBehind says what a skipped reboot leaves on the node.
func (m *Migrator) leftBehind(ctx context.Context, name string) string {
	s := "the old CNI's interfaces (e.g. flannel.1, cni0) and iptables rules stay on the node until it next reboots"
	l, err := m.cl.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return s
	}
	var kept []string
	for _, p := range l.Items {
		if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Labels["k8s-app"] == "cilium" || p.Status.PodIP == "" {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		kept = append(kept, p.Namespace+"/"+p.Name)
	}
	sort.Strings(kept)
	if len(kept) > 0 {
		s += fmt.Sprintf("; %s until restarted (%s)", plural(len(kept), "1 pod keeps its old address", fmt.Sprintf("%d pods keep their old addresses", len(kept))), list(kept))
	}
	return s
}

func shortID(id string) string {
	if id == "" {
		return `""`
	}
	if len(id) > 16 {
		return id[:8] + "…"
	}
	return id
}

func (m *Migrator) verify(ctx context.Context, plan *Plan, name string) (string, error) {
	if !m.opts.DryRun {
		if _, err := m.waitAgent(ctx, plan.Namespace, name, nil); err != nil {
			return "", err
		}
	}
	job := ProbeJob(plan.Namespace, name, m.opts.ProbeImage, m.opts.ProbeTimeout)
	jobs := m.cl.Kube.BatchV1().Jobs(plan.Namespace)
	if !m.opts.DryRun {
		if err := m.deleteJob(ctx, plan.Namespace, job.Name, true); err != nil {
			return "", err
		}
	}
	wctx, cancel := writeCtx(ctx)
	created, err := jobs.Create(wctx, job, metav1.CreateOptions{DryRun: m.dryRun(), FieldManager: nodeconfig.FieldManager})
	cancel()
	if err != nil && !(m.opts.DryRun && apierrors.IsAlreadyExists(err)) {
		return "", m.cl.Classify(err, "creating probe Job "+plan.Namespace+"/"+job.Name)
	}
	if m.opts.DryRun {
		return m.dryNote("would run probe Job " + plan.Namespace + "/" + job.Name), m.record(ctx, name, PhaseVerified, nil)
	}
	ip, err := m.waitProbe(ctx, plan, name, created)
	if err != nil {
		return "", err
	}
	if err := m.deleteJob(ctx, plan.Namespace, job.Name, false); err != nil {
		return "", err
	}
	return fmt.Sprintf("probe pod got %s (in %s) and reached the API server", ip, poolString(plan.Pool)), m.record(ctx, name, PhaseVerified, nil)
}

// deleteJob deletes a probe Job and its pods; with wait it watches until
// the Job is gone, so that one of the same name can be created.
func (m *Migrator) deleteJob(ctx context.Context, ns, name string, wait bool) error {
	jobs := m.cl.Kube.BatchV1().Jobs(ns)
	wctx, cancel := writeCtx(ctx)
	err := jobs.Delete(wctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
	cancel()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return m.cl.Classify(err, "deleting probe Job "+ns+"/"+name)
	}
	if !wait {
		return nil
	}
	gctx, gcancel := context.WithTimeout(ctx, time.Minute)
	defer gcancel()
	err = watchUntil(gctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name},
		func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
			l, err := jobs.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			if len(l.Items) == 0 {
				return []runtime.Object{&batchv1.Job{}}, l.ResourceVersion, nil
			}
			return nil, l.ResourceVersion, nil
		}, jobs.Watch,
		func(e watch.Event) (bool, error) {
			j, ok := e.Object.(*batchv1.Job)
			return ok && (e.Type == watch.Deleted || j.Name == ""), nil
		})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return m.cl.Classify(err, "waiting for the old probe Job "+ns+"/"+name+" to go")
	}
	return nil
}

// errProbe carries a verification failure out of the watch condition.
type errProbe struct{ err error }

func (e errProbe) Error() string { return e.err.Error() }

// waitProbe watches the probe Job's pod until it succeeds, and checks its
// address against Cilium's pool as soon as it has one.
func (m *Migrator) waitProbe(ctx context.Context, plan *Plan, node string, job *batchv1.Job) (string, error) {
	ns := plan.Namespace
	wctx, cancel := context.WithTimeout(ctx, m.opts.ProbeTimeout)
	defer cancel()
	pods := m.cl.Kube.CoreV1().Pods(ns)
	var last *corev1.Pod
	var ip string
	keep := fmt.Sprintf("the node stays cordoned; see kubectl -n %s logs job/%s and kubectl -n %s describe job %s", ns, job.Name, ns, job.Name)
	err := watchUntil(wctx, metav1.ListOptions{LabelSelector: JobNameLabel + "=" + job.Name}, podLister(pods.List), pods.Watch, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || e.Type == watch.Deleted || !ownedBy(p, job.UID) {
			return false, nil
		}
		last = p
		if p.Status.PodIP != "" {
			ip = p.Status.PodIP
			if !InPool(ip, plan.Pool) {
				return false, errProbe{errs.Newf(errs.VerificationFailed,
					fmt.Sprintf("%s; check that CiliumNodeConfig %s selects the node and that its agent restarted after the label, then run the same command again", keep, plan.NodeConfig),
					"the probe pod on node %s got address %s, outside Cilium's pod CIDR %s: new pods there still use the old CNI", node, ip, poolString(plan.Pool))}
			}
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			if ip == "" {
				return false, errProbe{errs.Newf(errs.VerificationFailed, keep,
					"the probe pod on node %s finished without reporting an address", node)}
			}
			return true, nil
		case corev1.PodFailed:
			return false, errProbe{errs.Newf(errs.VerificationFailed, keep,
				"the probe pod %s on node %s (address %s) failed: %s: it could not reach the API server's /healthz through the Service network", p.Name, node, ip, probeFailure(p))}
		}
		return false, nil
	})
	var pe errProbe
	switch {
	case err == nil:
		return ip, nil
	case errors.As(err, &pe):
		return "", pe.err
	case ctx.Err() != nil:
		return "", ctx.Err()
	case wctx.Err() != nil:
		state := "its pod was not created"
		if last != nil {
			state = "pod " + last.Name + " is " + podState(last)
		}
		return "", errs.Newf(errs.VerificationFailed, keep+" (is --probe-image "+m.opts.ProbeImage+" pullable?)",
			"the probe on node %s did not finish within %s: %s", node, m.opts.ProbeTimeout, state)
	}
	return "", m.cl.Classify(err, "watching the probe pod on node "+node)
}

func ownedBy(p *corev1.Pod, uid types.UID) bool {
	for _, o := range p.OwnerReferences {
		if o.UID == uid {
			return true
		}
	}
	return false
}

func (m *Migrator) uncordon(ctx context.Context, name string) (string, error) {
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	detail := ""
	if st.WasUnschedulable != nil && *st.WasUnschedulable {
		detail = "left cordoned: it was cordoned before the migration"
	} else if err := m.setUnschedulable(ctx, n, false); err != nil {
		return "", err
	}
	return m.dryNote(detail), m.record(ctx, name, PhaseDone, nil)
}

// onceWriter passes on each distinct line once.
type onceWriter struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []byte
	seen map[string]bool
}

func (o *onceWriter) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, b...)
	for {
		i := strings.IndexByte(string(o.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(o.buf[:i+1])
		o.buf = o.buf[i+1:]
		if !o.seen[line] {
			o.seen[line] = true
			if _, err := io.WriteString(o.w, line); err != nil {
				return len(b), err
			}
		}
	}
}
