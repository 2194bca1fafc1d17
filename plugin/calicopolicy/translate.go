package calicopolicy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The Calico kinds read, as crd.projectcalico.org/v1 stores them.
const (
	KindNetworkPolicy       = "NetworkPolicy"
	KindGlobalNetworkPolicy = "GlobalNetworkPolicy"
)

// Cilium's label keys for what Calico selects by its own keys.
const (
	ciliumNamespaceKey      = "k8s:io.kubernetes.pod.namespace"
	ciliumNamespaceLabels   = "k8s:io.cilium.k8s.namespace.labels."
	ciliumServiceAccountKey = "k8s:io.cilium.k8s.policy.serviceaccount"
	// TranslatedLabel marks every policy the translation writes, so that
	// rollback and finalize find them.
	TranslatedLabel = "cni-migrate.io/translated-from"
)

// Policy is one Calico policy: Kind is NetworkPolicy (Namespace set) or
// GlobalNetworkPolicy; Spec is its spec as stored (JSON).
type Policy struct {
	Kind      string
	Namespace string
	Name      string
	Spec      json.RawMessage
}

// NetworkSet is a Calico NetworkSet (Namespace set) or GlobalNetworkSet:
// labelled address ranges that policy selectors match like pods.
type NetworkSet struct {
	Namespace string
	Name      string
	Labels    map[string]string
	Nets      []string
}

// Result is one Calico policy's translation.
type Result struct {
	// Source names the Calico policy, e.g. "NetworkPolicy shop/web".
	Source string `json:"source"`
	// Policies are the Cilium policies that carry what could be
	// translated (none when nothing could).
	Policies []CiliumPolicy `json:"policies,omitempty"`
	// Notes say what could not be translated, or translates with another
	// meaning, and why; empty when the translation is exact.
	Notes []string `json:"notes,omitempty"`
}

// CiliumPolicy is a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
type CiliumPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   Metadata   `json:"metadata"`
	Spec       CiliumSpec `json:"spec"`
}

// Metadata is the part of ObjectMeta written.
type Metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// CiliumSpec is the part of a Cilium policy's spec written.
type CiliumSpec struct {
	EndpointSelector  LabelSelector      `json:"endpointSelector"`
	EnableDefaultDeny *EnableDefaultDeny `json:"enableDefaultDeny,omitempty"`
	Ingress           []CiliumRule       `json:"ingress,omitempty"`
	IngressDeny       []CiliumRule       `json:"ingressDeny,omitempty"`
	Egress            []CiliumRule       `json:"egress,omitempty"`
	EgressDeny        []CiliumRule       `json:"egressDeny,omitempty"`
}

// EnableDefaultDeny says per direction whether the policy puts its pods
// into default deny (Cilium 1.17 and later).
type EnableDefaultDeny struct {
	Ingress *bool `json:"ingress,omitempty"`
	Egress  *bool `json:"egress,omitempty"`
}

// CiliumRule is one ingress or egress rule.
type CiliumRule struct {
	FromEndpoints []LabelSelector `json:"fromEndpoints,omitempty"`
	FromCIDRSet   []CIDRRule      `json:"fromCIDRSet,omitempty"`
	FromEntities  []string        `json:"fromEntities,omitempty"`
	ToEndpoints   []LabelSelector `json:"toEndpoints,omitempty"`
	ToCIDRSet     []CIDRRule      `json:"toCIDRSet,omitempty"`
	ToEntities    []string        `json:"toEntities,omitempty"`
	ToPorts       []PortRule      `json:"toPorts,omitempty"`
	ICMPs         []ICMPRule      `json:"icmps,omitempty"`
}

// LabelSelector is a Kubernetes label selector.
type LabelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels,omitempty"`
	MatchExpressions []Requirement     `json:"matchExpressions,omitempty"`
}

// Requirement is one matchExpressions entry.
type Requirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// CIDRRule is a CIDR with exceptions.
type CIDRRule struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// PortRule is a toPorts entry.
type PortRule struct {
	Ports []PortProtocol `json:"ports"`
}

// PortProtocol is a port (number or name), an optional end port, and a
// protocol.
type PortProtocol struct {
	Port     string `json:"port"`
	EndPort  int    `json:"endPort,omitempty"`
	Protocol string `json:"protocol,omitempty"`
}

// ICMPRule is an icmps entry.
type ICMPRule struct {
	Fields []ICMPField `json:"fields"`
}

// ICMPField is one ICMP type of a family.
type ICMPField struct {
	Type   int    `json:"type"`
	Family string `json:"family,omitempty"`
}

// calicoSpec is the part of a Calico policy's spec read.
type calicoSpec struct {
	Order                  *float64 `json:"order"`
	Tier                   string   `json:"tier"`
	Selector               string   `json:"selector"`
	NamespaceSelector      string   `json:"namespaceSelector"`
	ServiceAccountSelector string   `json:"serviceAccountSelector"`
	Types                  []string `json:"types"`
	Ingress                []rule   `json:"ingress"`
	Egress                 []rule   `json:"egress"`
	DoNotTrack             bool     `json:"doNotTrack"`
	PreDNAT                bool     `json:"preDNAT"`
	ApplyOnForward         bool     `json:"applyOnForward"`
}

type rule struct {
	Action      string              `json:"action"`
	Protocol    *intstr.IntOrString `json:"protocol"`
	NotProtocol *intstr.IntOrString `json:"notProtocol"`
	ICMP        *icmp               `json:"icmp"`
	NotICMP     *icmp               `json:"notICMP"`
	Source      entity              `json:"source"`
	Destination entity              `json:"destination"`
	HTTP        json.RawMessage     `json:"http"`
}

type icmp struct {
	Type *int `json:"type"`
	Code *int `json:"code"`
}

type entity struct {
	Nets              []string             `json:"nets"`
	NotNets           []string             `json:"notNets"`
	Selector          string               `json:"selector"`
	NotSelector       string               `json:"notSelector"`
	NamespaceSelector string               `json:"namespaceSelector"`
	Ports             []intstr.IntOrString `json:"ports"`
	NotPorts          []intstr.IntOrString `json:"notPorts"`
	ServiceAccounts   *struct {
		Names    []string `json:"names"`
		Selector string   `json:"selector"`
	} `json:"serviceAccounts"`
	Services json.RawMessage `json:"services"`
}

func (e entity) empty() bool {
	return len(e.Nets) == 0 && len(e.NotNets) == 0 && e.Selector == "" && e.NotSelector == "" &&
		e.NamespaceSelector == "" && len(e.Ports) == 0 && len(e.NotPorts) == 0 && e.ServiceAccounts == nil && len(e.Services) == 0
}

// Translate translates one Calico policy; sets are the cluster's
// NetworkSets and GlobalNetworkSets, whose nets a selector also matches.
func Translate(p Policy, sets []NetworkSet) Result {
	t := &translator{p: p, sets: sets}
	t.res.Source = p.Kind + " " + p.Name
	if p.Namespace != "" {
		t.res.Source = p.Kind + " " + p.Namespace + "/" + p.Name
	}
	var spec calicoSpec
	if err := json.Unmarshal(p.Spec, &spec); err != nil {
		t.note("not translated: its spec does not read (%v)", err)
		return t.res
	}
	t.run(spec)
	sort.Strings(t.res.Notes)
	return t.res
}

type translator struct {
	p     Policy
	sets  []NetworkSet
	res   Result
	types map[string]bool
}

// defaultDeny says whether the policy puts its pods into default deny for
// the direction (its types name it).
func (t *translator) defaultDeny(dir string) bool {
	return t.types[map[string]string{"ingress": "Ingress", "egress": "Egress"}[dir]]
}

func (t *translator) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	for _, x := range t.res.Notes {
		if x == n {
			return
		}
	}
	t.res.Notes = append(t.res.Notes, n)
}

func (t *translator) global() bool { return t.p.Kind == KindGlobalNetworkPolicy }

func (t *translator) run(spec calicoSpec) {
	if spec.DoNotTrack || spec.PreDNAT || spec.ApplyOnForward {
		t.note("not translated: doNotTrack, preDNAT and applyOnForward policies apply to host endpoints, which Cilium's host firewall handles differently")
		return
	}
	if spec.Tier != "" && spec.Tier != "default" {
		t.note("tier %s: Cilium has no tiers; its rules are translated as if in one", spec.Tier)
	}
	sel, err := ParseSelector(spec.Selector)
	if err != nil {
		t.note("not translated: %v", err)
		return
	}
	if spec.ServiceAccountSelector != "" {
		t.note("not translated: serviceAccountSelector %q (Cilium selects service accounts by name only)", spec.ServiceAccountSelector)
		return
	}
	if spec.NamespaceSelector != "" {
		if !t.global() {
			t.note("not translated: a namespaced policy with a namespaceSelector")
			return
		}
		ns, err := ParseSelector(spec.NamespaceSelector)
		if err != nil {
			t.note("not translated: namespaceSelector: %v", err)
			return
		}
		sel = and(namespaceTerms(ns), sel)
	}
	types := map[string]bool{}
	for _, ty := range spec.Types {
		types[ty] = true
	}
	if len(spec.Types) == 0 { // Calico's default
		types["Ingress"] = len(spec.Ingress) > 0 || len(spec.Egress) == 0
		types["Egress"] = len(spec.Egress) > 0
	}
	t.types = types
	var base CiliumSpec
	passes := map[string]bool{}
	for dir, rules := range map[string][]rule{"ingress": spec.Ingress, "egress": spec.Egress} {
		sawAllow := false
		for i, r := range rules {
			if t.rule(&base, dir, i, r, &sawAllow) {
				passes[dir] = true
				break // nothing after a Pass of everything is reached
			}
		}
	}
	// A policy of a type selects its pods into default deny for that
	// direction (in Cilium an empty rule does that), unless it passes
	// every flow it does not decide on to the next tier, whose end (the
	// namespace's profile) allows it.
	off := false
	if passes["ingress"] {
		base.EnableDefaultDeny = &EnableDefaultDeny{Ingress: &off}
	} else if types["Ingress"] && len(base.Ingress) == 0 {
		base.Ingress = []CiliumRule{{}}
	}
	if passes["egress"] {
		if base.EnableDefaultDeny == nil {
			base.EnableDefaultDeny = &EnableDefaultDeny{}
		}
		base.EnableDefaultDeny.Egress = &off
	} else if types["Egress"] && len(base.Egress) == 0 {
		base.Egress = []CiliumRule{{}}
	}
	if !types["Ingress"] {
		base.Ingress, base.IngressDeny = nil, nil
	}
	if !types["Egress"] {
		base.Egress, base.EgressDeny = nil, nil
	}
	if spec.Order != nil && (len(base.IngressDeny) > 0 || len(base.EgressDeny) > 0) {
		t.note("order %g: Cilium has no order; its deny rules win over every allow of every policy", *spec.Order)
	}
	kind, apiVersion := "CiliumNetworkPolicy", "cilium.io/v2"
	if t.global() {
		kind = "CiliumClusterwideNetworkPolicy"
	}
	for i, conj := range sel {
		s := base
		s.EndpointSelector = labelSelector(conj)
		name := "calico-" + t.p.Name
		if len(sel) > 1 {
			name = fmt.Sprintf("%s-%d", name, i+1)
		}
		t.res.Policies = append(t.res.Policies, CiliumPolicy{
			APIVersion: apiVersion, Kind: kind,
			Metadata: Metadata{Name: name, Namespace: t.p.Namespace,
				Labels:      map[string]string{TranslatedLabel: "calico"},
				Annotations: map[string]string{TranslatedLabel: t.res.Source}},
			Spec: s,
		})
	}
}

// rule translates one Calico rule into base; it reports whether the rule
// is a Pass of every flow.
func (t *translator) rule(base *CiliumSpec, dir string, i int, r rule, sawAllow *bool) bool {
	where := fmt.Sprintf("%s rule %d", dir, i+1)
	catchAll := r.Protocol == nil && r.NotProtocol == nil && r.ICMP == nil && r.NotICMP == nil &&
		r.Source.empty() && r.Destination.empty() && (len(r.HTTP) == 0 || string(r.HTTP) == "null")
	switch r.Action {
	case "Allow", "Deny":
	case "Log":
		t.note("%s: Log has no Cilium equivalent (Hubble shows the flows); left out", where)
		return false
	case "Pass":
		if catchAll {
			t.note("%s: Pass of every flow to the next tier, which Cilium does not have: the policy leaves its pods out of default deny (enableDefaultDeny, Cilium 1.17 and later), so what it passes on stays allowed", where)
			return true
		}
		t.note("%s: Pass hands the decision to the next tier, which Cilium does not have; left out", where)
		return false
	default:
		t.note("%s: action %q unknown; left out", where, r.Action)
		return false
	}
	skip := func(why string) { t.note("%s: not translated: %s", where, why) }
	switch {
	case r.NotProtocol != nil || r.NotICMP != nil:
		skip("notProtocol and notICMP have no Cilium equivalent")
		return false
	case len(r.HTTP) > 0 && string(r.HTTP) != "null":
		skip("http matches are Calico's application layer policy; Cilium's L7 rules differ")
		return false
	case len(r.Source.Ports) > 0 || len(r.Source.NotPorts) > 0 || len(r.Destination.NotPorts) > 0:
		skip("source ports and notPorts have no Cilium equivalent")
		return false
	}
	peer, local := r.Source, r.Destination
	if dir == "egress" {
		peer, local = r.Destination, r.Source
	}
	peerPorts := peer
	peerPorts.Ports = nil
	if r.Action == "Deny" && peerPorts.empty() && *sawAllow && t.defaultDeny(dir) {
		t.note("%s: the Deny from every peer after the policy's Allows is left out: Cilium's deny would win over them, and the policy's default deny denies the rest; but another policy's allow of the same flows now adds to it (Calico's order let this policy decide first)", where)
		return false
	}
	local.Ports = nil
	if !local.empty() {
		skip("it narrows the policy's own pods within the rule (" + map[string]string{"ingress": "destination", "egress": "source"}[dir] + " selector or nets)")
		return false
	}
	ports, icmps, ok := t.l4(r, where)
	if !ok {
		return false
	}
	peers, ok := t.peers(peer, where)
	if !ok {
		return false
	}
	var rules []CiliumRule
	for _, p := range peers {
		cr := CiliumRule{ToPorts: ports, ICMPs: icmps}
		if dir == "ingress" {
			cr.FromEndpoints, cr.FromCIDRSet = p.endpoints, p.cidrs
		} else {
			cr.ToEndpoints, cr.ToCIDRSet = p.endpoints, p.cidrs
		}
		rules = append(rules, cr)
	}
	if len(peers) == 0 { // any peer
		rules = append(rules, t.anyPeer(dir, ports, icmps))
	}
	if r.Action == "Allow" {
		*sawAllow = true
		if dir == "ingress" {
			base.Ingress = append(base.Ingress, rules...)
		} else {
			base.Egress = append(base.Egress, rules...)
		}
		return false
	}
	if *sawAllow {
		t.note("%s: a Deny after an Allow: Calico lets the earlier Allow win, Cilium's deny wins over it", where)
	}
	if dir == "ingress" {
		base.IngressDeny = append(base.IngressDeny, rules...)
	} else {
		base.EgressDeny = append(base.EgressDeny, rules...)
	}
	return false
}

// anyPeer is a rule for every peer: Cilium's entity all (every pod, node
// and outside address).
func (t *translator) anyPeer(dir string, ports []PortRule, icmps []ICMPRule) CiliumRule {
	if dir == "ingress" {
		return CiliumRule{FromEntities: []string{"all"}, ToPorts: ports, ICMPs: icmps}
	}
	return CiliumRule{ToEntities: []string{"all"}, ToPorts: ports, ICMPs: icmps}
}

type peer struct {
	endpoints []LabelSelector
	cidrs     []CIDRRule
}

// peers translates the rule's other side; none means any peer.
func (t *translator) peers(e entity, where string) ([]peer, bool) {
	skip := func(why string) ([]peer, bool) { t.note("%s: not translated: %s", where, why); return nil, false }
	switch {
	case e.NotSelector != "":
		return skip("notSelector has no Cilium equivalent")
	case len(e.NotNets) > 0:
		return skip("notNets has no Cilium equivalent")
	case len(e.Services) > 0 && string(e.Services) != "null":
		return skip("services match a Service's endpoints, which Cilium's toServices does only for egress to services without selectors")
	case len(e.Nets) > 0 && (e.Selector != "" || e.NamespaceSelector != "" || e.ServiceAccounts != nil):
		return skip("nets together with a selector match both at once; Cilium's peers match either")
	case e.ServiceAccounts != nil && e.ServiceAccounts.Selector != "":
		return skip("serviceAccounts.selector (Cilium selects service accounts by name only)")
	}
	if len(e.Nets) > 0 {
		var cidrs []CIDRRule
		for _, n := range e.Nets {
			if q, err := netip.ParsePrefix(n); err == nil && q.Addr().Is4() {
				cidrs = append(cidrs, CIDRRule{CIDR: q.String()})
			} else if err == nil {
				t.note("%s: IPv6 net %s left out (the migration is IPv4)", where, n)
			} else {
				return skip(fmt.Sprintf("net %q does not read", n))
			}
		}
		return []peer{{cidrs: cidrs}}, true
	}
	if e.Selector == "" && e.NamespaceSelector == "" && e.ServiceAccounts == nil {
		return nil, true
	}
	sel, err := ParseSelector(e.Selector)
	if err != nil {
		return skip(err.Error())
	}
	setsOf := sel
	if e.NamespaceSelector != "" {
		ns, err := ParseSelector(e.NamespaceSelector)
		if err != nil {
			return skip("namespaceSelector: " + err.Error())
		}
		sel = and(namespaceTerms(ns), sel)
		setsOf = nil // sets in other namespaces: their namespaces' labels are not read here
		if len(t.sets) > 0 {
			t.note("%s: NetworkSets in the namespaces of its namespaceSelector are not matched", where)
		}
	}
	if e.ServiceAccounts != nil && len(e.ServiceAccounts.Names) > 0 {
		names := append([]string{}, e.ServiceAccounts.Names...)
		sort.Strings(names)
		sel = and(Selector{{{Key: ciliumServiceAccountKey, Op: "in", Values: names}}}, sel)
	}
	var out peer
	for _, conj := range sel {
		out.endpoints = append(out.endpoints, labelSelector(conj))
	}
	if e.Selector != "" {
		for _, s := range t.sets {
			if t.setInScope(s) && setsOf.Matches(s.Labels) {
				for _, n := range s.Nets {
					if q, err := netip.ParsePrefix(n); err == nil && q.Addr().Is4() {
						out.cidrs = append(out.cidrs, CIDRRule{CIDR: q.String()})
					}
				}
			}
		}
	}
	return []peer{out}, true
}

// setInScope: a namespaced policy's selectors match the NetworkSets of its
// namespace, a global one's the GlobalNetworkSets.
func (t *translator) setInScope(s NetworkSet) bool {
	if t.global() {
		return s.Namespace == ""
	}
	return s.Namespace == t.p.Namespace
}

// l4 translates protocol, ports and ICMP.
func (t *translator) l4(r rule, where string) ([]PortRule, []ICMPRule, bool) {
	proto := ""
	if r.Protocol != nil {
		proto = strings.ToUpper(r.Protocol.String())
	}
	ports := r.Destination.Ports
	switch proto {
	case "", "TCP", "UDP", "SCTP":
	case "ICMP", "ICMPV6":
		family := "IPv4"
		if proto == "ICMPV6" {
			family = "IPv6"
		}
		if r.ICMP == nil || r.ICMP.Type == nil {
			t.note("%s: not translated: ICMP of every type (Cilium's icmps name a type)", where)
			return nil, nil, false
		}
		if r.ICMP.Code != nil {
			t.note("%s: ICMP code %d left out (Cilium matches the type only)", where, *r.ICMP.Code)
		}
		return nil, []ICMPRule{{Fields: []ICMPField{{Type: *r.ICMP.Type, Family: family}}}}, true
	default:
		t.note("%s: not translated: protocol %s (Cilium matches TCP, UDP, SCTP and ICMP)", where, proto)
		return nil, nil, false
	}
	if len(ports) == 0 {
		if proto != "" {
			return []PortRule{{Ports: []PortProtocol{{Port: "0", Protocol: proto}}}}, nil, true
		}
		return nil, nil, true
	}
	var pp []PortProtocol
	for _, p := range ports {
		if p.Type == intstr.Int {
			pp = append(pp, PortProtocol{Port: fmt.Sprint(p.IntVal), Protocol: proto})
			continue
		}
		var lo, hi int
		if n, _ := fmt.Sscanf(p.StrVal, "%d:%d", &lo, &hi); n == 2 {
			pp = append(pp, PortProtocol{Port: fmt.Sprint(lo), EndPort: hi, Protocol: proto})
			continue
		}
		pp = append(pp, PortProtocol{Port: p.StrVal, Protocol: proto}) // a named port
	}
	return []PortRule{{Ports: pp}}, nil, true
}

// namespaceTerms turns a namespaceSelector into terms on Cilium's
// namespace labels; Calico's projectcalico.org/name is the namespace's
// name. Each conjunction also says "in any namespace", which lifts the
// namespaced policy's own-namespace default.
func namespaceTerms(ns Selector) Selector {
	var out Selector
	for _, conj := range ns {
		c := []Term{{Key: ciliumNamespaceKey, Op: "has"}}
		for _, t := range conj {
			if t.Key == "projectcalico.org/name" {
				t.Key = ciliumNamespaceKey
			} else {
				t.Key = ciliumNamespaceLabels + t.Key
			}
			c = append(c, t)
		}
		out = append(out, c)
	}
	return out
}

// labelSelector writes a conjunction as a Kubernetes label selector;
// Calico's own pod keys become Cilium's.
func labelSelector(conj []Term) LabelSelector {
	var s LabelSelector
	for _, t := range conj {
		switch t.Key {
		case "projectcalico.org/namespace":
			t.Key = ciliumNamespaceKey
		case "projectcalico.org/serviceaccount", "projectcalico.org/serviceaccountname":
			t.Key = ciliumServiceAccountKey
		}
		switch t.Op {
		case "==":
			if s.MatchLabels == nil {
				s.MatchLabels = map[string]string{}
			}
			s.MatchLabels[t.Key] = t.Values[0]
		case "!=":
			s.MatchExpressions = append(s.MatchExpressions, Requirement{Key: t.Key, Operator: "NotIn", Values: t.Values})
		case "in":
			s.MatchExpressions = append(s.MatchExpressions, Requirement{Key: t.Key, Operator: "In", Values: t.Values})
		case "not in":
			s.MatchExpressions = append(s.MatchExpressions, Requirement{Key: t.Key, Operator: "NotIn", Values: t.Values})
		case "has":
			s.MatchExpressions = append(s.MatchExpressions, Requirement{Key: t.Key, Operator: "Exists"})
		case "!has":
			s.MatchExpressions = append(s.MatchExpressions, Requirement{Key: t.Key, Operator: "DoesNotExist"})
		}
	}
	sort.Slice(s.MatchExpressions, func(i, j int) bool {
		a, b := s.MatchExpressions[i], s.MatchExpressions[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Operator < b.Operator
	})
	return s
}

// Render writes the translations as one YAML stream to apply: each Cilium
// policy as a document, preceded by comments naming its Calico source and
// what was not translated (a source with nothing translated is comments
// only).
func Render(results []Result) ([]byte, error) {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "# from Calico's %s", r.Source)
		if len(r.Notes) == 0 {
			b.WriteString(": translated exactly\n")
		} else {
			b.WriteString(":\n")
			for _, n := range r.Notes {
				fmt.Fprintf(&b, "#   %s\n", n)
			}
		}
		for _, p := range r.Policies {
			y, err := yaml.Marshal(p)
			if err != nil {
				return nil, err
			}
			b.WriteString("---\n")
			b.Write(y)
		}
	}
	return []byte(b.String()), nil
}
