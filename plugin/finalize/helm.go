package finalize

import (
	"context"
	"fmt"
	"io"
	"os/exec"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/internal/shell"
)

// runHelm runs the helm upgrade args (args[0] is the binary) with its
// output to out when yes is set and the binary is on PATH; otherwise it
// prints the upgrade to run and stops with WaitingForUpgrade.
func runHelm(ctx context.Context, args []string, yes bool, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	helmPath, lookErr := exec.LookPath(args[0])
	if !yes || lookErr != nil {
		if yes {
			say("%s not found on PATH: run the upgrade yourself", args[0])
		}
		say("Next, upgrade Cilium to the final values:\n  %s", shell.Join(args))
		return errs.New(errs.WaitingForUpgrade, "Cilium still runs with its migration values",
			"run the helm upgrade above (or finalize --yes), then run kubectl cni-migrate finalize again")
	}
	say("running: %s", shell.Join(args))
	cmd := exec.CommandContext(ctx, helmPath, args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return errs.Wrap(errs.Interrupted, ctx.Err(), "interrupted during the helm upgrade", "run kubectl cni-migrate finalize again")
		}
		return errs.Wrap(errs.HelmFailed, err, "helm upgrade failed: "+err.Error(), "fix what helm reported above, then run kubectl cni-migrate finalize again")
	}
	return nil
}
