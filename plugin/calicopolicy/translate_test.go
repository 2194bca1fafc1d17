package calicopolicy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestTranslateGolden translates testdata/calico.yaml (policies and sets
// as crd.projectcalico.org/v1 stores them) into testdata/cilium.golden.
func TestTranslateGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/calico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var policies []Policy
	var sets []NetworkSet
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name, Namespace string
				Labels          map[string]string
			} `json:"metadata"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case KindNetworkPolicy, KindGlobalNetworkPolicy:
			policies = append(policies, Policy{Kind: obj.Kind, Namespace: obj.Metadata.Namespace, Name: obj.Metadata.Name, Spec: obj.Spec})
		case "NetworkSet", "GlobalNetworkSet":
			var spec struct{ Nets []string }
			if err := json.Unmarshal(obj.Spec, &spec); err != nil {
				t.Fatal(err)
			}
			sets = append(sets, NetworkSet{Namespace: obj.Metadata.Namespace, Name: obj.Metadata.Name, Labels: obj.Metadata.Labels, Nets: spec.Nets})
		}
	}
	var results []Result
	for _, p := range policies {
		results = append(results, Translate(p, sets))
	}
	got, err := Render(results)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "cilium.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
	// Every document is a Cilium policy that reads back.
	for _, doc := range strings.Split(string(got), "\n---\n")[1:] {
		var p CiliumPolicy
		if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil || !strings.HasPrefix(p.Kind, "Cilium") || p.Metadata.Labels[TranslatedLabel] != "calico" {
			t.Errorf("not a translated Cilium policy (%v):\n%s", err, doc)
		}
	}
}

func TestTranslateNotes(t *testing.T) {
	tests := []struct {
		name, spec string
		policies   int
		note       string
	}{
		{"exact", `{"selector":"app == 'web'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":[80]}}]}`, 1, ""},
		{"host endpoint policy", `{"selector":"all()","preDNAT":true,"applyOnForward":true}`, 0, "host endpoints"},
		{"log", `{"ingress":[{"action":"Log"},{"action":"Allow"}]}`, 1, "Log has no Cilium equivalent"},
		{"pass", `{"ingress":[{"action":"Pass","protocol":"TCP"}]}`, 1, "Pass hands the decision"},
		{"deny of every peer after allow", `{"order":10,"ingress":[{"action":"Allow","source":{"selector":"a == 'b'"}},{"action":"Deny"}]}`, 1, "the Deny from every peer after the policy's Allows is left out"},
		{"deny of some after allow", `{"order":10,"ingress":[{"action":"Allow","source":{"selector":"a == 'b'"}},{"action":"Deny","source":{"nets":["10.0.0.0/8"]}}]}`, 1, "a Deny after an Allow"},
		{"pass of everything", `{"types":["Egress"],"egress":[{"action":"Deny","destination":{"nets":["169.254.169.254/32"]}},{"action":"Pass"}]}`, 1, "leaves its pods out of default deny"},
		{"source ports", `{"ingress":[{"action":"Allow","protocol":"TCP","source":{"ports":[53]}}]}`, 1, "source ports"},
		{"nets and selector", `{"egress":[{"action":"Allow","destination":{"nets":["10.0.0.0/8"],"selector":"a == 'b'"}}]}`, 1, "match both at once"},
		{"starts with", `{"selector":"app starts with 'we'"}`, 0, "whole values only"},
		{"or selector makes two", `{"selector":"a == 'x' || b == 'y'","ingress":[{"action":"Allow"}]}`, 2, ""},
		{"icmp code", `{"ingress":[{"action":"Allow","protocol":"ICMP","icmp":{"type":8,"code":0}}]}`, 1, "ICMP code 0 left out"},
		{"sa selector", `{"serviceAccountSelector":"role == 'x'"}`, 0, "service accounts by name only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Translate(Policy{Kind: KindNetworkPolicy, Namespace: "shop", Name: "p", Spec: json.RawMessage(tt.spec)}, nil)
			if len(r.Policies) != tt.policies {
				t.Errorf("%d policies, want %d: %+v", len(r.Policies), tt.policies, r)
			}
			all := strings.Join(r.Notes, "\n")
			if tt.note == "" && all != "" || tt.note != "" && !strings.Contains(all, tt.note) {
				t.Errorf("notes %q, want %q", r.Notes, tt.note)
			}
		})
	}
}
