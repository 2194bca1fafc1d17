package rollout

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/connectivity"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Gate is --gate connectivity: before the first node and after each batch,
// wait until the connectivity matrix has stayed green for Settle.
type Gate struct {
	Monitor *connectivity.Monitor
	// Settle is how long the matrix must stay green; Timeout how long to
	// wait for that.
	Settle, Timeout time.Duration
	// Out is where the gate says how it went.
	Out io.Writer
}

// Pass runs the gate at the place what names ("after batch 2/5"), saying
// on Out how it went. A nil Gate passes at once.
func (g *Gate) Pass(ctx context.Context, what string) error {
	if g == nil || g.Monitor == nil {
		return nil
	}
	fmt.Fprintf(g.Out, "gate %s: waiting for the connectivity matrix to be green for %s (at most %s)\n", what, g.Settle, g.Timeout)
	m, err := g.Monitor.Gate(ctx, what, g.Settle, g.Timeout)
	if err != nil {
		if ctx.Err() != nil {
			return errs.New(errs.Interrupted, "interrupted in the connectivity gate "+what, "run the same command again to continue")
		}
		if errs.Code(err) == errs.ConnectivityFailed {
			return err
		}
		return errs.Wrap(errs.Unreachable, err, "connectivity gate "+what+": "+errs.OneLine(err.Error()), "check the cluster, then run the same command again")
	}
	fmt.Fprintf(g.Out, "gate %s: %s\n", what, m.Summary())
	return nil
}
