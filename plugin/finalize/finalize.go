// Package finalize ends a dual-overlay migration once every node is done:
// Cilium is upgraded to its final values (by helm, which the user runs or
// the plugin runs with --yes), its agents are restarted, the
// CiliumNodeConfig is deleted, the old CNI's objects are removed on request,
// and the plugin's node labels and annotations are cleaned up.
//
// Each step is detected from the cluster itself, so an interrupted finalize
// is finished by running it again: Helm upgraded (cilium-config
// custom-cni-conf is no longer "true"), CiliumNodeConfig gone, old CNI gone,
// node annotations gone.
package finalize

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// Object is a Kubernetes object finalize deletes.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o Object) String() string {
	if o.Namespace == "" {
		return strings.ToLower(o.Kind) + "/" + o.Name
	}
	return strings.ToLower(o.Kind) + "/" + o.Name + " -n " + o.Namespace
}

// NotDone returns the names of the nodes whose migration is not done (a
// node being rolled back is not), in name order.
func NotDone(nodes []corev1.Node) []string {
	var out []string
	for i := range nodes {
		// A phase this plugin does not know is not done either.
		st, err := migrate.StateOf(&nodes[i])
		if err != nil || st.Phase != migrate.PhaseDone || st.RollingBack() {
			out = append(out, nodes[i].Name)
		}
	}
	sort.Strings(out)
	return out
}

// NotDoneError refuses to finalize while nodes remain.
func NotDoneError(names []string) error {
	shown := names
	if len(shown) > 8 {
		shown = shown[:8]
	}
	more := ""
	if len(names) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(names)-len(shown))
	}
	return errs.Newf(errs.Precondition, "migrate them first: kubectl cni-migrate node "+strings.Join(shown, " "),
		"%d %s not migrated yet: %s%s", len(names), output.Plural(len(names), "node is", "nodes are"), strings.Join(shown, ", "), more)
}

// Upgraded reports whether Cilium runs with its final values: the Helm
// upgrade turned custom-cni-conf off (dual-overlay) and, as the in-place
// method runs with it off from the start, turned the operator's
// unmanaged-pod watcher back on (off while any migration runs:
// values-initial.yaml), or policy enforcement on, or audit mode off.
func Upgraded(ctx context.Context, c kubernetes.Interface, ns string) (bool, error) {
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "cilium-config", metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	d := cm.Data
	if d["custom-cni-conf"] == "true" {
		return false, nil
	}
	watcher := d["unmanaged-pod-watcher-interval"]
	if watcher != "0" && watcher != "0s" {
		return true, nil
	}
	// The watcher off, and Cilium's policies off or audited, as
	// values-initial.yaml sets them; with the policy bridge they are in
	// force from the install, and the in-place method's progress ConfigMap
	// (deleted once the agents run the final values) tells.
	if d["enable-policy"] == "never" || d["policy-audit-mode"] == "true" {
		return false, nil
	}
	inPlace, err := InPlaceProgressExists(ctx, c, ns)
	return !inPlace, err
}

// InPlaceProgress is the ConfigMap in which `rollout --strategy in-place`
// records its progress (plugin/inplace); finalize deletes it with the
// CiliumNodeConfig's role: once it is gone, the agents were restarted with
// the final values.
const InPlaceProgress = "cni-migrate-in-place"

// InPlaceProgressExists reports whether that ConfigMap exists in ns.
func InPlaceProgressExists(ctx context.Context, c kubernetes.Interface, ns string) (bool, error) {
	_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, InPlaceProgress, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// DeleteInPlaceProgress deletes that ConfigMap (gone already is fine).
func DeleteInPlaceProgress(ctx context.Context, c kubernetes.Interface, ns string, dryRun bool) error {
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err := c.CoreV1().ConfigMaps(ns).Delete(ctx, InPlaceProgress, opts)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// HelmUpgradeArgs is the helm command that applies the final values.
func HelmUpgradeArgs(release, chart, version, ns, valuesFile string) []string {
	return []string{"helm", "upgrade", release, chart, "--version", version, "--namespace", ns, "--values", valuesFile, "--wait"}
}

// RestartAgents restarts the Cilium DaemonSet the way `kubectl rollout
// restart` does and waits, by watching, until the rollout is complete.
func RestartAgents(ctx context.Context, c kubernetes.Interface, ns, name string, timeout time.Duration, dryRun bool, now time.Time) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, now.UTC().Format(time.RFC3339))
	opts := metav1.PatchOptions{FieldManager: nodeconfig.FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ds, err := c.AppsV1().DaemonSets(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), opts)
	if err != nil || dryRun {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := c.AppsV1().DaemonSets(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: ds.ResourceVersion,
	})
	if err != nil {
		return err
	}
	defer w.Stop()
	if RolledOut(ds) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return errs.Newf(errs.AgentNotReady, fmt.Sprintf("check the agents: kubectl -n %s get pods -l k8s-app=cilium, then run finalize again", ns),
					"DaemonSet %s/%s did not finish restarting within %s", ns, name, timeout)
			}
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch of DaemonSet %s/%s ended", ns, name)
			}
			if ev.Type == watch.Error {
				return apierrors.FromObject(ev.Object)
			}
			if d, ok := ev.Object.(*appsv1.DaemonSet); ok && RolledOut(d) {
				return nil
			}
		}
	}
}

// RolledOut is `kubectl rollout status`'s test for a DaemonSet.
func RolledOut(d *appsv1.DaemonSet) bool {
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedNumberScheduled == s.DesiredNumberScheduled && s.NumberAvailable == s.DesiredNumberScheduled
}

// NodeConfigAPIVersion picks the apiVersion to reach CiliumNodeConfigs
// through: cilium.io/v2 when served, else v2alpha1, else "" (no CRD). The
// same objects are visible through every served version, and asking for a
// deprecated one only earns a warning.
func NodeConfigAPIVersion(served []string) string {
	for _, want := range []string{"cilium.io/v2", "cilium.io/v2alpha1"} {
		for _, s := range served {
			if s == want {
				return want
			}
		}
	}
	return ""
}

// NodeConfigExists reports whether the CiliumNodeConfig exists; apiVersion
// "" (no CRD) means it does not.
func NodeConfigExists(ctx context.Context, dyn dynamic.Interface, apiVersion, ns, name string) (bool, error) {
	if apiVersion == "" {
		return false, nil
	}
	_, err := dyn.Resource(nodeconfig.GVR(apiVersion)).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, err
}

// DeleteNodeConfig deletes the CiliumNodeConfig. It returns whether one
// existed.
func DeleteNodeConfig(ctx context.Context, dyn dynamic.Interface, apiVersion, ns, name string, dryRun bool) (bool, error) {
	if apiVersion == "" {
		return false, nil
	}
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err := dyn.Resource(nodeconfig.GVR(apiVersion)).Namespace(ns).Delete(ctx, name, opts)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, err
}

// StatePatch is the merge patch that removes the plugin's labels and
// annotations from a node, or nil when it has none.
func StatePatch(n *corev1.Node, labelKey string) []byte {
	var parts []string
	for _, a := range migrate.Annotations() {
		if _, ok := n.Annotations[a]; ok {
			parts = append(parts, fmt.Sprintf("%q:null", a))
		}
	}
	var patch []string
	if len(parts) > 0 {
		patch = append(patch, `"annotations":{`+strings.Join(parts, ",")+`}`)
	}
	if _, ok := n.Labels[labelKey]; ok && labelKey != "" {
		patch = append(patch, fmt.Sprintf(`"labels":{%q:null}`, labelKey))
	}
	if len(patch) == 0 {
		return nil
	}
	return []byte(`{"metadata":{` + strings.Join(patch, ",") + `}}`)
}

// CleanNodes removes the plugin's labels and annotations from every node
// that has them, one patch per such node, and returns their names.
func CleanNodes(ctx context.Context, c kubernetes.Interface, nodes []corev1.Node, labelKey string, dryRun bool) ([]string, error) {
	opts := metav1.PatchOptions{FieldManager: nodeconfig.FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var cleaned []string
	for i := range nodes {
		p := StatePatch(&nodes[i], labelKey)
		if p == nil {
			continue
		}
		if _, err := c.CoreV1().Nodes().Patch(ctx, nodes[i].Name, types.MergePatchType, p, opts); err != nil && !apierrors.IsNotFound(err) {
			return cleaned, fmt.Errorf("cleaning node %s: %w", nodes[i].Name, err)
		}
		cleaned = append(cleaned, nodes[i].Name)
	}
	return cleaned, nil
}
