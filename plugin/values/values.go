// Package values makes the Helm values for the migration to Cilium:
// values-initial.yaml installs Cilium next to the old CNI (dual-overlay:
// taking over no node; in-place: owning every node's CNI configuration at
// once), values-final.yaml is applied with `helm upgrade` once every node
// and pod is migrated. The user's --values file is merged on top of both the
// way Helm merges several values files.
package values

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// File names of the two documents.
const (
	InitialFile = "values-initial.yaml"
	FinalFile   = "values-final.yaml"
)

// Strategies (the same names as package proposal's).
const (
	DualOverlay = "dual-overlay"
	InPlace     = "in-place"
)

// Input is what the migration values are made from.
type Input struct {
	// Strategy is DualOverlay (also when "") or InPlace.
	Strategy string
	// Version is the Cilium version to install (a supported minor).
	Version ciliumver.Version
	// PodCIDR is Cilium's cluster-pool IPv4 CIDR, e.g. "10.245.0.0/16".
	PodCIDR string
	// MaskSize is ipam.operator.clusterPoolIPv4MaskSize, the per-node block (e.g. 24).
	MaskSize int
	// TunnelProtocol is "vxlan" or "geneve".
	TunnelProtocol string
	// TunnelPort is Cilium's overlay port; it must differ from the old CNI's.
	TunnelPort int
	// ClusterName is set as cluster.name after fitting it to Cilium's rules
	// (lowercase letters, digits and '-', at most 32 characters, starting and
	// ending with a letter or digit); "" leaves the chart default.
	ClusterName string
	// KubeProxyReplacement is true when the cluster runs no kube-proxy.
	KubeProxyReplacement bool
	// PolicyBridge keeps NetworkPolicies in force through the migration
	// (dual overlay): Cilium enforces them from the install on, and the
	// policy bridge gives the pods still on the old network their
	// identities (docs/policy-continuity.md).
	PolicyBridge bool
	// PolicyAudit, without the bridge (dual overlay): Cilium computes its
	// verdicts from the install on in audit mode, dropping nothing, so that
	// policy-report shows what the policies will deny at finalize.
	PolicyAudit bool
	// K8sServiceHost and K8sServicePort are the API server address Cilium
	// uses instead of the kubernetes Service: required with
	// KubeProxyReplacement, else optional (kube-proxy's own address).
	K8sServiceHost string
	K8sServicePort int
	// PortMapChaining sets cni.chainingMode=portmap (without kube-proxy
	// replacement, when the old CNI's config chains portmap).
	PortMapChaining bool
	// OperatorReplicas sets operator.replicas; 0 leaves the chart default (2).
	// cilium-cli uses 1 on single-node clusters.
	OperatorReplicas int
	// IPv4NativeRoutingCIDR, when set, is written as ipv4NativeRoutingCIDR
	// in values-initial.yaml only: a CIDR made of exactly Cilium's pod CIDR
	// and the old pod network, so that Cilium does not masquerade its pods'
	// traffic to old pods (see docs/snat.md and proposal.SNATExclusion).
	IPv4NativeRoutingCIDR string
	// CNIConfPath and CNIBinPath, when set, are written as cni.confPath and
	// cni.binPath: the node directories the distribution's container
	// runtime reads CNI configurations and binaries from (k3s).
	CNIConfPath, CNIBinPath string
	// User holds the values of the user's --values file, merged on top.
	User map[string]any
	// UserFile names that file in comments and warnings ("" if none).
	UserFile string
}

// Doc is one generated values document.
type Doc struct {
	name     string
	title    string
	version  ciliumver.Version
	userFile string
	values   map[string]any
	notes    map[string]string // comment for each key the migration sets, by pathKey
	ours     map[string]any    // value of each key the migration sets, by pathKey
	user     map[string]bool   // keys whose value comes from the user's file, by pathKey
	rank     map[string]int    // position of the keys the migration sets, by pathKey
}

// Name is the document's file name (InitialFile or FinalFile).
func (d *Doc) Name() string { return d.name }

// Version is the Cilium version the document is for.
func (d *Doc) Version() ciliumver.Version { return d.version }

// Map returns a copy of the merged values in the data model Helm reads values
// files into (sigs.k8s.io/yaml): map[string]any, []any, string, bool, nil and
// float64 for every number. An explicit null from the user's file stays a
// nil value, so that Helm deletes the chart's default for that key too.
func (d *Doc) Map() map[string]any {
	m, _ := deepCopy(d.values).(map[string]any)
	return m
}

// YAML renders the document: a header comment, then the values in a fixed
// order (the migration's keys first, in the guide's order, then the user's
// keys sorted), each migration key with a comment saying why it is set.
func (d *Doc) YAML() ([]byte, error) {
	e := &emitter{doc: d, dotted: dottedNumeric()}
	e.comment(0, d.name+": "+d.title)
	e.comment(0, fmt.Sprintf("Generated by kubectl cni-migrate for Cilium %s (helm --version %s).", d.version, d.version.HelmChartVersion()))
	if len(d.user) > 0 || d.userFile != "" {
		e.comment(0, "Values from "+d.fromFlag()+" are merged on top.")
	}
	e.b.WriteByte('\n')
	if len(d.values) == 0 {
		e.b.WriteString("{}\n")
	} else if err := e.mapping(d.values, nil, 0, "", true); err != nil {
		return nil, errs.Wrap(errs.Internal, err, fmt.Sprintf("cannot render %s: %v", d.name, err), "report this as a bug")
	}
	return []byte(e.b.String()), nil
}

func (d *Doc) fromFlag() string { return fromFlag(d.userFile) }

// note is the comment above the key at path p ("" for none).
func (d *Doc) note(p []string) string {
	k := pathKey(p)
	if d.user[k] {
		if ours, ok := d.ours[k]; ok {
			if got, _ := lookup(d.values, p); !reflect.DeepEqual(got, ours) {
				return "from " + d.fromFlag() + ", replacing the migration's value " + show(ours)
			}
		} else if _, parent := d.rank[k]; parent {
			return "from " + d.fromFlag() + ", replacing the migration's values under " + dotted(p)
		}
		return "from " + d.fromFlag()
	}
	return d.notes[k]
}

func (d *Doc) fromUser(p []string) bool { return d.user[pathKey(p)] }

// orderKeys orders the keys of the map at path: the migration's keys in the
// order they were set, then the rest sorted.
func (d *Doc) orderKeys(path []string, m map[string]any) []string {
	keys := sortedKeys(m)
	pos := func(k string) int {
		p := append(path[:len(path):len(path)], k)
		if r, ok := d.rank[pathKey(p)]; ok {
			return r
		}
		return len(d.rank) + 1
	}
	sort.SliceStable(keys, func(i, j int) bool { return pos(keys[i]) < pos(keys[j]) })
	return keys
}

// setting is one value the migration sets.
type setting struct {
	path  []string
	value any
	note  string
}

func set(path string, value any, note string) setting {
	return setting{path: strings.Split(path, "."), value: value, note: note}
}

// Generate makes the initial and final documents for in, and warnings about
// the user's values that undo something the migration relies on.
func Generate(in Input) (initial, final *Doc, warnings []string, err error) {
	rules, err := in.validate()
	if err != nil {
		return nil, nil, nil, err
	}
	user, err := normalize(in.User)
	if err != nil {
		return nil, nil, nil, errs.Wrap(errs.Usage, err,
			fmt.Sprintf("values from %s cannot be used as Helm values: %v", fromFlag(in.UserFile), err),
			"pass a YAML mapping of Helm values")
	}

	name, nameWarnings := "", []string(nil)
	if in.ClusterName != "" && !hasPath(user, []string{"cluster", "name"}) {
		name, nameWarnings = clusterName(in.ClusterName, in.Version, rules)
	}

	ini := initialSettings(in, name)
	fin := finalSettings(ini)
	title := fmt.Sprintf("install Cilium %s next to the old CNI (dual-overlay migration, first step)", in.Version)
	if in.Strategy == InPlace {
		title = fmt.Sprintf("install Cilium %s owning every node's CNI config, next to the old CNI (in-place migration, first step)", in.Version)
	}
	initial = newDoc(InitialFile, title, in, ini, user)
	final = newDoc(FinalFile,
		fmt.Sprintf("Cilium %s once every node is migrated (helm upgrade, last step)", in.Version),
		in, fin, user)

	warnings = append(warnings, nameWarnings...)
	warnings = append(warnings, userWarnings(in, rules, initial, final, ini, fin)...)
	return initial, final, warnings, nil
}

func initialSettings(in Input, clusterName string) []setting {
	inPlace := in.Strategy == InPlace
	watcher := "no restarts of pods Cilium does not manage while the migration runs; they move when their node does"
	if inPlace {
		watcher = "no restarts by the operator of pods Cilium does not manage: it deletes them without regard to\n" +
			"PodDisruptionBudgets; kubectl cni-migrate rollout --strategy in-place evicts them instead"
	}
	s := []setting{
		set("operator.unmanagedPodWatcher.restart", false, watcher),
	}
	if in.OperatorReplicas == 1 {
		s = append(s, set("operator.replicas", 1.0, "one operator replica: the cluster has a single node (as cilium-cli does)"))
	} else if in.OperatorReplicas > 1 {
		s = append(s, set("operator.replicas", float64(in.OperatorReplicas), "operator replicas"))
	}
	routing := "overlay routing, so pods on migrated and unmigrated nodes reach each other"
	if inPlace {
		routing = "overlay routing, so pods on Cilium and pods not restarted yet reach each other"
	}
	s = append(s,
		set("routingMode", "tunnel", routing),
		set("tunnelProtocol", in.TunnelProtocol, "encapsulation of Cilium's overlay"),
		set("tunnelPort", float64(in.TunnelPort), "Cilium's overlay port, not the old CNI's, so both overlays run side by side"),
	)
	if inPlace {
		s = append(s,
			set("cni.customConf", false, "Cilium writes its CNI config on every node as soon as its agent is ready: new pods start on Cilium"),
			set("cni.exclusive", true, "and renames the old CNI's config files (*.cilium_bak), so no new pod starts on the old network"),
		)
	} else {
		s = append(s, set("cni.customConf", true, "Cilium writes no CNI config yet; the CiliumNodeConfig turns it on node by node"))
	}
	s = append(s,
		set("cni.uninstall", false, "keep the CNI config when a Cilium agent stops"),
		set("ipam.mode", "cluster-pool", "Cilium hands out pod addresses from its own pool"),
		set("ipam.operator.clusterPoolIPv4PodCIDRList", []any{in.PodCIDR},
			"Cilium's pod CIDR: apart from the old CNI's pod CIDR, the service CIDR and the node network"),
		set("ipam.operator.clusterPoolIPv4MaskSize", float64(in.MaskSize),
			fmt.Sprintf("each node gets a /%d block of pod addresses", in.MaskSize)),
		policyMode(in.PolicyBridge, in.PolicyAudit),
		set("bpf.hostLegacyRouting", true, "route through the host's stack, which reaches pods still on the old CNI"),
	)
	if in.PolicyAudit && !in.PolicyBridge {
		s = append(s, set("policyAuditMode", true, "audit mode: Cilium reports the flows its policies would drop and drops none (kubectl cni-migrate policy-report shows them before finalize)"))
	}
	if in.CNIConfPath != "" {
		s = append(s, set("cni.confPath", in.CNIConfPath, "the node directory the container runtime reads CNI configs from (the distribution's, not /etc/cni/net.d)"))
	}
	if in.CNIBinPath != "" {
		s = append(s, set("cni.binPath", in.CNIBinPath, "the node directory the container runtime runs CNI binaries from (the distribution's, not /opt/cni/bin)"))
	}
	if in.IPv4NativeRoutingCIDR != "" {
		s = append(s, set("ipv4NativeRoutingCIDR", in.IPv4NativeRoutingCIDR,
			"exactly Cilium's pod CIDR and the old pod network: Cilium does not masquerade its pods' traffic to\n"+
				"pods still on the old CNI, which keep seeing the Cilium pod's address (removed in values-final.yaml;\n"+
				"see docs/snat.md: pkg/datapath/iptables \"cilium masquerade non-cluster\")"))
	}
	if in.KubeProxyReplacement {
		s = append(s,
			set("kubeProxyReplacement", "true", "the cluster runs no kube-proxy: Cilium handles Services"),
			set("k8sServiceHost", in.K8sServiceHost, "API server address for Cilium, which cannot use the kubernetes Service without kube-proxy"),
			set("k8sServicePort", float64(in.K8sServicePort), "API server port"),
		)
	} else {
		s = append(s, set("kubeProxyReplacement", "false", "the cluster runs kube-proxy, which keeps handling Services"))
		if in.K8sServiceHost != "" && in.K8sServicePort > 0 {
			s = append(s,
				set("k8sServiceHost", in.K8sServiceHost, "the API server address kube-proxy's own kubeconfig names: on a node that just\n"+
					"booted, Cilium reaches the API server without waiting for kube-proxy's rules for the kubernetes Service"),
				set("k8sServicePort", float64(in.K8sServicePort), "API server port"))
		}
		if in.PortMapChaining {
			s = append(s, set("cni.chainingMode", "portmap", "pods' hostPorts: with kube-proxy, Cilium serves them only through the portmap\n"+
				"CNI plugin chained after its own, as the old CNI's config chains it today"))
		}
	}
	if clusterName != "" {
		s = append(s, set("cluster.name", clusterName, "cluster name, in the form Cilium accepts"))
	}
	return s
}

// finalSettings is the initial settings with the guide's finalize overrides,
// without the settings that only matter while two pod networks coexist.
func finalSettings(initial []setting) []setting {
	drop := map[string]bool{pathKey([]string{"ipv4NativeRoutingCIDR"}): true}
	over := map[string]setting{}
	for _, o := range []setting{
		set("operator.unmanagedPodWatcher.restart", true, "migration done: restart pods Cilium does not manage (the chart default)"),
		set("cni.customConf", false, "Cilium writes its CNI config on every node (the chart default)"),
		set("policyEnforcementMode", "default", "network policies are enforced again (the chart default)"),
		set("policyAuditMode", false, "network policies drop what they deny (the chart default)"),
		set("bpf.hostLegacyRouting", false, "eBPF host routing, now that no pod is on the old CNI"),
	} {
		over[pathKey(o.path)] = o
	}
	out := make([]setting, 0, len(initial))
	for _, s := range initial {
		if drop[pathKey(s.path)] {
			continue
		}
		if o, ok := over[pathKey(s.path)]; ok {
			s = o
		}
		out = append(out, s)
	}
	return out
}

func newDoc(name, title string, in Input, settings []setting, user map[string]any) *Doc {
	d := &Doc{
		name:     name,
		title:    title,
		version:  in.Version,
		userFile: in.UserFile,
		values:   map[string]any{},
		notes:    map[string]string{},
		ours:     map[string]any{},
		user:     map[string]bool{},
		rank:     map[string]int{},
	}
	for i, s := range settings {
		setPath(d.values, s.path, deepCopy(s.value))
		d.notes[pathKey(s.path)] = s.note
		d.ours[pathKey(s.path)] = s.value
		for n := 1; n <= len(s.path); n++ {
			if _, ok := d.rank[pathKey(s.path[:n])]; !ok {
				d.rank[pathKey(s.path[:n])] = i
			}
		}
	}
	merge(d.values, user, nil, d.user)
	return d
}

// merge puts src on top of dst as Helm merges values files: maps merge
// deeply; lists, scalars and null replace; a map replaces a non-map. The
// keys that take src's value are recorded in from.
func merge(dst, src map[string]any, path []string, from map[string]bool) {
	for _, k := range sortedKeys(src) {
		p := append(path[:len(path):len(path)], k)
		if sm, ok := src[k].(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm, p, from)
				continue
			}
		}
		dst[k] = deepCopy(src[k])
		from[pathKey(p)] = true
	}
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func lookup(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func hasPath(m map[string]any, path []string) bool {
	_, ok := lookup(m, path)
	return ok
}

// pathKey joins a key path; NUL cannot occur in a YAML key.
func pathKey(p []string) string { return strings.Join(p, "\x00") }

func dotted(p []string) string { return strings.Join(p, ".") }

// normalize turns v into the JSON data model Helm works on.
func normalize(v map[string]any) (map[string]any, error) {
	if len(v) == 0 {
		return map[string]any{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = deepCopy(x)
		}
		return l
	}
	return v
}

func (in Input) validate() (chartRules, error) {
	if _, err := ciliumver.Parse(in.Version.String()); err != nil {
		return chartRules{}, err
	}
	rules, ok := rulesFor(in.Version)
	if !ok {
		return chartRules{}, errs.New(errs.Internal, fmt.Sprintf("no chart rules for Cilium %s", in.Version), "report this as a bug")
	}
	prefix, err := netip.ParsePrefix(in.PodCIDR)
	if err != nil || !prefix.Addr().Is4() || prefix != prefix.Masked() {
		return rules, errs.New(errs.Usage,
			fmt.Sprintf("Cilium pod CIDR %q is not an IPv4 network address with a prefix length", in.PodCIDR),
			"give a CIDR such as 10.245.0.0/16")
	}
	if in.MaskSize < prefix.Bits() || in.MaskSize > 30 {
		return rules, errs.New(errs.Usage,
			fmt.Sprintf("per-node mask size /%d does not fit the pod CIDR %s", in.MaskSize, in.PodCIDR),
			fmt.Sprintf("choose a mask size from /%d to /30", prefix.Bits()))
	}
	if in.TunnelProtocol != "vxlan" && in.TunnelProtocol != "geneve" {
		return rules, errs.New(errs.Usage,
			fmt.Sprintf("tunnel protocol %q is not vxlan or geneve", in.TunnelProtocol),
			"choose vxlan or geneve")
	}
	if in.TunnelPort < 1 || in.TunnelPort > 65535 {
		return rules, errs.New(errs.Usage,
			fmt.Sprintf("tunnel port %d is not a UDP port", in.TunnelPort),
			"choose a port from 1 to 65535 that the old CNI does not use, such as 8473")
	}
	if in.KubeProxyReplacement {
		if strings.TrimSpace(in.K8sServiceHost) == "" {
			return rules, errs.New(errs.Usage,
				"the cluster has no kube-proxy, but no API server host is known for Cilium",
				"give the API server host Cilium should use (from the kubeconfig)")
		}
		if in.K8sServicePort < 1 || in.K8sServicePort > 65535 {
			return rules, errs.New(errs.Usage,
				fmt.Sprintf("API server port %d is not a TCP port", in.K8sServicePort),
				"give the API server port from the kubeconfig, such as 6443")
		}
	}
	switch in.Strategy {
	case "", DualOverlay, InPlace:
	default:
		return rules, errs.New(errs.Usage, fmt.Sprintf("strategy %q is not dual-overlay or in-place", in.Strategy), "choose dual-overlay or in-place")
	}
	if in.IPv4NativeRoutingCIDR != "" {
		nr, err := netip.ParsePrefix(in.IPv4NativeRoutingCIDR)
		if err != nil || !nr.Addr().Is4() || nr != nr.Masked() || !nr.Contains(prefix.Addr()) || nr.Bits() > prefix.Bits() {
			return rules, errs.New(errs.Usage,
				fmt.Sprintf("ipv4NativeRoutingCIDR %q is not an IPv4 network containing the pod CIDR %s", in.IPv4NativeRoutingCIDR, in.PodCIDR),
				"leave it empty, or give a CIDR that covers Cilium's pod CIDR and the old pod network")
		}
	}
	if in.OperatorReplicas < 0 {
		return rules, errs.New(errs.Usage,
			fmt.Sprintf("operator replicas %d is negative", in.OperatorReplicas),
			"give 0 for the chart default or a positive number")
	}
	return rules, nil
}

// clusterName fits name to Cilium's rules (validate.yaml from 1.16:
// ^([a-z0-9][-a-z0-9]*)?[a-z0-9]$, at most 32 characters) and returns "" when
// nothing usable is left.
func clusterName(name string, v ciliumver.Version, rules chartRules) (string, []string) {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 32 {
		s = strings.TrimRight(s[:32], "-")
	}
	const fix = "set cluster.name in a --values file to choose another"
	if s == "" {
		return "", []string{fmt.Sprintf("cluster name %q has no letters or digits, so cluster.name stays at the chart default %q; %s",
			name, "default", fix)}
	}
	if !rules.clusterNameQuoted && !readsAsString(s) {
		// Before 1.18 cilium-configmap.yaml writes `cluster-name: NAME`
		// unquoted; a name YAML reads as a number, boolean or null would
		// make the ConfigMap invalid.
		return "", []string{fmt.Sprintf("cluster name %q would not be a string in the Cilium %s ConfigMap, so cluster.name stays at the chart default %q; %s",
			s, v.MinorString(), "default", fix)}
	}
	if s != name {
		return s, []string{fmt.Sprintf("cluster name %q does not fit Cilium's rules (lowercase letters, digits and '-', at most 32 characters), so cluster.name is %q; %s",
			name, s, fix)}
	}
	return s, nil
}

// readsAsString reports whether s, written unquoted as a YAML value, is read
// back as the string s.
func readsAsString(s string) bool {
	var m map[string]any
	if err := yaml.Unmarshal([]byte("v: "+s+"\n"), &m); err != nil {
		return false
	}
	got, ok := m["v"].(string)
	return ok && got == s
}

// watched is a key the migration sets whose change by the user's file is
// worth a warning, with the reason for each document ("" = not watched there).
type watched struct {
	path           string
	initial, final string
	// asString: the chart only uses the value through toString or quote, so
	// "6443" and 6443 (or "true" and true) are the same to it.
	asString bool
}

func watchList(in Input) []watched {
	const overlay = "the tunnel protocol and port were chosen so that Cilium's overlay does not clash with the old CNI's"
	const cidr = "Cilium's pod CIDR was chosen not to overlap the old CNI's pod CIDR, the service CIDR or the node network"
	const overlayFinal = "changing the overlay of a running cluster cuts pods off until every agent restarts"
	const cidrFinal = "nodes already have pod addresses from the migration's pod CIDR"
	kpr := "the cluster runs kube-proxy; with the replacement on, Cilium and kube-proxy would both handle Services"
	if in.KubeProxyReplacement {
		kpr = "the cluster has no kube-proxy; without the replacement nothing handles Services"
	}
	watcher := "the operator would restart pods on nodes not yet migrated, moving them to Cilium before their node is ready"
	customConf := "Cilium would write its CNI config on every node at once instead of node by node as the CiliumNodeConfig allows"
	routing := "the dual-overlay migration needs tunnel routing so that pods on migrated and unmigrated nodes reach each other"
	if in.Strategy == InPlace {
		watcher = "the operator would delete pods still on the old network one by one, without regard to PodDisruptionBudgets"
		customConf = "the in-place migration needs Cilium to write its CNI config on every node, or restarted pods stay on the old network"
		routing = "the in-place migration needs tunnel routing so that pods on Cilium and pods not restarted yet reach each other"
	}
	w := []watched{
		{path: "operator.unmanagedPodWatcher.restart", initial: watcher},
		{path: "routingMode",
			initial: routing,
			final:   "the cluster's pods run on Cilium's overlay; changing the routing mode cuts them off"},
		{path: "tunnelProtocol", initial: overlay, final: overlayFinal},
		{path: "tunnelPort", initial: overlay, final: overlayFinal},
		{path: "cni.customConf",
			initial: customConf,
			final:   "Cilium would not write its CNI config, so nodes added after the migration get none"},
		{path: "cni.uninstall",
			initial: "a stopping Cilium agent would remove its CNI config, and new pods on a migrated node would fall back to the old CNI"},
		{path: "ipam.mode", initial: "the migration needs cluster-pool IPAM so that Cilium hands out addresses from its own pod CIDR", final: cidrFinal},
		{path: "ipam.operator.clusterPoolIPv4PodCIDRList", initial: cidr, final: cidrFinal},
		{path: "ipam.operator.clusterPoolIPv4MaskSize",
			initial: "the per-node block size was chosen with the pod CIDR so that every node gets a block",
			final:   "nodes already have their blocks of pod addresses, which a new size does not change"},
		{path: "policyEnforcementMode",
			initial: "policies must stay off while pods on the old CNI have no Cilium identity, or their traffic may be dropped"},
		{path: "bpf.hostLegacyRouting",
			initial: "eBPF host routing bypasses the host's routing table, which carries the traffic to pods still on the old CNI"},
		{path: "kubeProxyReplacement", initial: kpr, final: kpr, asString: true},
	}
	if in.IPv4NativeRoutingCIDR != "" {
		w = append(w, watched{path: "ipv4NativeRoutingCIDR",
			initial: "it was chosen to cover exactly Cilium's pod CIDR and the old pod network: a wider one stops masquerading to other networks inside it, a narrower one source-NATs traffic to old pods"})
	}
	if in.KubeProxyReplacement {
		const api = "without kube-proxy Cilium reaches the API server only at this address"
		w = append(w,
			watched{path: "k8sServiceHost", initial: api, final: api},
			watched{path: "k8sServicePort", initial: api, final: api, asString: true})
	}
	return w
}

func userWarnings(in Input, rules chartRules, initial, final *Doc, ini, fin []setting) []string {
	if len(initial.user) == 0 && len(final.user) == 0 {
		return nil
	}
	ours := func(settings []setting, path string) (any, bool) {
		for _, s := range settings {
			if dotted(s.path) == path {
				return s.value, true
			}
		}
		return nil, false
	}
	type change struct {
		doc    string
		reason string
		desc   string
	}
	flag := fromFlag(in.UserFile)
	var out []string
	for _, w := range watchList(in) {
		var changes []change
		for _, c := range []struct {
			doc      *Doc
			settings []setting
			reason   string
		}{{initial, ini, w.initial}, {final, fin, w.final}} {
			want, ok := ours(c.settings, w.path)
			if !ok || c.reason == "" {
				continue
			}
			got, present := lookup(c.doc.values, strings.Split(w.path, "."))
			if present && (reflect.DeepEqual(got, want) || (w.asString && got != nil && helmString(got) == helmString(want))) {
				continue
			}
			var desc string
			switch {
			case !present:
				desc = fmt.Sprintf("removes %s from %%s (the migration sets %s)", w.path, show(want))
			case got == nil:
				desc = fmt.Sprintf("sets %s to null in %%s (the migration sets %s)", w.path, show(want))
			default:
				desc = fmt.Sprintf("sets %s to %s in %%s (the migration sets %s)", w.path, show(got), show(want))
			}
			changes = append(changes, change{c.doc.name, c.reason, desc})
		}
		if len(changes) == 2 && changes[0].reason == changes[1].reason && changes[0].desc == changes[1].desc {
			changes = []change{{changes[0].doc + " and " + changes[1].doc, changes[0].reason, changes[0].desc}}
		}
		for _, c := range changes {
			out = append(out, flag+" "+fmt.Sprintf(c.desc, c.doc)+": "+c.reason)
		}
	}

	// The `tunnel` key, which only 1.14 knows.
	if t, ok := initial.values["tunnel"]; ok && truthy(t) {
		if rules.tunnelKey == tunnelIgnored {
			out = append(out, fmt.Sprintf("%s sets tunnel, which the Cilium %s chart ignores because routingMode is set; use routingMode and tunnelProtocol instead",
				flag, in.Version.MinorString()))
		} else {
			out = append(out, fmt.Sprintf("%s sets tunnel, which the Cilium %s chart rejects (removed in 1.15); use routingMode and tunnelProtocol instead",
				flag, in.Version.MinorString()))
		}
	}
	// kubeProxyReplacement values the chart refuses.
	if v, ok := initial.values["kubeProxyReplacement"]; ok && v != nil {
		s := helmString(v)
		accepted := false
		for _, a := range rules.kprValues {
			accepted = accepted || s == a
		}
		if !accepted {
			out = append(out, fmt.Sprintf("%s sets kubeProxyReplacement to %s, which the Cilium %s chart rejects; use one of %s",
				flag, show(v), in.Version.MinorString(), strings.Join(rules.kprValues, ", ")))
		}
	}
	// k8sServiceHostRef next to the k8sServiceHost the migration sets.
	if rules.hasServiceHostRef && in.K8sServiceHost != "" {
		name, _ := lookup(initial.values, []string{"k8sServiceHostRef", "name"})
		key, _ := lookup(initial.values, []string{"k8sServiceHostRef", "key"})
		host, _ := lookup(initial.values, []string{"k8sServiceHost"})
		if truthy(name) && truthy(key) && truthy(host) {
			out = append(out, fmt.Sprintf("%s sets k8sServiceHostRef, which the Cilium %s chart refuses together with the k8sServiceHost the migration sets (the API server address for a cluster without kube-proxy, else kube-proxy's own); set k8sServiceHost to null in the values file to use the reference",
				flag, in.Version.MinorString()))
		}
	}
	return out
}

func fromFlag(file string) string {
	if file == "" {
		return "--values"
	}
	return "--values " + oneLine(file)
}

// show writes a value compactly for a warning.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// truthy is Go template truth, which the chart's `if` uses.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case float64:
		return v != 0
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	}
	return true
}

// helmString is the chart's `toString` of a value.
func helmString(v any) string {
	if f, ok := v.(float64); ok {
		s, err := formatNumber(f)
		if err == nil {
			return s
		}
	}
	return fmt.Sprint(v)
}

// oneLine keeps a file name on one comment or message line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// policyMode is values-initial's policyEnforcementMode: never (the
// guide's), or with the policy bridge the chart's default.
func policyMode(bridge, audit bool) setting {
	if audit && !bridge {
		return set("policyEnforcementMode", "default", "Cilium computes network policy verdicts from the install on, in audit mode (below)")
	}
	if bridge {
		return set("policyEnforcementMode", "default", "network policies stay in force: the policy bridge gives the pods still on the old network their Cilium identity (kubectl cni-migrate policy-bridge --deploy)")
	}
	return set("policyEnforcementMode", "never", "no network policy enforcement while pods live on two networks")
}
