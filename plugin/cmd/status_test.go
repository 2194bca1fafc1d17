package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

func TestStatusBadInput(t *testing.T) {
	kc := kubeconfig(t, "127.0.0.1:1") // nothing may reach it
	for _, tc := range []struct {
		args []string
		code int
		has  string
	}{
		{[]string{"status", "-o", "wide"}, errs.Usage, "-o json or -o yaml"},
		{[]string{"status", "--chunk-size", "0"}, errs.Usage, "--chunk-size 0 is not positive"},
		{[]string{"status", "-v=-2"}, errs.Usage, "-v=-2 is negative"},
		{[]string{"status", "worker-1"}, errs.Usage, `unexpected argument "worker-1"`},
		{[]string{"status", "--watch=maybe"}, errs.Usage, "--watch"},
		{[]string{"status", "-v"}, errs.Unreachable, "127.0.0.1:1"},
		{[]string{"status", "--watch"}, errs.Unreachable, "127.0.0.1:1"},
	} {
		_, line, code := run(t, append(tc.args, "--kubeconfig", kc)...)
		if code != tc.code || !strings.Contains(line, tc.has) {
			t.Errorf("%v: exit %d %q; want exit %d containing %q", tc.args, code, line, tc.code, tc.has)
		}
		if strings.Contains(line, "\n") || !strings.HasPrefix(line, "error: ") || !strings.Contains(line, "; ") {
			t.Errorf("%v: want one line 'error: what; fix', got %q", tc.args, line)
		}
	}
}

func TestStatusUnansweredAPIServer(t *testing.T) {
	kc := kubeconfig(t, silentServer(t))
	for _, args := range [][]string{{"status"}, {"status", "--watch", "-o", "json"}} {
		start := time.Now()
		_, line, code := run(t, append(args, "--kubeconfig", kc, "--request-timeout", "1s")...)
		if code != errs.Unreachable || !strings.Contains(line, "did not answer within 1s") {
			t.Errorf("%v: exit %d %q", args, code, line)
		}
		t.Logf("%v gave up after %s with --request-timeout=1s", args, time.Since(start).Round(time.Millisecond))
	}
}
