package rollout

import (
	"context"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/access"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/calicopolicy"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/policybridge"
)

// translatedNeeds are the permissions of removing the policies translated
// from Calico's and the policy bridge (in Cilium's namespace ns).
func translatedNeeds(ns string) []access.Need {
	var out []access.Need
	for _, r := range []string{"ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"} {
		for _, v := range []string{"list", "delete"} {
			out = append(out, access.Need{Group: "cilium.io", Resource: r, Verb: v,
				Why: "remove the policies translated from Calico's when a rollback leaves no node on Cilium"})
		}
	}
	return append(out, policybridge.UndeployNeeds(ns, "remove the policy bridge when a rollback leaves no node on Cilium")...)
}

// translatedToRemove says whether rolling back names leaves no node on
// Cilium while policies translated from Calico's or the policy bridge
// exist: then the rollback removes them at its end (they are for a cluster
// moving to Cilium; `calico-policies --apply` and `policy-bridge --deploy`
// write them again). It checks the permission to do so before the rollback
// begins.
func translatedToRemove(ctx context.Context, cl *kube.Clients, names []string, label, ns string) (bool, error) {
	translated, err := calicopolicy.Translated(ctx, cl.Dynamic)
	if err != nil {
		return false, cl.Classify(err, "listing the policies translated from Calico's")
	}
	bridge, err := policybridge.Deployed(ctx, cl.Dynamic, ns)
	if err != nil {
		return false, cl.Classify(err, "looking for the policy bridge")
	}
	if len(translated) == 0 && !bridge {
		return false, nil
	}
	left, err := onCilium(ctx, cl, label, names)
	if err != nil || len(left) > 0 {
		return false, err
	}
	if err := access.Require(ctx, cl.Kube, translatedNeeds(ns), "kubectl cni-migrate rollback",
		"apply docs/rbac.yaml and bind it to your user, or delete them yourself after the rollback (kubectl cni-migrate calico-policies --delete, policy-bridge --undeploy)"); err != nil {
		return false, cl.Classify(err, "checking permissions")
	}
	return true, nil
}

// onCilium lists the nodes, other than those in except, that the migration
// has begun or finished: the migration label or a phase.
func onCilium(ctx context.Context, cl *kube.Clients, label string, except []string) ([]string, error) {
	key, _, err := nodeconfig.ParseLabel(label)
	if err != nil {
		return nil, err
	}
	nodes, err := cl.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cl.Classify(err, "listing nodes")
	}
	skip := map[string]bool{}
	for _, n := range except {
		skip[n] = true
	}
	var out []string
	for _, n := range nodes.Items {
		_, labelled := n.Labels[key]
		if !skip[n.Name] && (labelled || n.Annotations[migrate.AnnotationPhase] != "") {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// removeTranslated deletes the translated policies once no node is on
// Cilium any more, and says so on out. A server dry run changed no node:
// the nodes rolled back (names) count as off Cilium.
func removeTranslated(ctx context.Context, cl *kube.Clients, label, ns string, names []string, dryRun bool, out io.Writer) error {
	var except []string
	if dryRun {
		except = names
	}
	left, err := onCilium(ctx, cl, label, except)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		fmt.Fprintf(out, "kept the policies translated from Calico's: %s still on Cilium\n", strings.Join(left, ", "))
		return nil
	}
	bridge, err := policybridge.Undeploy(ctx, cl.Dynamic, ns, dryRun)
	if len(bridge) > 0 {
		fmt.Fprintf(out, "no node is on Cilium any more: removed the policy bridge: %s\n", strings.Join(bridge, ", "))
	}
	if err != nil {
		return cl.Classify(err, "removing the policy bridge")
	}
	gone, err := calicopolicy.Delete(ctx, cl.Dynamic, dryRun)
	if len(gone) > 0 {
		suffix := ""
		if dryRun {
			suffix = " (server dry run)"
		}
		fmt.Fprintf(out, "no node is on Cilium any more: deleted the policies translated from Calico's%s: %s\n", suffix, strings.Join(gone, ", "))
	}
	if err != nil {
		return cl.Classify(err, "deleting the policies translated from Calico's")
	}
	return nil
}
