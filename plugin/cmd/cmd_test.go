package cmd

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/ciliumver"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// run drives the whole CLI in-process and returns stdout, stderr-as-main-
// prints-it and the exit code.
func run(t *testing.T, args ...string) (stdout, errLine string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewCmdCNIMigrate(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, BuildInfo{Version: "v9.9.9", Commit: "abc", Date: "today"}, Env{NoColor: "1"})
	err := Run(root, args)
	if err != nil {
		errLine = FormatError(err)
	}
	return out.String(), errLine, ExitCode(err)
}

// silentServer accepts connections and never answers, like an API server
// behind a black-holing firewall.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(done)
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func kubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://` + server + `", insecure-skip-tls-verify: true}
users:
- name: test
  user: {token: x}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(notYAML, []byte("cni: [unclosed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "a-file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// None of these may reach the API server: point at a closed port.
	kc := kubeconfig(t, "127.0.0.1:1")
	tests := []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"invalid CIDR", []string{"values", "--pod-cidr", "10.0.0.0/33"}, errs.Usage, "--pod-cidr"},
		{"CIDR with host bits", []string{"plan", "--pod-cidr", "10.245.3.0/16"}, errs.Usage, "did you mean 10.245.0.0/16"},
		{"tunnel port out of range", []string{"values", "--tunnel-port", "70000"}, errs.Usage, "--tunnel-port 70000 is out of range"},
		{"tunnel port zero-ish", []string{"values", "--tunnel-port", "-1"}, errs.Usage, "out of range"},
		{"unknown protocol", []string{"values", "--tunnel-protocol", "gre"}, errs.Usage, "vxlan or geneve"},
		{"old Cilium", []string{"values", "--cilium-version", "1.9"}, errs.Usage, "1.14 to 1.20"},
		{"banana Cilium", []string{"values", "--cilium-version", "banana"}, errs.Usage, "not a Cilium version"},
		{"banana Cilium nodeconfig", []string{"nodeconfig", "--cilium-version", "banana"}, errs.Usage, "not a Cilium version"},
		{"missing values file", []string{"values", "--values", filepath.Join(dir, "nope.yaml")}, errs.Usage, "--values"},
		{"values not YAML", []string{"values", "--values", notYAML}, errs.Usage, "bad.yaml"},
		{"output dir missing", []string{"values", "--output-dir", filepath.Join(dir, "missing")}, errs.IO, "create it or choose another --output-dir"},
		{"output dir is a file", []string{"values", "--output-dir", aFile}, errs.IO, "not a directory"},
		{"bad -o", []string{"plan", "-o", "wide"}, errs.Usage, "-o json or -o yaml"},
		{"bad node label", []string{"nodeconfig", "--node-label", "nolabel"}, errs.Usage, "key=value"},
		{"server dry run needs apply", []string{"nodeconfig", "--dry-run=server"}, errs.Usage, "--apply"},
		{"unknown flag", []string{"plan", "--bogus"}, errs.Usage, "unknown flag: --bogus"},
		{"unknown command", []string{"bogus"}, errs.Usage, `unknown command "bogus"`},
		{"refused connection", []string{"plan"}, errs.Unreachable, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, line, code := run(t, append(tt.args, "--kubeconfig", kc)...)
			if code != tt.code || !strings.Contains(line, tt.has) {
				t.Fatalf("exit %d %q; want exit %d containing %q", code, line, tt.code, tt.has)
			}
			if strings.Count(line, "\n") > 0 || !strings.HasPrefix(line, "error: ") || !strings.Contains(line, "; ") {
				t.Fatalf("want one line 'error: what; fix', got %q", line)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("bad input left files behind: %v", entries)
	}
}

func TestUnansweredAPIServer(t *testing.T) {
	kc := kubeconfig(t, silentServer(t))
	for _, cmd := range [][]string{{"plan"}, {"values"}, {"nodeconfig", "--apply"}} {
		start := time.Now()
		_, line, code := run(t, append(cmd, "--kubeconfig", kc, "--request-timeout", "1s")...)
		if code != errs.Unreachable || !strings.Contains(line, "did not answer within 1s") || !strings.Contains(line, "--request-timeout") {
			t.Fatalf("%v: exit %d %q", cmd, code, line)
		}
		t.Logf("%v gave up after %s with --request-timeout=1s", cmd, time.Since(start).Round(time.Millisecond))
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, line, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "kubectl cni-migrate v9.9.9 (commit abc") {
		t.Fatalf("%q %q %d", out, line, code)
	}
	if !strings.Contains(out, "\nCilium: "+ciliumver.DefaultVersion+" by default (supported: 1.14 to 1.20)\n") {
		t.Fatalf("version names no default Cilium: %q", out)
	}
	for _, format := range []string{"json", "yaml"} {
		out, line, code = run(t, "version", "-o", format)
		var v VersionInfo
		if code != 0 || yaml.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("version -o %s: %q %q %d", format, out, line, code)
		}
		if v.Kind != "Version" || v.Version != "v9.9.9" || v.Commit != "abc" || v.Cilium.Default != ciliumver.DefaultVersion ||
			len(v.Cilium.Supported) != len(ciliumver.Supported()) || !slices.Contains(v.Cilium.Supported, ciliumver.DefaultVersion) {
			t.Fatalf("version -o %s: %+v", format, v)
		}
	}
	if _, line, code = run(t, "version", "-o", "wide"); code != errs.Usage || !strings.Contains(line, "use -o json or -o yaml") {
		t.Fatalf("version -o wide: %q %d", line, code)
	}
	out, _, code = run(t, "--help")
	if code != 0 || !strings.Contains(out, "kubectl cni-migrate [command]") {
		t.Fatalf("help: %d %q", code, out)
	}
	for _, sub := range []string{"plan", "values", "nodeconfig", "version"} {
		out, _, code = run(t, sub, "--help")
		if code != 0 || !strings.Contains(out, "kubectl cni-migrate "+sub) {
			t.Fatalf("%s --help: %d %q", sub, code, out)
		}
	}
}

func TestNodeConfigOffline(t *testing.T) {
	out, line, code := run(t, "nodeconfig", "--cilium-version", "1.15", "--name", "wave-1", "--node-label", "example.com/cilium=yes", "-n", "cilium")
	if code != 0 {
		t.Fatal(line)
	}
	for _, want := range []string{"apiVersion: cilium.io/v2alpha1", "name: wave-1", "namespace: cilium", "example.com/cilium: \"yes\""} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	out, _, _ = run(t, "nodeconfig", "-o", "json")
	if !strings.Contains(out, `"apiVersion": "cilium.io/v2"`) {
		t.Errorf("json: %s", out)
	}
}

func TestCompletion(t *testing.T) {
	out, _, code := run(t, "__complete", "values", "--cilium-version", "")
	if code != 0 || !strings.Contains(out, "1.20.2") || !strings.Contains(out, "1.14.19") {
		t.Fatalf("cilium versions: %q", out)
	}
	out, _, _ = run(t, "__complete", "")
	for _, sub := range []string{"plan", "values", "nodeconfig", "version"} {
		if !strings.Contains(out, sub) {
			t.Errorf("subcommand %s not completed: %q", sub, out)
		}
	}
	out, _, _ = run(t, "__complete", "plan", "--tunnel-protocol", "")
	if !strings.Contains(out, "geneve") {
		t.Errorf("tunnel protocols: %q", out)
	}
}
