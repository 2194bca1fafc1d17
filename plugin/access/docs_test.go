package access

import (
	"os"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestDocsRBAC checks that docs/rbac.yaml grants every permission Needs
// lists, so users who apply it pass plan's permissions check.
func TestDocsRBAC(t *testing.T) {
	data, err := os.ReadFile("../../docs/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var clusterRules, nsRules []rbacv1.PolicyRule
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct{ Namespace string }
			Rules    []rbacv1.PolicyRule `json:"rules"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "ClusterRole":
			clusterRules = append(clusterRules, obj.Rules...)
		case "Role":
			if obj.Metadata.Namespace != "kube-system" {
				t.Fatalf("Role in %q", obj.Metadata.Namespace)
			}
			nsRules = append(nsRules, obj.Rules...)
		}
	}
	grants := func(rules []rbacv1.PolicyRule, n Need) bool {
		res := n.Resource
		if n.Subresource != "" {
			res += "/" + n.Subresource
		}
		for _, r := range rules {
			if contains(r.APIGroups, n.Group) && contains(r.Resources, res) && contains(r.Verbs, n.Verb) {
				return true
			}
		}
		return false
	}
	for _, n := range append(Needs("kube-system", "kube-flannel"), ConnectivityNeeds("cni-migrate-connectivity")...) {
		ok := grants(clusterRules, n) || (n.Namespace == "kube-system" && grants(nsRules, n))
		if !ok {
			t.Errorf("docs/rbac.yaml does not grant %s (%s)", n, n.Why)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s || x == "*" {
			return true
		}
	}
	return false
}
