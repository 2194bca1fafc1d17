package finalize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/sourcecni"
)

// Removal is what `finalize --remove-old-cni` does about the old CNI.
type Removal struct {
	// CNI is the old CNI's name ("" when none was identified).
	CNI string `json:"cni,omitempty"`
	// Objects are the old CNI's own objects, deleted in this order:
	// workloads, their disruption budgets and Services, configuration,
	// RBAC, ServiceAccounts, and the namespace last when nothing else
	// lives there.
	Objects []Object `json:"objects"`
	// Kept are things of the old CNI left alone on purpose, each saying
	// why and how to remove it by hand.
	Kept []string `json:"kept,omitempty"`
	// Manual is set when the plugin deletes nothing: the old CNI must be
	// removed another way; it says which.
	Manual string `json:"manual,omitempty"`
}

// PlanRemoval lists what `finalize --remove-old-cni` deletes for the old
// CNI the cluster was migrated from, by CNI:
//
//   - flannel: its DaemonSet, its ConfigMap, ServiceAccount, the
//     ClusterRoleBindings of that ServiceAccount and the ClusterRoles only
//     they use, and its namespace when nothing else lives there;
//   - canal and a Calico manifest install: the canal or calico-node
//     DaemonSet, calico-kube-controllers (and calico-typha) with their
//     PodDisruptionBudgets and Service, canal-config or calico-config, the
//     ServiceAccounts (calico-cni-plugin too) and their RBAC; Calico's
//     CRDs and IP pools are kept and listed;
//   - a Calico operator install: nothing; Manual says to uninstall through
//     the operator, which owns those objects and would recreate them;
//   - weave: weave-net's DaemonSet, its ConfigMap (the IPAM peer list),
//     ServiceAccount, Role, RoleBinding and cluster RBAC;
//   - kube-router: its DaemonSet, kube-router-cfg, ServiceAccount and RBAC,
//     but not the kube-proxy ConfigMap it mounts for its kubeconfig;
//   - k3s's flannel: nothing (it is built into k3s); Manual says which k3s
//     settings turn it off;
//   - RKE2's packaged Canal or Calico: nothing; Manual says to set RKE2's
//     cni to none, as its helm-controller would re-create the objects.
func PlanRemoval(ctx context.Context, c kubernetes.Interface, cluster *detect.Cluster) (*Removal, error) {
	cni := cluster.CNI
	if cni == nil {
		var seen []string
		for _, s := range cluster.CNIsSeen {
			if s.Name != "cilium" {
				seen = append(seen, s.Name+" ("+s.Object+")")
			}
		}
		if len(seen) == 0 {
			return &Removal{}, nil
		}
		return &Removal{Manual: fmt.Sprintf("the old CNI was not identified (seen: %s): delete its objects by hand once no pod uses it", strings.Join(seen, ", "))}, nil
	}
	r := &Removal{CNI: cni.Name}
	if !cni.Found() {
		r.Manual = fmt.Sprintf("%s was named by %s and not found under its usual names: delete its objects by hand", cni.Name, cni.Override)
		return r, nil
	}
	src, err := sourcecni.For(cni)
	if err != nil {
		return nil, err
	}
	if d := cluster.Distribution; d != nil && d.Name == detect.DistroRKE2 {
		if chart := detect.RKE2Chart(cni); chart != "" {
			r.Manual = rke2Manual(chart)
			return r, nil
		}
	}
	if src.Finalize.Manual != nil {
		r.Manual = src.Finalize.Manual(cni)
		return r, nil
	}
	own := src.Finalize.Owned(cni)
	ds, err := c.AppsV1().DaemonSets(cni.Namespace).Get(ctx, cni.DaemonSet, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return r, nil // removed already
	}
	if err != nil {
		return nil, err
	}
	if src.Finalize.ForeignMount != nil {
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name != cni.ConfigMap {
				r.Kept = append(r.Kept, src.Finalize.ForeignMount(cni.Namespace, v.ConfigMap.Name))
			}
		}
	}
	objs, kept, err := ownedObjects(ctx, c, cni.Namespace, ds, own)
	if err != nil {
		return nil, err
	}
	// An old flannel install's other per-architecture DaemonSets go with
	// the first (they share its ConfigMap and ServiceAccount).
	var arch []Object
	for _, name := range cni.ArchDaemonSets {
		if name == cni.DaemonSet {
			continue
		}
		_, err := c.AppsV1().DaemonSets(cni.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, err
		}
		arch = append(arch, Object{"DaemonSet", cni.Namespace, name})
	}
	if len(arch) > 0 {
		objs = append(append(append([]Object{}, objs[0]), arch...), objs[1:]...)
	}
	r.Objects = objs
	r.Kept = append(r.Kept, kept...)
	return r, nil
}

// rke2Manual: RKE2's packaged CNI belongs to its HelmChart, which RKE2's
// helm-controller re-applies, re-creating whatever is deleted; RKE2's cni
// setting is what removes it (docs.rke2.io, Network Options).
func rke2Manual(chart string) string {
	return fmt.Sprintf("%[1]s was installed by RKE2's HelmChart kube-system/%[1]s, whose helm-controller re-creates what is deleted, so nothing is deleted here. "+
		"Set cni: none in /etc/rancher/rke2/config.yaml on every server node and restart rke2-server on each, one at a time; "+
		"if the HelmChart kube-system/%[1]s is still there afterwards, delete it (helm-controller then uninstalls its release). "+
		"RKE2 does not support changing the CNI of a running cluster: rehearse this on a copy first", chart)
}

// ownedObjects resolves a CNI's own objects (its DaemonSet ds, and own)
// against the cluster: the objects
// that exist, the RBAC bound only to their ServiceAccounts, and the
// namespace when it holds nothing else.
func ownedObjects(ctx context.Context, c kubernetes.Interface, ns string, ds *appsv1.DaemonSet, own sourcecni.Owned) ([]Object, []string, error) {
	var out []Object
	sas := map[string]bool{}
	addSA := func(name string) {
		if name != "" && name != "default" {
			sas[name] = true
		}
	}
	out = append(out, Object{"DaemonSet", ns, ds.Name})
	addSA(ds.Spec.Template.Spec.ServiceAccountName)
	var deployments []*appsv1.Deployment
	for _, name := range own.Deployments {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		deployments = append(deployments, d)
		out = append(out, Object{"Deployment", ns, name})
		addSA(d.Spec.Template.Spec.ServiceAccountName)
	}
	exists := func(get func() error) (bool, error) {
		err := get()
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		}
		return false, err
	}
	for _, name := range own.PDBs {
		ok, err := exists(func() error {
			_, err := c.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, Object{"PodDisruptionBudget", ns, name})
		}
	}
	for _, name := range own.Services {
		ok, err := exists(func() error { _, err := c.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); return err })
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, Object{"Service", ns, name})
		}
	}
	var cms []string
	for _, name := range own.ConfigMaps {
		ok, err := exists(func() error { _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); return err })
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, Object{"ConfigMap", ns, name})
			cms = append(cms, name)
		}
	}
	for _, name := range own.ServiceAccounts {
		addSA(name)
	}

	// RBAC: bindings whose every subject is one of these ServiceAccounts,
	// and the roles only such bindings use.
	mine := func(subjects []rbacv1.Subject) bool {
		if len(subjects) == 0 {
			return false
		}
		for _, s := range subjects {
			if s.Kind != "ServiceAccount" || s.Namespace != ns && s.Namespace != "" || !sas[s.Name] {
				return false
			}
		}
		return true
	}
	rbs, err := c.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		// Without seeing every RoleBinding no role can be known unused:
		// leave all RBAC alone.
		rbs, err = &rbacv1.RoleBindingList{}, nil
		own.Kept = append(own.Kept, "the old CNI's RBAC: you may not list RoleBindings in every namespace, so it cannot be known unused; delete it by hand")
		sas = map[string]bool{}
	}
	if err != nil {
		return nil, nil, err
	}
	crbs, err := c.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	var myCRBs, myRBs []string
	myClusterRoles, myRoles := map[string]bool{}, map[string]bool{}
	for _, b := range crbs.Items {
		if mine(b.Subjects) {
			myCRBs = append(myCRBs, b.Name)
			myClusterRoles[b.RoleRef.Name] = true
		}
	}
	for _, b := range rbs.Items {
		if b.Namespace == ns && mine(b.Subjects) {
			myRBs = append(myRBs, b.Name)
			if b.RoleRef.Kind == "Role" {
				myRoles[b.RoleRef.Name] = true
			} else {
				myClusterRoles[b.RoleRef.Name] = true
			}
		}
	}
	sort.Strings(myRBs)
	for _, name := range myRBs {
		out = append(out, Object{"RoleBinding", ns, name})
	}
	for _, name := range sortedKeys(myRoles) {
		if !roleUsedOnlyBy(rbs.Items, ns, name, myRBs) {
			continue
		}
		ok, err := exists(func() error { _, err := c.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{}); return err })
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, Object{"Role", ns, name})
		}
	}
	sort.Strings(myCRBs)
	for _, name := range myCRBs {
		out = append(out, Object{"ClusterRoleBinding", "", name})
	}
	for _, name := range sortedKeys(myClusterRoles) {
		if strings.HasPrefix(name, "system:") || clusterRoleUsedElsewhere(crbs.Items, rbs.Items, name, myCRBs, myRBs, ns) {
			continue
		}
		ok, err := exists(func() error { _, err := c.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); return err })
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, Object{"ClusterRole", "", name})
		}
	}
	var saNames []string
	for _, name := range sortedKeys(sas) {
		ok, err := exists(func() error { _, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{}); return err })
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, Object{"ServiceAccount", ns, name})
			saNames = append(saNames, name)
		}
	}
	if own.EmptyNamespace && ns != "kube-system" && ns != "default" {
		empty, err := namespaceOnlyHolds(ctx, c, ns, ds, deployments, cms, saNames)
		if err != nil {
			return nil, nil, err
		}
		if empty {
			out = append(out, Object{"Namespace", "", ns})
		}
	}
	return out, own.Kept, nil
}

func roleUsedOnlyBy(rbs []rbacv1.RoleBinding, ns, role string, mine []string) bool {
	for _, b := range rbs {
		if b.Namespace == ns && b.RoleRef.Kind == "Role" && b.RoleRef.Name == role && !containsString(mine, b.Name) {
			return false
		}
	}
	return true
}

func clusterRoleUsedElsewhere(crbs []rbacv1.ClusterRoleBinding, rbs []rbacv1.RoleBinding, role string, myCRBs, myRBs []string, ns string) bool {
	for _, b := range crbs {
		if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == role && !containsString(myCRBs, b.Name) {
			return true
		}
	}
	for _, b := range rbs {
		if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == role && !(b.Namespace == ns && containsString(myRBs, b.Name)) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// namespaceOnlyHolds reports whether ns holds nothing but the old CNI's
// objects (and what Kubernetes puts in every namespace).
func namespaceOnlyHolds(ctx context.Context, c kubernetes.Interface, ns string, ds *appsv1.DaemonSet, deps []*appsv1.Deployment, cms, sas []string) (bool, error) {
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if metav1.IsControlledBy(p, ds) {
			continue
		}
		// Pods of our Deployments are controlled by their ReplicaSets.
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.Kind != "ReplicaSet" || !ownedReplicaSet(ref.Name, deps) {
			return false, nil
		}
	}
	dss, err := c.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(dss.Items) > 1 {
		return false, err
	}
	dl, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(dl.Items) > len(deps) {
		return false, err
	}
	sts, err := c.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(sts.Items) > 0 {
		return false, err
	}
	cml, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, x := range cml.Items {
		if !containsString(cms, x.Name) && x.Name != "kube-root-ca.crt" {
			return false, nil
		}
	}
	sal, err := c.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, x := range sal.Items {
		if !containsString(sas, x.Name) && x.Name != "default" {
			return false, nil
		}
	}
	return true, nil
}

func ownedReplicaSet(rs string, deps []*appsv1.Deployment) bool {
	for _, d := range deps {
		if strings.HasPrefix(rs, d.Name+"-") {
			return true
		}
	}
	return false
}

// OldCNIObjects lists the objects `finalize --remove-old-cni` deletes; see
// PlanRemoval.
func OldCNIObjects(ctx context.Context, c kubernetes.Interface, cluster *detect.Cluster) ([]Object, error) {
	r, err := PlanRemoval(ctx, c, cluster)
	if err != nil {
		return nil, err
	}
	return r.Objects, nil
}

// RemovalNote is the note (in the migration lock's Lease) of the old CNI's
// objects finalize --remove-old-cni is deleting: JSON []Object, removed
// once all are gone.
const RemovalNote = "cni-migrate.io/remove-old-cni"

// addNoted adds the objects of a RemovalNote that r does not list yet, in
// the note's order before r's own (the note was the whole plan when it was
// written; the namespace stays last).
func (r *Removal) addNoted(note string) error {
	if note == "" {
		return nil
	}
	var noted []Object
	if err := json.Unmarshal([]byte(note), &noted); err != nil {
		return errs.Newf(errs.Precondition, "delete the annotation "+RemovalNote+" of Lease kube-system/cni-migrate-rollout and run finalize again",
			"the migration lock's note of the old CNI's objects is not valid: %v", err)
	}
	if len(noted) == 0 {
		return nil
	}
	seen := map[Object]bool{}
	var out []Object
	for _, o := range noted {
		if !seen[o] && o.Kind != "Namespace" {
			seen[o] = true
			out = append(out, o)
		}
	}
	var last []Object
	for _, o := range append(r.Objects, noted...) {
		if seen[o] {
			continue
		}
		seen[o] = true
		if o.Kind == "Namespace" {
			last = append(last, o)
		} else {
			out = append(out, o)
		}
	}
	r.Objects = append(out, last...)
	r.Manual = ""
	return nil
}

// Delete deletes the objects in order (the namespace last) and returns
// those that were there.
func Delete(ctx context.Context, c kubernetes.Interface, objs []Object, dryRun bool) ([]Object, error) {
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var deleted []Object
	for _, o := range objs {
		var err error
		switch o.Kind {
		case "DaemonSet":
			err = c.AppsV1().DaemonSets(o.Namespace).Delete(ctx, o.Name, opts)
		case "Deployment":
			err = c.AppsV1().Deployments(o.Namespace).Delete(ctx, o.Name, opts)
		case "PodDisruptionBudget":
			err = c.PolicyV1().PodDisruptionBudgets(o.Namespace).Delete(ctx, o.Name, opts)
		case "Service":
			err = c.CoreV1().Services(o.Namespace).Delete(ctx, o.Name, opts)
		case "ConfigMap":
			err = c.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, o.Name, opts)
		case "ServiceAccount":
			err = c.CoreV1().ServiceAccounts(o.Namespace).Delete(ctx, o.Name, opts)
		case "RoleBinding":
			err = c.RbacV1().RoleBindings(o.Namespace).Delete(ctx, o.Name, opts)
		case "Role":
			err = c.RbacV1().Roles(o.Namespace).Delete(ctx, o.Name, opts)
		case "ClusterRoleBinding":
			err = c.RbacV1().ClusterRoleBindings().Delete(ctx, o.Name, opts)
		case "ClusterRole":
			err = c.RbacV1().ClusterRoles().Delete(ctx, o.Name, opts)
		case "Namespace":
			err = c.CoreV1().Namespaces().Delete(ctx, o.Name, opts)
		default:
			err = fmt.Errorf("cannot delete a %s", o.Kind)
		}
		switch {
		case err == nil:
			deleted = append(deleted, o)
		case apierrors.IsNotFound(err):
		default:
			return deleted, fmt.Errorf("deleting %s: %w", o, err)
		}
	}
	return deleted, nil
}

// Leftovers tells the user what stays on the nodes after the old CNI's
// objects are gone, and how to clear it (the CNI's registry entry says
// what); a CNI without an entry is an error.
func Leftovers(w io.Writer, cniName string) error {
	src, err := sourcecni.Named(cniName)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, `What stays on the nodes: %s, and its CNI config renamed to *.cilium_bak in /etc/cni/net.d.
They are harmless to Cilium but can confuse policies and troubleshooting. A rolling reboot clears all but the renamed files:
for each node: kubectl drain NODE --ignore-daemonsets && reboot it && kubectl uncordon NODE
(or delete them by hand: %s).
`, src.Node.Leftovers, src.Node.ByHand)
	return err
}
