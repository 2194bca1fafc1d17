package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

// DefaultProbeImage has sh and curl.
const DefaultProbeImage = "curlimages/curl:8.11.1"

// Probe labels.
const (
	// ComponentLabel marks the plugin's probe Jobs and their pods
	// (value ProbeComponent), beside nodeconfig.ManagedByLabel.
	ComponentLabel = "app.kubernetes.io/component"
	ProbeComponent = "cni-migrate-probe"
	// JobNameLabel is set on a Job's pods by the Job controller.
	JobNameLabel = "job-name"
)

// ProbeScript is what the probe container runs: print the pod's
// addresses, then reach the API server through its Service address (any
// HTTP answer proves the pod network, the service path and the tunnel).
// With OLD_NETWORK_ADDR set (OldNetworkEnv: another node's tunnel
// interface of the old CNI) it then retries, once a second, until that
// address answers on the kubelet's port (any answer, a refused connection
// included, proves the path): the old CNI's overlay on this node is back
// after the reboot, which is how this node's pods reach the pods still on
// the old network.
const ProbeScript = `ip -br addr 2>/dev/null || true
curl -sSk --max-time 10 "https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/healthz" || exit
echo
[ -n "${OLD_NETWORK_ADDR:-}" ] || exit 0
until out=$(curl -sSk --connect-timeout 2 --max-time 4 -o /dev/null "https://${OLD_NETWORK_ADDR}:10250/healthz" 2>&1) || case "$out" in *refused*) true ;; *) false ;; esac; do
  echo "old network: ${OLD_NETWORK_ADDR}: $out"
  sleep 1
done
echo "old network: reached ${OLD_NETWORK_ADDR}"`

// OldNetworkEnv names the probe container's variable that holds the old
// network's address to reach (see ProbeScript).
const OldNetworkEnv = "OLD_NETWORK_ADDR"

// ProbeName is the name of the probe Job of a node: fixed per node, so a
// re-run finds and replaces what an interrupted run left, and short enough
// for the job-name label (63 characters).
func ProbeName(node string) string { return NodeJobName("cni-migrate-probe-", node) }

// NodeJobName is prefix+node, shortened to fit a label value (63
// characters) with a hash of the node's name when it is too long.
func NodeJobName(prefix, node string) string {
	if len(prefix)+len(node) <= 63 {
		return prefix + node
	}
	sum := sha256.Sum256([]byte(node))
	head := strings.TrimRight(node[:63-len(prefix)-9], ".-")
	return prefix + head + "-" + hex.EncodeToString(sum[:])[:8]
}

// ProbeJob returns the Job whose single pod verifies a migrated node (a
// NodeJob); oldNetwork is the old network's address it must reach too
// ("" for none).
func ProbeJob(namespace, node, image string, timeout time.Duration, oldNetwork string) *batchv1.Job {
	lbls := map[string]string{nodeconfig.ManagedByLabel: nodeconfig.ManagedByValue, ComponentLabel: ProbeComponent}
	c := corev1.Container{
		Name:    "probe",
		Image:   image,
		Command: []string{"sh", "-c", ProbeScript},
	}
	if oldNetwork != "" {
		c.Env = []corev1.EnvVar{{Name: OldNetworkEnv, Value: oldNetwork}}
	}
	return NodeJob(ProbeName(node), namespace, node, lbls, map[string]string{AnnotationPrefix + "probe-node": node}, timeout,
		corev1.PodSpec{Containers: []corev1.Container{c}})
}

// NodeJob is a Job of one pod with spec on node: pinned to it (nodeName,
// so neither the scheduler nor a cordon stand in the way), every taint
// tolerated, no service account token, never restarted, given up after
// timeout, and garbage-collected ten minutes after it ended even if the
// plugin is gone.
func NodeJob(name, namespace, node string, lbls, annotations map[string]string, timeout time.Duration, spec corev1.PodSpec) *batchv1.Job {
	deadline := max(int64(timeout.Seconds()), 1)
	spec.NodeName = node
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	spec.AutomountServiceAccountToken = ptr(false)
	spec.TerminationGracePeriodSeconds = ptr(int64(1))
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: lbls, Annotations: annotations},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(int32(0)),
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: ptr(int32(600)),
			Template:                corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: spec},
		},
	}
}

// InPool reports whether ip is inside one of the prefixes.
func InPool(ip string, pool []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, p := range pool {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// ParsePool parses cilium-config's cluster-pool-ipv4-cidr (CIDRs separated
// by spaces or commas).
func ParsePool(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, errs.Newf(errs.Precondition, "fix cluster-pool-ipv4-cidr in the cilium-config ConfigMap (ipam.operator.clusterPoolIPv4PodCIDRList in the Helm values)",
				"Cilium's pod CIDR %q is not a CIDR", c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func poolString(pool []netip.Prefix) string {
	var s []string
	for _, p := range pool {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// probeFailure describes why a finished probe pod failed.
func probeFailure(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			s := fmt.Sprintf("exit code %d", t.ExitCode)
			if t.Reason != "" && t.Reason != "Error" {
				s += " (" + t.Reason + ")"
			}
			if m := strings.TrimSpace(t.Message); m != "" {
				s += ": " + errs.OneLine(m)
			}
			return s
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason + " " + errs.OneLine(w.Message)
		}
	}
	if p.Status.Reason != "" {
		return p.Status.Reason + " " + errs.OneLine(p.Status.Message)
	}
	return string(p.Status.Phase)
}

func ptr[T any](v T) *T { return &v }
