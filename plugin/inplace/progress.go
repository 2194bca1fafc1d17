package inplace

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// markNodes records phase done on each node of the plan that has no pod on
// the old network left, and fills the summary's nodes.
func (r *Restarter) markNodes(ctx context.Context, plan *Plan, s *Summary) error {
	pods, err := r.listPods(ctx)
	if err != nil {
		return err
	}
	old := map[string]int{}
	for i := range pods {
		if onOldNetwork(&pods[i], plan.Pool) {
			old[pods[i].Spec.NodeName]++
		}
	}
	nodes := r.cl.Kube.CoreV1().Nodes()
	var marked []string
	for _, name := range plan.Nodes {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return r.cl.Classify(err, "reading node "+name)
		}
		st, err := migrate.StateOf(n)
		if err != nil {
			return err
		}
		res := NodeResult{Name: name, PhaseBefore: st.Phase, PhaseAfter: st.Phase, OldPods: old[name]}
		if old[name] == 0 && st.Phase != migrate.PhaseDone {
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				migrate.AnnotationPhase:     string(migrate.PhaseDone),
				migrate.AnnotationPhaseTime: r.now().UTC().Format(time.RFC3339),
			}}})
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
			_, err := nodes.Patch(wctx, name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: r.dryRun(), FieldManager: nodeconfig.FieldManager})
			cancel()
			if err != nil {
				return r.cl.Classify(err, "recording the phase of node "+name)
			}
			if !r.opts.DryRun {
				res.PhaseAfter = migrate.PhaseDone
			}
			marked = append(marked, name)
		}
		s.Nodes = append(s.Nodes, res)
	}
	if len(marked) > 0 {
		note := ""
		if r.opts.DryRun {
			note = " (server dry run)"
		}
		r.progress.Printf("recorded phase done on %s %s%s", output.Plural(len(marked), "node", "nodes"), list(marked), note)
	}
	return nil
}

// readProgress returns the namespaces recorded in the progress ConfigMap.
func (r *Restarter) readProgress(ctx context.Context, ns string) (map[string]string, error) {
	cm, err := r.cl.Kube.CoreV1().ConfigMaps(ns).Get(ctx, ProgressConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return map[string]string{}, nil
	case err != nil:
		return nil, r.cl.Classify(err, "reading ConfigMap "+ns+"/"+ProgressConfigMap)
	}
	if cm.Data == nil {
		return map[string]string{}, nil
	}
	return cm.Data, nil
}

// recordProgress writes one namespace into the progress ConfigMap.
func (r *Restarter) recordProgress(ctx context.Context, ns, key, value string) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	cms := r.cl.Kube.CoreV1().ConfigMaps(ns)
	for attempt := 0; ; attempt++ {
		cm, err := cms.Get(wctx, ProgressConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ProgressConfigMap, Namespace: ns,
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "kubectl-cni-migrate"},
				Annotations: map[string]string{"cni-migrate.io/description": "namespaces whose pods kubectl cni-migrate rollout --strategy in-place restarted onto Cilium"}},
				Data: map[string]string{key: value}}
			_, err = cms.Create(wctx, cm, metav1.CreateOptions{DryRun: r.dryRun(), FieldManager: nodeconfig.FieldManager})
		} else if err == nil {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[key] = value
			_, err = cms.Update(wctx, cm, metav1.UpdateOptions{DryRun: r.dryRun(), FieldManager: nodeconfig.FieldManager})
		}
		if err == nil {
			return nil
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		return r.cl.Classify(err, "recording the progress in ConfigMap "+ns+"/"+ProgressConfigMap)
	}
}
