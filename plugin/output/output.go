// Package output holds what the commands share for writing to a terminal:
// colour (honouring NO_COLOR and only on a TTY) and the -o formats.
package output

import (
	"io"
	"os"

	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Style colours text, or does nothing.
type Style struct{ enabled bool }

// NewStyle colours only when w is a terminal and noColor (the NO_COLOR
// environment variable, https://no-color.org) is empty.
func NewStyle(w io.Writer, noColor string) Style {
	return Style{enabled: noColor == "" && IsTerminal(w)}
}

func (s Style) wrap(code, text string) string {
	if !s.enabled {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Red, Yellow, Green and Bold colour text when enabled.
func (s Style) Red(t string) string    { return s.wrap("31", t) }
func (s Style) Yellow(t string) string { return s.wrap("33", t) }
func (s Style) Green(t string) string  { return s.wrap("32", t) }
func (s Style) Bold(t string) string   { return s.wrap("1", t) }

// PrintStructured writes obj as json or yaml through kubectl's printers.
func PrintStructured(obj runtime.Object, format string, w io.Writer) error {
	pf := genericclioptions.NewJSONYamlPrintFlags()
	p, err := pf.ToPrinter(format)
	if err != nil {
		return errs.Newf(errs.Usage, "use -o json or -o yaml (or no -o for a table)", "unknown output format %q", format)
	}
	return p.PrintObj(obj, w)
}

// ValidateFormat accepts "", json and yaml.
func ValidateFormat(format string) error {
	switch format {
	case "", "json", "yaml":
		return nil
	}
	return errs.Newf(errs.Usage, "use -o json or -o yaml (or no -o for a table)", "unknown output format %q", format)
}
