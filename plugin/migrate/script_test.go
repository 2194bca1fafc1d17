package migrate

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/nodeconfig"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testOptions() Options {
	return Options{
		NodeLabel:          nodeconfig.DefaultLabel,
		NodeConfigName:     nodeconfig.DefaultName,
		DrainTimeout:       DefaultDrainTimeout,
		GracePeriodSeconds: -1,
		AgentTimeout:       DefaultAgentTimeout,
		Reboot:             RebootManual,
		RebootTimeout:      DefaultRebootTimeout,
		ProbeImage:         DefaultProbeImage,
		ProbeTimeout:       DefaultProbeTimeout,
	}
}

func mustTemplate(t *testing.T, s string) *RebootTemplate {
	t.Helper()
	rt, err := ParseRebootTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestScriptGolden(t *testing.T) {
	command := testOptions()
	command.Reboot = RebootCommand
	command.RebootCommand = mustTemplate(t, "ssh -o 'ConnectTimeout 5' root@{{.InternalIP}} systemctl reboot --message={{.Node}}")
	command.DrainTimeout = 90 * time.Second
	command.GracePeriodSeconds = 30
	command.DeleteEmptyDirData = true

	skip := testOptions()
	skip.Reboot = RebootSkip
	skip.NodeLabel = "example.com/cilium=yes"
	skip.NodeConfigName = "migrate"
	skip.DisableEviction = true
	skip.Force = true
	skip.DrainTimeout = 0

	for _, tc := range []struct {
		name string
		opts Options
		in   ScriptInput
	}{
		{"manual", testOptions(), ScriptInput{Nodes: []string{"worker-1"}, Namespace: "kube-system", Command: "kubectl cni-migrate node worker-1 --dry-run=client"}},
		{"command", command, ScriptInput{Nodes: []string{"worker-1", "control-plane"}, Namespace: "cilium",
			KubectlFlags: []string{"--context=prod", "--kubeconfig=/home/me/my config"}, Command: "kubectl cni-migrate node worker-1 control-plane ...",
			BridgeDeployment: "cni-migrate-policy-bridge", BridgeRules: "cni-migrate-node-rules"}},
		{"skip", skip, ScriptInput{Nodes: []string{"ip-10-0-1-5.eu-west-1.compute.internal"}, Namespace: "kube-system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(tc.opts, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "script-"+tc.name+".golden.sh")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if got != string(want) {
				t.Errorf("script differs from %s (go test ./plugin/migrate -update rewrites it):\n%s", path, got)
			}
			if bash, err := exec.LookPath("bash"); err == nil {
				if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
					t.Errorf("bash -n %s: %v\n%s", path, err, out)
				}
			}
			for _, must := range []string{"set -euo pipefail", "kubectl cordon", "kubectl drain", "--ignore-daemonsets", "kubectl label node", "--overwrite",
				"kubectl annotate node", "delete pod -l k8s-app=cilium --field-selector spec.nodeName=", "kubectl uncordon", "kubectl create -f -", "wait --for=condition=Complete job/"} {
				if !strings.Contains(got, must) {
					t.Errorf("script lacks %q", must)
				}
			}
		})
	}
}

// TestScriptFunctions runs the script's helper functions in bash.
func TestScriptFunctions(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	s, err := Script(testOptions(), ScriptInput{Nodes: []string{"w"}, Namespace: "kube-system"})
	if err != nil {
		t.Fatal(err)
	}
	funcs := s[strings.Index(s, "ip2int()"):strings.Index(s, "# Before anything changes")]
	for _, tc := range []struct {
		ip   string
		pool string
		want bool
	}{
		{"10.245.3.7", "10.245.0.0/16", true},
		{"10.244.3.7", "10.245.0.0/16", false},
		{"10.244.3.7", "10.246.0.0/16 10.244.0.0/16", true},
		{"172.20.255.255", "172.20.0.0/16", true},
		{"172.21.0.0", "172.20.0.0/16", false},
		{"192.168.1.130", "192.168.1.128/25", true},
		{"192.168.1.127", "192.168.1.128/25", false},
		{"1.2.3.4", "0.0.0.0/0", true},
	} {
		err := exec.Command(bash, "-c", "set -euo pipefail\n"+funcs+"\nin_pool "+tc.ip+" "+tc.pool).Run()
		if got := err == nil; got != tc.want {
			t.Errorf("in_pool %s %s = %v (%v), want %v", tc.ip, tc.pool, got, err, tc.want)
		}
	}
}

func TestScriptRefusesBadInput(t *testing.T) {
	if _, err := Script(testOptions(), ScriptInput{Nodes: []string{"a; rm -rf /"}, Namespace: "kube-system"}); errs.Code(err) != errs.Usage {
		t.Errorf("bad node name: %v", err)
	}
	o := testOptions()
	o.Reboot = RebootCommand
	if _, err := Script(o, ScriptInput{Nodes: []string{"w"}, Namespace: "kube-system"}); errs.Code(err) != errs.Usage {
		t.Errorf("command without template: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		ok     bool
	}{
		{"defaults", func(*Options) {}, true},
		{"skip", func(o *Options) { o.Reboot = RebootSkip }, true},
		{"drain forever", func(o *Options) { o.DrainTimeout = 0 }, true},
		{"bad reboot", func(o *Options) { o.Reboot = "sometimes" }, false},
		{"manual with command", func(o *Options) { o.RebootCommand = mustTemplate(t, "reboot") }, false},
		{"bad label", func(o *Options) { o.NodeLabel = "novalue" }, false},
		{"zero agent timeout", func(o *Options) { o.AgentTimeout = 0 }, false},
		{"negative drain timeout", func(o *Options) { o.DrainTimeout = -time.Second }, false},
		{"no image", func(o *Options) { o.ProbeImage = " " }, false},
	} {
		o := testOptions()
		tc.change(&o)
		err := o.Validate()
		if (err == nil) != tc.ok || (err != nil && errs.Code(err) != errs.Usage) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestScriptBridgeCheck runs the script's policy-bridge check in bash
// against a stub kubectl: it stops with exit code 15 while Cilium enforces
// policies (not in audit mode) and the bridge or its node rules are not
// Ready, as the plugin does.
func TestScriptBridgeCheck(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	s, err := Script(testOptions(), ScriptInput{Nodes: []string{"w"}, Namespace: "kube-system", BridgeDeployment: "bridge", BridgeRules: "rules"})
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(s, "# While Cilium enforces network policies")
	end := strings.Index(s, "########## node")
	if start < 0 || end < start {
		t.Fatalf("no bridge check in the script:\n%s", s)
	}
	check := s[start:end]
	for _, tc := range []struct {
		name                         string
		enforce, audit, ready, rules string
		code                         int
	}{
		{"enforcement off", "never", "", "", "", 0},
		{"audit mode", "default", "true", "", "", 0},
		{"no bridge", "default", "", "", "", 15},
		{"unset mode is default", "", "", "", "", 15},
		{"bridge and rules ready", "default", "false", "1", "3 3", 0},
		{"a node without rules", "always", "", "1", "2 3", 15},
		{"bridge not ready", "default", "", "0", "3 3", 15},
		{"rules on no node", "default", "", "1", "0 0", 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := fmt.Sprintf(`kubectl() {
  case "$*" in
  *enable-policy*) echo -n %q ;;
  *policy-audit-mode*) echo -n %q ;;
  *"get deployment bridge"*) [[ -n %q ]] || return 1; echo -n %q ;;
  *"get daemonset rules"*) [[ -n %q ]] || return 1; echo -n %q ;;
  *) echo "unexpected kubectl $*" >&2; return 1 ;;
  esac
}
`, tc.enforce, tc.audit, tc.ready, tc.ready, tc.rules, tc.rules)
			cmd := exec.Command(bash, "-c", "set -euo pipefail\n"+stub+check+"\necho passed")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			if code == 15 && !strings.Contains(string(out), "kubectl cni-migrate policy-bridge --deploy") {
				t.Errorf("no fix named:\n%s", out)
			}
		})
	}
}
