package calicopolicy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// labelSets are what the fuzzed selectors are matched against.
var labelSets = []map[string]string{
	nil,
	{"app": "web"},
	{"app": "db", "tier": "back", "projectcalico.org/namespace": "shop"},
	{"a": "b", "role": "x", "k8s-app": "kube-dns"},
}

// FuzzParseSelector: any selector string parses or is refused, without a
// panic; one that parses matches label sets the same way with and without
// parentheses around it, and again when parsed a second time.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{
		"", "all()", "app == 'web'", "app != \"web\"", "has(app)", "!has(tier)",
		"app in {'web', 'db'}", "app not in {'x'}", "a == 'b' && (c == 'd' || !has(e))",
		"app starts with 'we'", "global()", "projectcalico.org/namespace == 'shop'", "((", "a ==", "!(a == 'b')",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(s)
		if err != nil {
			t.Fatalf("%q parsed once, then not: %v", s, err)
		}
		wrapped, werr := ParseSelector("(" + s + ")")
		for _, l := range labelSets {
			m := sel.Matches(l)
			if again.Matches(l) != m {
				t.Fatalf("%q matches %v differently on a second parse", s, l)
			}
			// An empty selector is Calico's all(), which "()" is not.
			if werr == nil && strings.TrimSpace(s) != "" && wrapped.Matches(l) != m {
				t.Fatalf("%q and (%s) match %v differently", s, s, l)
			}
		}
	})
}

// FuzzTranslate: any policy spec translates without a panic, and every
// Cilium policy it gives renders to YAML that reads back as a Cilium
// policy labelled as translated from Calico.
func FuzzTranslate(f *testing.F) {
	data, err := os.ReadFile("testdata/calico.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			Kind string          `json:"kind"`
			Spec json.RawMessage `json:"spec"`
		}
		if yaml.Unmarshal([]byte(doc), &obj) == nil && (obj.Kind == KindNetworkPolicy || obj.Kind == KindGlobalNetworkPolicy) {
			f.Add([]byte(obj.Spec), obj.Kind == KindGlobalNetworkPolicy)
		}
	}
	f.Add([]byte(`{"selector":"a == 'x' || b == 'y'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":[80,"8000:8100","http"]}}]}`), false)
	f.Add([]byte(`{"types":["Egress"],"egress":[{"action":"Deny","destination":{"nets":["169.254.169.254/32"]}},{"action":"Pass"}]}`), true)
	f.Add([]byte(`{"ingress":[{"action":"Allow","protocol":"ICMP","icmp":{"type":8,"code":0}},{"action":"Log"}]}`), false)
	f.Add([]byte(`not json`), false)
	sets := []NetworkSet{{Namespace: "shop", Name: "partners", Labels: map[string]string{"role": "partner"}, Nets: []string{"198.51.100.0/24", "2001:db8::/32"}}}
	f.Fuzz(func(t *testing.T, spec []byte, global bool) {
		p := Policy{Kind: KindNetworkPolicy, Namespace: "shop", Name: "fuzzed", Spec: json.RawMessage(spec)}
		if global {
			p.Kind, p.Namespace = KindGlobalNetworkPolicy, ""
		}
		r := Translate(p, sets)
		if len(r.Policies) == 0 {
			return
		}
		out, err := Render([]Result{r})
		if err != nil {
			t.Fatalf("translation of %s does not render: %v", spec, err)
		}
		docs := strings.Split(string(out), "\n---\n")[1:]
		if len(docs) != len(r.Policies) {
			t.Fatalf("%d policies rendered as %d documents:\n%s", len(r.Policies), len(docs), out)
		}
		for _, doc := range docs {
			var cp CiliumPolicy
			if err := yaml.UnmarshalStrict([]byte(doc), &cp); err != nil || !strings.HasPrefix(cp.Kind, "Cilium") ||
				cp.Metadata.Labels[TranslatedLabel] != "calico" || !strings.HasPrefix(cp.Metadata.Name, "calico-fuzzed") {
				t.Fatalf("translation of %s is not a translated Cilium policy (%v):\n%s", spec, err, doc)
			}
			if global != (cp.Metadata.Namespace == "") {
				t.Fatalf("translation of %s (global %v) has namespace %q", spec, global, cp.Metadata.Namespace)
			}
		}
	})
}
