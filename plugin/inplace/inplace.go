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
//
// Files, by phase: preflight.go checks Cilium and the nodes; run.go lists
// the pods and goes namespace by namespace; restart.go evicts a namespace's
// pods and waits for their replacements; progress.go records the progress
// (ConfigMap, node phases); summary.go is the summary and its printing.
package inplace

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
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

func (r *Restarter) dryRun() []string {
	if r.opts.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
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
