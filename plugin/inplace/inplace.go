// Package inplace runs the one-shot method of seed 000 (`--strategy
// in-place`): Cilium is installed owning the CNI configuration of every node
// at once (cni.customConf false, cni.exclusive), so every new pod already
// starts on Cilium; what is left is to restart the pods that still have an
// address from the old CNI. They are evicted namespace by namespace with the
// eviction API, as `kubectl drain` does (PodDisruptionBudgets honoured, the
// same --timeout, --grace-period, --force, --delete-emptydir-data and
// --disable-eviction), and the next namespace begins only once the
// replacements of the evicted pods run again with an address in Cilium's
// pod CIDR. No node is cordoned, drained or rebooted.
//
// Why evictions and not `kubectl rollout restart` of the controllers: an
// eviction is the only restart the API server checks against the
// PodDisruptionBudgets; it touches only the pods still on the old network
// (not those already on Cilium); it changes no pod template, so there is no
// new revision for GitOps tools to revert; and it works the same for every
// controller (Deployments, StatefulSets with OnDelete updates, DaemonSets,
// Jobs) and refuses, like a drain, to lose pods no controller recreates.
//
// Progress is recorded in the ConfigMap ProgressConfigMap in Cilium's
// namespace (one key per namespace restarted) and, once no pod on a node has
// an old address, in the node's cni-migrate.io/phase annotation ("done"), the
// same state `status` and `finalize` read for the dual-overlay method. The
// pods themselves are the truth: a re-run lists them again, restarts what is
// left and changes nothing when every pod is on Cilium.
package inplace

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/drain"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Names the package writes.
const (
	// ProgressConfigMap, in Cilium's namespace, records each namespace whose
	// pods were restarted (key: the namespace).
	ProgressConfigMap = "cni-migrate-in-place"
	// StepRestart is the progress step of a namespace.
	StepRestart migrate.Step = "restart"
	// DefaultRestartTimeout bounds the wait for a namespace's replacements.
	DefaultRestartTimeout = 5 * time.Minute
	// Kind of the summary (-o json|yaml).
	Kind = "InPlaceMigration"
	// writeTimeout bounds a write that is let finish after an interrupt.
	writeTimeout = 30 * time.Second
	// pollInterval is how often the replacements are looked at.
	pollInterval = 500 * time.Millisecond
)

// Results of a namespace.
const (
	ResultRestarted   = "restarted"
	ResultAlreadyDone = "already-done"
	ResultFailed      = "failed"
	ResultInterrupted = "interrupted"
	ResultNotStarted  = "not-started"
	ResultDryRun      = "dry-run"
)

// Options configure a Restarter.
type Options struct {
	// Namespace is where Cilium runs ("" = where it is installed).
	Namespace string
	// Eviction settings, as kubectl drain's flags.
	Timeout            time.Duration // per namespace; 0 waits forever
	GracePeriodSeconds int           // negative: each pod's own
	DeleteEmptyDirData bool
	DisableEviction    bool
	Force              bool
	// RestartTimeout bounds the wait for the evicted pods' replacements to
	// run with an address in Cilium's pod CIDR.
	RestartTimeout time.Duration
	// DryRun sends every write with server-side dry run; nothing waits.
	DryRun bool
	// ResumeCommand is printed on interrupts and failures.
	ResumeCommand string
}

// Validate checks the options that do not need the cluster.
func (o Options) Validate() error {
	if o.Timeout < 0 {
		return errs.Newf(errs.Usage, "pass a duration such as 5m (0 waits forever)", "--timeout %s is negative", o.Timeout)
	}
	if o.RestartTimeout <= 0 {
		return errs.Newf(errs.Usage, "pass a positive duration such as 5m", "--restart-timeout %s is not a positive duration", o.RestartTimeout)
	}
	return nil
}

// Restarter restarts the pods still on the old network.
type Restarter struct {
	cl       *kube.Clients
	opts     Options
	progress *migrate.Progress
	now      func() time.Time
}

// New returns a Restarter writing its progress to progress.
func New(cl *kube.Clients, opts Options, progress *migrate.Progress) *Restarter {
	return &Restarter{cl: cl, opts: opts, progress: progress, now: time.Now}
}

// Plan is what Preflight found.
type Plan struct {
	// Namespace is Cilium's; Pool its cluster-pool pod CIDR.
	Namespace string
	Pool      []netip.Prefix
	// Nodes are the nodes whose pods are restarted, sorted.
	Nodes []string
	// Warnings are worth printing before the run (the operator's
	// unmanaged-pod watcher is on).
	Warnings []string
}

// Preflight checks, before anything changes, that Cilium owns the CNI
// configuration of every node (custom-cni-conf false) and runs a Ready
// agent on each of the nodes, and reads its pod CIDR.
func (r *Restarter) Preflight(ctx context.Context, cluster *detect.Cluster, nodes []string) (*Plan, error) {
	c := cluster.Cilium
	if !c.Installed {
		return nil, errs.New(errs.Precondition, "Cilium is not installed",
			"install it first: kubectl cni-migrate values --strategy in-place --output-dir . && helm install cilium cilium/cilium --namespace kube-system --values values-initial.yaml")
	}
	plan := &Plan{Namespace: r.opts.Namespace}
	if plan.Namespace == "" {
		plan.Namespace = c.Namespace
	}
	if plan.Namespace != c.Namespace {
		return nil, errs.Newf(errs.Precondition, "pass -n "+c.Namespace+" or drop -n",
			"Cilium runs in namespace %s (DaemonSet %s), not %s", c.Namespace, c.DaemonSet, plan.Namespace)
	}
	if c.MigrationMode {
		return nil, errs.Newf(errs.Precondition,
			"migrate node by node without --strategy in-place (kubectl cni-migrate rollout), or helm upgrade Cilium with values-initial.yaml from kubectl cni-migrate values --strategy in-place",
			"Cilium %s in %s runs in migration mode (cilium-config custom-cni-conf \"true\"), the dual-overlay setup: pods restarted now would get the old CNI's addresses again on nodes not migrated", c.Version, c.Namespace)
	}
	var err error
	if plan.Pool, err = migrate.ParsePool(c.PodCIDRs); err != nil {
		return nil, err
	}
	if len(plan.Pool) == 0 {
		return nil, errs.Newf(errs.Precondition, "install Cilium with ipam.mode=cluster-pool and ipam.operator.clusterPoolIPv4PodCIDRList (values-initial.yaml does)",
			"the cilium-config ConfigMap in %s has no cluster-pool-ipv4-cidr: the in-place migration tells old pods from new ones by Cilium's cluster-pool pod CIDR", c.Namespace)
	}
	plan.Nodes = append([]string(nil), nodes...)
	sort.Strings(plan.Nodes)

	// Every node whose pods are restarted needs a Ready agent, which has
	// written Cilium's CNI configuration: without one a restarted pod gets
	// no network (the old CNI's configuration is renamed away).
	agents, err := r.cl.Kube.CoreV1().Pods(plan.Namespace).List(ctx, metav1.ListOptions{LabelSelector: migrate.AgentLabel})
	if err != nil {
		return nil, r.cl.Classify(err, "listing the Cilium agents")
	}
	ready := map[string]bool{}
	for i := range agents.Items {
		p := &agents.Items[i]
		if p.DeletionTimestamp == nil && podReady(p) {
			ready[p.Spec.NodeName] = true
		}
	}
	var notReady []string
	for _, n := range plan.Nodes {
		if !ready[n] {
			notReady = append(notReady, n)
		}
	}
	if len(notReady) > 0 {
		return nil, errs.Newf(errs.Precondition,
			fmt.Sprintf("check kubectl -n %s get pods -l %s -o wide, then run the same command again", plan.Namespace, migrate.AgentLabel),
			"no Ready Cilium agent on %s %s: pods restarted there would get no network", output.Plural(len(notReady), "node", "nodes"), list(notReady))
	}

	if cm, err := r.cl.Kube.CoreV1().ConfigMaps(plan.Namespace).Get(ctx, "cilium-config", metav1.GetOptions{}); err == nil {
		if v := cm.Data["unmanaged-pod-watcher-interval"]; v != "" && v != "0" && v != "0s" {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("the Cilium operator's unmanaged-pod watcher is on (unmanaged-pod-watcher-interval %s): it deletes pods still on the old network one at a time without regard to PodDisruptionBudgets; values --strategy in-place turns it off until values-final.yaml", v))
		}
	}
	return plan, nil
}

// Summary is the result of a run (-o json|yaml), kind InPlaceMigration.
type Summary struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Strategy   string `json:"strategy"`
	// DryRun is "server" when every write was a server-side dry run.
	DryRun string `json:"dryRun,omitempty"`
	// PodCIDRs is Cilium's pod CIDR: pods outside it are restarted.
	PodCIDRs   []string          `json:"podCIDRs"`
	Namespaces []NamespaceResult `json:"namespaces"`
	Nodes      []NodeResult      `json:"nodes"`
	// Result is "ok" or the name of the exit code (errs.Codes).
	Result   string `json:"result"`
	ExitCode int    `json:"exitCode"`
	Resume   string `json:"resume,omitempty"`
}

// NamespaceResult is what happened in one namespace.
type NamespaceResult struct {
	Name string `json:"name"`
	// Pods are the pods evicted (or, before the run, to evict).
	Pods    []string `json:"pods"`
	Result  string   `json:"result"`
	Detail  string   `json:"detail,omitempty"`
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"durationSeconds"`
}

// NodeResult is the recorded phase of a node before and after the run.
type NodeResult struct {
	Name        string        `json:"name"`
	PhaseBefore migrate.Phase `json:"phaseBefore"`
	PhaseAfter  migrate.Phase `json:"phaseAfter"`
	// OldPods counts the pods on the node still on the old network at the
	// end (0 once the node is done).
	OldPods int `json:"oldPods"`
}

// work is one namespace's pods to restart.
type work struct {
	ns      string
	pods    []corev1.Pod
	blocked []string // why pods cannot be restarted (drain's refusals)
}

// Run restarts, namespace by namespace, every pod on the plan's nodes whose
// address is outside Cilium's pod CIDR, then marks the nodes done. It stops
// at the first namespace that fails.
func (r *Restarter) Run(ctx context.Context, plan *Plan) (*Summary, error) {
	s := &Summary{APIVersion: "cni-migrate.io/v1alpha1", Kind: Kind, Strategy: "in-place", Result: "ok",
		PodCIDRs: poolStrings(plan.Pool), Namespaces: []NamespaceResult{}, Nodes: []NodeResult{}}
	if r.opts.DryRun {
		s.DryRun = "server"
	}
	done, err := r.readProgress(ctx, plan.Namespace)
	if err != nil {
		return s, r.fail(s, err)
	}
	pods, err := r.listPods(ctx)
	if err != nil {
		return s, r.fail(s, err)
	}
	todo := r.classify(plan, pods)

	// Namespaces recorded earlier with nothing left are already done.
	left := map[string]bool{}
	for _, w := range todo {
		left[w.ns] = true
	}
	for _, ns := range sortedKeys(done) {
		if !left[ns] {
			s.Namespaces = append(s.Namespaces, NamespaceResult{Name: ns, Pods: []string{}, Result: ResultAlreadyDone, Detail: done[ns]})
		}
	}
	if len(todo) == 0 {
		r.progress.Printf("every pod on %s is on Cilium's pod CIDR %s; nothing to restart", describeNodes(plan.Nodes), strings.Join(s.PodCIDRs, ", "))
	} else {
		n := 0
		var parts []string
		for _, w := range todo {
			n += len(w.pods)
			parts = append(parts, fmt.Sprintf("%s (%d)", w.ns, len(w.pods)))
		}
		r.progress.Printf("%d %s on the old network in %d %s: %s", n, output.Plural(n, "pod", "pods"), len(todo), output.Plural(len(todo), "namespace", "namespaces"), list(parts))
	}

	var firstErr error
	for _, w := range todo {
		if firstErr != nil {
			s.Namespaces = append(s.Namespaces, NamespaceResult{Name: w.ns, Pods: podNames(w.pods), Result: ResultNotStarted})
			continue
		}
		res, err := r.restartNamespace(ctx, plan, w)
		s.Namespaces = append(s.Namespaces, res)
		if err != nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return s, r.fail(s, firstErr)
	}
	if err := r.markNodes(ctx, plan, s); err != nil {
		return s, r.fail(s, err)
	}
	return s, nil
}

func (r *Restarter) fail(s *Summary, err error) error {
	s.ExitCode = errs.Code(err)
	s.Result = errs.Name(s.ExitCode)
	if s.ExitCode != errs.Usage {
		s.Resume = r.opts.ResumeCommand
	}
	return err
}

// listPods lists every pod, a page at a time.
func (r *Restarter) listPods(ctx context.Context) ([]corev1.Pod, error) {
	var out []corev1.Pod
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := r.cl.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, r.cl.Classify(err, "listing pods")
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// onOldNetwork reports whether p is a running pod of the pod network whose
// address is outside Cilium's pod CIDR.
func onOldNetwork(p *corev1.Pod, pool []netip.Prefix) bool {
	if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Status.PodIP == "" {
		return false
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	return !migrate.InPool(p.Status.PodIP, pool)
}

// classify groups the pods on the old network by namespace (kube-system
// first, then by name) and notes, as a drain would, those that cannot be
// restarted without losing them.
func (r *Restarter) classify(plan *Plan, pods []corev1.Pod) []*work {
	target := map[string]bool{}
	for _, n := range plan.Nodes {
		target[n] = true
	}
	byNS := map[string]*work{}
	for i := range pods {
		p := pods[i]
		if !target[p.Spec.NodeName] || !onOldNetwork(&p, plan.Pool) {
			continue
		}
		w := byNS[p.Namespace]
		if w == nil {
			w = &work{ns: p.Namespace}
			byNS[p.Namespace] = w
		}
		w.pods = append(w.pods, p)
		id := p.Namespace + "/" + p.Name
		switch {
		case p.Annotations[corev1.MirrorPodAnnotationKey] != "":
			w.blocked = append(w.blocked, id+" is a static pod (restart it on its node: move its manifest out of the kubelet's manifest directory and back)")
		case metav1.GetControllerOf(&p) == nil && !r.opts.Force:
			w.blocked = append(w.blocked, id+" has no controller and would not come back (pass --force to restart it anyway: it is deleted)")
		case usesEmptyDir(&p) && !r.opts.DeleteEmptyDirData:
			w.blocked = append(w.blocked, id+" uses emptyDir volumes whose data a restart loses (pass --delete-emptydir-data)")
		}
	}
	var out []*work
	for _, w := range byNS {
		sort.Slice(w.pods, func(i, j int) bool { return w.pods[i].Name < w.pods[j].Name })
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].ns == metav1.NamespaceSystem) != (out[j].ns == metav1.NamespaceSystem) {
			return out[i].ns == metav1.NamespaceSystem
		}
		return out[i].ns < out[j].ns
	})
	return out
}

func usesEmptyDir(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

// owner is a controller whose pods were evicted, and how many of its pods
// ran before: its replacements must run again, on Cilium, before the next
// namespace begins.
type owner struct {
	uid  types.UID
	ref  string // Kind/name
	want int
}

func (r *Restarter) restartNamespace(ctx context.Context, plan *Plan, w *work) (res NamespaceResult, err error) {
	res = NamespaceResult{Name: w.ns, Pods: podNames(w.pods)}
	if ctx.Err() != nil {
		res.Result = ResultInterrupted
		err = r.interrupted(w.ns)
		res.Error = err.Error()
		return res, err
	}
	verb := "evicting"
	if r.opts.DisableEviction {
		verb = "deleting"
	}
	task := r.progress.Start(w.ns, StepRestart, fmt.Sprintf("%s %d %s", verb, len(w.pods), output.Plural(len(w.pods), "pod", "pods")))
	finish := func(result string, e error) (NamespaceResult, error) {
		res.Result = result
		if e != nil {
			res.Error = e.Error()
			switch result {
			case ResultInterrupted:
				res.Seconds = seconds(task.Stop("interrupted", ""))
			default:
				res.Seconds = seconds(task.Fail("failed"))
			}
		}
		return res, e
	}
	if len(w.blocked) > 0 {
		return finish(ResultFailed, errs.Newf(errs.DrainBlocked,
			"pass the flag it names (as for kubectl drain) or move those pods, then run the same command again; namespaces before it are done",
			"cannot restart the pods of namespace %s: %s", w.ns, list(w.blocked)))
	}

	// The controllers of the pods and how many pods each runs now (on any
	// node): that many must run again before the namespace is done.
	owners, err := r.owners(ctx, w)
	if err != nil {
		return finish(ResultFailed, err)
	}
	start := r.now()
	if err := r.evict(ctx, w); err != nil {
		if ctx.Err() != nil {
			return finish(ResultInterrupted, r.interrupted(w.ns))
		}
		return finish(ResultFailed, err)
	}
	evicted := map[types.UID]bool{}
	for _, p := range w.pods {
		evicted[p.UID] = true
	}
	detail := fmt.Sprintf("evicted %d %s", len(w.pods), output.Plural(len(w.pods), "pod", "pods"))
	if r.opts.DisableEviction {
		detail = fmt.Sprintf("deleted %d %s", len(w.pods), output.Plural(len(w.pods), "pod", "pods"))
	}
	if r.opts.DryRun {
		res.Detail = detail + " (server dry run)"
		res.Result = ResultDryRun
		res.Seconds = seconds(task.Done(res.Detail))
		return res, nil
	}
	if err := r.waitReplacements(ctx, plan, w.ns, owners, evicted, start); err != nil {
		if ctx.Err() != nil {
			return finish(ResultInterrupted, r.interrupted(w.ns))
		}
		return finish(ResultFailed, err)
	}
	detail += fmt.Sprintf("; their replacements run on %s", strings.Join(poolStrings(plan.Pool), ", "))
	if err := r.recordProgress(ctx, plan.Namespace, w.ns, fmt.Sprintf("restarted %d %s at %s", len(w.pods), output.Plural(len(w.pods), "pod", "pods"), r.now().UTC().Format(time.RFC3339))); err != nil {
		return finish(ResultFailed, err)
	}
	res.Detail = detail
	res.Result = ResultRestarted
	res.Seconds = seconds(task.Done(detail))
	return res, nil
}

func (r *Restarter) interrupted(ns string) error {
	fix := "run the same command again to continue"
	if r.opts.ResumeCommand != "" {
		fix = "run " + r.opts.ResumeCommand + " to continue"
	}
	return errs.Newf(errs.Interrupted, fix, "interrupted while restarting the pods of namespace %s; namespaces before it are done", ns)
}

// owners returns the controllers of w's pods with the number of their pods
// running now in the namespace. Pods without a controller (restarted only
// with --force) and Jobs' pods (whose replacements may finish) are not
// waited for.
func (r *Restarter) owners(ctx context.Context, w *work) ([]owner, error) {
	l, err := r.cl.Kube.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, r.cl.Classify(err, "listing the pods of namespace "+w.ns)
	}
	byUID := map[types.UID]*owner{}
	var order []types.UID
	for _, p := range w.pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind == "Job" {
			continue
		}
		if byUID[ref.UID] == nil {
			byUID[ref.UID] = &owner{uid: ref.UID, ref: ref.Kind + "/" + ref.Name}
			order = append(order, ref.UID)
		}
	}
	for i := range l.Items {
		p := &l.Items[i]
		if ref := metav1.GetControllerOf(p); ref != nil && byUID[ref.UID] != nil && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			byUID[ref.UID].want++
		}
	}
	out := make([]owner, 0, len(order))
	for _, uid := range order {
		out = append(out, *byUID[uid])
	}
	return out, nil
}

// evict evicts (or deletes) w's pods with kubectl's drain helper: each
// eviction is retried while a PodDisruptionBudget refuses it, until
// --timeout.
func (r *Restarter) evict(ctx context.Context, w *work) error {
	out := r.progress.Writer()
	h := &drain.Helper{
		Ctx:                ctx,
		Client:             r.cl.Kube,
		Force:              r.opts.Force,
		GracePeriodSeconds: r.opts.GracePeriodSeconds,
		Timeout:            r.opts.Timeout,
		DeleteEmptyDirData: r.opts.DeleteEmptyDirData,
		DisableEviction:    r.opts.DisableEviction,
		Out:                output.NewDedupWriter(out),
		ErrOut:             output.NewDedupWriter(out),
	}
	if r.opts.DryRun {
		h.DryRunStrategy = cmdutil.DryRunServer
	}
	start := r.now()
	// The helper sleeps between refused evictions without looking at the
	// context: on an interrupt, stop waiting for it.
	errc := make(chan error, 1)
	go func() { errc <- h.DeleteOrEvictPods(w.pods) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "global timeout reached") || (r.opts.Timeout > 0 && r.now().Sub(start) >= r.opts.Timeout) {
		return r.blocked(ctx, w)
	}
	return r.cl.Classify(err, "evicting the pods of namespace "+w.ns)
}

// blocked builds the error of evictions past --timeout: the pods left and
// the PodDisruptionBudgets that hold them.
func (r *Restarter) blocked(ctx context.Context, w *work) error {
	var remaining []corev1.Pod
	for _, p := range w.pods {
		cur, err := r.cl.Kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil && cur.UID == p.UID {
			remaining = append(remaining, *cur)
		}
	}
	var pdbs []policyv1.PodDisruptionBudget
	if l, err := r.cl.Kube.PolicyV1().PodDisruptionBudgets(w.ns).List(ctx, metav1.ListOptions{}); err == nil {
		pdbs = l.Items
	}
	budgets := migrate.BlockingPDBs(remaining, pdbs)
	var names []string
	for _, p := range remaining {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	msg := fmt.Sprintf("restarting the pods of namespace %s did not finish within %s: %d %s left on the old network", w.ns, r.opts.Timeout, len(names), output.Plural(len(names), "pod", "pods"))
	if len(names) > 0 {
		msg += " (" + list(names) + ")"
	}
	fix := "raise --timeout (or lower --grace-period), then run the same command again"
	if len(budgets) > 0 {
		var held, refs []string
		for _, b := range budgets {
			held = append(held, fmt.Sprintf("PodDisruptionBudget %s/%s (%d %s allowed) holds %s", b.Namespace, b.Name, b.DisruptionsAllowed,
				output.Plural(int(b.DisruptionsAllowed), "disruption", "disruptions"), list(b.Pods)))
			refs = append(refs, b.Namespace+"/"+b.Name)
		}
		msg += "; " + strings.Join(held, "; ")
		fix = fmt.Sprintf("let %s allow a disruption (scale its workload up or relax it: kubectl -n %s edit pdb %s), then run the same command again",
			list(refs), budgets[0].Namespace, budgets[0].Name)
	}
	return errs.New(errs.DrainBlocked, msg, fix+"; namespaces before it are done")
}

// waitReplacements waits until no evicted pod is left, every controller
// runs as many pods as before, and none of the pods created since start has
// an address outside Cilium's pod CIDR.
func (r *Restarter) waitReplacements(ctx context.Context, plan *Plan, ns string, owners []owner, evicted map[types.UID]bool, start time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, r.opts.RestartTimeout)
	defer cancel()
	since := metav1.NewTime(start.Add(-time.Second))
	var state string
	for {
		l, err := r.cl.Kube.CoreV1().Pods(ns).List(wctx, metav1.ListOptions{})
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			return r.waitTimeout(ns, state)
		default:
			return r.cl.Classify(err, "watching the pods of namespace "+ns)
		}
		running := map[types.UID]int{}
		var left, pending []string
		for i := range l.Items {
			p := &l.Items[i]
			if evicted[p.UID] {
				left = append(left, p.Name)
				continue
			}
			if p.DeletionTimestamp != nil || p.Spec.HostNetwork {
				continue
			}
			if p.CreationTimestamp.Before(&since) {
				// Not a replacement; it counts for its controller if it runs.
			} else if p.Status.PodIP != "" && !migrate.InPool(p.Status.PodIP, plan.Pool) {
				return errs.Newf(errs.VerificationFailed,
					fmt.Sprintf("check that the Cilium agent on %s wrote its CNI config (kubectl -n %s logs -l %s -c cilium-agent) and that cilium-config has custom-cni-conf \"false\", then run the same command again", p.Spec.NodeName, plan.Namespace, migrate.AgentLabel),
					"pod %s/%s, restarted on node %s, got address %s outside Cilium's pod CIDR %s: new pods there still start on the old CNI", ns, p.Name, p.Spec.NodeName, p.Status.PodIP, strings.Join(poolStrings(plan.Pool), ", "))
			}
			if ref := metav1.GetControllerOf(p); ref != nil {
				if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
					running[ref.UID]++
				} else {
					pending = append(pending, p.Name+" ("+string(p.Status.Phase)+")")
				}
			}
		}
		var short []string
		for _, o := range owners {
			if running[o.uid] < o.want {
				short = append(short, fmt.Sprintf("%s runs %d of %d", o.ref, running[o.uid], o.want))
			}
		}
		if len(left) == 0 && len(short) == 0 {
			return nil
		}
		var parts []string
		if len(left) > 0 {
			sort.Strings(left)
			parts = append(parts, "still terminating: "+list(left))
		}
		if len(short) > 0 {
			parts = append(parts, list(short))
		}
		if len(pending) > 0 {
			sort.Strings(pending)
			parts = append(parts, "not running yet: "+list(pending))
		}
		state = strings.Join(parts, "; ")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wctx.Done():
			return r.waitTimeout(ns, state)
		case <-time.After(pollInterval):
		}
	}
}

func (r *Restarter) waitTimeout(ns, state string) error {
	return errs.Newf(errs.VerificationFailed,
		fmt.Sprintf("see kubectl -n %s get pods and kubectl -n %s describe pod for the replacements, raise --restart-timeout if they are only slow, then run the same command again", ns, ns),
		"the restarted pods of namespace %s are not all running again after %s: %s", ns, r.opts.RestartTimeout, state)
}

// markNodes records phase done on each node of the plan that has no pod on
// the old network left, and fills the summary's nodes.
func (r *Restarter) markNodes(ctx context.Context, plan *Plan, s *Summary) error {
	pods, err := r.listPods(ctx)
	if err != nil {
		return err
	}
	old := map[string]int{}
	for i := range pods {
		if onOldNetwork(&pods[i], plan.Pool) {
			old[pods[i].Spec.NodeName]++
		}
	}
	nodes := r.cl.Kube.CoreV1().Nodes()
	var marked []string
	for _, name := range plan.Nodes {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return r.cl.Classify(err, "reading node "+name)
		}
		st, err := migrate.StateOf(n)
		if err != nil {
			return err
		}
		res := NodeResult{Name: name, PhaseBefore: st.Phase, PhaseAfter: st.Phase, OldPods: old[name]}
		if old[name] == 0 && st.Phase != migrate.PhaseDone {
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				migrate.AnnotationPhase:     string(migrate.PhaseDone),
				migrate.AnnotationPhaseTime: r.now().UTC().Format(time.RFC3339),
			}}})
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
			_, err := nodes.Patch(wctx, name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: r.dryRun(), FieldManager: nodeconfig.FieldManager})
			cancel()
			if err != nil {
				return r.cl.Classify(err, "recording the phase of node "+name)
			}
			if !r.opts.DryRun {
				res.PhaseAfter = migrate.PhaseDone
			}
			marked = append(marked, name)
		}
		s.Nodes = append(s.Nodes, res)
	}
	if len(marked) > 0 {
		note := ""
		if r.opts.DryRun {
			note = " (server dry run)"
		}
		r.progress.Printf("recorded phase done on %s %s%s", output.Plural(len(marked), "node", "nodes"), list(marked), note)
	}
	return nil
}

func (r *Restarter) dryRun() []string {
	if r.opts.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// readProgress returns the namespaces recorded in the progress ConfigMap.
func (r *Restarter) readProgress(ctx context.Context, ns string) (map[string]string, error) {
	cm, err := r.cl.Kube.CoreV1().ConfigMaps(ns).Get(ctx, ProgressConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return map[string]string{}, nil
	case err != nil:
		return nil, r.cl.Classify(err, "reading ConfigMap "+ns+"/"+ProgressConfigMap)
	}
	if cm.Data == nil {
		return map[string]string{}, nil
	}
	return cm.Data, nil
}

// recordProgress writes one namespace into the progress ConfigMap.
func (r *Restarter) recordProgress(ctx context.Context, ns, key, value string) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	cms := r.cl.Kube.CoreV1().ConfigMaps(ns)
	for attempt := 0; ; attempt++ {
		cm, err := cms.Get(wctx, ProgressConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ProgressConfigMap, Namespace: ns,
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "kubectl-cni-migrate"},
				Annotations: map[string]string{"cni-migrate.io/description": "namespaces whose pods kubectl cni-migrate rollout --strategy in-place restarted onto Cilium"}},
				Data: map[string]string{key: value}}
			_, err = cms.Create(wctx, cm, metav1.CreateOptions{DryRun: r.dryRun(), FieldManager: nodeconfig.FieldManager})
		} else if err == nil {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[key] = value
			_, err = cms.Update(wctx, cm, metav1.UpdateOptions{DryRun: r.dryRun(), FieldManager: nodeconfig.FieldManager})
		}
		if err == nil {
			return nil
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		return r.cl.Classify(err, "recording the progress in ConfigMap "+ns+"/"+ProgressConfigMap)
	}
}

// PrintSummary writes the end-of-run summary for people.
func PrintSummary(w io.Writer, s *Summary, style output.Style) {
	if len(s.Namespaces) == 0 && len(s.Nodes) == 0 {
		return
	}
	suffix := ""
	if s.DryRun != "" {
		suffix = " (server dry run: nothing was changed)"
	}
	fmt.Fprintf(w, "SUMMARY%s\n", suffix)
	for _, n := range s.Namespaces {
		word := fmt.Sprintf("%-13s", n.Result)
		switch n.Result {
		case ResultRestarted, ResultAlreadyDone, ResultDryRun:
			word = style.Green(word)
		case ResultFailed:
			word = style.Red(word)
		default:
			word = style.Yellow(word)
		}
		line := fmt.Sprintf("  namespace %-20s %s %d %s", n.Name, word, len(n.Pods), output.Plural(len(n.Pods), "pod", "pods"))
		if n.Seconds > 0 {
			line += fmt.Sprintf(" in %.1fs", n.Seconds)
		}
		if n.Result == ResultAlreadyDone && n.Detail != "" {
			line += " (" + n.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range s.Nodes {
		line := fmt.Sprintf("  node      %-20s phase %s", n.Name, orNone(string(n.PhaseAfter)))
		if n.PhaseBefore != n.PhaseAfter {
			line = fmt.Sprintf("  node      %-20s phase %s -> %s", n.Name, orNone(string(n.PhaseBefore)), n.PhaseAfter)
		}
		if n.OldPods > 0 {
			line += fmt.Sprintf(", %d %s still on the old network", n.OldPods, output.Plural(n.OldPods, "pod", "pods"))
		}
		fmt.Fprintln(w, line)
	}
	if s.Resume != "" {
		fmt.Fprintf(w, "to continue: %s\n", s.Resume)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
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

func podNames(pods []corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Namespace + "/" + p.Name
	}
	return out
}

func poolStrings(pool []netip.Prefix) []string {
	out := make([]string, len(pool))
	for i, p := range pool {
		out[i] = p.String()
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func describeNodes(nodes []string) string {
	if len(nodes) == 1 {
		return "node " + nodes[0]
	}
	return fmt.Sprintf("the %d nodes", len(nodes))
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// maxListed bounds the names in one line.
const maxListed = 4

func list(items []string) string { return output.List(items, maxListed) }
