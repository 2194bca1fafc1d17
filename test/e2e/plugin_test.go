package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/fixture"
)

// cliResult is one run of `kubectl cni-migrate`.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// cli runs `kubectl cni-migrate ARGS` through kubectl, the way users run
// it, with stdout and stderr apart and the exit code.
func (c *Cluster) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	dir := filepath.Dir(PluginPath(t))
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"cni-migrate"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "NO_COLOR=1",
		"PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	r := cliResult{Stdout: out.String(), Stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl cni-migrate %v: %v", args, err)
	}
	t.Logf("kubectl cni-migrate %s -> exit %d\n%s", strings.Join(args, " "), r.Code, r.Stderr)
	return r
}

func (r cliResult) mustSucceed(t *testing.T) cliResult {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	return r
}

// mustFail checks the exit code and that stderr is one error line with the
// wanted text.
func (r cliResult) mustFail(t *testing.T, code int, has string) {
	t.Helper()
	line := strings.TrimSpace(r.Stderr)
	if r.Code != code || !strings.Contains(line, has) {
		t.Fatalf("got exit %d %q, want exit %d containing %q", r.Code, line, code, has)
	}
	if !strings.HasPrefix(line, "error: ") || strings.Contains(line, "\n") {
		t.Fatalf("want one 'error: ...' line, got %q", line)
	}
}

// pinnedCilium lists the Cilium versions whose charts the cache holds.
func pinnedCilium(t *testing.T, c *Cluster) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(c.Cache, "cilium"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 3 {
		t.Fatalf("want at least three pinned Cilium charts, have %v", out)
	}
	return out
}

// planJSON is the part of `plan -o json` the tests read.
type planJSON struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Cluster    struct {
		Name  string `json:"name"`
		Nodes []struct {
			Name         string `json:"name"`
			ControlPlane bool   `json:"controlPlane"`
		} `json:"nodes"`
		CNI *struct {
			Name    string `json:"name"`
			Network string `json:"network"`
			Backend struct {
				Type string `json:"type"`
				Port int    `json:"port"`
				VNI  int    `json:"vni"`
			} `json:"backend"`
		} `json:"cni"`
		ServiceCIDRs []struct{ CIDR, Source string } `json:"serviceCIDRs"`
		NamedPorts   []struct {
			Name string `json:"name"`
			Port int    `json:"port"`
		} `json:"namedPorts"`
		KubeProxy struct {
			Present     bool   `json:"present"`
			Kind        string `json:"kind"`
			Mode        string `json:"mode"`
			ClusterCIDR string `json:"clusterCIDR"`
		} `json:"kubeProxy"`
		Cilium struct {
			Installed     bool   `json:"installed"`
			MigrationMode bool   `json:"migrationMode"`
			Version       string `json:"version"`
		} `json:"cilium"`
	} `json:"cluster"`
	Proposal struct {
		PodCIDR    string `json:"podCIDR"`
		TunnelPort int    `json:"tunnelPort"`
	} `json:"proposal"`
	Checks []struct {
		ID, Status, Message, Fix string
	} `json:"checks"`
	Summary struct {
		Safe bool `json:"safe"`
	} `json:"summary"`
}

func (p planJSON) check(t *testing.T, id string) (status, message string) {
	t.Helper()
	for _, c := range p.Checks {
		if c.ID == id {
			return c.Status, c.Message
		}
	}
	t.Fatalf("no check %q", id)
	return "", ""
}

// TestPluginOnFlannelCluster runs plan, values and nodeconfig against a
// cluster built from the real flannel manifest, then installs Cilium with
// the plugin's own values and checks what the plugin sees afterwards.
func TestPluginOnFlannelCluster(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	c := NewCluster(t, Options{Nodes: Nodes(4)})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := fixture.FlannelCluster(ctx, c.Cluster, "e2e-flannel"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WaitWorkloadsReady(ctx, c.Cluster, 3*time.Minute); err != nil {
		t.Fatal(err)
	}

	t.Run("plan detects flannel and flags policies and PDBs", func(t *testing.T) {
		// A policy as users write one to let pods reach "anything": under
		// Cilium its ipBlock reaches no pod and no node.
		if _, err := c.Apply(ctx, []byte(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-anywhere, namespace: `+fixture.WorkloadNamespace+`}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0}
`)); err != nil {
			t.Fatal(err)
		}
		r := c.cli(t, "plan", "-o", "json").mustSucceed(t)
		var p planJSON
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatalf("%v\n%s", err, r.Stdout)
		}
		if p.Kind != "MigrationPlan" || p.Cluster.CNI == nil || p.Cluster.CNI.Name != "flannel" || p.Cluster.CNI.Network != "10.244.0.0/16" ||
			p.Cluster.CNI.Backend.Type != "vxlan" || p.Cluster.CNI.Backend.Port != 8472 || p.Cluster.CNI.Backend.VNI != 1 {
			t.Errorf("flannel not detected from the upstream manifest: %+v", p.Cluster.CNI)
		}
		if len(p.Cluster.ServiceCIDRs) == 0 || p.Cluster.ServiceCIDRs[0].CIDR != "10.96.0.0/16" || p.Cluster.ServiceCIDRs[0].Source != "ServiceCIDR objects" {
			t.Errorf("service CIDR: %+v", p.Cluster.ServiceCIDRs)
		}
		if !p.Cluster.KubeProxy.Present || p.Cluster.KubeProxy.Kind != "DaemonSet" || p.Cluster.KubeProxy.Mode != "iptables" {
			t.Errorf("kube-proxy: %+v", p.Cluster.KubeProxy)
		}
		var cp []string
		for _, n := range p.Cluster.Nodes {
			if n.ControlPlane {
				cp = append(cp, n.Name)
			}
		}
		if len(p.Cluster.Nodes) != 4 || len(cp) != 1 || cp[0] != "control-plane" {
			t.Errorf("nodes %+v", p.Cluster.Nodes)
		}
		if p.Cluster.Name != "e2e-flannel" {
			t.Errorf("cluster name %q (kubeadm-config)", p.Cluster.Name)
		}
		if p.Proposal.PodCIDR != "10.245.0.0/16" || p.Proposal.TunnelPort != 8473 {
			t.Errorf("proposal %+v", p.Proposal)
		}
		if st, msg := p.check(t, "network-policies"); st != "WARN" {
			t.Errorf("network-policies: %s %s", st, msg)
		}
		if st, msg := p.check(t, "network-policy-compat"); st != "WARN" ||
			!strings.Contains(msg, "ipBlock covers pod addresses ("+fixture.WorkloadNamespace+"/egress-anywhere egress 0.0.0.0/0)") ||
			!strings.Contains(msg, "ipBlock covers node addresses") {
			t.Errorf("network-policy-compat: %s %s", st, msg)
		}
		if len(p.Cluster.NamedPorts) != 0 {
			t.Errorf("pods read for port names no egress rule uses: %+v", p.Cluster.NamedPorts)
		}
		if st, msg := p.check(t, "pod-disruption-budgets"); st != "WARN" {
			t.Errorf("pod-disruption-budgets: %s %s", st, msg)
		}
		if st, msg := p.check(t, "permissions"); st != "PASS" {
			t.Errorf("permissions (admin): %s %s", st, msg)
		}
		if !p.Summary.Safe {
			t.Errorf("not safe: %+v", p.Checks)
		}
		table := c.cli(t, "plan").mustSucceed(t)
		for _, want := range []string{"flannel", "10.244.0.0/16", "10.245.0.0/16", "pod-disruption-budgets", "WARN"} {
			if !strings.Contains(table.Stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, table.Stdout)
			}
		}
	})

	// An egress rule naming a port that CoreDNS calls 9153 and another pod
	// 9100: Cilium resolves it over every pod, to neither.
	t.Run("plan names an egress port name with two numbers", func(t *testing.T) {
		if _, err := c.Apply(ctx, []byte(`apiVersion: v1
kind: Namespace
metadata: {name: compat}
---
apiVersion: v1
kind: Pod
metadata: {name: exporter, namespace: compat}
spec:
  containers:
  - {name: exporter, image: registry.k8s.io/pause:3.10, ports: [{containerPort: 9100, name: metrics}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-metrics, namespace: compat}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports: [{port: metrics}]
`)); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if out, err := c.Kubectl(ctx, "delete", "namespace", "compat", "--wait=false"); err != nil {
				t.Errorf("%v: %s", err, out)
			}
		}()
		r := c.cli(t, "plan", "-o", "json").mustSucceed(t)
		var p planJSON
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatalf("%v\n%s", err, r.Stdout)
		}
		if st, msg := p.check(t, "network-policy-compat"); st != "WARN" ||
			!strings.Contains(msg, `compat/egress-metrics egress to port "metrics", which is 9100 on compat/exporter (1 pod) and 9153 on kube-system/coredns-`) ||
			!strings.Contains(msg, "(2 pods)") {
			t.Errorf("network-policy-compat: %s %s", st, msg)
		}
	})

	t.Run("values refuses unsafe input and writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		c.cli(t, "values", "--pod-cidr", "10.244.0.0/16", "--output-dir", dir).mustFail(t, 4, "overlaps pod network 10.244.0.0/16")
		c.cli(t, "values", "--pod-cidr", "10.96.0.0/16", "--output-dir", dir).mustFail(t, 4, "service network 10.96.0.0/16")
		c.cli(t, "values", "--tunnel-port", "8472", "--output-dir", dir).mustFail(t, 4, "tunnel port 8472")
		c.cli(t, "values", "--pod-cidr", "10.0.0.0/8", "--output-dir", dir).mustFail(t, 4, "overlaps")
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("files left behind: %v", entries)
		}
		r := c.cli(t, "plan", "--pod-cidr", "10.96.0.0/16", "-o", "json")
		if r.Code != 3 {
			t.Fatalf("plan with an overlapping CIDR: exit %d, want 3", r.Code)
		}
	})

	valuesDir := t.TempDir()
	t.Run("values renders with every pinned chart", func(t *testing.T) {
		for _, v := range pinnedCilium(t, c) {
			t.Run(v, func(t *testing.T) {
				dir := filepath.Join(valuesDir, v)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				c.cli(t, "values", "--cilium-version", v, "--output-dir", dir).mustSucceed(t)
				initial := renderCiliumConfig(t, ctx, c, v, filepath.Join(dir, "values-initial.yaml"))
				expect(t, "initial", initial, map[string]string{
					"tunnel-protocol":             "vxlan",
					"tunnel-port":                 "8473",
					"routing-mode":                "tunnel",
					"cluster-pool-ipv4-cidr":      "10.245.0.0/16",
					"cluster-pool-ipv4-mask-size": "24",
					"custom-cni-conf":             "true",
					// Flannel enforces no policy: Cilium audits them
					// until finalize (policy-report).
					"enable-policy":              "default",
					"policy-audit-mode":          "true",
					"enable-host-legacy-routing": "true",
					"cluster-name":               "e2e-flannel",
					// docs/snat.md: flannel's 10.244.0.0/16 and Cilium's 10.245.0.0/16
					"ipv4-native-routing-cidr": "10.244.0.0/15",
				})
				for _, absent := range []string{"write-cni-conf-when-ready", "cni-exclusive"} {
					if _, ok := initial[absent]; ok {
						t.Errorf("initial values set %s, which must come from the CiliumNodeConfig", absent)
					}
				}
				final := renderCiliumConfig(t, ctx, c, v, filepath.Join(dir, "values-final.yaml"))
				expect(t, "final", final, map[string]string{
					"custom-cni-conf":            "false",
					"enable-policy":              "default",
					"policy-audit-mode":          "false",
					"enable-host-legacy-routing": "false",
					"cni-exclusive":              "true",
					"tunnel-port":                "8473",
					"cluster-pool-ipv4-cidr":     "10.245.0.0/16",
				})
				if _, ok := final["write-cni-conf-when-ready"]; !ok {
					t.Errorf("final values do not let Cilium write its CNI config")
				}
				if v, ok := final["ipv4-native-routing-cidr"]; ok {
					t.Errorf("final values keep ipv4-native-routing-cidr %q", v)
				}
				// helm lint also validates the values against values.schema.json
				// where the chart has one.
				for _, f := range []string{"values-initial.yaml", "values-final.yaml"} {
					if out, err := fixture.Helm(ctx, c.Cluster, "lint", fixture.CiliumChart(c.Cluster, v), "--values", filepath.Join(dir, f)); err != nil {
						t.Errorf("helm lint %s: %v\n%s", f, err, out)
					}
				}
			})
		}
	})

	ncGVR := func(version string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "cilium.io", Version: version, Resource: "ciliumnodeconfigs"}
	}
	t.Run("nodeconfig against each pinned CRD", func(t *testing.T) {
		c.cli(t, "nodeconfig", "--apply").mustFail(t, 6, "no CiliumNodeConfig CRD")
		for _, v := range pinnedCilium(t, c) {
			if v >= "1.18" {
				break // 1.18 comes with the helm install below
			}
			t.Run(v, func(t *testing.T) {
				if err := fixture.CiliumCRDs(ctx, c.Cluster, v); err != nil {
					t.Fatal(err)
				}
				if v < "1.16" {
					// These CRDs serve only v2alpha1: asking for v2 is refused
					// before anything is sent.
					c.cli(t, "nodeconfig", "--apply", "--cilium-version", "1.18").mustFail(t, 2, "serves CiliumNodeConfig as cilium.io/v2alpha1, not cilium.io/v2")
				}
				r := c.cli(t, "nodeconfig", "--apply", "--cilium-version", v, "--dry-run=server", "-o", "yaml").mustSucceed(t)
				if !strings.Contains(r.Stdout, "custom-cni-conf") {
					t.Errorf("server dry run printed %s", r.Stdout)
				}
				c.cli(t, "nodeconfig", "--apply", "--cilium-version", v).mustSucceed(t)
				apiVersion := "v2"
				if v < "1.16" {
					apiVersion = "v2alpha1"
				}
				obj, err := c.Dynamic.Resource(ncGVR(apiVersion)).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				sel, _, _ := unstructuredString(obj.Object, "spec", "nodeSelector", "matchLabels", "io.cilium.migration/cilium-default")
				if sel != "true" {
					t.Errorf("selector %q", sel)
				}
				managers := map[string]bool{}
				for _, mf := range obj.GetManagedFields() {
					managers[mf.Manager] = true
				}
				if !managers["cni-migrate"] {
					t.Errorf("field managers %v, want cni-migrate", managers)
				}
			})
		}
	})

	t.Run("install Cilium with the plugin's values", func(t *testing.T) {
		v := "1.18.11"
		if err := fixture.InstallCilium(ctx, c.Cluster, v, filepath.Join(valuesDir, v, "values-initial.yaml")); err != nil {
			t.Fatal(err)
		}
		r := c.cli(t, "plan", "-o", "json").mustSucceed(t)
		var p planJSON
		if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
			t.Fatal(err)
		}
		if !p.Cluster.Cilium.Installed || !p.Cluster.Cilium.MigrationMode || p.Cluster.Cilium.Version != v {
			t.Errorf("cilium %+v", p.Cluster.Cilium)
		}
		if st, msg := p.check(t, "cilium"); st != "PASS" || !strings.Contains(msg, "migration mode") {
			t.Errorf("cilium check %s %s", st, msg)
		}
		if p.Proposal.PodCIDR != "10.245.0.0/16" {
			t.Errorf("proposal does not keep the installed pool: %+v", p.Proposal)
		}

		// An explicit version whose apiVersion the installed Cilium does not
		// read is refused before the server sees anything.
		before, err := c.Dynamic.Resource(ncGVR("v2")).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		c.cli(t, "nodeconfig", "--apply", "--cilium-version", "1.15").mustFail(t, 2, "reads cilium.io/v2 CiliumNodeConfigs but --cilium-version 1.15 would write cilium.io/v2alpha1")
		after, err := c.Dynamic.Resource(ncGVR("v2")).Namespace("kube-system").Get(ctx, "cilium-default", metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if before != nil && after != nil && before.GetResourceVersion() != after.GetResourceVersion() {
			t.Errorf("the refused apply changed the object")
		}

		// Without --cilium-version the installed version decides.
		r = c.cli(t, "nodeconfig", "--apply", "-o", "yaml").mustSucceed(t)
		if !strings.Contains(r.Stdout, "apiVersion: cilium.io/v2\n") {
			t.Errorf("applied %s", r.Stdout)
		}

		// The newest pinned CRDs (an upgrade path) accept it too.
		versions := pinnedCilium(t, c)
		newest := versions[len(versions)-1]
		if err := fixture.CiliumCRDs(ctx, c.Cluster, newest); err != nil {
			t.Fatal(err)
		}
		c.cli(t, "nodeconfig", "--apply", "--cilium-version", newest).mustSucceed(t)
	})
}

// TestPluginWithoutSupportedCNI checks the exit code and message on a
// cluster that runs no CNI the plugin knows.
func TestPluginWithoutSupportedCNI(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	PluginPath(t)
	c := NewCluster(t, Options{Nodes: Nodes(2)})
	c.cli(t, "plan").mustFail(t, 6, "no supported network provider found")
	c.cli(t, "values").mustFail(t, 6, "no supported network provider found")
}

// renderCiliumConfig renders the chart of version with a values file and
// returns the data of its cilium-config ConfigMap.
func renderCiliumConfig(t *testing.T, ctx context.Context, c *Cluster, version, valuesFile string) map[string]string {
	t.Helper()
	out, err := fixture.Helm(ctx, c.Cluster, "template", "cilium", fixture.CiliumChart(c.Cluster, version),
		"--namespace", "kube-system", "--values", valuesFile)
	if err != nil {
		t.Fatalf("helm template %s with %s: %v\n%s", version, valuesFile, err, out)
	}
	objs, err := cluster.ParseYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == "cilium-config" {
			var cm corev1.ConfigMap
			data, _ := yaml.Marshal(o.Object)
			if err := yaml.Unmarshal(data, &cm); err != nil {
				t.Fatal(err)
			}
			return cm.Data
		}
	}
	t.Fatalf("no cilium-config in the rendered chart")
	return nil
}

func expect(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s cilium-config %s = %q, want %q", what, k, got[k], v)
		}
	}
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
