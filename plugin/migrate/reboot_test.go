package migrate

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestParseRebootTemplate(t *testing.T) {
	target := RebootTarget{Node: "worker-1", InternalIP: "10.0.0.7"}
	for _, tc := range []struct {
		tmpl    string
		want    []string
		wantErr string
	}{
		{tmpl: "ssh {{.Node}} sudo reboot", want: []string{"ssh", "worker-1", "sudo", "reboot"}},
		{tmpl: "ssh {{ .Node }} sudo reboot", want: []string{"ssh", "worker-1", "sudo", "reboot"}},
		{tmpl: "ssh root@{{.InternalIP}} systemctl reboot", want: []string{"ssh", "root@10.0.0.7", "systemctl", "reboot"}},
		{tmpl: `  ipmitool  -H {{.Node}}-bmc.example.com chassis power cycle `, want: []string{"ipmitool", "-H", "worker-1-bmc.example.com", "chassis", "power", "cycle"}},
		// Quotes group words as a shell would; nothing is expanded.
		{tmpl: `ssh {{.Node}} 'sudo systemctl reboot'`, want: []string{"ssh", "worker-1", "sudo systemctl reboot"}},
		{tmpl: `sh -c 'echo $HOME; reboot-node "$0"' {{.Node}}`, want: []string{"sh", "-c", `echo $HOME; reboot-node "$0"`, "worker-1"}},
		{tmpl: `kubectl patch node {{.Node}} -p "{\"a\": \"{{.Node}}\"}"`, want: []string{"kubectl", "patch", "node", "worker-1", "-p", `{"a": "worker-1"}`}},
		{tmpl: `a\ b c`, want: []string{"a b", "c"}},
		{tmpl: `echo ''`, want: []string{"echo", ""}},
		{tmpl: `/usr/local/bin/reboot-{{.Node}}.sh`, want: []string{"/usr/local/bin/reboot-worker-1.sh"}},
		// Refused: shell operators, bad quotes, bad templates.
		{tmpl: "", wantErr: "empty"},
		{tmpl: "ssh {{.Node}} sudo reboot; rm -rf /", wantErr: `";" is a shell operator`},
		{tmpl: "ssh {{.Node}} reboot && echo ok", wantErr: `"&" is a shell operator`},
		{tmpl: "ssh {{.Node}} reboot | tee log", wantErr: `"|" is a shell operator`},
		{tmpl: "ssh $(hostname) reboot", wantErr: `"$" is a shell operator`},
		{tmpl: "ssh `hostname` reboot", wantErr: "shell operator"},
		{tmpl: "ssh {{.Node}} > /dev/null", wantErr: "shell operator"},
		{tmpl: "ssh '{{.Node}}", wantErr: "unclosed single quote"},
		{tmpl: `ssh "{{.Node}}`, wantErr: "unclosed double quote"},
		{tmpl: `ssh {{.Node`, wantErr: "unclosed {{"},
		{tmpl: `ssh \`, wantErr: "trailing backslash"},
		{tmpl: "ssh {{.Host}} reboot", wantErr: "Host"},
		{tmpl: "ssh {{.Node | bogus}} reboot", wantErr: "bogus"},
	} {
		rt, err := ParseRebootTemplate(tc.tmpl)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errs.Code(err) != errs.Usage {
				t.Errorf("ParseRebootTemplate(%q) = %v, want a usage error with %q", tc.tmpl, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRebootTemplate(%q): %v", tc.tmpl, err)
			continue
		}
		got, err := rt.Argv(target)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: Argv = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}

// TestRebootInjection: a node name can never add arguments or shell syntax.
func TestRebootInjection(t *testing.T) {
	rt, err := ParseRebootTemplate("ssh {{.Node}} sudo reboot")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"a; rm -rf /", "a b", "$(reboot)", "`id`", "-oProxyCommand=touch /tmp/x", "a|b", "a&&b",
		"UPPER", "node_1", "", strings.Repeat("a", 254), "a\nb", "../etc",
	} {
		if _, err := rt.Argv(RebootTarget{Node: name}); err == nil {
			t.Errorf("Argv accepted node name %q", name)
		} else if errs.Code(err) != errs.Usage {
			t.Errorf("node %q: %v is not a usage error", name, err)
		}
		if err := ValidateNodeName(name); err == nil {
			t.Errorf("ValidateNodeName(%q) accepted it", name)
		}
	}
	if _, err := rt.Argv(RebootTarget{Node: "w1", InternalIP: "1.2.3.4; reboot"}); err == nil {
		t.Error("Argv accepted an InternalIP that is not an address")
	}
	// Even past validation, substitution happens after splitting: a value
	// with blanks and operators stays one argument.
	argv, err := rt.argv(RebootTarget{Node: "a; rm -rf / #"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ssh", "a; rm -rf / #", "sudo", "reboot"}; !reflect.DeepEqual(argv, want) {
		t.Errorf("argv = %q, want %q", argv, want)
	}
	for _, ok := range []string{"worker-1", "ip-10-0-1-5.eu-west-1.compute.internal", "a"} {
		if err := ValidateNodeName(ok); err != nil {
			t.Errorf("ValidateNodeName(%q): %v", ok, err)
		}
	}
}
