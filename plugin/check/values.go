package check

import (
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/values"
)

// IDValues is the check of the user's --values file (plan --values).
const IDValues = "values"

// Values turns values.Guard's findings on the user's file into results:
// one FAIL each, or a PASS when nothing the migration needs is broken.
func Values(file string, unsafe []values.Unsafe) []Result {
	if len(unsafe) == 0 {
		return []Result{pass(IDValues, "--values "+file+" breaks nothing the migration needs")}
	}
	out := make([]Result, 0, len(unsafe))
	for _, u := range unsafe {
		out = append(out, fail(IDValues, u.Msg, u.Fix+", or pass "+values.AllowUnsafeFlag+" to values to write it anyway"))
	}
	return out
}
