package cmd

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// TestStrategyUsageErrors covers --strategy on the commands that take it,
// before any API call.
func TestStrategyUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--strategy", "big-bang"}, `--strategy "big-bang" is not a migration strategy`},
		{[]string{"values", "--strategy", "big-bang"}, `--strategy "big-bang" is not a migration strategy`},
		{[]string{"node", "w1", "--strategy", "big-bang"}, `--strategy "big-bang" is not a migration strategy`},
		{[]string{"rollout", "--strategy", "big-bang"}, `--strategy "big-bang" is not a migration strategy`},
		{[]string{"node", "w1", "--strategy", "in-place", "--dry-run=client"}, "the in-place method has no script"},
		{[]string{"rollout", "--strategy", "in-place", "--dry-run=client"}, "the in-place method has no script"},
		{[]string{"node", "w1", "--strategy", "in-place", "--reboot-command", "ssh {{.Node}} reboot"}, "--reboot-command does not apply to the in-place method (--strategy in-place)"},
		{[]string{"rollout", "--strategy", "in-place", "--batch", "2", "--probe-timeout", "1m"}, "--probe-timeout, --batch do not apply to the in-place method"},
		{[]string{"rollout", "--strategy", "dual-overlay", "--restart-timeout", "1m"}, "--restart-timeout applies to the in-place method only"},
	} {
		out, errLine, code := run(t, tc.args...)
		if code != errs.Usage || !strings.Contains(errLine, tc.want) || out != "" {
			t.Errorf("%v: exit %d %q (stdout %q), want exit 2 with %q", tc.args, code, errLine, out, tc.want)
		}
	}
	// rollback runs the dual-overlay steps backwards only: no --strategy.
	if _, errLine, code := run(t, "rollback", "w1", "--strategy", "in-place"); code != errs.Usage || !strings.Contains(errLine, "unknown flag: --strategy") {
		t.Errorf("rollback --strategy: exit %d %q", code, errLine)
	}
}
