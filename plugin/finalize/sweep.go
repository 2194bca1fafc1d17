package finalize

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// The sweep: once the old CNI's pods are gone, what its agents left on
// every node (interfaces, routes, iptables chains and ipsets in the
// node's network namespace, its files in the CNI directory, its state
// directories) stays until the node reboots, and the nodes were rebooted
// before finalize, in the migration. finalize --remove-old-cni removes it
// with one Job per node: a privileged pod on the host's network, in the
// Cilium agent's image (it has ip, iptables and ipset), running the script
// SweepScript writes from the CNI's registry entry. Each Job says what it
// removed, one line per thing; the script removes only what matches the
// entry's names and patterns, and does nothing the second time.

// Labels of the sweep Jobs.
const (
	SweepComponent = "cni-migrate-sweep"
	componentLabel = "app.kubernetes.io/component"
	// sweepHost is where the Job mounts the node's directories.
	sweepHost = "/host"
)

// SweepNote is the migration lock's note that the old CNI's objects were
// deleted and the nodes are not swept yet: its value is the CNI's registry
// ID, so that a run after an interruption (which no longer finds the CNI)
// sweeps them.
const SweepNote = "cni-migrate.io/sweep-nodes"

// SweepName is the name of the sweep Job of a node: fixed per node (a
// re-run replaces what an interrupted run left) and short enough for the
// job-name label.
func SweepName(node string) string { return migrate.NodeJobName("cni-migrate-sweep-", node) }

// SweepScript is the bash script that removes what sw names from a node:
// run in a pod on the node's network with the node's CNI directory at
// /host/cni and its /var/lib and /run at /host/var/lib and /host/run. It
// prints "removed WHAT" for each thing removed and "failed WHAT" for each
// it could not, and exits 1 when anything failed.
func SweepScript(sw sourcecni.Sweep) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	words := func(list []string) string {
		q := make([]string, len(list))
		for i, s := range list {
			q[i] = shell.Quote(s)
		}
		return strings.Join(q, " ")
	}
	p(`set -u
host=${SWEEP_HOST:-%s}
failed=0
ok() { echo "removed $*"; }
bad() { echo "failed $*"; failed=1; }
`, sweepHost)
	if len(sw.Processes) > 0 {
		// The node's processes (the Job shares the host's PID namespace):
		// wait for the old CNI's agents to have exited, at most a minute.
		p(`proc=${SWEEP_PROC:-/proc}
procs() { grep -sxl -e %s "$proc"/[0-9]*/comm | sed 's|.*/\([0-9]*\)/comm$|\1|' | tr '\n' ' '; }
for i in $(seq 60); do
  left=$(procs)
  [[ -z $left ]] && break
  [[ $i == 60 ]] && { echo "failed to wait for the old CNI's processes to exit (pids $left still run)"; exit 1; }
  sleep 1
done
`, strings.Join(quoteAll(sw.Processes), " -e "))
	}
	if len(sw.Links) > 0 || sw.LinkPattern != "" {
		p("links=$(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1)\n")
		p("for l in $links; do\n  case \" %s \" in *\" $l \"*) ;; *) ", strings.Join(sw.Links, " "))
		if sw.LinkPattern != "" {
			p("[[ $l =~ ^(%s)$ ]] || continue ;;", sw.LinkPattern)
		} else {
			p("continue ;;")
		}
		p(" esac\n  if ip link delete \"$l\"; then ok \"link $l\"; else bad \"link $l\"; fi\ndone\n")
	}
	for _, proto := range sw.RouteProtocols {
		p(`ip -4 route show proto %[1]s | while read -r r; do
  if ip route del $r; then echo "removed route $r"; else echo "failed route $r"; fi
done >"${TMPDIR:-/tmp}/routes"
cat "${TMPDIR:-/tmp}/routes"; grep -q ^failed "${TMPDIR:-/tmp}/routes" && failed=1
`, shell.Quote(proto))
	}
	if sw.Chains != "" {
		p(`chains='^(%[1]s)'
for be in legacy nft; do
  command -v iptables-$be-save >/dev/null || continue
  for t in raw mangle nat filter security; do
    rules=$(iptables-$be-save -t $t 2>/dev/null) || continue
    ours=$(printf '%%s\n' "$rules" | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "$chains") || continue
    {
      echo "*$t"
      printf '%%s\n' "$rules" | grep -E '^-A ' | grep -Ev "^-A ($(echo $ours | tr ' ' '|')) " |
        grep -E -- "-(j|g) ($(echo $ours | tr ' ' '|'))( |\$)" | sed 's/^-A /-D /'
      for c in $ours; do echo "-F $c"; done
      for c in $ours; do echo "-X $c"; done
      echo COMMIT
    } | iptables-$be-restore --noflush && ok "$(echo $ours | wc -w) iptables chains of table $t ($be): $(echo $ours | tr '\n' ' ')" ||
      bad "iptables chains of table $t ($be)"
  done
done
`, sw.Chains)
	}
	if sw.IPSets != "" {
		p(`if command -v ipset >/dev/null; then
  for s in $(ipset list -n 2>/dev/null | grep -E '^(%s)'); do
    if ipset destroy "$s"; then ok "ipset $s"; else bad "ipset $s"; fi
  done
fi
`, sw.IPSets)
	}
	if len(sw.Files) > 0 {
		p("for f in %s; do\n  [[ -e $host/cni/$f ]] || continue\n  if rm -f \"$host/cni/$f\"; then ok \"file $f\"; else bad \"file $f\"; fi\ndone\n", words(sw.Files))
	}
	if len(sw.Dirs) > 0 {
		p("for d in %s; do\n  [[ -e $host$d ]] || continue\n  if rm -rf \"$host$d\"; then ok \"directory $d\"; else bad \"directory $d\"; fi\ndone\n", words(sw.Dirs))
	}
	p("exit $failed\n")
	return b.String()
}

// SweepJob is the Job that sweeps node with script, in the Cilium agent's
// image: pinned to the node, every taint tolerated, privileged on the
// host's network (its interfaces, routes, iptables and ipsets) and in its
// PID namespace (to wait for the old CNI's processes to exit), with the
// node's CNI directory confDir, /var/lib and /run (and the xtables lock)
// mounted: a migrate.NodeJob.
func SweepJob(namespace, node, image, confDir, script string, timeout time.Duration) *batchv1.Job {
	lbls := map[string]string{nodeconfig.ManagedByLabel: nodeconfig.ManagedByValue, componentLabel: SweepComponent}
	dir, file := corev1.HostPathDirectory, corev1.HostPathFileOrCreate
	priv := true
	mounts := []corev1.VolumeMount{
		{Name: "cni", MountPath: sweepHost + "/cni"},
		{Name: "var-lib", MountPath: sweepHost + "/var/lib"},
		{Name: "run", MountPath: sweepHost + "/run"},
		{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
	}
	vols := []corev1.Volume{
		{Name: "cni", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: confDir, Type: &dir}}},
		{Name: "var-lib", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib", Type: &dir}}},
		{Name: "run", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run", Type: &dir}}},
		{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/xtables.lock", Type: &file}}},
	}
	return migrate.NodeJob(SweepName(node), namespace, node, lbls, map[string]string{"cni-migrate.io/sweep-node": node}, timeout,
		corev1.PodSpec{
			HostNetwork:       true,
			HostPID:           true,
			PriorityClassName: "system-node-critical",
			Containers: []corev1.Container{{
				Name:            "sweep",
				Image:           image,
				Command:         []string{"bash", "-c", script},
				SecurityContext: &corev1.SecurityContext{Privileged: &priv},
				VolumeMounts:    mounts,
			}},
			Volumes: vols,
		})
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = shell.Quote(s)
	}
	return out
}

// SweepResult is what the sweep did on one node.
type SweepResult struct {
	Node string
	// Removed and Failed are the script's lines, without their word.
	Removed, Failed []string
	// Err says why the Job failed or its log could not be read ("" when
	// it succeeded and was read); Unread says the log could not be read
	// (pods/log), so Removed says nothing.
	Err    string
	Unread bool
}

// Sweep runs one sweep Job on each node (all at once) in namespace, with
// the Cilium agent's image and the nodes' CNI directory confDir, and waits
// for them (at most timeout); the Jobs are deleted once read. A Job that
// fails is reported in its result; err is for what stops the sweep as a
// whole (the API).
func Sweep(ctx context.Context, c kubernetes.Interface, namespace, image, confDir string, nodes []string, sw sourcecni.Sweep, timeout time.Duration, dryRun bool) ([]SweepResult, error) {
	script := SweepScript(sw)
	jobs := c.BatchV1().Jobs(namespace)
	opts := metav1.CreateOptions{FieldManager: nodeconfig.FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	bg := metav1.DeletePropagationBackground
	for _, n := range nodes {
		j := SweepJob(namespace, n, image, confDir, script, timeout)
		if !dryRun {
			// What an interrupted run left: replaced.
			if err := jobs.Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
			if err := waitGone(ctx, func(ctx context.Context) error {
				_, err := jobs.Get(ctx, j.Name, metav1.GetOptions{})
				return err
			}); err != nil {
				return nil, err
			}
		}
		if _, err := jobs.Create(ctx, j, opts); err != nil {
			return nil, err
		}
	}
	if dryRun {
		return nil, nil
	}
	results := make([]SweepResult, len(nodes))
	errors := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errors[i] = sweepResult(ctx, c, namespace, n, timeout)
		}()
	}
	wg.Wait()
	for i, err := range errors {
		if err != nil {
			return nil, err
		}
		_ = jobs.Delete(ctx, SweepName(nodes[i]), metav1.DeleteOptions{PropagationPolicy: &bg})
	}
	return results, nil
}

// waitGone polls get until it says NotFound.
func waitGone(ctx context.Context, get func(context.Context) error) error {
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// sweepResult waits for the node's sweep Job to end and reads its pod's log.
func sweepResult(ctx context.Context, c kubernetes.Interface, namespace, node string, timeout time.Duration) (SweepResult, error) {
	r := SweepResult{Node: node}
	name := SweepName(node)
	var job *batchv1.Job
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout+30*time.Second, true, func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		job = j
		return j.Status.Succeeded > 0 || j.Status.Failed > 0 || jobCondition(j, batchv1.JobFailed), nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if job == nil {
			return r, err
		}
		r.Err = fmt.Sprintf("Job %s/%s did not end within %s", namespace, name, timeout)
		return r, nil
	}
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
	if err != nil {
		return r, err
	}
	var log string
	if len(pods.Items) > 0 {
		sort.Slice(pods.Items, func(i, j int) bool {
			return pods.Items[i].CreationTimestamp.After(pods.Items[j].CreationTimestamp.Time)
		})
		log, err = podLog(ctx, c, namespace, pods.Items[0].Name)
		if err != nil {
			log, r.Unread = "", true
			r.Err = "what it removed could not be read (its log: " + errs.OneLine(err.Error()) + ")"
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if w, rest, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			switch w {
			case "removed":
				r.Removed = append(r.Removed, rest)
			case "failed":
				r.Failed = append(r.Failed, rest)
			}
		}
	}
	if job.Status.Succeeded == 0 {
		r.Unread = false
		r.Err = fmt.Sprintf("Job %s/%s failed", namespace, name)
		if len(pods.Items) > 0 {
			if f := podFailure(&pods.Items[0]); f != "" {
				r.Err += ": " + f
			}
		}
	}
	return r, nil
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func podFailure(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("exit code %d", t.ExitCode)
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
	}
	return p.Status.Reason
}

func podLog(ctx context.Context, c kubernetes.Interface, namespace, pod string) (string, error) {
	rc, err := c.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: "sweep"}).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	return string(b), err
}

// chainsLine matches the script's line for one table's chains.
var chainsLine = regexp.MustCompile(`^(\d+) iptables chains of table (\S+) \((\S+)\)`)

// Summary sums a node's removals up in one line: "link vxlan.calico,
// 49 iptables chains (filter, mangle, nat, raw; nft), 11 ipsets, ...".
func (r SweepResult) Summary() string {
	var links, routes, ipsets, files, dirs []string
	chains, tables, backends := 0, map[string]bool{}, map[string]bool{}
	for _, x := range r.Removed {
		what, rest, _ := strings.Cut(x, " ")
		switch what {
		case "link":
			links = append(links, rest)
		case "route":
			routes = append(routes, rest)
		case "ipset":
			ipsets = append(ipsets, rest)
		case "file":
			files = append(files, rest)
		case "directory":
			dirs = append(dirs, rest)
		default:
			if m := chainsLine.FindStringSubmatch(x); m != nil {
				n, _ := strconv.Atoi(m[1])
				chains += n
				tables[m[2]], backends[m[3]] = true, true
			}
		}
	}
	var parts []string
	if len(links) > 0 {
		parts = append(parts, countOf(len(links), "link", "links")+" ("+listSome(links)+")")
	}
	if len(routes) > 0 {
		parts = append(parts, countOf(len(routes), "route", "routes"))
	}
	if chains > 0 {
		parts = append(parts, fmt.Sprintf("%s (%s; %s)", countOf(chains, "iptables chain", "iptables chains"), strings.Join(keys(tables), ", "), strings.Join(keys(backends), ", ")))
	}
	if len(ipsets) > 0 {
		parts = append(parts, countOf(len(ipsets), "ipset", "ipsets"))
	}
	if len(files) > 0 {
		parts = append(parts, countOf(len(files), "file", "files")+" ("+listSome(files)+")")
	}
	if len(dirs) > 0 {
		parts = append(parts, countOf(len(dirs), "directory", "directories")+" ("+listSome(dirs)+")")
	}
	if len(parts) == 0 {
		return "nothing was left"
	}
	return "removed " + strings.Join(parts, ", ")
}

func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func listSome(names []string) string {
	if len(names) <= 4 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:4], ", ") + fmt.Sprintf(" and %d more", len(names)-4)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sweepSource is the registry entry of the CNI whose leftovers this run
// sweeps from the nodes: with --remove-old-cni (and not
// --keep-node-leftovers), the CNI whose objects it deletes, or the one an
// interrupted run noted in the migration lock; nil when there is none or
// its entry names nothing to sweep.
func (o Options) sweepSource(ctx context.Context, cl *kube.Clients, c *detect.Cluster, removal *Removal) (*sourcecni.Source, error) {
	if !o.RemoveOldCNI || o.KeepNodeLeftovers {
		return nil, nil
	}
	if o.Lock != nil {
		noted, err := lock.Peek(ctx, cl.Kube, lock.DefaultNamespace, lock.DefaultName, SweepNote)
		if err != nil {
			return nil, cl.Classify(err, "reading the migration lock")
		}
		if noted != "" {
			src, err := sourcecni.Get(sourcecni.ID(noted))
			if err != nil {
				return nil, errs.Newf(errs.Precondition, "delete the annotation "+SweepNote+" of Lease kube-system/cni-migrate-rollout and run finalize again",
					"the migration lock's note of the nodes to sweep names %q: %v", noted, err)
			}
			if src.Node.Sweep != nil {
				return &src, nil
			}
		}
	}
	if removal.Manual != "" || len(removal.Objects) == 0 || c.CNI == nil {
		return nil, nil
	}
	src, err := sourcecni.For(c.CNI)
	if err != nil || src.Node.Sweep == nil {
		return nil, nil
	}
	return &src, nil
}

// sweep removes what src left on every node once its pods are gone (see
// Sweep) and says what it removed, node by node. It reports whether it
// swept (not in a dry run); a node it could not sweep is an error
// (SweepFailed), the note kept for the next run.
func (o Options) sweep(ctx context.Context, cl *kube.Clients, c *detect.Cluster, ns string, nodes []corev1.Node, removal *Removal, src *sourcecni.Source,
	notes Notes, prefix string, clientDry, serverDry bool, say func(string, ...any)) (bool, error) {
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	what := fmt.Sprintf("what %s left on the %s", src.Name, countOf(len(names), "node", "nodes"))
	if clientDry {
		say("%swould remove %s (its interfaces, routes, iptables chains and ipsets, CNI files and state directories) with a Job %s per node", prefix, what, SweepName("NODE"))
		return false, nil
	}
	ds, err := cl.Kube.AppsV1().DaemonSets(ns).Get(ctx, c.Cilium.DaemonSet, metav1.GetOptions{})
	if err != nil {
		return false, cl.Classify(err, "reading DaemonSet "+ns+"/"+c.Cilium.DaemonSet)
	}
	image, confDir := AgentImage(ds)
	if image == "" {
		return false, errs.Newf(errs.Precondition, "check kubectl -n "+ns+" get ds "+ds.Name+", or pass --keep-node-leftovers",
			"DaemonSet %s/%s has no cilium-agent container to take the sweep's image from", ns, ds.Name)
	}
	// The old CNI's agents must be gone first, or they put it all back.
	for _, obj := range removal.Objects {
		if obj.Kind != "DaemonSet" || serverDry {
			continue
		}
		if err := waitPodsGone(ctx, cl.Kube, obj.Namespace, obj.Name, o.Timeout); err != nil {
			return false, cl.Classify(err, "waiting for the pods of DaemonSet "+obj.Namespace+"/"+obj.Name+" to go")
		}
	}
	say("%sremoving %s (a Job %s per node in %s, image %s):", prefix, what, SweepName("NODE"), ns, image)
	results, err := Sweep(ctx, cl.Kube, ns, image, confDir, names, *src.Node.Sweep, o.Timeout, serverDry)
	if err != nil {
		return false, cl.Classify(err, "sweeping the nodes")
	}
	if serverDry {
		return false, nil
	}
	var bad []string
	for _, r := range results {
		line := r.Summary()
		if r.Unread {
			line = "its Job succeeded, but " + r.Err
			r.Err = ""
		}
		if len(r.Failed) > 0 {
			line += "; could not remove " + listSome(r.Failed)
		}
		if r.Err != "" {
			line += "; " + r.Err
		}
		say("  %s: %s", r.Node, line)
		if len(r.Failed) > 0 || r.Err != "" {
			bad = append(bad, r.Node)
		}
	}
	if len(bad) > 0 {
		return false, errs.Newf(errs.SweepFailed,
			fmt.Sprintf("run finalize --remove-old-cni again (kubectl -n %s logs job/%s says what failed), or on the node, as root: %s", ns, SweepName(bad[0]), src.Node.ByHand),
			"what %s left on %s could not all be removed", src.Name, strings.Join(bad, ", "))
	}
	if notes != nil {
		if err := notes.Note(ctx, SweepNote, ""); err != nil {
			return false, cl.Classify(err, "updating the migration lock")
		}
	}
	return true, nil
}

// AgentImage is the image of the DaemonSet's cilium-agent container and the
// node's CNI directory it mounts (volume etc-cni-netd; /etc/cni/net.d when
// there is none).
func AgentImage(ds *appsv1.DaemonSet) (image, confDir string) {
	confDir = "/etc/cni/net.d"
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == "etc-cni-netd" && v.HostPath != nil && v.HostPath.Path != "" {
			confDir = v.HostPath.Path
		}
	}
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		if ctr.Name == "cilium-agent" {
			return ctr.Image, confDir
		}
	}
	return "", confDir
}

// waitPodsGone waits until no pod of the DaemonSet namespace/name is left
// (its garbage collector deletes them after the DaemonSet).
func waitPodsGone(ctx context.Context, c kubernetes.Interface, namespace, name string, timeout time.Duration) error {
	var left []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		left = left[:0]
		for _, p := range pods.Items {
			for _, or := range p.OwnerReferences {
				if or.Kind == "DaemonSet" && or.Name == name {
					left = append(left, p.Name)
				}
			}
		}
		return len(left) == 0, nil
	})
	if err != nil && ctx.Err() == nil && len(left) > 0 {
		return errs.Newf(errs.SweepFailed, fmt.Sprintf("check kubectl -n %s get pods %s, then run finalize --remove-old-cni again", namespace, strings.Join(left, " ")),
			"the pods of DaemonSet %s/%s are still there %s after it was deleted (%s)", namespace, name, timeout, listSome(left))
	}
	return err
}
