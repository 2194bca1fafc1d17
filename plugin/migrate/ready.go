package migrate

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// readyText says how a node's Ready condition stands: "Ready=False since
// 12:00:01 (KubeletNotReady: ...)", or "no Ready condition".
func readyText(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		s := fmt.Sprintf("Ready=%s since %s", c.Status, c.LastTransitionTime.UTC().Format(time.TimeOnly))
		why := c.Reason
		if c.Message != "" {
			why = strings.TrimPrefix(why+": "+errs.OneLine(c.Message), ": ")
		}
		if why != "" {
			s += " (" + why + ")"
		}
		return s
	}
	return "no Ready condition"
}

// waitNodeReady returns the node at once when it is Ready; for a node that is not
// (its Ready changed in the middle of the migration: the kubelet stopped,
// the node lost its network) it says so and watches the node until it is
// Ready again, for up to timeout, and returns it then. The node stays cordoned meanwhile and
// after a timeout, with its phase recorded, so that the same command run
// again goes on from here.
func (m *Migrator) waitNodeReady(ctx context.Context, name string, timeout time.Duration) (*corev1.Node, error) {
	n, _, err := m.getNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if nodeReady(n) {
		return n, nil
	}
	m.progress.Printf("node %s is not Ready (%s): waiting up to %s for it before verifying", name, readyText(n), timeout)
	start := m.now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last, err := m.watchNode(wctx, name, nodeReady)
	if last == nil {
		last = n
	}
	switch {
	case err == nil:
		m.progress.Printf("node %s is Ready again after %s", name, m.now().Sub(start).Round(100*time.Millisecond))
		return last, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		return nil, errs.Newf(errs.VerificationFailed,
			fmt.Sprintf("check the node's kubelet (kubectl describe node %s), then run the same command again; the node stays cordoned", name),
			"node %s is not Ready after %s (%s): not verifying it", name, timeout, readyText(last))
	}
	return nil, m.cl.Classify(err, "watching node "+name)
}

// stillReady checks, once the probe passed, that the node is Ready yet: a
// node whose Ready went away while it was being verified is not verified.
func (m *Migrator) stillReady(ctx context.Context, name string) error {
	n, _, err := m.getNode(ctx, name)
	if err != nil {
		return err
	}
	if nodeReady(n) {
		return nil
	}
	return errs.Newf(errs.VerificationFailed,
		fmt.Sprintf("check the node's kubelet (kubectl describe node %s), then run the same command again; the node stays cordoned", name),
		"node %s went NotReady while it was verified (%s)", name, readyText(n))
}
