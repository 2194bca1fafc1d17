// Package policybridge keeps Cilium aware of the pods still on the old
// CNI's network while a migration runs: for each such pod it writes a
// CiliumEndpoint carrying the pod's address, its node's address and the
// security identity of its labels, so that every Cilium agent matches the
// pod by its labels (NetworkPolicies, CiliumNetworkPolicies) instead of
// seeing an address without identity. See docs/policy-continuity.md.
//
// Reconcile is pure: it takes the cluster's objects and returns what to
// write and delete. Read and Apply talk to the API server.
package policybridge

import (
	"regexp"
	"sort"
	"strings"
)

// The label keys Cilium adds to a pod's own labels (pkg/k8s/apis/cilium.io).
const (
	labelNamespace      = "io.kubernetes.pod.namespace"
	labelNamespaceMeta  = "io.cilium.k8s.namespace.labels."
	labelServiceAccount = "io.cilium.k8s.policy.serviceaccount"
	labelCluster        = "io.cilium.k8s.policy.cluster"
	// sourceK8s is the source of every label of a pod's identity.
	sourceK8s = "k8s:"
)

// labelPrefix is one entry of Cilium's default label filter
// (pkg/labelsfilter, defaultLabelPrefixCfg): a regular expression matched
// at the start of a label's key.
type labelPrefix struct {
	expr   *regexp.Regexp
	ignore bool
}

// defaultFilter is Cilium's default label filter (1.14 to 1.20): which pod
// labels make up its security identity.
var defaultFilter = func() []labelPrefix {
	var out []labelPrefix
	for _, e := range []string{
		regexp.QuoteMeta(labelNamespace),
		regexp.QuoteMeta(strings.TrimSuffix(labelNamespaceMeta, ".")),
		regexp.QuoteMeta("app.kubernetes.io"),
		regexp.QuoteMeta(labelCluster),
		regexp.QuoteMeta(labelServiceAccount),
		`!io\.kubernetes`,
		`!kubernetes\.io`,
		"!" + regexp.QuoteMeta("statefulset.kubernetes.io/pod-name"),
		"!" + regexp.QuoteMeta("apps.kubernetes.io/pod-index"),
		"!" + regexp.QuoteMeta("batch.kubernetes.io/job-completion-index"),
		"!" + regexp.QuoteMeta("batch.kubernetes.io/controller-uid"),
		`!.*beta\.kubernetes\.io`,
		`!k8s\.io`,
		`!pod-template-generation`,
		`!pod-template-hash`,
		`!controller-revision-hash`,
		`!controller-uid`,
		`!annotation.*`,
		`!etcd_node`,
		`!topology\.kubernetes\.io`,
	} {
		p := labelPrefix{}
		if strings.HasPrefix(e, "!") {
			p.ignore, e = true, e[1:]
		}
		p.expr = regexp.MustCompile(e)
		out = append(out, p)
	}
	return out
}()

// keep says whether Cilium's default filter keeps a label key in the
// identity: unless an ignore prefix matches, or an include prefix matches a
// longer part of the key than the shortest ignore that matches.
func keep(key string) bool {
	included, ignored := 0, 0
	for _, p := range defaultFilter {
		m := p.expr.FindStringIndex(key)
		if m == nil || m[0] != 0 {
			continue
		}
		if p.ignore {
			if ignored == 0 || m[1] < ignored {
				ignored = m[1]
			}
		} else if m[1] > included {
			included = m[1]
		}
	}
	return ignored == 0 || included > ignored
}

// IdentityLabels returns the security labels Cilium gives a pod ("k8s:KEY"
// -> value): its labels through Cilium's default filter, its namespace,
// the namespace's labels, its service account and the cluster's name.
func IdentityLabels(podLabels, namespaceLabels map[string]string, namespace, serviceAccount, cluster string) map[string]string {
	all := map[string]string{}
	for k, v := range podLabels {
		all[k] = v
	}
	for k, v := range namespaceLabels {
		all[labelNamespaceMeta+k] = v
	}
	all[labelNamespace] = namespace
	if serviceAccount != "" {
		all[labelServiceAccount] = serviceAccount
	}
	if cluster != "" {
		all[labelCluster] = cluster
	}
	out := map[string]string{}
	for k, v := range all {
		if keep(k) {
			out[sourceK8s+k] = v
		}
	}
	return out
}

// labelList is the labels as a CiliumEndpoint lists them: "k8s:KEY=VALUE",
// sorted.
func labelList(l map[string]string) []string {
	out := make([]string, 0, len(l))
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// labelKey is a canonical form of a label set, to compare identities.
func labelKey(l map[string]string) string {
	return strings.Join(labelList(l), ";")
}
