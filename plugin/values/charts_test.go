package values

import (
	"encoding/json"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
)

func TestChartTableCoversSupportedVersions(t *testing.T) {
	for _, v := range ciliumver.Supported() {
		if _, ok := rulesFor(v); !ok {
			t.Errorf("no chart rules for %s", v)
		}
	}
	if _, ok := rulesFor(ciliumver.Version{Major: 1, Minor: 13}); ok {
		t.Error("chart rules for unsupported 1.13")
	}
}

// chartDir is the Cilium chart of version v in the Go module cache, or "" if
// that module was not downloaded (go mod download github.com/cilium/cilium@vX).
func chartDir(v ciliumver.Version) string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		cache = filepath.Join(build.Default.GOPATH, "pkg", "mod")
	}
	dir := filepath.Join(cache, "github.com", "cilium", "cilium@v"+v.String(), "install", "kubernetes", "cilium")
	if _, err := os.Stat(filepath.Join(dir, "values.yaml")); err != nil {
		return ""
	}
	return dir
}

// TestChartTableMatchesCharts re-checks the table against the chart files of
// the pinned releases, when they are in the module cache.
func TestChartTableMatchesCharts(t *testing.T) {
	for _, v := range ciliumver.Supported() {
		t.Run(v.String(), func(t *testing.T) {
			dir := chartDir(v)
			if dir == "" {
				t.Skipf("chart not in the module cache; run go mod download github.com/cilium/cilium@v%s", v)
			}
			read := func(name string) string {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				return string(b)
			}
			values, configmap, validate := read("values.yaml"), read("templates/cilium-configmap.yaml"), read("templates/validate.yaml")
			schema := read("values.schema.json")
			r, _ := rulesFor(v)

			check := func(what string, got, want bool) {
				t.Helper()
				if got != want {
					t.Errorf("%s: chart says %v, table says %v", what, got, want)
				}
			}
			check("values.yaml has tunnel", strings.Contains(values, "\ntunnel: "), r.tunnelKey == tunnelIgnored)
			check("validate.yaml rejects tunnel", strings.Contains(validate, "tunnel was deprecated in v1.14 and has been removed"), r.tunnelKey == tunnelRejected)
			check("configmap accepts partial/strict", strings.Contains(configmap, `(ne $kubeProxyReplacement "strict")`), len(r.kprValues) == 5)
			check("values.schema.json exists", schema != "", r.hasSchema)
			check("validate.yaml checks the cluster name", strings.Contains(validate, "The cluster name is invalid"), r.clusterNameValidated)
			check("configmap quotes cluster-name", strings.Contains(configmap, "cluster-name: {{ .Values.cluster.name | quote }}"), r.clusterNameQuoted)
			check("chart has k8sServiceHostRef", strings.Contains(values, "k8sServiceHostRef:"), r.hasServiceHostRef)
			if r.clusterNameValidated && !strings.Contains(validate, `regexMatch "^([a-z0-9][-a-z0-9]*)?[a-z0-9]$" .Values.cluster.name`) {
				t.Error("validate.yaml checks the cluster name with another rule than the one clusterName applies")
			}
			if schema != "" {
				var sc struct {
					Properties struct {
						KPR     map[string]any `json:"kubeProxyReplacement"`
						Cluster struct {
							Properties struct {
								Name map[string]any `json:"name"`
							} `json:"properties"`
						} `json:"cluster"`
					} `json:"properties"`
				}
				if err := json.Unmarshal([]byte(schema), &sc); err != nil {
					t.Fatal(err)
				}
				if _, ok := sc.Properties.Cluster.Properties.Name["pattern"]; ok {
					t.Error("values.schema.json gives cluster.name a pattern")
				}
				var types []string
				if ty, ok := sc.Properties.KPR["type"].([]any); ok {
					for _, x := range ty {
						types = append(types, fmt.Sprint(x))
					}
				}
				check("kubeProxyReplacement schema type "+strings.Join(types, ", "), strings.Join(types, ", ") == r.kprSchemaTypes, true)
			} else if r.kprSchemaTypes != "" {
				t.Error("table gives kubeProxyReplacement a schema type, but the chart has no schema")
			}
			// Every key the migration sets is in values.yaml.
			for _, key := range []string{"routingMode:", "tunnelProtocol:", "tunnelPort:", "policyEnforcementMode:", "k8sServiceHost:", "k8sServicePort:",
				"customConf:", "exclusive:", "uninstall:", "ipv4NativeRoutingCIDR:", "clusterPoolIPv4PodCIDRList:", "clusterPoolIPv4MaskSize:", "hostLegacyRouting:", "unmanagedPodWatcher:", "restart:"} {
				if !strings.Contains(values, key) {
					t.Errorf("values.yaml has no %s", key)
				}
			}
			// The configmap maps the migration's keys to agent options.
			for _, opt := range []string{"routing-mode:", "tunnel-protocol:", "tunnel-port:", "custom-cni-conf:", "cni-exclusive:", "ipv4-native-routing-cidr:", "enable-policy:", "enable-host-legacy-routing:", "kube-proxy-replacement:", "cluster-name:", "cluster-pool-ipv4-cidr:", "cluster-pool-ipv4-mask-size:"} {
				if !strings.Contains(configmap, opt) {
					t.Errorf("cilium-configmap.yaml writes no %s", opt)
				}
			}
		})
	}
}
