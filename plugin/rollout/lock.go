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

// Lock says who takes the migration lock (the Lease
// kube-system/cni-migrate-rollout, which node, rollout, rollback and
// finalize hold while they change the cluster) and whether a live holder is
// overridden.
type Lock struct {
	// Holder names this run in the Lease: user@host (pid N, command).
	Holder string
	// Force takes the lock although another run holds it (--force-unlock).
	Force bool
	// Dead reports whether a holder is known to be dead (lock.DeadHere).
	Dead func(holder string) bool
}

// Hold takes the migration lock, saying on out when it took it over, and
// renews and watches it until release is called. The context it returns is
// cancelled with the lock's error as soon as the lock is lost (see
// LockLost), so that no change starts after that.
func (l Lock) Hold(ctx context.Context, cl *kube.Clients, out io.Writer) (held context.Context, release func(), err error) {
	held, _, release, err = l.HoldLease(ctx, cl, out)
	return held, release, err
}

// HoldLease is Hold that also returns the lease, for its notes (Held.Note).
func (l Lock) HoldLease(ctx context.Context, cl *kube.Clients, out io.Writer) (held context.Context, lease *lock.Held, release func(), err error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	lease, err = lock.Acquire(ctx, cl.Kube, lock.DefaultNamespace, lock.DefaultName, l.Holder, lock.Options{Force: l.Force, Dead: l.Dead})
	if err != nil {
		cancel(nil)
		return nil, nil, nil, cl.Classify(err, "taking the rollout lock")
	}
	if lease.TookOver != "" {
		fmt.Fprintf(out, "took over the migration lock from %s\n", lease.TookOver)
	}
	go lease.KeepAlive(runCtx, func(err error) { cancel(err) })
	return runCtx, lease, func() {
		// Stop renewing and watching first: giving the lease up is not
		// losing it.
		cancel(nil)
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		_ = lease.Release(rctx)
	}, nil
}

// LockLost returns the error that cancelled ctx when the lock was lost
// (exit code Locked), else nil.
func LockLost(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && errs.Code(cause) == errs.Locked {
		return cause
	}
	return nil
}
