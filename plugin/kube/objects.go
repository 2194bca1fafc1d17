package kube

import corev1 "k8s.io/api/core/v1"

// Node role labels: either marks a control-plane node.
const (
	LabelControlPlane = "node-role.kubernetes.io/control-plane"
	LabelMaster       = "node-role.kubernetes.io/master"
)

// IsControlPlane reports a node labelled as a control-plane node (the
// current label or the old master one).
func IsControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels[LabelControlPlane]
	_, master := n.Labels[LabelMaster]
	return cp || master
}

// PodReady reports a running pod whose Ready condition is true.
func PodReady(p *corev1.Pod) bool {
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
