package migrate

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func pod(ns, name string, lbls map[string]string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls}}
}

func pdb(ns, name string, sel *metav1.LabelSelector, allowed int32) policyv1.PodDisruptionBudget {
	return policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: sel},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}

func TestDrainBlockedError(t *testing.T) {
	payments := map[string]string{"app": "payments"}
	remaining := []corev1.Pod{
		pod("demo", "payments-7f9-b", payments),
		pod("demo", "payments-7f9-a", payments),
		pod("demo", "slow-1", map[string]string{"app": "slow"}),
		pod("other", "payments-x", payments),
	}
	pdbs := []policyv1.PodDisruptionBudget{
		pdb("demo", "payments", &metav1.LabelSelector{MatchLabels: payments}, 0),
		pdb("demo", "web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, 1),
		pdb("demo", "nil-selector", nil, 0),
		pdb("other", "all", &metav1.LabelSelector{}, 1),
	}
	blocking := BlockingPDBs(remaining, pdbs)
	if len(blocking) != 2 || blocking[0].Name != "payments" || blocking[1].Name != "all" {
		t.Fatalf("BlockingPDBs = %+v", blocking)
	}
	if got := strings.Join(blocking[0].Pods, ","); got != "demo/payments-7f9-a,demo/payments-7f9-b" {
		t.Errorf("payments pods %s", got)
	}

	for _, tc := range []struct {
		name      string
		remaining []corev1.Pod
		blocking  []BlockingPDB
		want      string
	}{
		{
			name:      "pdb",
			remaining: remaining[:2],
			blocking:  BlockingPDBs(remaining[:2], pdbs),
			want: "draining node worker-1 did not finish within 30s: 2 pods left; PodDisruptionBudget demo/payments (0 disruptions allowed) holds demo/payments-7f9-a, demo/payments-7f9-b; " +
				"the node stays cordoned; let demo/payments allow a disruption (scale its workload up or relax it: kubectl -n demo edit pdb payments), then run the same command again",
		},
		{
			name:      "pdb and a terminating pod",
			remaining: remaining[:3],
			blocking:  BlockingPDBs(remaining[:3], pdbs),
			want: "draining node worker-1 did not finish within 30s: 3 pods left; PodDisruptionBudget demo/payments (0 disruptions allowed) holds demo/payments-7f9-a, demo/payments-7f9-b; no budget selects demo/slow-1 (still terminating?); " +
				"the node stays cordoned; let demo/payments allow a disruption (scale its workload up or relax it: kubectl -n demo edit pdb payments), then run the same command again",
		},
		{
			name:      "no pdb",
			remaining: remaining[2:3],
			want: "draining node worker-1 did not finish within 30s: 1 pod left; no budget selects demo/slow-1 (still terminating?); " +
				"the node stays cordoned; raise --timeout (or lower --grace-period), then run the same command again",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := DrainBlockedError("worker-1", 30*time.Second, tc.remaining, tc.blocking)
			if errs.Code(err) != errs.DrainBlocked {
				t.Errorf("code %d", errs.Code(err))
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Error("not one line")
			}
		})
	}

	// Many pods are cut short.
	var many []corev1.Pod
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		many = append(many, pod("demo", "payments-"+n, payments))
	}
	err := DrainBlockedError("w", time.Minute, many, BlockingPDBs(many, pdbs))
	if !strings.Contains(err.Error(), "demo/payments-d and 2 more") {
		t.Errorf("long list: %v", err)
	}
}
