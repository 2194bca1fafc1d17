package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
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
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
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

	// Direction is DirectionMigrate (the zero value: node, rollout) or
	// DirectionRollback (rollback).
	Direction Direction
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

// Migrator runs the per-node steps, in the direction Options.Direction says.
type Migrator struct {
	cl       *kube.Clients
	opts     Options
	progress *Progress
	now      func() time.Time
	run      CommandRunner
	// freshAgentWait is FreshAgentWait (shorter in tests).
	freshAgentWait time.Duration
}

// New returns a Migrator. progress receives the progress lines; run runs
// reboot commands (ExecRunner when nil).
func New(cl *kube.Clients, opts Options, progress *Progress, run CommandRunner) *Migrator {
	if run == nil {
		run = ExecRunner
	}
	return &Migrator{cl: cl, opts: opts, progress: progress, now: time.Now, run: run, freshAgentWait: FreshAgentWait}
}

// Target is a node to migrate (or roll back) and its state when the run
// began.
type Target struct {
	Name         string
	ControlPlane bool
	InternalIP   string
	State        State
	// Labelled says whether the node carries the migration label's key.
	Labelled bool
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
	// CNIConfFile is where the CiliumNodeConfig makes the agent write its
	// CNI configuration, as a path on the node (write-cni-conf-when-ready
	// without the agent's /host mount; DefaultCNIConfFile when not set).
	CNIConfFile string
	// OldCNI is the CNI the cluster migrates from (nil when not detected).
	OldCNI *detect.CNI
}

// DefaultCNIConfFile is the CNI configuration the Cilium agent writes on a
// node the CiliumNodeConfig selects (write-cni-conf-when-ready in
// values-initial.yaml's CiliumNodeConfig, /host being the host's root).
const DefaultCNIConfFile = "/etc/cni/net.d/05-cilium.conflist"

func (m *Migrator) rollback() bool { return m.opts.Direction == DirectionRollback }

// Preflight checks, before anything changes, that the named nodes can be
// migrated, and orders them (workers first, control-plane nodes last).
// Nodes already done need nothing, so when all are done nothing else is
// checked. In DirectionRollback it checks that they can be rolled back
// instead (the migration not finalized: Cilium in migration mode, the
// CiliumNodeConfig there) and keeps the order given; nodes never migrated
// need nothing.
func (m *Migrator) Preflight(ctx context.Context, cluster *detect.Cluster, names []string) (*Plan, error) {
	nodes, err := m.cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, m.cl.Classify(err, "listing nodes")
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	key, value, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
	plan := &Plan{OldCNI: cluster.CNI}
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
		_, labelled := n.Labels[key]
		if m.rollback() {
			allDone = allDone && RollbackPlan(st, labelled) == nil
		} else {
			if st.RollingBack() {
				return nil, errs.Newf(errs.Precondition, "finish it first: kubectl cni-migrate rollback "+name+" (then migrate the node again)",
					"node %s is being rolled back (rollback phase %s recorded in %s)", name, st.Rollback, AnnotationRollbackPhase)
			}
			allDone = allDone && st.Phase.Done()
		}
		plan.Targets = append(plan.Targets, Target{Name: name, ControlPlane: isControlPlane(n), InternalIP: internalIP(n), State: st, Labelled: labelled})
	}
	if !m.rollback() {
		// Workers first, control-plane nodes last, each group in the order given.
		sort.SliceStable(plan.Targets, func(i, j int) bool {
			return !plan.Targets[i].ControlPlane && plan.Targets[j].ControlPlane
		})
	}
	if allDone {
		return plan, nil
	}

	c := cluster.Cilium
	if !c.Installed {
		if m.rollback() {
			return nil, errs.New(errs.Precondition, "Cilium is not installed, so no node runs on it",
				"nothing to roll back with this command; remove the node labels and cni-migrate.io/ annotations by hand if they are left over")
		}
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
		if m.rollback() {
			return nil, errs.Newf(errs.Precondition, "a rollback node by node works only between node and finalize; see docs/rollback.md (After finalize)",
				"Cilium %s in %s is not in migration mode (cilium-config custom-cni-conf is not \"true\"): the migration was finalized, so Cilium's agents own the CNI config of every node and removing a node's label changes nothing", c.Version, c.Namespace)
		}
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

	cfg, err := m.nodeConfig(ctx, plan.Namespace)
	if err != nil {
		return nil, err
	}
	sel := cfg.selector
	plan.NodeConfig, plan.CNIConfFile = cfg.ref, cfg.cniConfFile
	for _, t := range plan.Targets {
		with := labels.Set{}
		for k, v := range byName[t.Name].Labels {
			with[k] = v
		}
		without := labels.Set{}
		for k, v := range with {
			if k != key {
				without[k] = v
			}
		}
		with[key] = value
		if m.rollback() {
			if len(RollbackPlan(t.State, t.Labelled)) <= 1 {
				continue // nothing to roll back, or only the uncordon of a node never labelled
			}
			if sel.Matches(without) {
				return nil, errs.Newf(errs.Precondition, "pass the label it selects with --node-label (and its name with --nodeconfig-name)",
					"CiliumNodeConfig %s selects node %s even without the label %s (selector %q): removing that label would not hand the node back to the old CNI", plan.NodeConfig, t.Name, m.opts.NodeLabel, sel.String())
			}
		} else if t.State.Phase.Done() {
			continue
		}
		if !sel.Matches(with) {
			return nil, errs.Newf(errs.Precondition,
				"pass the label it selects with --node-label, or re-apply it with kubectl cni-migrate nodeconfig --apply --node-label "+m.opts.NodeLabel,
				"CiliumNodeConfig %s selects %q, which node %s does not match even with the label %s", plan.NodeConfig, sel.String(), t.Name, m.opts.NodeLabel)
		}
	}

	if !m.opts.AllowControlPlane && !m.rollback() {
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
						t.Name, len(pending), output.Plural(len(pending), "worker is", "workers are"), list(pending))
				}
			}
			before[t.Name] = true
		}
	}
	return plan, nil
}

// nodeConfigInfo is what the migration reads from the CiliumNodeConfig.
type nodeConfigInfo struct {
	selector labels.Selector
	// ref is "apiVersion ns/name".
	ref string
	// cniConfFile is write-cni-conf-when-ready as a path on the node.
	cniConfFile string
}

// nodeConfig finds the CiliumNodeConfig (through cilium.io/v2 when served,
// else v2alpha1, so a deprecated version is not asked for when a newer one
// serves the same object) and returns its node selector, its
// "apiVersion ns/name" and the CNI configuration file it has agents write.
func (m *Migrator) nodeConfig(ctx context.Context, ns string) (nodeConfigInfo, error) {
	name := m.opts.NodeConfigName
	served, err := nodeconfig.Served(m.cl.Kube.Discovery())
	if err != nil {
		return nodeConfigInfo{}, m.cl.Classify(err, "reading the cilium.io API versions")
	}
	if len(served) == 0 {
		return nodeConfigInfo{}, errs.New(errs.Precondition, "this cluster has no CiliumNodeConfig CRD",
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
			return nodeConfigInfo{}, m.cl.Classify(err, fmt.Sprintf("reading CiliumNodeConfig %s/%s", ns, name))
		}
		info := nodeConfigInfo{ref: fmt.Sprintf("%s %s/%s", v, ns, name), cniConfFile: DefaultCNIConfFile}
		spec, _ := u.Object["spec"].(map[string]any)
		raw, found := spec["nodeSelector"]
		if !found || raw == nil {
			return nodeConfigInfo{}, errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has no spec.nodeSelector", info.ref)
		}
		var ls metav1.LabelSelector
		rawMap, isMap := raw.(map[string]any)
		if !isMap {
			err = fmt.Errorf("not an object")
		} else {
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(rawMap, &ls)
		}
		if err != nil {
			return nodeConfigInfo{}, errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has an unreadable spec.nodeSelector: %v", info.ref, err)
		}
		if info.selector, err = metav1.LabelSelectorAsSelector(&ls); err != nil {
			return nodeConfigInfo{}, errs.Newf(errs.Precondition, "re-apply it with kubectl cni-migrate nodeconfig --apply", "CiliumNodeConfig %s has an invalid spec.nodeSelector: %v", info.ref, err)
		}
		if defaults, ok := spec["defaults"].(map[string]any); ok {
			if f, ok := defaults["write-cni-conf-when-ready"].(string); ok && strings.HasPrefix(f, "/host/") {
				info.cniConfFile = strings.TrimPrefix(f, "/host")
			}
		}
		return info, nil
	}
	if m.rollback() {
		return nodeConfigInfo{}, errs.Newf(errs.Precondition,
			"a rollback node by node works only between node and finalize (finalize deletes it); if it was deleted by hand, re-create it first: kubectl cni-migrate nodeconfig --apply --name "+name+" --node-label "+m.opts.NodeLabel,
			"CiliumNodeConfig %s/%s not found (served as %s)", ns, name, strings.Join(served, ", "))
	}
	return nodeConfigInfo{}, errs.Newf(errs.Precondition,
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

// Run migrates (or rolls back) the plan's nodes one after the other and
// stops at the first that fails. The summary lists every node, including
// those not begun.
func (m *Migrator) Run(ctx context.Context, plan *Plan) (*Summary, error) {
	s := &Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: "NodeMigration", Result: "ok"}
	if m.rollback() {
		s.Kind = "NodeRollback"
	}
	if m.opts.DryRun {
		s.DryRun = "server"
	}
	var firstErr error
	for _, t := range plan.Targets {
		if firstErr != nil {
			s.Nodes = append(s.Nodes, NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase,
				RollbackPhaseBefore: t.State.Rollback, RollbackPhaseAfter: t.State.Rollback, Result: ResultNotStarted, Steps: []StepResult{}})
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
		s.Result = errs.Name(s.ExitCode)
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
	case StepUnlabel:
		key, _, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
		return "removing " + key
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

// position is what a node's annotations record: the migration's phase and
// the rollback's.
type position struct {
	phase    Phase
	rollback RollbackPhase
}

// after returns the position a step records when it completes.
func (m *Migrator) after(p position, s Step) position {
	if !m.rollback() {
		return position{phase: s.Phase()}
	}
	if s == StepUncordon {
		return position{} // the rollback's last step clears every annotation
	}
	return position{phase: p.phase, rollback: s.RollbackPhase()}
}

func (m *Migrator) migrateNode(ctx context.Context, plan *Plan, t Target) (res NodeResult, err error) {
	res = NodeResult{Name: t.Name, PhaseBefore: t.State.Phase, PhaseAfter: t.State.Phase,
		RollbackPhaseBefore: t.State.Rollback, RollbackPhaseAfter: t.State.Rollback, Steps: []StepResult{}}
	var steps []Step
	if m.rollback() {
		steps = RollbackPlan(t.State, t.Labelled)
		if steps == nil {
			key, _, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
			m.progress.Printf("%s: not migrated (phase none, no label %s); nothing to roll back", t.Name, key)
			res.Result = ResultNotMigrated
			return res, nil
		}
	} else {
		if t.State.Phase.Done() {
			since := ""
			if !t.State.PhaseTime.IsZero() {
				since = " since " + t.State.PhaseTime.UTC().Format(time.RFC3339)
			}
			m.progress.Printf("%s: already migrated (phase done%s); nothing to do", t.Name, since)
			res.Result = ResultAlreadyDone
			return res, nil
		}
		steps = StepsFrom(t.State.Phase)
	}
	start := m.now()
	defer func() { res.Seconds = seconds(m.now().Sub(start)) }()
	pos := position{phase: t.State.Phase, rollback: t.State.Rollback}
	record := func(p position) {
		if !m.opts.DryRun {
			res.PhaseAfter, res.RollbackPhaseAfter = p.phase, p.rollback
		}
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			res.Result = ResultInterrupted
			err := m.interrupted(t.Name, step, pos)
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
				err = m.interrupted(t.Name, step, pos)
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
			record(pos)
			return res, err
		}
		sr.Result = ResultDone
		sr.Seconds = seconds(task.Done(detail))
		res.Steps = append(res.Steps, sr)
		pos = m.after(pos, step)
		record(pos)
	}
	res.Result = ResultMigrated
	if m.rollback() {
		res.Result = ResultRolledBack
	}
	if m.opts.DryRun {
		res.Result = ResultDryRun
	}
	return res, nil
}

func (m *Migrator) interrupted(node string, step Step, p position) error {
	fix := "run the same command again to continue"
	if m.opts.ResumeCommand != "" {
		fix = "run " + m.opts.ResumeCommand + " to continue"
	}
	if m.rollback() {
		return errs.Newf(errs.Interrupted, fix, "interrupted during rollback step %s of node %s; its rollback phase %s is recorded", step, node, p.rollback)
	}
	return errs.Newf(errs.Interrupted, fix, "interrupted during step %s of node %s; its phase %s is recorded", step, node, p.phase)
}

func (m *Migrator) runStep(ctx context.Context, plan *Plan, t Target, step Step) (string, error) {
	switch step {
	case StepCordon:
		return m.cordon(ctx, t.Name)
	case StepDrain:
		return m.drain(ctx, t.Name)
	case StepLabel, StepUnlabel:
		return m.label(ctx, t.Name)
	case StepRestartAgent:
		return m.restartAgent(ctx, plan, t.Name)
	case StepReboot:
		return m.reboot(ctx, plan, t)
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

// record writes the phase a completed step records (and extra
// annotations; nil deletes): the migration's phase, or in a rollback the
// rollback phase.
func (m *Migrator) record(ctx context.Context, name string, s Step, extra map[string]any) error {
	ann := m.phaseAnnotations(s)
	for k, v := range extra {
		ann[k] = v
	}
	return m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": ann}})
}

// phaseAnnotations are the annotations that record a completed step.
func (m *Migrator) phaseAnnotations(s Step) map[string]any {
	now := m.now().UTC().Format(time.RFC3339)
	if m.rollback() {
		return map[string]any{AnnotationRollbackPhase: string(s.RollbackPhase()), AnnotationPhaseTime: now}
	}
	return map[string]any{AnnotationPhase: string(s.Phase()), AnnotationPhaseTime: now}
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
	// Whether the node was cordoned before: written before cordoning, so a
	// run interrupted between the two still knows the node's original state.
	// Clear what an earlier migration (or rolled-back migration) left of a
	// reboot: the reboot step records a fresh bootID.
	wasKey, was, original := AnnotationWasUnschedulable, st.WasUnschedulable, n.Spec.Unschedulable
	if m.rollback() {
		wasKey, was, original = AnnotationRollbackWasUnschedulable, st.RollbackWasUnschedulable, rollbackOriginallyUnschedulable(st, n.Spec.Unschedulable)
	}
	if was == nil {
		if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": map[string]any{
			wasKey:           strconv.FormatBool(original),
			AnnotationBootID: nil,
			AnnotationReboot: nil,
		}}}); err != nil {
			return "", err
		}
		was = &original
	}
	detail := ""
	if n.Spec.Unschedulable {
		detail = "was already cordoned"
		if !*was {
			detail = "cordoned by an earlier run"
			if m.rollback() && st.RollbackWasUnschedulable == nil {
				detail = "cordoned by the migration"
			}
		}
	}
	if err := m.setUnschedulable(ctx, n, true); err != nil {
		return "", err
	}
	return m.dryNote(detail), m.record(ctx, name, StepCordon, nil)
}

func (m *Migrator) drainHelper(ctx context.Context) *drain.Helper {
	// The helper repeats "evicting pod" and "will retry after 5s" for every
	// attempt; show each line once.
	w := output.NewDedupWriter(m.progress.Writer())
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
	detail := fmt.Sprintf("%s %d %s", verb, len(pods), output.Plural(len(pods), "pod", "pods"))
	if len(pods) == 0 {
		detail = "no pods to move"
	}
	return m.dryNote(detail), m.record(ctx, name, StepDrain, nil)
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

// label sets the migration label, or in a rollback removes it, in the same
// patch as the phase that records it.
func (m *Migrator) label(ctx context.Context, name string) (string, error) {
	key, value, _ := nodeconfig.ParseLabel(m.opts.NodeLabel)
	var v any = value
	step, detail := StepLabel, m.opts.NodeLabel
	if m.rollback() {
		v, step, detail = nil, StepUnlabel, "removed "+key
	}
	err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{key: v},
		"annotations": m.phaseAnnotations(step),
	}})
	return m.dryNote(detail), err
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
		return m.dryNote("would delete " + strings.Join(oldNames, ", ")), m.record(ctx, name, StepRestartAgent, nil)
	}
	start := m.now()
	p, err := m.waitAgent(ctx, plan.Namespace, name, old, time.Time{})
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%s Ready after %s", p.Name, formatDuration(m.now().Sub(start)))
	if len(oldNames) > 0 {
		detail = fmt.Sprintf("%s replaced %s, Ready after %s", p.Name, strings.Join(oldNames, ", "), formatDuration(m.now().Sub(start)))
	}
	return detail, m.record(ctx, name, StepRestartAgent, nil)
}

// waitAgent watches until a Cilium agent pod on node that is not in old is
// Ready, for at most the agent timeout. A non-zero since also wants the
// pod's Ready condition to have turned true at or after since.
func (m *Migrator) waitAgent(ctx context.Context, ns, node string, old map[types.UID]bool, since time.Time) (*corev1.Pod, error) {
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
		if podReady(p) && !readySince(p).Before(since) {
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

// FreshAgentWait bounds how long verify waits for the Cilium agent's
// Ready to be as recent as the node's (see waitAgentAfterReboot) before it
// takes the agent's Ready as it is.
const FreshAgentWait = time.Minute

// waitAgentAfterReboot waits until the node's Cilium agent is Ready. After
// a reboot the agent pod still shows the Ready of its previous boot until
// the kubelet reports on it again, and a probe pod created then waits in
// cilium-cni for an agent that is not up yet (found on the real datapath:
// the CNI ADD gives up after 30 s, then the kubelet retries, a minute per
// node). A node that went NotReady over its reboot has been Ready again
// since its Ready condition's last transition, so an agent Ready since
// then is this boot's. A node that never went NotReady (a fast reboot)
// has an old transition, and any Ready agent passes; an agent that stays
// Ready from before a later transition of the node (a flap) passes after
// FreshAgentWait, as it did before this check.
func (m *Migrator) waitAgentAfterReboot(ctx context.Context, ns, name string) error {
	if m.opts.Reboot != RebootSkip {
		n, _, err := m.getNode(ctx, name)
		if err != nil {
			return err
		}
		if since := readyTransition(n); !since.IsZero() {
			fctx, cancel := context.WithTimeout(ctx, m.freshAgentWait)
			_, err := m.waitAgent(fctx, ns, name, nil, since)
			cancel()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	_, err := m.waitAgent(ctx, ns, name, nil, time.Time{})
	return err
}

// readySince is when the pod's Ready condition last changed (zero if it
// has none).
func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// readyTransition is when the node's Ready condition last changed (zero if
// it has none).
func readyTransition(n *corev1.Node) time.Time {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (m *Migrator) reboot(ctx context.Context, plan *Plan, t Target) (string, error) {
	name := t.Name
	if m.opts.Reboot == RebootSkip {
		if m.rollback() {
			m.progress.Printf("%s", CNIConfigRestore(name, plan))
		}
		left := m.leftBehind(ctx, name)
		return m.dryNote("skipped: " + left), m.record(ctx, name, StepReboot, map[string]any{AnnotationReboot: RebootSkip})
	}
	n, st, err := m.getNode(ctx, name)
	if err != nil {
		return "", err
	}
	if m.rollback() && (!st.HasBootID || n.Status.NodeInfo.BootID == st.BootID) {
		// Not rebooted yet: what the reboot does not restore.
		m.progress.Printf("%s", CNIConfigRestore(name, plan))
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
		return m.dryNote(what), m.record(ctx, name, StepReboot, map[string]any{AnnotationReboot: m.opts.Reboot})
	}
	if !rebooted && m.opts.Reboot == RebootManual {
		resume := "run the same command again"
		if m.opts.ResumeCommand != "" {
			resume = "run " + m.opts.ResumeCommand
		}
		detail := fmt.Sprintf("bootID %s recorded; reboot the node now", shortID(recorded))
		if m.rollback() {
			return detail, errs.Newf(errs.WaitingForReboot, "restore the old CNI's config on it as printed above, reboot it (e.g. ssh "+name+" sudo systemctl reboot), wait until it is Ready, then "+resume+" to continue",
				"node %s waits for a manual reboot (its Cilium agent restarted without the CiliumNodeConfig; bootID %s recorded)", name, shortID(recorded))
		}
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
	return detail, m.record(ctx, name, StepReboot, map[string]any{AnnotationReboot: m.opts.Reboot})
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
			if !ok || e.Type == watch.Deleted || n.Name != name {
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
	one, many := "1 pod keeps its old address", "%d pods keep their old addresses"
	if m.rollback() {
		s = "the pods left on the node (DaemonSet pods) are not restarted"
		one, many = "1 pod keeps its Cilium address", "%d pods keep their Cilium addresses"
	}
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
		s += fmt.Sprintf("; %s until restarted (%s)", output.Plural(len(kept), one, fmt.Sprintf(many, len(kept))), list(kept))
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
	t0 := time.Now()
	if !m.opts.DryRun {
		if err := m.waitAgentAfterReboot(ctx, plan.Namespace, name); err != nil {
			return "", err
		}
	}
	agentWait := time.Since(t0)
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
		return m.dryNote("would run probe Job " + plan.Namespace + "/" + job.Name), m.record(ctx, name, StepVerify, nil)
	}
	check, where, err := m.probeExpect(ctx, plan, name)
	if err != nil {
		return "", err
	}
	probeStart := time.Now()
	ip, addrAt, err := m.waitProbe(ctx, plan, name, created, check)
	if err != nil {
		return "", err
	}
	if err := m.deleteJob(ctx, plan.Namespace, job.Name, false); err != nil {
		return "", err
	}
	// How the time went: the wait for this boot's agent, then the probe.
	return fmt.Sprintf("agent Ready after %s; probe pod got %s (%s) after %s and reached the API server %s later",
		agentWait.Round(100*time.Millisecond), ip, where, addrAt.Sub(probeStart).Round(100*time.Millisecond), time.Since(addrAt).Round(100*time.Millisecond)), m.record(ctx, name, StepVerify, nil)
}

// addrCheck returns the error for a probe address the verification does
// not accept (nil when it does); keep says what is left for the user.
type addrCheck func(ip, keep string) error

// probeExpect says which addresses the probe pod on a node may get: one in
// Cilium's pool when migrating; when rolling back, one outside Cilium's
// pool and in the node's spec.podCIDRs (the range the old CNI allocates
// from: flannel's with the Kubernetes subnet manager). where describes the
// accepted range for the step's detail.
func (m *Migrator) probeExpect(ctx context.Context, plan *Plan, name string) (check addrCheck, where string, err error) {
	pool := poolString(plan.Pool)
	if !m.rollback() {
		return func(ip, keep string) error {
			if InPool(ip, plan.Pool) {
				return nil
			}
			return errs.Newf(errs.VerificationFailed,
				fmt.Sprintf("%s; check that CiliumNodeConfig %s selects the node and that its agent restarted after the label, then run the same command again", keep, plan.NodeConfig),
				"the probe pod on node %s got address %s, outside Cilium's pod CIDR %s: new pods there still use the old CNI", name, ip, pool)
		}, "in " + pool, nil
	}
	n, _, err := m.getNode(ctx, name)
	if err != nil {
		return nil, "", err
	}
	var cidrs []netip.Prefix
	for _, c := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			cidrs = append(cidrs, p.Masked())
		}
	}
	where = "outside Cilium's pod CIDR " + pool
	if len(cidrs) > 0 {
		where = fmt.Sprintf("in %s, the node's podCIDR, outside Cilium's %s", poolString(cidrs), pool)
	}
	return func(ip, keep string) error {
		if InPool(ip, plan.Pool) {
			return errs.Newf(errs.VerificationFailed,
				fmt.Sprintf("%s; on the node, remove %s and restore the old CNI's config as printed at the reboot step (docs/rollback.md), then run the same command again", keep, plan.CNIConfFile),
				"the probe pod on node %s got address %s, inside Cilium's pod CIDR %s: new pods there still use Cilium's CNI config", name, ip, pool)
		}
		if len(cidrs) > 0 && !InPool(ip, cidrs) {
			return errs.Newf(errs.VerificationFailed,
				fmt.Sprintf("%s; check which CNI config the node's container runtime uses (the first file in %s), then run the same command again", keep, path.Dir(plan.CNIConfFile)),
				"the probe pod on node %s got address %s, outside the node's podCIDR %s, the old CNI's range", name, ip, poolString(cidrs))
		}
		return nil
	}, where, nil
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
// address with check as soon as it has one.
// It also returns when the pod's address was first seen.
func (m *Migrator) waitProbe(ctx context.Context, plan *Plan, node string, job *batchv1.Job, check addrCheck) (string, time.Time, error) {
	ns := plan.Namespace
	wctx, cancel := context.WithTimeout(ctx, m.opts.ProbeTimeout)
	defer cancel()
	pods := m.cl.Kube.CoreV1().Pods(ns)
	var last *corev1.Pod
	var ip string
	var addrAt time.Time
	keep := fmt.Sprintf("the node stays cordoned; see kubectl -n %s logs job/%s and kubectl -n %s describe job %s", ns, job.Name, ns, job.Name)
	err := watchUntil(wctx, metav1.ListOptions{LabelSelector: JobNameLabel + "=" + job.Name}, podLister(pods.List), pods.Watch, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok || e.Type == watch.Deleted || !ownedBy(p, job.UID) {
			return false, nil
		}
		last = p
		if p.Status.PodIP != "" {
			if ip == "" {
				addrAt = time.Now()
			}
			ip = p.Status.PodIP
			if err := check(ip, keep); err != nil {
				return false, errProbe{err}
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
		return ip, addrAt, nil
	case errors.As(err, &pe):
		return "", addrAt, pe.err
	case ctx.Err() != nil:
		return "", addrAt, ctx.Err()
	case wctx.Err() != nil:
		state := "its pod was not created"
		if last != nil {
			state = "pod " + last.Name + " is " + podState(last)
		}
		return "", addrAt, errs.Newf(errs.VerificationFailed, keep+" (is --probe-image "+m.opts.ProbeImage+" pullable?)",
			"the probe on node %s did not finish within %s: %s", node, m.opts.ProbeTimeout, state)
	}
	return "", addrAt, m.cl.Classify(err, "watching the probe pod on node "+node)
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
	if m.rollback() {
		if rollbackLeaveCordoned(st) {
			detail = "left cordoned: it was cordoned before the rollback"
		} else if err := m.setUnschedulable(ctx, n, false); err != nil {
			return "", err
		}
		// The node is not migrated any more: no cni-migrate.io/ annotation
		// is left, so node and rollout see it as never migrated.
		clear := map[string]any{}
		for _, a := range Annotations() {
			if _, ok := n.Annotations[a]; ok {
				clear[a] = nil
			}
		}
		if len(clear) > 0 {
			if err := m.patchNode(ctx, name, map[string]any{"metadata": map[string]any{"annotations": clear}}); err != nil {
				return "", err
			}
		}
		return m.dryNote(strings.TrimPrefix(detail+"; annotations cleared (phase none)", "; ")), nil
	}
	if st.WasUnschedulable != nil && *st.WasUnschedulable {
		detail = "left cordoned: it was cordoned before the migration"
	} else if err := m.setUnschedulable(ctx, n, false); err != nil {
		return "", err
	}
	return m.dryNote(detail), m.record(ctx, name, StepUncordon, nil)
}
