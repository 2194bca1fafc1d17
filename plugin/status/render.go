package status

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/output"
)

// clearScreen moves the cursor home and clears a terminal.
const clearScreen = "\x1b[H\x1b[2J"

// Renderer writes reports one after another for Watch: a report equal to
// the previous one is not written again. Tables on a terminal replace the
// previous one (like watch(1)); otherwise tables are separated by a blank
// line, JSON objects follow each other and YAML documents are separated
// by "---".
type Renderer struct {
	w       io.Writer
	format  string
	style   output.Style
	clear   bool
	printer printers.ResourcePrinter
	last    []byte
	now     func() time.Time
	count   int
}

// NewRenderer returns a renderer for format "" (a table), "json" or
// "yaml". clear replaces each table on the screen.
func NewRenderer(w io.Writer, format string, style output.Style, clear bool, now func() time.Time) (*Renderer, error) {
	r := &Renderer{w: w, format: format, style: style, clear: clear && format == "", now: now}
	if format != "" {
		p, err := genericclioptions.NewJSONYamlPrintFlags().ToPrinter(format)
		if err != nil {
			return nil, errs.Newf(errs.Usage, "use -o json or -o yaml (or no -o for a table)", "unknown output format %q", format)
		}
		r.printer = p
	}
	return r, nil
}

// Emit writes a report unless it equals the last one written.
func (r *Renderer) Emit(rep *Report) error {
	var b bytes.Buffer
	if r.format == "" {
		if err := rep.PrintTable(&b, r.style); err != nil {
			return err
		}
	} else if err := r.printer.PrintObj(rep, &b); err != nil {
		return err
	}
	// kubectl's YAML printer starts every document but the first with
	// "---": compare without it.
	content := bytes.TrimPrefix(b.Bytes(), []byte("---\n"))
	if r.count > 0 && bytes.Equal(content, r.last) {
		return nil
	}
	r.last = content
	var out bytes.Buffer
	switch {
	case r.clear:
		out.WriteString(clearScreen)
		fmt.Fprintf(&out, "%s\n\n", r.style.Bold(fmt.Sprintf("kubectl cni-migrate status --watch, updated %s (Ctrl-C to stop)", r.now().Format("15:04:05"))))
	case r.format == "" && r.count > 0:
		out.WriteString("\n")
	}
	out.Write(b.Bytes())
	r.count++
	if _, err := r.w.Write(out.Bytes()); err != nil {
		return errs.Wrap(errs.IO, err, "cannot write the status: "+err.Error(), "check stdout")
	}
	return nil
}
