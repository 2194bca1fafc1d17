package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// ReasonRebooting is the reason of the Ready=False condition the reboot
// step gives the pods still on a node (the DaemonSet pods a drain leaves;
// not those on the host's network)
// right before it runs the reboot command, and again once the command has
// returned.
//
// Why: a reboot kills those pods without telling Kubernetes, so their
// Service endpoints stay ready, with the addresses the reboot takes away,
// until the node controller notices the node is gone (its grace period,
// 40-50 s) or the kubelet is back. Every connection to a ClusterIP that
// kube-proxy sends there meanwhile fails, and worse, leaves a conntrack
// entry (SYN_SENT, 120 s) that kube-proxy does not clear for TCP: a client
// that reuses the same source port to the same ClusterIP within those two
// minutes is sent to the dead address again, long after the node came back
// (docs/datapath.md). Marked NotReady first, the pods leave their Services
// while they still answer. The kubelet writes their real status again when
// it starts after the reboot.
const ReasonRebooting = "CNIMigrateReboot"

// readyPodsOn are the pods of the list that Services still send
// connections to and whose address the reboot takes away: Running with
// Ready=True, not being deleted, not on the host's network (a host-network
// pod, such as the Cilium agent, kube-proxy or the old CNI's agent, comes
// back at the node's own address).
func readyPodsOn(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && !p.Spec.HostNetwork && kube.PodReady(&p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// markedPodsOn are the pods of the list whose Ready condition is the one
// markNotReady wrote (not yet replaced by the kubelet).
func markedPodsOn(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && c.Reason == ReasonRebooting {
				out = append(out, p)
			}
		}
	}
	return out
}

// readyPatch is the strategic merge patch of a pod's status that sets its
// Ready condition (conditions merge on their type).
func readyPatch(status corev1.ConditionStatus, reason, message string, now time.Time) ([]byte, error) {
	cond := map[string]any{
		"type":               string(corev1.PodReady),
		"status":             string(status),
		"lastTransitionTime": now.UTC().Format(time.RFC3339),
		"reason":             reason,
		"message":            message,
	}
	if reason == "" {
		cond["reason"], cond["message"] = nil, nil
	}
	return json.Marshal(map[string]any{"status": map[string]any{"conditions": []any{cond}}})
}

// podsOn lists the pods bound to the node.
func (m *Migrator) podsOn(ctx context.Context, node string) ([]corev1.Pod, error) {
	l, err := m.cl.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// patchReady sets the Ready condition of each pod (readyPatch) and returns
// the pods it could not patch, with the last error.
func (m *Migrator) patchReady(ctx context.Context, pods []corev1.Pod, status corev1.ConditionStatus, reason, message string) ([]string, error) {
	patch, err := readyPatch(status, reason, message, time.Now())
	if err != nil {
		return nil, err
	}
	var failed []string
	var lastErr error
	for _, p := range pods {
		wctx, cancel := writeCtx(ctx)
		_, err := m.cl.Kube.CoreV1().Pods(p.Namespace).Patch(wctx, p.Name, types.StrategicMergePatchType, patch,
			metav1.PatchOptions{FieldManager: nodeconfig.FieldManager}, "status")
		cancel()
		if err != nil {
			failed = append(failed, p.Namespace+"/"+p.Name)
			lastErr = err
		}
	}
	return failed, lastErr
}

// markNotReady gives the ready pods on the node a Ready=False condition
// (ReasonRebooting) and says so on the progress stream. It never fails the
// step: a pod it cannot mark only stays in its Services until Kubernetes
// sees the node down, as without it; that is reported.
func (m *Migrator) markNotReady(ctx context.Context, node string) {
	pods, err := m.podsOn(ctx, node)
	if err != nil {
		m.progress.Printf("warning: could not list the pods on %s to take them out of their Services before the reboot: %s", node, errs.OneLine(err.Error()))
		return
	}
	ready := readyPodsOn(pods)
	if len(ready) == 0 {
		return
	}
	failed, lastErr := m.patchReady(ctx, ready, corev1.ConditionFalse, ReasonRebooting, "kubectl cni-migrate reboots node "+node)
	if len(failed) == 0 && lastErr != nil { // the patch itself could not be built
		m.progress.Printf("warning: %v", lastErr)
		return
	}
	if n := len(ready) - len(failed); n > 0 {
		them, theirs := "them", "their addresses"
		if n == 1 {
			them, theirs = "it", "its address"
		}
		m.progress.Printf("marked %s NotReady on %s, so Services stop sending new connections to %s before the reboot takes %s",
			output.Plural(n, "1 pod", fmt.Sprintf("%d pods", n)), node, them, theirs)
	}
	if len(failed) > 0 {
		m.progress.Printf("warning: could not mark %s NotReady (%s): %s; Services send them new connections until Kubernetes sees the node down (grant patch on pods/status, see docs/rbac.yaml)",
			output.Plural(len(failed), "1 pod", fmt.Sprintf("%d pods", len(failed))), list(failed), errs.OneLine(lastErr.Error()))
	}
}

// remarkNotReady marks the pods again once the reboot command has
// returned, unless the node is already back (another bootID than the one
// recorded): then its kubelet owns the pods' status again.
func (m *Migrator) remarkNotReady(ctx context.Context, node, bootID string) {
	n, err := m.cl.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil || n.Status.NodeInfo.BootID != bootID {
		return
	}
	m.markNotReady(ctx, node)
}

// unmarkNotReady undoes markNotReady on a node that was not rebooted after
// all (the reboot command could not run): the pods it marked, and whose
// condition no kubelet replaced since, are Ready again.
func (m *Migrator) unmarkNotReady(ctx context.Context, node string) {
	if pods, err := m.podsOn(ctx, node); err == nil {
		_, _ = m.patchReady(ctx, markedPodsOn(pods), corev1.ConditionTrue, "", "")
	}
}
