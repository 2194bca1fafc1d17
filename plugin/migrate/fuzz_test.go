package migrate

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// oneLineError fails unless err is a plugin error of one line with a fix.
func oneLineError(t *testing.T, what string, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("%s: error is not one line: %q", what, msg)
	}
	if errs.Code(err) == 0 || errs.Code(err) == 1 {
		t.Fatalf("%s: error without an exit code of its own (%d): %q", what, errs.Code(err), msg)
	}
}

// FuzzRebootTemplate: any --reboot-command either parses, and then renders
// one argument per word for any node (or refuses the node with a clear
// error), or is refused with a one-line usage error.
func FuzzRebootTemplate(f *testing.F) {
	for _, s := range []string{
		"ssh {{.Node}} sudo systemctl reboot",
		"ssh {{.InternalIP}} 'sudo reboot'",
		`sh -c "ssh {{.Node}} reboot || true"`,
		"ssh {{.Node}} reboot; rm -rf /",
		"{{.Nope}}", "{{", "'unterminated", `a\`, "", "   ", "$(reboot)", "a|b", "`x`",
	} {
		f.Add(s, "worker-1", "192.0.2.10")
	}
	f.Add("ssh {{.Node}}", "-oProxyCommand=x", "")
	f.Add("ssh {{.InternalIP}}", "n", "not-an-ip")
	f.Fuzz(func(t *testing.T, cmd, node, ip string) {
		tpl, err := ParseRebootTemplate(cmd)
		if err != nil {
			oneLineError(t, "ParseRebootTemplate", err)
			if errs.Code(err) != errs.Usage {
				t.Fatalf("code %d, want usage", errs.Code(err))
			}
			return
		}
		argv, err := tpl.Argv(RebootTarget{Node: node, InternalIP: ip})
		if err != nil {
			oneLineError(t, "Argv", err)
			return
		}
		if len(argv) != len(tpl.words) || len(argv) == 0 {
			t.Fatalf("%d arguments for %d words", len(argv), len(tpl.words))
		}
		// Only a valid node name gets through: nothing that reads as an
		// option or holds a space or quote.
		if strings.HasPrefix(node, "-") || strings.ContainsAny(node, " '\"\n;$`") {
			t.Fatalf("node %q rendered into %q", node, argv)
		}
	})
}

// FuzzStateOf: whatever annotations a node carries (written by hand, or by
// another version), reading its state gives a state or a one-line error
// that names the annotation; phases read back are ones the plugin knows.
func FuzzStateOf(f *testing.F) {
	f.Add("done", "2026-12-03T19:00:00Z", "true", "boot-1", "command", "", "")
	f.Add("agent-restarted", "yesterday", "maybe", "", "skip", "drained", "false")
	f.Add("nonsense", "", "", "", "", "nonsense", "")
	f.Fuzz(func(t *testing.T, phase, phaseTime, wasUnsched, bootID, reboot, rbPhase, rbUnsched string) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Annotations: map[string]string{
			AnnotationPhase: phase, AnnotationPhaseTime: phaseTime, AnnotationWasUnschedulable: wasUnsched,
			AnnotationBootID: bootID, AnnotationReboot: reboot,
			AnnotationRollbackPhase: rbPhase, AnnotationRollbackWasUnschedulable: rbUnsched,
		}}}
		s, err := StateOf(n)
		if err != nil {
			oneLineError(t, "StateOf", err)
			if !strings.Contains(err.Error(), AnnotationPrefix) {
				t.Fatalf("the error does not name the annotation: %v", err)
			}
			return
		}
		if _, err := ParsePhase(string(s.Phase)); err != nil {
			t.Fatalf("phase %q read back is not known", s.Phase)
		}
		if !s.HasBootID || s.BootID != bootID {
			t.Fatalf("bootID %q read as %q", bootID, s.BootID)
		}
	})
}
