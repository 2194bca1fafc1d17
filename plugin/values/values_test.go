package values

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mustVersion(t *testing.T, s string) ciliumver.Version {
	t.Helper()
	v, err := ciliumver.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// baseInput is a kind cluster with flannel and kube-proxy.
func baseInput(t *testing.T, version string) Input {
	return Input{
		Version:        mustVersion(t, version),
		PodCIDR:        "10.245.0.0/16",
		MaskSize:       24,
		TunnelProtocol: "vxlan",
		TunnelPort:     8473,
		ClusterName:    "kind-kind",
		// proposal.SNATExclusion for flannel's 10.244.0.0/16 and 10.245.0.0/16.
		IPv4NativeRoutingCIDR: "10.244.0.0/15",
	}
}

func generate(t *testing.T, in Input) (*Doc, *Doc, []string) {
	t.Helper()
	ini, fin, warnings, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return ini, fin, warnings
}

// parseBack reads a rendered document the way Helm reads a values file.
func parseBack(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("rendered YAML does not parse: %v\n%s", err, b)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func checkRoundTrip(t *testing.T, d *Doc) []byte {
	t.Helper()
	b, err := d.YAML()
	if err != nil {
		t.Fatalf("%s: YAML: %v", d.Name(), err)
	}
	if got, want := parseBack(t, b), d.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not parse back to its map\n got: %#v\nwant: %#v\n%s", d.Name(), got, want, b)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plugin/values -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	kpr := func(in Input) Input {
		in.KubeProxyReplacement = true
		in.K8sServiceHost = "172.18.0.2"
		in.K8sServicePort = 6443
		in.OperatorReplicas = 1
		in.TunnelProtocol = "geneve"
		in.TunnelPort = 6082
		return in
	}
	user := func(in Input) Input {
		in.UserFile = "my-values.yaml"
		in.User = map[string]any{
			"hubble": map[string]any{
				"relay": map[string]any{"enabled": true},
				"ui":    map[string]any{"enabled": true},
			},
			"operator": map[string]any{
				"prometheus":  map[string]any{"enabled": true},
				"tolerations": []any{map[string]any{"operator": "Exists"}},
			},
			"ipam": map[string]any{
				"operator": map[string]any{"clusterPoolIPv4MaskSize": 25},
			},
			"cni":               map[string]any{"customConf": false},
			"extraArgs":         []any{"--enable-ipv4-big-tcp=false"},
			"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
			"rollOutCiliumPods": true,
			"debug":             map[string]any{"enabled": nil},
		}
		return in
	}
	// k3s: its containerd's CNI directories.
	k3s := func(in Input) Input {
		in.CNIConfPath = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
		in.CNIBinPath = "/var/lib/rancher/k3s/data/cni"
		return in
	}
	tests := []struct {
		name string
		in   Input
	}{
		{"1.14", baseInput(t, "1.14")},
		{"1.15", baseInput(t, "1.15.19")},
		{"1.16", baseInput(t, "1.16")},
		{"1.18", baseInput(t, "1.18.11")},
		{"1.20", baseInput(t, "1.20")},
		{"1.18-user", user(baseInput(t, "1.18.11"))},
		{"1.20-kpr", kpr(baseInput(t, "1.20.2"))},
		{"1.20-k3s", k3s(baseInput(t, "1.20.2"))},
	}
	for _, v := range ciliumver.Supported() {
		in := baseInput(t, v.String())
		in.Strategy = InPlace
		tests = append(tests, struct {
			name string
			in   Input
		}{"in-place-" + v.MinorString(), in})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini, fin, warnings := generate(t, tt.in)
			golden(t, tt.name+"-"+InitialFile, checkRoundTrip(t, ini))
			golden(t, tt.name+"-"+FinalFile, checkRoundTrip(t, fin))
			if tt.in.User != nil {
				golden(t, tt.name+"-warnings.txt", []byte(strings.Join(warnings, "\n")+"\n"))
			} else if len(warnings) != 0 {
				t.Errorf("warnings without user values: %q", warnings)
			}
		})
	}
}

// TestMigrationValues checks the guide's values directly, per version.
func TestMigrationValues(t *testing.T) {
	for _, s := range ciliumver.Supported() {
		t.Run(s.String(), func(t *testing.T) {
			ini, fin, _ := generate(t, baseInput(t, s.String()))
			want := map[string]any{
				"operator":       map[string]any{"unmanagedPodWatcher": map[string]any{"restart": false}},
				"routingMode":    "tunnel",
				"tunnelProtocol": "vxlan",
				"tunnelPort":     8473.0,
				"cni":            map[string]any{"customConf": true, "uninstall": false},
				"ipam": map[string]any{
					"mode": "cluster-pool",
					"operator": map[string]any{
						"clusterPoolIPv4PodCIDRList": []any{"10.245.0.0/16"},
						"clusterPoolIPv4MaskSize":    24.0,
					},
				},
				"policyEnforcementMode": "never",
				"bpf":                   map[string]any{"hostLegacyRouting": true},
				"ipv4NativeRoutingCIDR": "10.244.0.0/15",
				"kubeProxyReplacement":  "false",
				"cluster":               map[string]any{"name": "kind-kind"},
			}
			if got := ini.Map(); !reflect.DeepEqual(got, want) {
				t.Errorf("initial values\n got: %#v\nwant: %#v", got, want)
			}
			delete(want, "ipv4NativeRoutingCIDR")
			want["operator"] = map[string]any{"unmanagedPodWatcher": map[string]any{"restart": true}}
			want["cni"] = map[string]any{"customConf": false, "uninstall": false}
			want["policyEnforcementMode"] = "default"
			want["bpf"] = map[string]any{"hostLegacyRouting": false}
			if got := fin.Map(); !reflect.DeepEqual(got, want) {
				t.Errorf("final values\n got: %#v\nwant: %#v", got, want)
			}
			if _, ok := ini.Map()["tunnel"]; ok {
				t.Error("the deprecated tunnel key is set")
			}
			if ini.Name() != InitialFile || fin.Name() != FinalFile || ini.Version() != s {
				t.Errorf("names %q %q, version %s", ini.Name(), fin.Name(), ini.Version())
			}
		})
	}
}

func TestKubeProxyReplacementAndOperator(t *testing.T) {
	in := baseInput(t, "1.17")
	in.KubeProxyReplacement = true
	in.K8sServiceHost = "10.0.0.1"
	in.K8sServicePort = 443
	in.OperatorReplicas = 1
	ini, fin, _ := generate(t, in)
	for _, d := range []*Doc{ini, fin} {
		m := d.Map()
		if m["kubeProxyReplacement"] != "true" || m["k8sServiceHost"] != "10.0.0.1" || m["k8sServicePort"] != 443.0 {
			t.Errorf("%s: kube-proxy replacement values wrong: %#v", d.Name(), m)
		}
		if got, _ := lookup(m, []string{"operator", "replicas"}); got != 1.0 {
			t.Errorf("%s: operator.replicas = %#v, want 1", d.Name(), got)
		}
	}
	// With kube-proxy, no API server address unless one is given (the
	// one kube-proxy's own kubeconfig names), then in both files.
	in = baseInput(t, "1.17")
	in.OperatorReplicas = 3
	ini, _, _ = generate(t, in)
	if _, ok := ini.Map()["k8sServiceHost"]; ok {
		t.Error("k8sServiceHost set with kube-proxy present and no address given")
	}
	in.K8sServiceHost = "10.0.0.1"
	in.K8sServicePort = 6443
	ini, fin, _ = generate(t, in)
	for _, d := range []*Doc{ini, fin} {
		if m := d.Map(); m["kubeProxyReplacement"] != "false" || m["k8sServiceHost"] != "10.0.0.1" || m["k8sServicePort"] != 6443.0 {
			t.Errorf("%s: kube-proxy's API server address not set: %#v", d.Name(), m)
		}
	}
	m := ini.Map()
	if got, _ := lookup(m, []string{"operator", "replicas"}); got != 3.0 {
		t.Errorf("operator.replicas = %#v, want 3", got)
	}
	in.OperatorReplicas = 0
	ini, _, _ = generate(t, in)
	if hasPath(ini.Map(), []string{"operator", "replicas"}) {
		t.Error("operator.replicas set although 0 means the chart default")
	}
	in.ClusterName = ""
	ini, _, _ = generate(t, in)
	if _, ok := ini.Map()["cluster"]; ok {
		t.Error("cluster set without a cluster name")
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name  string
		user  map[string]any
		check map[string]any // dotted path -> expected value in both documents; absent() = key missing
	}{
		{
			name: "maps merge deeply",
			user: map[string]any{"operator": map[string]any{"prometheus": map[string]any{"enabled": true}, "unmanagedPodWatcher": map[string]any{"intervalSeconds": 30}}},
			check: map[string]any{
				"operator.prometheus.enabled":                  true,
				"operator.unmanagedPodWatcher.intervalSeconds": 30.0,
				"routingMode": "tunnel",
			},
		},
		{
			name:  "lists replace",
			user:  map[string]any{"ipam": map[string]any{"operator": map[string]any{"clusterPoolIPv4PodCIDRList": []any{"10.9.0.0/16", "10.10.0.0/16"}}}},
			check: map[string]any{"ipam.operator.clusterPoolIPv4PodCIDRList": []any{"10.9.0.0/16", "10.10.0.0/16"}, "ipam.operator.clusterPoolIPv4MaskSize": 24.0, "ipam.mode": "cluster-pool"},
		},
		{
			name:  "scalars replace",
			user:  map[string]any{"tunnelPort": 9000, "routingMode": "native"},
			check: map[string]any{"tunnelPort": 9000.0, "routingMode": "native"},
		},
		{
			name:  "null stays null so that Helm deletes the key",
			user:  map[string]any{"bpf": map[string]any{"hostLegacyRouting": nil}, "hubble": nil},
			check: map[string]any{"bpf.hostLegacyRouting": nil, "hubble": nil},
		},
		{
			name:  "a scalar replaces a map",
			user:  map[string]any{"cni": "none"},
			check: map[string]any{"cni": "none", "cni.customConf": absent{}},
		},
		{
			name:  "a map replaces a scalar",
			user:  map[string]any{"routingMode": map[string]any{"a": 1}},
			check: map[string]any{"routingMode": map[string]any{"a": 1.0}},
		},
		{
			name:  "an empty map changes nothing",
			user:  map[string]any{"cni": map[string]any{}},
			check: map[string]any{"cni.uninstall": false},
		},
		{
			name:  "Go types become Helm's",
			user:  map[string]any{"a": []string{"x"}, "b": map[string]string{"c": "d"}, "e": int64(7), "f": float32(0.5)},
			check: map[string]any{"a": []any{"x"}, "b.c": "d", "e": 7.0, "f": 0.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t, "1.18")
			in.User = tt.user
			before := deepCopy(tt.user)
			ini, fin, _ := generate(t, in)
			for _, d := range []*Doc{ini, fin} {
				m := d.Map()
				for path, want := range tt.check {
					got, ok := lookup(m, strings.Split(path, "."))
					if _, wantAbsent := want.(absent); wantAbsent {
						if ok {
							t.Errorf("%s: %s = %#v, want it absent", d.Name(), path, got)
						}
						continue
					}
					if !ok || !reflect.DeepEqual(got, want) {
						t.Errorf("%s: %s = %#v (present %v), want %#v", d.Name(), path, got, ok, want)
					}
				}
				checkRoundTrip(t, d)
			}
			if !reflect.DeepEqual(tt.user, before) {
				t.Error("Generate changed the user's map")
			}
		})
	}
}

type absent struct{}

func TestDocsAreIndependent(t *testing.T) {
	in := baseInput(t, "1.18")
	in.User = map[string]any{"hubble": map[string]any{"enabled": true}}
	ini, fin, _ := generate(t, in)
	m := ini.Map()
	m["hubble"].(map[string]any)["enabled"] = false
	m["routingMode"] = "native"
	if got, _ := lookup(ini.Map(), []string{"hubble", "enabled"}); got != true {
		t.Error("changing Map() changed the document")
	}
	if got, _ := lookup(fin.Map(), []string{"hubble", "enabled"}); got != true {
		t.Error("initial and final share values")
	}
	in.User["hubble"].(map[string]any)["enabled"] = false
	if got, _ := lookup(ini.Map(), []string{"hubble", "enabled"}); got != true {
		t.Error("the document shares the user's map")
	}
}

func TestComments(t *testing.T) {
	in := baseInput(t, "1.16")
	in.UserFile = "/tmp/my values.yaml"
	in.User = map[string]any{
		"cni":        map[string]any{"customConf": false, "uninstall": false},
		"ipam":       map[string]any{"operator": nil},
		"hubble":     map[string]any{"relay": map[string]any{"enabled": true}},
		"operator":   map[string]any{"replicas": 1},
		"zzz":        1,
		"aaa":        "x",
		"tunnelPort": 8473,
	}
	ini, fin, _ := generate(t, in)
	b, _ := ini.YAML()
	s := string(b)
	for _, want := range []string{
		"# values-initial.yaml: ",
		"Cilium 1.16",
		"Generated by kubectl cni-migrate",
		"# Values from --values /tmp/my values.yaml are merged on top.",
		"    # no restarts of pods Cilium does not manage while the migration runs",
		"  # from --values /tmp/my values.yaml, replacing the migration's value true\n  customConf: false\n",
		"  # from --values /tmp/my values.yaml\n  uninstall: false\n",
		"  # from --values /tmp/my values.yaml, replacing the migration's values under ipam.operator\n  operator: null\n",
		"# from --values /tmp/my values.yaml\nhubble:\n  relay:\n    enabled: true\n",
		"# from --values /tmp/my values.yaml\ntunnelPort: 8473\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("initial document lacks %q:\n%s", want, s)
		}
	}
	// The migration's keys come first in the guide's order, the user's after, sorted.
	order := []string{"\noperator:", "\nroutingMode:", "\ntunnelProtocol:", "\ntunnelPort:", "\ncni:", "\nipam:", "\npolicyEnforcementMode:", "\nbpf:", "\nkubeProxyReplacement:", "\ncluster:", "\naaa:", "\nhubble:", "\nzzz:"}
	last := -1
	for _, k := range order {
		i := strings.Index(s, k)
		if i < last {
			t.Errorf("%q is out of order in\n%s", k, s)
		}
		last = i
	}
	b, _ = fin.YAML()
	if !strings.HasPrefix(string(b), "# values-final.yaml: ") {
		t.Errorf("final header: %s", b)
	}
	if !strings.Contains(string(b), "# network policies are enforced again") {
		t.Errorf("final document lacks the finalize comment:\n%s", b)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name    string
		version string
		kpr     bool
		user    map[string]any
		want    []string // substrings, one warning each, in order
	}{
		{name: "no user values", version: "1.18"},
		{
			name:    "same values as the migration",
			version: "1.18",
			user:    map[string]any{"routingMode": "tunnel", "tunnelPort": 8473, "kubeProxyReplacement": false, "hubble": map[string]any{"enabled": true}},
		},
		{
			name:    "initial-only keys",
			version: "1.18",
			user: map[string]any{
				"operator":              map[string]any{"unmanagedPodWatcher": map[string]any{"restart": true}},
				"policyEnforcementMode": "always",
				"cni":                   map[string]any{"customConf": false},
			},
			want: []string{
				"--values v.yaml sets operator.unmanagedPodWatcher.restart to true in values-initial.yaml (the migration sets false): the operator would restart pods",
				"sets cni.customConf to false in values-initial.yaml (the migration sets true): Cilium would write its CNI config on every node at once",
				"sets policyEnforcementMode to \"always\" in values-initial.yaml (the migration sets \"never\"): policies must stay off",
			},
		},
		{
			name:    "keys watched in both documents",
			version: "1.18",
			user:    map[string]any{"tunnelPort": 8472, "ipam": map[string]any{"mode": "kubernetes"}},
			want: []string{
				"sets tunnelPort to 8472 in values-initial.yaml (the migration sets 8473): the tunnel protocol and port were chosen",
				"sets tunnelPort to 8472 in values-final.yaml (the migration sets 8473): changing the overlay of a running cluster",
				"sets ipam.mode to \"kubernetes\" in values-initial.yaml",
				"sets ipam.mode to \"kubernetes\" in values-final.yaml",
			},
		},
		{
			name:    "same reason in both documents is one warning",
			version: "1.18",
			user:    map[string]any{"kubeProxyReplacement": "true"},
			want:    []string{"sets kubeProxyReplacement to \"true\" in values-initial.yaml and values-final.yaml (the migration sets \"false\"): the cluster runs kube-proxy"},
		},
		{
			name:    "removing a parent",
			version: "1.18",
			user:    map[string]any{"cni": nil},
			want: []string{
				"removes cni.customConf from values-initial.yaml (the migration sets true)",
				"removes cni.customConf from values-final.yaml (the migration sets false)",
				"removes cni.uninstall from values-initial.yaml",
			},
		},
		{
			name:    "null",
			version: "1.18",
			user:    map[string]any{"bpf": map[string]any{"hostLegacyRouting": nil}},
			want:    []string{"sets bpf.hostLegacyRouting to null in values-initial.yaml (the migration sets true)"},
		},
		{
			name:    "a string where the chart wants a boolean",
			version: "1.18",
			user:    map[string]any{"cni": map[string]any{"customConf": "true"}},
			want: []string{
				"sets cni.customConf to \"true\" in values-initial.yaml (the migration sets true)",
				"sets cni.customConf to \"true\" in values-final.yaml (the migration sets false)",
			},
		},
		{
			name:    "kubeProxyReplacement boolean equals the string",
			version: "1.18",
			kpr:     true,
			user:    map[string]any{"kubeProxyReplacement": true, "k8sServicePort": "6443"},
		},
		{
			name:    "strict rejected from 1.16",
			version: "1.16",
			user:    map[string]any{"kubeProxyReplacement": "strict"},
			want: []string{
				"sets kubeProxyReplacement to \"strict\" in values-initial.yaml and values-final.yaml",
				"sets kubeProxyReplacement to \"strict\", which the Cilium 1.16 chart rejects; use one of true, false",
			},
		},
		{
			name:    "strict still accepted by 1.15",
			version: "1.15",
			user:    map[string]any{"kubeProxyReplacement": "strict"},
			want:    []string{"sets kubeProxyReplacement to \"strict\" in values-initial.yaml and values-final.yaml"},
		},
		{
			name:    "tunnel ignored by 1.14",
			version: "1.14",
			user:    map[string]any{"tunnel": "vxlan"},
			want:    []string{"sets tunnel, which the Cilium 1.14 chart ignores because routingMode is set"},
		},
		{
			name:    "tunnel rejected from 1.15",
			version: "1.15",
			user:    map[string]any{"tunnel": "geneve"},
			want:    []string{"sets tunnel, which the Cilium 1.15 chart rejects"},
		},
		{
			name:    "empty tunnel is harmless",
			version: "1.20",
			user:    map[string]any{"tunnel": ""},
		},
		{
			name:    "k8sServiceHostRef with k8sServiceHost",
			version: "1.18",
			kpr:     true,
			user:    map[string]any{"k8sServiceHostRef": map[string]any{"name": "cm", "key": "host"}},
			want:    []string{"sets k8sServiceHostRef, which the Cilium 1.18 chart refuses together with the k8sServiceHost"},
		},
		{
			name:    "k8sServiceHostRef unknown to 1.17",
			version: "1.17",
			kpr:     true,
			user:    map[string]any{"k8sServiceHostRef": map[string]any{"name": "cm", "key": "host"}},
		},
		{
			name:    "API server address without kube-proxy",
			version: "1.20",
			kpr:     true,
			user:    map[string]any{"k8sServiceHost": "other"},
			want:    []string{"sets k8sServiceHost to \"other\" in values-initial.yaml and values-final.yaml (the migration sets \"10.0.0.1\"): without kube-proxy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t, tt.version)
			if tt.kpr {
				in.KubeProxyReplacement, in.K8sServiceHost, in.K8sServicePort = true, "10.0.0.1", 6443
			}
			in.User, in.UserFile = tt.user, "v.yaml"
			_, _, warnings := generate(t, in)
			if len(warnings) != len(tt.want) {
				t.Fatalf("got %d warnings, want %d:\n%s", len(warnings), len(tt.want), strings.Join(warnings, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
				if strings.Contains(warnings[i], "\n") {
					t.Errorf("warning %d is not one line", i)
				}
				if !strings.HasPrefix(warnings[i], "--values v.yaml ") {
					t.Errorf("warning %d does not name the file: %q", i, warnings[i])
				}
			}
		})
	}
}

func TestClusterName(t *testing.T) {
	tests := []struct {
		version, in, want string
		warn              string // substring; "" = no warning
	}{
		{"1.18", "kind-kind", "kind-kind", ""},
		{"1.18", "Kind_Foo.bar:baz", "kind-foo-bar-baz", "does not fit Cilium's rules"},
		{"1.18", "arn:aws:eks:eu-west-1:123456789012:cluster/prod", "arn-aws-eks-eu-west-1-1234567890", "is \"arn-aws-eks-eu-west-1-1234567890\""},
		{"1.18", "-a-", "a", "does not fit"},
		{"1.18", "abcdefghijklmnopqrstuvwxyz01234-6789", "abcdefghijklmnopqrstuvwxyz01234", "does not fit"},
		{"1.18", "___", "", "has no letters or digits"},
		{"1.18", "1234", "1234", ""},
		{"1.17", "1234", "", "would not be a string in the Cilium 1.17 ConfigMap"},
		{"1.14", "true", "", "would not be a string"},
		{"1.15", "1e5", "", "would not be a string"},
		{"1.16", "0x1f", "", "would not be a string"},
		{"1.16", "null", "", "would not be a string"},
		{"1.20", "null", "null", ""},
		{"1.16", "prod-1", "prod-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.version+"/"+tt.in, func(t *testing.T) {
			in := baseInput(t, tt.version)
			in.ClusterName = tt.in
			ini, fin, warnings := generate(t, in)
			for _, d := range []*Doc{ini, fin} {
				got, ok := lookup(d.Map(), []string{"cluster", "name"})
				if tt.want == "" {
					if ok {
						t.Errorf("%s: cluster.name = %#v, want it unset", d.Name(), got)
					}
				} else if got != tt.want {
					t.Errorf("%s: cluster.name = %#v, want %q", d.Name(), got, tt.want)
				}
				checkRoundTrip(t, d)
			}
			switch {
			case tt.warn == "" && len(warnings) > 0:
				t.Errorf("unexpected warnings %q", warnings)
			case tt.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.warn)):
				t.Errorf("warnings %q, want one containing %q", warnings, tt.warn)
			}
			if tt.want != "" && (len(tt.want) > 32 || !validClusterName(tt.want)) {
				t.Errorf("%q breaks Cilium's rule", tt.want)
			}
		})
	}
	// The user's own cluster.name wins, without a warning about ours.
	in := baseInput(t, "1.18")
	in.ClusterName = "Not_Valid"
	in.User = map[string]any{"cluster": map[string]any{"name": "mine"}}
	ini, _, warnings := generate(t, in)
	if got, _ := lookup(ini.Map(), []string{"cluster", "name"}); got != "mine" || len(warnings) != 0 {
		t.Errorf("cluster.name = %#v, warnings %q", got, warnings)
	}
}

// validClusterName is the rule in the charts' validate.yaml (1.16 and later).
func validClusterName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Input)
		msg    string
	}{
		{"unsupported version", func(in *Input) { in.Version = ciliumver.Version{Major: 1, Minor: 13} }, "Cilium 1.13 is not supported"},
		{"zero version", func(in *Input) { in.Version = ciliumver.Version{} }, "is not supported"},
		{"bad CIDR", func(in *Input) { in.PodCIDR = "10.245.0.0" }, "not an IPv4 network"},
		{"IPv6 CIDR", func(in *Input) { in.PodCIDR = "fd00::/104" }, "not an IPv4 network"},
		{"host bits set", func(in *Input) { in.PodCIDR = "10.245.1.0/16" }, "not an IPv4 network"},
		{"mask too small", func(in *Input) { in.MaskSize = 8 }, "does not fit the pod CIDR"},
		{"mask too large", func(in *Input) { in.MaskSize = 31 }, "does not fit the pod CIDR"},
		{"protocol", func(in *Input) { in.TunnelProtocol = "ipip" }, "not vxlan or geneve"},
		{"port zero", func(in *Input) { in.TunnelPort = 0 }, "not a UDP port"},
		{"port too big", func(in *Input) { in.TunnelPort = 70000 }, "not a UDP port"},
		{"replacement without host", func(in *Input) { in.KubeProxyReplacement, in.K8sServicePort = true, 6443 }, "no API server host"},
		{"replacement without port", func(in *Input) { in.KubeProxyReplacement, in.K8sServiceHost = true, "h" }, "not a TCP port"},
		{"negative replicas", func(in *Input) { in.OperatorReplicas = -1 }, "negative"},
		{"user values JSON cannot hold", func(in *Input) { in.User = map[string]any{"a": func() {}} }, "cannot be used as Helm values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t, "1.18")
			tt.change(&in)
			_, _, _, err := Generate(in)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code != errs.Usage {
				t.Fatalf("error = %v, want an errs.Usage error", err)
			}
			if !strings.Contains(e.Msg, tt.msg) || e.Fix == "" || strings.Contains(e.Error(), "\n") {
				t.Errorf("error = %q, want one line containing %q with a fix", e.Error(), tt.msg)
			}
		})
	}
}

// TestInPlaceValues checks what the in-place strategy changes: Cilium owns
// the CNI config of every node from the install (no CiliumNodeConfig), the
// operator's unmanaged-pod watcher stays off until values-final.yaml, and
// the rest is the dual-overlay's.
func TestInPlaceValues(t *testing.T) {
	for _, v := range ciliumver.Supported() {
		t.Run(v.String(), func(t *testing.T) {
			in := baseInput(t, v.String())
			dual, dualFin, _ := generate(t, in)
			in.Strategy = InPlace
			ini, fin, warnings := generate(t, in)
			if len(warnings) != 0 {
				t.Errorf("warnings %q", warnings)
			}
			m := ini.Map()
			for path, want := range map[string]any{
				"cni.customConf":                       false,
				"cni.exclusive":                        true,
				"cni.uninstall":                        false,
				"operator.unmanagedPodWatcher.restart": false,
				"routingMode":                          "tunnel",
				"tunnelPort":                           8473.0,
				"ipam.mode":                            "cluster-pool",
				"policyEnforcementMode":                "never",
				"bpf.hostLegacyRouting":                true,
				"ipv4NativeRoutingCIDR":                "10.244.0.0/15",
			} {
				if got, _ := lookup(m, strings.Split(path, ".")); !reflect.DeepEqual(got, want) {
					t.Errorf("initial %s = %#v, want %#v", path, got, want)
				}
			}
			// Only cni.customConf and cni.exclusive differ from dual-overlay.
			dm := dual.Map()
			dm["cni"] = map[string]any{"customConf": false, "exclusive": true, "uninstall": false}
			if !reflect.DeepEqual(m, dm) {
				t.Errorf("in-place initial differs from dual-overlay beyond cni:\n got: %#v\nwant: %#v", m, dm)
			}
			fm, dfm := fin.Map(), dualFin.Map()
			dfm["cni"] = map[string]any{"customConf": false, "exclusive": true, "uninstall": false}
			if !reflect.DeepEqual(fm, dfm) {
				t.Errorf("in-place final differs from dual-overlay final beyond cni.exclusive:\n got: %#v\nwant: %#v", fm, dfm)
			}
			if _, ok := fm["ipv4NativeRoutingCIDR"]; ok {
				t.Error("values-final.yaml keeps ipv4NativeRoutingCIDR")
			}
			if got, _ := lookup(fm, []string{"operator", "unmanagedPodWatcher", "restart"}); got != true {
				t.Errorf("final watcher %v", got)
			}
			b, _ := ini.YAML()
			for _, want := range []string{"(in-place migration, first step)", "# and renames the old CNI's config files", "evicts them instead"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("initial lacks %q:\n%s", want, b)
				}
			}
		})
	}
	// Turning the watcher on in the initial values is worth a warning.
	in := baseInput(t, "1.20")
	in.Strategy, in.UserFile = InPlace, "v.yaml"
	in.User = map[string]any{"operator": map[string]any{"unmanagedPodWatcher": map[string]any{"restart": true}}, "ipv4NativeRoutingCIDR": "10.0.0.0/8"}
	_, _, warnings := generate(t, in)
	if len(warnings) != 2 || !strings.Contains(warnings[0], "without regard to PodDisruptionBudgets") || !strings.Contains(warnings[1], "sets ipv4NativeRoutingCIDR to \"10.0.0.0/8\"") {
		t.Errorf("warnings %q", warnings)
	}
	for _, bad := range []func(*Input){
		func(in *Input) { in.Strategy = "big-bang" },
		func(in *Input) { in.IPv4NativeRoutingCIDR = "10.246.0.0/16" },
		func(in *Input) { in.IPv4NativeRoutingCIDR = "10.245.0.0/17" },
		func(in *Input) { in.IPv4NativeRoutingCIDR = "10.244.0.1/15" },
	} {
		in := baseInput(t, "1.20")
		bad(&in)
		if _, _, _, err := Generate(in); errs.Code(err) != errs.Usage {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

// TestPortMapChaining: cni.chainingMode=portmap in both files when asked
// (kube-proxy stays and the old CNI chains portmap), never with kube-proxy
// replacement, which serves hostPorts itself.
func TestPortMapChaining(t *testing.T) {
	for _, tc := range []struct {
		name     string
		portmap  bool
		kpr      bool
		chaining any
	}{
		{"asked, with kube-proxy", true, false, "portmap"},
		{"not asked", false, false, nil},
		{"asked, but kube-proxy replacement", true, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t, "1.20")
			in.PortMapChaining = tc.portmap
			if tc.kpr {
				in.KubeProxyReplacement, in.K8sServiceHost, in.K8sServicePort = true, "10.0.0.1", 6443
			}
			ini, fin, _ := generate(t, in)
			for _, d := range []*Doc{ini, fin} {
				got, _ := lookup(d.Map(), []string{"cni", "chainingMode"})
				if got != tc.chaining {
					t.Errorf("%s: cni.chainingMode = %#v, want %#v", d.Name(), got, tc.chaining)
				}
			}
			if u := Guard(in, ini, OldNetwork{}); len(u) > 0 {
				t.Errorf("the guard refuses the plugin's own values: %+v", u)
			}
		})
	}
}
