package policybridge

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// State is how far the bridge deployed by Deploy runs: its Deployment's
// pods and its node rules' pods, as their controllers count them.
type State struct {
	// Bridge and Rules are false when the Deployment or the DaemonSet is
	// not in the cluster.
	Bridge, Rules bool
	// BridgeReady of BridgeWant replicas; RulesReady of RulesDesired nodes.
	BridgeReady, BridgeWant, RulesReady, RulesDesired int32
}

// Ready says whether the bridge writes endpoints and every node keeps the
// rules: its replica ready, and the node rules ready on every node the
// DaemonSet wants (at least one).
func (s State) Ready() bool {
	return s.Bridge && s.Rules && s.BridgeWant > 0 && s.BridgeReady >= s.BridgeWant &&
		s.RulesDesired > 0 && s.RulesReady >= s.RulesDesired
}

// String says it for a person, e.g. "bridge 1/1 ready, node rules 2/3
// nodes ready".
func (s State) String() string {
	if !s.Bridge && !s.Rules {
		return "not deployed"
	}
	b := "bridge not deployed"
	if s.Bridge {
		b = fmt.Sprintf("bridge %d/%d ready", s.BridgeReady, s.BridgeWant)
	}
	r := "node rules not deployed"
	if s.Rules {
		r = fmt.Sprintf("node rules ready on %d/%d nodes", s.RulesReady, s.RulesDesired)
	}
	return b + ", " + r
}

// ReadState reads the bridge's Deployment and DaemonSet in Cilium's
// namespace ns. Pods of an older spec, not yet replaced, are not counted.
func ReadState(ctx context.Context, kc kubernetes.Interface, ns string) (State, error) {
	var s State
	d, err := kc.AppsV1().Deployments(ns).Get(ctx, BridgeName, metav1.GetOptions{})
	switch {
	case err == nil:
		s.Bridge, s.BridgeReady, s.BridgeWant = true, d.Status.ReadyReplicas, 1
		if d.Spec.Replicas != nil {
			s.BridgeWant = *d.Spec.Replicas
		}
		s.BridgeReady = current(s.BridgeReady, d.Status.UpdatedReplicas, d.Status.ObservedGeneration, d.Generation)
	case !apierrors.IsNotFound(err):
		return s, fmt.Errorf("reading Deployment %s/%s: %w", ns, BridgeName, err)
	}
	ds, err := kc.AppsV1().DaemonSets(ns).Get(ctx, NodeRulesName, metav1.GetOptions{})
	switch {
	case err == nil:
		s.Rules, s.RulesReady, s.RulesDesired = true, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled
		s.RulesReady = current(s.RulesReady, ds.Status.UpdatedNumberScheduled, ds.Status.ObservedGeneration, ds.Generation)
	case !apierrors.IsNotFound(err):
		return s, fmt.Errorf("reading DaemonSet %s/%s: %w", ns, NodeRulesName, err)
	}
	return s, nil
}

// current counts the ready pods of the spec of generation gen: none while
// the controller has not seen it (observed), at most the updated ones.
func current(ready, updated int32, observed, gen int64) int32 {
	if observed < gen {
		return 0
	}
	return min(ready, updated)
}

// Enforces says whether Cilium's policy enforcement mode (cilium-config
// enable-policy: "default" when unset, "always", "never") applies
// policies, so that the pods still on the old network need the bridge for
// Cilium to know them.
func Enforces(enablePolicy string) bool {
	return enablePolicy != "never"
}
