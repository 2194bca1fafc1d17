package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/cluster"
)

// completionHelper is the completion script shipped next to the plugin.
const completionHelper = "kubectl_complete-cni_migrate"

// completionPATH returns a directory holding the plugin and a copy of the
// shell completion helper, as `make install` and krew lay them out.
func completionPATH(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(PluginPath(t), filepath.Join(dir, PluginBinary)); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "cmd", "kubectl-cni_migrate", completionHelper))
	if err != nil {
		t.Fatalf("completion helper: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, completionHelper), script, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// completion is what a cobra __complete request printed: the candidates
// (without descriptions) and the directive.
type completion struct {
	Values    []string
	Directive string
}

func (c completion) has(v string) bool {
	for _, x := range c.Values {
		if x == v {
			return true
		}
	}
	return false
}

func parseCompletion(out string) (completion, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		return completion{}, fmt.Errorf("no :<directive> line at the end of %q", out)
	}
	c := completion{Directive: lines[len(lines)-1]}
	for _, l := range lines[:len(lines)-1] {
		if l == "" {
			continue
		}
		v, _, _ := strings.Cut(l, "\t")
		c.Values = append(c.Values, v)
	}
	return c, nil
}

// TestCompletion drives the plugin's shell completion the two ways kubectl
// reaches it, against a cluster with four nodes: `kubectl cni-migrate
// __complete ARGS` (kubectl runs the plugin), and `kubectl __complete
// cni-migrate ARGS`, which is what the shell asks kubectl (>= 1.26) and
// which kubectl answers by running kubectl_complete-cni_migrate from PATH.
func TestCompletion(t *testing.T) {
	t.Parallel() // each test has its own control plane (make test-e2e: E2E_PARALLEL)
	env := NewCluster(t, Options{Options: cluster.Options{Name: "completion-e2e"}, Nodes: Nodes(4), NoSim: true})
	dir := completionPATH(t)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	pathEnv := "PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")

	// complete runs one request; kubeconfig "" leaves KUBECONFIG unset.
	complete := func(t *testing.T, viaHelper bool, kubeconfig string, args ...string) completion {
		t.Helper()
		argv := append([]string{"cni-migrate", "__complete"}, args...)
		if viaHelper {
			argv = append([]string{"__complete", "cni-migrate"}, args...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, argv...)
		cmd.Env = []string{pathEnv, "HOME=" + os.Getenv("HOME"), "NO_COLOR=1"}
		if kubeconfig != "" {
			cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(argv, " "), err, out.String(), errOut.String())
		}
		c, err := parseCompletion(out.String())
		if err != nil {
			t.Fatalf("kubectl %s: %v\nstderr: %s", strings.Join(argv, " "), err, errOut.String())
		}
		t.Logf("kubectl %s -> %q %s", strings.Join(argv, " "), c.Values, c.Directive)
		return c
	}

	// :4 is cobra's ShellCompDirectiveNoFileComp.
	const noFiles = ":4"
	nodes := []string{"control-plane", "worker-1", "worker-2", "worker-3"}
	ciliumVersion := regexp.MustCompile(`^1\.(1[4-9]|20)\.[0-9]+$`)
	cases := []struct {
		name      string
		args      []string
		want, not []string
		directive string
		check     func(t *testing.T, c completion)
	}{
		{name: "subcommands", args: []string{""},
			want: []string{"plan", "values", "nodeconfig", "node", "rollout", "rollback", "status", "finalize", "version"},
			not:  []string{"completion", "__complete"}},
		{name: "flags of plan", args: []string{"plan", "--"},
			want: []string{"--cilium-version", "--pod-cidr", "--cluster-pool-mask-size", "--tunnel-protocol", "--tunnel-port", "--output", "--skip-access-check", "--kubeconfig", "--context", "--namespace"}},
		{name: "flags of node by prefix", args: []string{"node", "--reb"},
			want: []string{"--reboot", "--reboot-command", "--reboot-timeout"}, not: []string{"--timeout", "--force"}},
		{name: "node names from the cluster", args: []string{"node", ""}, want: nodes, directive: noFiles},
		{name: "node names not given yet", args: []string{"node", "worker-1", "control-plane", ""},
			want: []string{"worker-2", "worker-3"}, not: []string{"worker-1", "control-plane"}, directive: noFiles},
		{name: "node names for rollback", args: []string{"rollback", "worker-2", ""},
			want: []string{"control-plane", "worker-1", "worker-3"}, not: []string{"worker-2"}, directive: noFiles},
		{name: "cilium versions", args: []string{"plan", "--cilium-version", ""}, want: []string{"1.20.2", "1.15.19"}, directive: noFiles,
			check: func(t *testing.T, c completion) {
				for _, v := range c.Values {
					if !ciliumVersion.MatchString(v) {
						t.Errorf("%q is not a supported Cilium version", v)
					}
				}
				if len(c.Values) < 7 {
					t.Errorf("want one version per minor release 1.14 to 1.20, got %q", c.Values)
				}
			}},
		// cobra answers --flag= with the values alone; the shell script
		// puts the flag back in front.
		{name: "cilium versions for values with =", args: []string{"values", "--cilium-version="},
			want: []string{"1.20.2"}, directive: noFiles},
		{name: "cilium versions for nodeconfig", args: []string{"nodeconfig", "--cilium-version", ""}, want: []string{"1.20.2", "1.14.19"}},
		{name: "tunnel protocols", args: []string{"values", "--tunnel-protocol", ""}, want: []string{"vxlan", "geneve"}, directive: noFiles},
		{name: "reboot modes", args: []string{"node", "worker-1", "--reboot", ""}, want: []string{"command", "manual", "skip"}, directive: noFiles},
		{name: "output formats", args: []string{"status", "-o", ""}, want: []string{"json", "yaml"}},
		{name: "namespaces from the cluster", args: []string{"nodeconfig", "-n", ""}, want: []string{"kube-system", "default"}, directive: noFiles},
		{name: "contexts from the kubeconfig", args: []string{"plan", "--context", ""}, want: []string{"completion-e2e"}, directive: noFiles},
	}
	for _, viaHelper := range []bool{false, true} {
		how := "kubectl cni-migrate __complete"
		if viaHelper {
			how = "kubectl __complete cni-migrate"
		}
		t.Run(how, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := complete(t, viaHelper, env.Kubeconfig, tc.args...)
					for _, w := range tc.want {
						if !c.has(w) {
							t.Errorf("%q not among %q", w, c.Values)
						}
					}
					for _, n := range tc.not {
						if c.has(n) {
							t.Errorf("%q among %q", n, c.Values)
						}
					}
					if tc.directive != "" && c.Directive != tc.directive {
						t.Errorf("directive %s, want %s", c.Directive, tc.directive)
					}
					if tc.check != nil {
						tc.check(t, c)
					}
				})
			}
			// Exactly the cluster's nodes, and --kubeconfig on the command
			// line is honoured while completing.
			t.Run("node names with --kubeconfig", func(t *testing.T) {
				c := complete(t, viaHelper, "", "node", "--kubeconfig", env.Kubeconfig, "")
				got := append([]string(nil), c.Values...)
				sort.Strings(got)
				if strings.Join(got, " ") != strings.Join(nodes, " ") {
					t.Errorf("nodes %q, want %q", got, nodes)
				}
			})
		})
	}

	// Without the helper on PATH, kubectl cannot complete the plugin's
	// arguments: the test above really went through the helper.
	t.Run("without the helper", func(t *testing.T) {
		bare := t.TempDir()
		if err := os.Symlink(PluginPath(t), filepath.Join(bare, PluginBinary)); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(kubectl, "__complete", "cni-migrate", "node", "")
		// Only the plugin and kubectl's directory, so that no helper
		// installed on this machine is found either.
		cmd.Env = []string{"PATH=" + bare + string(os.PathListSeparator) + filepath.Dir(kubectl), "HOME=" + os.Getenv("HOME"), "KUBECONFIG=" + env.Kubeconfig}
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCompletion(string(out))
		if err != nil {
			t.Fatal(err)
		}
		if c.has("worker-1") {
			t.Errorf("node names completed without %s on PATH: %q", completionHelper, c.Values)
		}
	})
}
