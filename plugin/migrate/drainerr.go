package migrate

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// maxListed bounds the pods or budgets named in one error line.
const maxListed = 4

// BlockingPDBs returns the PodDisruptionBudgets that select at least one of
// pods (same namespace, selector matches), each with the pods it selects,
// sorted by namespace/name.
func BlockingPDBs(pods []corev1.Pod, pdbs []policyv1.PodDisruptionBudget) []BlockingPDB {
	var out []BlockingPDB
	for i := range pdbs {
		pdb := &pdbs[i]
		if pdb.Spec.Selector == nil {
			continue
		}
		// In policy/v1 a nil selector selects no pod and an empty one
		// every pod of the namespace.
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			continue
		}
		b := BlockingPDB{Namespace: pdb.Namespace, Name: pdb.Name, DisruptionsAllowed: pdb.Status.DisruptionsAllowed}
		for _, p := range pods {
			if p.Namespace == pdb.Namespace && sel.Matches(labels.Set(p.Labels)) {
				b.Pods = append(b.Pods, p.Namespace+"/"+p.Name)
			}
		}
		if len(b.Pods) > 0 {
			sort.Strings(b.Pods)
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

// BlockingPDB is a PodDisruptionBudget and the pods left on a node that it
// selects.
type BlockingPDB struct {
	Namespace, Name    string
	DisruptionsAllowed int32
	Pods               []string
}

// DrainBlockedError is the error of a drain that did not finish within
// timeout: it names the budgets that hold the remaining pods and the pods.
// remaining are the pods still on the node that the drain had to move.
func DrainBlockedError(node string, timeout time.Duration, remaining []corev1.Pod, pdbs []BlockingPDB) error {
	var names []string
	for _, p := range remaining {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	covered := map[string]bool{}
	var budgets []string
	for _, b := range pdbs {
		for _, p := range b.Pods {
			covered[p] = true
		}
		budgets = append(budgets, fmt.Sprintf("PodDisruptionBudget %s/%s (%d %s allowed) holds %s",
			b.Namespace, b.Name, b.DisruptionsAllowed, output.Plural(int(b.DisruptionsAllowed), "disruption", "disruptions"), list(b.Pods)))
	}
	var uncovered []string
	for _, n := range names {
		if !covered[n] {
			uncovered = append(uncovered, n)
		}
	}
	msg := fmt.Sprintf("draining node %s did not finish within %s: %d %s left", node, timeout, len(names), output.Plural(len(names), "pod", "pods"))
	if len(budgets) > 0 {
		msg += "; " + list(budgets)
	}
	if len(uncovered) > 0 {
		msg += fmt.Sprintf("; no budget selects %s (still terminating?)", list(uncovered))
	}
	fix := "the node stays cordoned; "
	switch {
	case len(budgets) > 0:
		var refs []string
		for _, b := range pdbs {
			refs = append(refs, b.Namespace+"/"+b.Name)
		}
		fix += fmt.Sprintf("let %s allow a disruption (scale its workload up or relax it: kubectl -n %s edit pdb %s), then run the same command again",
			list(refs), pdbs[0].Namespace, pdbs[0].Name)
	default:
		fix += "raise --timeout (or lower --grace-period), then run the same command again"
	}
	return errs.New(errs.DrainBlocked, msg, fix)
}

func list(items []string) string { return output.List(items, maxListed) }
