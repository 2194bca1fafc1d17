package shell

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"worker-1":             "worker-1",
		"":                     "''",
		"a b":                  "'a b'",
		"it's":                 `'it'\''s'`,
		"$HOME":                `'$HOME'`,
		"--reboot-command=x y": "'--reboot-command=x y'",
		"{{.Node}}":            "'{{.Node}}'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Join([]string{"A=b", "c=d"}); got != "'A=b' c=d" {
		t.Errorf("Join = %s", got)
	}
	// Round trip through a real shell when there is one.
	if _, err := exec.LookPath("sh"); err == nil {
		args := []string{"a b", "it's", "$HOME", "`id`", `"q"`, "x\ny", ""}
		out, err := exec.Command("sh", "-c", `for a in `+Join(args)+`; do printf '%s\0' "$a"; done`).Output()
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if !reflect.DeepEqual(got, args) {
			t.Errorf("sh round trip: %q, want %q", got, args)
		}
	}
}

func TestJoinHelm(t *testing.T) {
	got := Join([]string{"helm", "upgrade", "--values", "my dir/values-final.yaml", "it's"})
	if got != `helm upgrade --values 'my dir/values-final.yaml' 'it'\''s'` {
		t.Fatal(got)
	}
}
