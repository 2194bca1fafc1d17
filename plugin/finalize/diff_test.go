package finalize

import (
	"strings"
	"testing"
)

func TestChanges(t *testing.T) {
	a := map[string]any{"cni": map[string]any{"customConf": true, "uninstall": false}, "policyEnforcementMode": "never", "x": 1.0}
	b := map[string]any{"cni": map[string]any{"customConf": false, "uninstall": false}, "policyEnforcementMode": "default", "y": "new"}
	got := strings.Join(Changes(a, b, ""), "\n")
	want := "cni.customConf: true -> false\npolicyEnforcementMode: never -> default\nx: 1 -> (unset)\ny: (unset) -> new"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
