package connectivity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Runner runs one round of checks (Round, or a test's script).
type Runner interface {
	Run(ctx context.Context) ([]Probe, []string, []Result, error)
}

// Monitor runs rounds at an interval and keeps their history.
type Monitor struct {
	Round    Runner
	Tracker  *Tracker
	Interval time.Duration
	// OnRound, when set, sees every matrix (the command prints it).
	OnRound func(Matrix)
	// Save, when set, stores every matrix (for status).
	Save func(context.Context, Matrix) error
	// Fresh says the probes were just deployed or just became ready
	// (First gives the Services time to route to them).
	Fresh bool
}

// Warmup is how long First repeats a failing round of fresh probes.
const Warmup = 30 * time.Second

// First runs one round. When the probes are fresh, a failing round is
// repeated every Interval until it is green or warmup has passed: the
// probe Service's endpoints reach kube-proxy (or Cilium) on every node, and
// DNS, a moment after the pods became ready, and until then a node answers
// "connection refused" for the Service, which is not a broken path. Only
// the last matrix goes to OnRound.
func (m *Monitor) First(ctx context.Context, warmup time.Duration) (Matrix, error) {
	show := m.OnRound
	m.OnRound = nil
	defer func() { m.OnRound = show }()
	start := time.Now()
	for {
		mx, err := m.Once(ctx)
		if err != nil {
			return mx, err
		}
		if mx.Green || !m.Fresh || time.Since(start)+m.Interval > warmup {
			if show != nil {
				show(mx)
			}
			return mx, nil
		}
		select {
		case <-ctx.Done():
			if show != nil {
				show(mx)
			}
			return mx, nil
		case <-time.After(m.Interval):
		}
	}
}

// Once runs one round and observes it.
func (m *Monitor) Once(ctx context.Context) (Matrix, error) {
	probes, nodes, results, err := m.Round.Run(ctx)
	if err != nil {
		return Matrix{}, err
	}
	mx := m.Tracker.Observe(time.Now(), probes, nodes, results)
	if m.OnRound != nil {
		m.OnRound(mx)
	}
	if m.Save != nil {
		if err := m.Save(ctx, mx); err != nil {
			return mx, err
		}
	}
	return mx, nil
}

// Gate runs rounds until the matrix has been green for settle (nil error),
// or returns a ConnectivityFailed error naming the failing checks when it
// is not within timeout. what names the gate's place ("after batch 2/5").
func (m *Monitor) Gate(ctx context.Context, what string, settle, timeout time.Duration) (Matrix, error) {
	deadline := time.Now().Add(timeout)
	var last Matrix
	for {
		mx, err := m.Once(ctx)
		if err != nil {
			return mx, err
		}
		last = mx
		if mx.GreenFor(settle) {
			return mx, nil
		}
		if time.Now().Add(m.Interval).After(deadline) {
			return last, GateError(last, what, settle, timeout)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(m.Interval):
		}
	}
}

// GateError is the one-line error of a gate that did not turn green.
func GateError(m Matrix, what string, settle, timeout time.Duration) error {
	var why []string
	for i, f := range m.Failures {
		if i == 3 {
			why = append(why, fmt.Sprintf("and %d more", len(m.Failures)-3))
			break
		}
		why = append(why, f.String())
	}
	if len(m.Missing) > 0 {
		why = append(why, "no ready probe on "+strings.Join(m.Missing, ", "))
	}
	if len(why) == 0 {
		why = append(why, fmt.Sprintf("green only since %s", m.GreenSince.UTC().Format(time.TimeOnly)))
	}
	return errs.Newf(errs.ConnectivityFailed, "see kubectl cni-migrate connectivity for the whole matrix, fix the failing path, then run the same command again",
		"connectivity gate %s: not green for %s within %s: %s", what, settle, timeout, strings.Join(why, "; "))
}

// Save stores a matrix (without its results) in the ConfigMap Name of
// namespace, where status reads it.
func Save(ctx context.Context, c kubernetes.Interface, namespace string, m Matrix) error {
	m.Results = nil
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	cms := c.CoreV1().ConfigMaps(namespace)
	cm, err := cms.Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: namespace, Labels: podLabels()}, Data: map[string]string{ResultKey: string(b)}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[ResultKey] = string(b)
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// Latest reads the matrix Save stored; nil when there is none.
func Latest(ctx context.Context, c kubernetes.Interface, namespace string) (*Matrix, error) {
	cm, err := c.CoreV1().ConfigMaps(namespace).Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	raw, ok := cm.Data[ResultKey]
	if !ok {
		return nil, nil
	}
	var m Matrix
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %s is not a matrix: %w", namespace, Name, ResultKey, err)
	}
	return &m, nil
}
