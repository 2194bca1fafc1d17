package migrate

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// RebootTarget is the data a reboot command template sees.
type RebootTarget struct {
	// Node is the node name (a validated DNS-1123 subdomain).
	Node string
	// InternalIP is the node's first InternalIP address ("" if it has none).
	InternalIP string
}

// RebootTemplate is a --reboot-command: a command line whose words are
// text/template templates. The line is split into words (shell-like
// quoting, no shell) before anything is substituted, so a substituted
// value is always part of exactly one argument and never parsed again.
type RebootTemplate struct {
	raw   string
	words []*template.Template
}

const rebootFix = "write it like 'ssh {{.Node}} sudo systemctl reboot' (words split as a shell would, quotes allowed, no shell operators; use sh -c '...' for a pipeline)"

// ParseRebootTemplate splits s into words and parses each as a template.
// Unquoted shell operators (| & ; < > ( ) $ `) are refused: the command is
// not run by a shell, so they would not do what they look like.
func ParseRebootTemplate(s string) (*RebootTemplate, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, errs.Newf(errs.Usage, rebootFix, "--reboot-command %q: %v", s, err)
	}
	if len(words) == 0 {
		return nil, errs.New(errs.Usage, "--reboot-command is empty", rebootFix)
	}
	t := &RebootTemplate{raw: s}
	for i, w := range words {
		tpl, err := template.New(fmt.Sprintf("word%d", i)).Option("missingkey=error").Parse(w)
		if err != nil {
			return nil, errs.Newf(errs.Usage, "the fields are {{.Node}} and {{.InternalIP}}", "--reboot-command %q: %v", s, errs.OneLine(err.Error()))
		}
		t.words = append(t.words, tpl)
	}
	// Execute once with sample data so that unknown fields fail now, not
	// in the middle of a migration.
	if _, err := t.argv(RebootTarget{Node: "node-1", InternalIP: "192.0.2.1"}); err != nil {
		return nil, errs.Newf(errs.Usage, "the fields are {{.Node}} and {{.InternalIP}}", "--reboot-command %q: %v", s, errs.OneLine(err.Error()))
	}
	return t, nil
}

// String returns the template as given.
func (t *RebootTemplate) String() string { return t.raw }

// Argv renders the command for a node: one element per word of the
// template. The node name must be a DNS-1123 subdomain and InternalIP, when
// set, an IP address, so no substituted value can smuggle in an option or
// a shell word.
func (t *RebootTemplate) Argv(target RebootTarget) ([]string, error) {
	if err := ValidateNodeName(target.Node); err != nil {
		return nil, err
	}
	if target.InternalIP != "" {
		if _, err := netip.ParseAddr(target.InternalIP); err != nil {
			return nil, errs.Newf(errs.Precondition, "check the node's status.addresses", "node %s has an InternalIP %q that is not an IP address", target.Node, target.InternalIP)
		}
	}
	return t.argv(target)
}

func (t *RebootTemplate) argv(target RebootTarget) ([]string, error) {
	out := make([]string, 0, len(t.words))
	for _, w := range t.words {
		var b bytes.Buffer
		if err := w.Execute(&b, target); err != nil {
			return nil, err
		}
		out = append(out, b.String())
	}
	if out[0] == "" {
		return nil, fmt.Errorf("the command name is empty")
	}
	return out, nil
}

// ValidateNodeName refuses anything that is not a valid node name (a
// DNS-1123 subdomain): such a name cannot exist in the cluster, and it could
// carry shell syntax into a reboot command or the generated script.
func ValidateNodeName(name string) error {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return errs.Newf(errs.Usage, "pass node names as kubectl get nodes prints them",
			"%q is not a valid node name: %s", name, msgs[0])
	}
	return nil
}

// splitWords splits a command line the way a POSIX shell splits words,
// without any expansion: blanks separate words; '...' is literal; "..."
// allows \" \\ \$ \` escapes; a backslash outside quotes escapes the next
// character. Template actions {{ ... }} are kept whole, spaces included.
// Unquoted shell operators are an error.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.HasPrefix(s[i:], "{{"):
			end := strings.Index(s[i:], "}}")
			if end < 0 {
				return nil, fmt.Errorf("unclosed {{")
			}
			cur.WriteString(s[i : i+end+2])
			i += end + 1
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unclosed single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			closed := false
			for ; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				} else if strings.HasPrefix(s[i:], "{{") {
					end := strings.Index(s[i:], "}}")
					if end < 0 {
						return nil, fmt.Errorf("unclosed {{")
					}
					cur.WriteString(s[i : i+end+2])
					i += end + 1
					continue
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unclosed double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`", c) >= 0:
			return nil, fmt.Errorf("%q is a shell operator but the command is not run by a shell (quote it to pass it literally)", string(c))
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
