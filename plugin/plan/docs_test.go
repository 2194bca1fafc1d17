package plan

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/check"
)

// TestDocsPlanSchema fails when a JSON field of the report, or a check id,
// is missing from docs/plan-schema.md.
func TestDocsPlanSchema(t *testing.T) {
	data, err := os.ReadFile("../../docs/plan-schema.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			if tag == "-" || !f.IsExported() {
				continue
			}
			if tag != "" && !regexp.MustCompile(`\b`+regexp.QuoteMeta(tag)+`\b`).MatchString(doc) {
				t.Errorf("field %s.%s (json %q) is not documented", ty.Name(), f.Name, tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Report{}))
	for _, id := range []string{check.IDCNI, check.IDBackend, check.IDPodCIDR, check.IDPoolCapacity, check.IDServiceCIDR,
		check.IDTunnelPort, check.IDNetworkPolicy, check.IDKubeProxy, check.IDPDB, check.IDCilium, check.IDNodesReady, check.IDPermissions,
		check.IDNodeAddress, check.IDCalicoPolicies, check.IDServiceProxy,
		check.IDStrategy, check.IDPodSNAT} {
		if !strings.Contains(doc, "`"+id+"`") {
			t.Errorf("check id %q is not documented", id)
		}
	}
}
