package rollout

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/lock"
)

// Lock says who takes the rollout lock (the Lease
// kube-system/cni-migrate-rollout) and whether a live holder is overridden.
type Lock struct {
	// Holder names this run in the Lease: user@host (pid N).
	Holder string
	// Force takes the lock although another run holds it (--force-unlock).
	Force bool
}

// Hold takes the rollout lock, saying on out when it took it over, and
// renews it until release is called. The context it returns is cancelled
// with the renewal's error when the lock is lost (see lockLost).
func (l Lock) Hold(ctx context.Context, cl *kube.Clients, out io.Writer) (held context.Context, release func(), err error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	lease, err := lock.Acquire(ctx, cl.Kube, lock.DefaultNamespace, lock.DefaultName, l.Holder, lock.DefaultDuration, l.Force, nil)
	if err != nil {
		cancel(nil)
		return nil, nil, cl.Classify(err, "taking the rollout lock")
	}
	if lease.TookOver != "" {
		fmt.Fprintf(out, "took over the rollout lock from %s\n", lease.TookOver)
	}
	go lease.KeepAlive(runCtx, func(err error) { cancel(err) })
	return runCtx, func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		_ = lease.Release(rctx)
		cancel(nil)
	}, nil
}

// lockLost returns the error that cancelled ctx when the lock's renewal
// failed (exit code Locked), else nil.
func lockLost(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && errs.Code(cause) == errs.Locked {
		return cause
	}
	return nil
}
