// Package lock keeps two rollouts from working on one cluster at once with
// a coordination.k8s.io Lease: the holder renews it while it runs, a second
// run sees a live holder and stops, and a holder that died stops renewing,
// so its lease expires and the next run takes it over.
package lock

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Defaults.
const (
	DefaultNamespace = "kube-system"
	DefaultName      = "cni-migrate-rollout"
	DefaultDuration  = 60 * time.Second
)

// Held is a lease this process holds.
type Held struct {
	c        kubernetes.Interface
	lease    *coordinationv1.Lease
	identity string
	duration time.Duration
	now      func() time.Time
	// TookOver is the previous holder when an expired or forced lease was taken.
	TookOver string
}

// Acquire takes the lease ns/name for identity. A lease held by someone
// else and renewed within its duration is refused with errs.Locked, unless
// force is set; an expired one is taken over (Held.TookOver says from whom).
func Acquire(ctx context.Context, c kubernetes.Interface, ns, name, identity string, duration time.Duration, force bool, now func() time.Time) (*Held, error) {
	if now == nil {
		now = time.Now
	}
	secs := int32(duration / time.Second)
	h := &Held{c: c, identity: identity, duration: duration, now: now}
	for attempt := 0; attempt < 3; attempt++ {
		t := metav1.NewMicroTime(now())
		l, err := c.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "kubectl-cni-migrate"}},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &identity, LeaseDurationSeconds: &secs, AcquireTime: &t, RenewTime: &t},
			}
			created, err := c.CoordinationV1().Leases(ns).Create(ctx, l, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			h.lease = created
			return h, nil
		}
		if err != nil {
			return nil, err
		}
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		if holder != "" && holder != identity {
			if live, renewed := Live(l, now()); live && !force {
				return nil, errs.Newf(errs.Locked,
					fmt.Sprintf("wait for it to finish; if that run is dead, pass --force-unlock (or wait %s for the lease to expire)", expiresIn(l, now())),
					"another rollout holds Lease %s/%s: %s, renewed %s ago", ns, name, holder, renewed.Round(time.Second))
			}
			h.TookOver = holder
		}
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = &identity, &secs, &t, &t
		updated, err := c.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h.lease = updated
		return h, nil
	}
	return nil, errs.Newf(errs.Locked, "run it again in a moment", "another rollout took Lease %s/%s at the same moment", ns, name)
}

// Live reports whether a lease is held and renewed within its duration, and
// how long ago it was renewed.
func Live(l *coordinationv1.Lease, now time.Time) (bool, time.Duration) {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil {
		return false, 0
	}
	age := now.Sub(l.Spec.RenewTime.Time)
	d := DefaultDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return age < d, age
}

func expiresIn(l *coordinationv1.Lease, now time.Time) time.Duration {
	d := DefaultDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return (l.Spec.RenewTime.Time.Add(d).Sub(now)).Round(time.Second)
}

// Renew renews the lease once. It fails with errs.Locked when someone else
// took it.
func (h *Held) Renew(ctx context.Context) error {
	l, err := h.c.CoordinationV1().Leases(h.lease.Namespace).Get(ctx, h.lease.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.identity {
		holder := "nobody"
		if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			holder = *l.Spec.HolderIdentity
		}
		return errs.Newf(errs.Locked, "check who runs the other rollout; this one stopped between steps",
			"lost Lease %s/%s to %s", l.Namespace, l.Name, holder)
	}
	t := metav1.NewMicroTime(h.now())
	l.Spec.RenewTime = &t
	updated, err := h.c.CoordinationV1().Leases(l.Namespace).Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	h.lease = updated
	return nil
}

// KeepAlive renews the lease every third of its duration until ctx ends. If
// the lease is lost it calls lost with the reason and returns.
func (h *Held) KeepAlive(ctx context.Context, lost func(error)) {
	t := time.NewTicker(h.duration / 3)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := h.Renew(ctx)
			switch {
			case err == nil:
				failures = 0
			case errs.Code(err) == errs.Locked:
				lost(err)
				return
			case ctx.Err() != nil:
				return
			default:
				// A passing API error: try again, but give up before the
				// lease could expire under us.
				if failures++; failures >= 2 {
					lost(fmt.Errorf("cannot renew Lease %s/%s: %w", h.lease.Namespace, h.lease.Name, err))
					return
				}
			}
		}
	}
}

// Release gives the lease up (it stays, with no holder) if still held.
func (h *Held) Release(ctx context.Context) error {
	l, err := h.c.CoordinationV1().Leases(h.lease.Namespace).Get(ctx, h.lease.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.identity {
		return nil
	}
	empty := ""
	l.Spec.HolderIdentity = &empty
	_, err = h.c.CoordinationV1().Leases(l.Namespace).Update(ctx, l, metav1.UpdateOptions{})
	return err
}
