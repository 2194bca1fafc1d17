package values

import "github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"

// chartRules are the differences between the Cilium Helm charts that matter
// to the migration values. Every key the migration sets exists with the same
// name and type in every supported chart (operator.unmanagedPodWatcher.restart,
// routingMode, tunnelProtocol, tunnelPort, cni.customConf, cni.exclusive,
// cni.uninstall, ipv4NativeRoutingCIDR (a string, written to cilium-config
// as ipv4-native-routing-cidr when not empty), ipam.mode,
// ipam.operator.clusterPoolIPv4PodCIDRList and clusterPoolIPv4MaskSize,
// policyEnforcementMode, bpf.hostLegacyRouting,
// k8sServiceHost, k8sServicePort, cluster.name, operator.replicas); only the
// points below differ.
//
// Sources: install/kubernetes/cilium/{values.yaml, values.schema.json,
// templates/cilium-configmap.yaml, templates/validate.yaml} in the Go module
// github.com/cilium/cilium at the pinned release of each minor.
type chartRules struct {
	minor int
	// tunnelKey says what the chart does with the `tunnel` key removed in 1.15.
	tunnelKey tunnelKeyRule
	// kprValues are the kubeProxyReplacement values the chart accepts. Every
	// chart reads the value through `toString`, so a string "true" and a
	// boolean true are the same to it; we always write the string.
	kprValues []string
	// kprSchemaTypes is the JSON-schema type of kubeProxyReplacement ("" when
	// the chart has no schema for it).
	kprSchemaTypes string
	// hasSchema: the chart ships values.schema.json (Helm validates values
	// against it; none of them gives cluster.name a pattern).
	hasSchema bool
	// clusterNameValidated: validate.yaml fails unless cluster.name matches
	// ^([a-z0-9][-a-z0-9]*)?[a-z0-9]$ and has at most 32 characters.
	clusterNameValidated bool
	// clusterNameQuoted: cilium-configmap.yaml writes `cluster-name: {{ ... |
	// quote }}`; before 1.18 the name is written unquoted, so a name that YAML
	// reads as a number, boolean or null breaks the ConfigMap.
	clusterNameQuoted bool
	// hasServiceHostRef: the chart has k8sServiceHostRef, and validate.yaml
	// fails when it is set together with k8sServiceHost.
	hasServiceHostRef bool
}

type tunnelKeyRule int

const (
	// tunnelIgnored: values.yaml has `tunnel: ""` (deprecated); the
	// configmap reads it only when routingMode is empty, so with routingMode
	// set it is ignored (and the agent itself refuses `tunnel` together with
	// a routing mode: pkg/option/config.go). We leave it unset.
	tunnelIgnored tunnelKeyRule = iota
	// tunnelRejected: validate.yaml fails if `tunnel` is set ("tunnel was
	// deprecated in v1.14 and has been removed in v1.15").
	tunnelRejected
)

func chartTable() []chartRules {
	legacyKPR := []string{"true", "false", "disabled", "partial", "strict"}
	boolKPR := []string{"true", "false"}
	return []chartRules{
		// 1.14.19: values.yaml has tunnel: "" (deprecated) next to routingMode,
		// tunnelProtocol, tunnelPort; kubeProxyReplacement is only a comment
		// there; cilium-configmap.yaml accepts true/false/disabled/partial/
		// strict and writes `cluster-name:` unquoted; no values.schema.json;
		// validate.yaml does not check the cluster name.
		{minor: 14, tunnelKey: tunnelIgnored, kprValues: legacyKPR},
		// 1.15.19: `tunnel` gone from values.yaml and rejected by validate.yaml;
		// otherwise as 1.14 (no schema, legacy KPR values, unquoted name).
		{minor: 15, tunnelKey: tunnelRejected, kprValues: legacyKPR},
		// 1.16.5: values.schema.json appears (kubeProxyReplacement not in it,
		// cluster.name {"type": "string"}); cilium-configmap.yaml now fails
		// unless kubeProxyReplacement is "true" or "false"; validate.yaml checks
		// the cluster name (skippable with upgradeCompatibility <= 1.15).
		{minor: 16, tunnelKey: tunnelRejected, kprValues: boolKPR, hasSchema: true, clusterNameValidated: true},
		// 1.17.6: as 1.16 (the name check no longer skippable; the configmap
		// now always writes routing-mode and tunnel-protocol, default vxlan).
		{minor: 17, tunnelKey: tunnelRejected, kprValues: boolKPR, hasSchema: true, clusterNameValidated: true},
		// 1.18.11: values.yaml sets kubeProxyReplacement: "false" with schema
		// type [string, boolean]; cilium-configmap.yaml quotes cluster-name;
		// k8sServiceHostRef added (validate.yaml: not with k8sServiceHost).
		{minor: 18, tunnelKey: tunnelRejected, kprValues: boolKPR, kprSchemaTypes: "string, boolean", hasSchema: true, clusterNameValidated: true, clusterNameQuoted: true, hasServiceHostRef: true},
		// 1.19.0: as 1.18.
		{minor: 19, tunnelKey: tunnelRejected, kprValues: boolKPR, kprSchemaTypes: "string, boolean", hasSchema: true, clusterNameValidated: true, clusterNameQuoted: true, hasServiceHostRef: true},
		// 1.20.2: as 1.18.
		{minor: 20, tunnelKey: tunnelRejected, kprValues: boolKPR, kprSchemaTypes: "string, boolean", hasSchema: true, clusterNameValidated: true, clusterNameQuoted: true, hasServiceHostRef: true},
	}
}

// rulesFor returns the chart rules for v's minor; ok is false for a minor
// the table does not cover.
func rulesFor(v ciliumver.Version) (chartRules, bool) {
	if v.Major != 1 {
		return chartRules{}, false
	}
	for _, r := range chartTable() {
		if r.minor == v.Minor {
			return r, true
		}
	}
	return chartRules{}, false
}
