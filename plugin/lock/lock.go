// Package lock keeps two runs that change the migration (node, rollout,
// rollback, finalize) from working on one cluster at once with a
// coordination.k8s.io Lease: the holder renews it while it runs and
// watches it, a second run sees a live holder and stops, and a holder that
// died stops renewing, so its lease expires and the next run takes it over
// (at once when the dead holder ran on the same host).
package lock

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
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
	mu       sync.Mutex
	lease    *coordinationv1.Lease
	identity string
	duration time.Duration
	now      func() time.Time
	// TookOver is the previous holder when an expired, dead or forced
	// lease was taken.
	TookOver string
}

// Options are how Acquire takes the lease.
type Options struct {
	// Duration is how long the lease lasts unrenewed (DefaultDuration when 0).
	Duration time.Duration
	// Force takes the lease although a live holder has it (--force-unlock).
	Force bool
	// Dead reports whether a holder is known to be dead although its lease
	// has not expired: a run on this host whose process is gone (DeadHere).
	Dead func(holder string) bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Acquire takes the lease ns/name for identity. A lease held by someone
// else and renewed within its duration is refused with errs.Locked, unless
// o.Force is set or o.Dead says its holder is dead; an expired one is taken
// over (Held.TookOver says from whom).
func Acquire(ctx context.Context, c kubernetes.Interface, ns, name, identity string, o Options) (*Held, error) {
	now, duration := o.Now, o.Duration
	if now == nil {
		now = time.Now
	}
	if duration <= 0 {
		duration = DefaultDuration
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
			live, renewed := Live(l, now())
			if live && !o.Force && (o.Dead == nil || !o.Dead(holder)) {
				return nil, errs.Newf(errs.Locked,
					fmt.Sprintf("wait for it to finish; if that run is dead, pass --force-unlock (or wait %s for the lease to expire)", expiresIn(l, now())),
					"another run holds Lease %s/%s: %s, renewed %s ago", ns, name, holder, renewed.Round(time.Second))
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
	return nil, errs.Newf(errs.Locked, "run it again in a moment", "another run took Lease %s/%s at the same moment", ns, name)
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

// lostTo is the error of a lease someone else holds now.
func lostTo(l *coordinationv1.Lease) error {
	holder := "nobody"
	if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		holder = *l.Spec.HolderIdentity
	}
	return errs.Newf(errs.Locked,
		fmt.Sprintf("see who holds it (kubectl -n %s get lease %s -o yaml); once that run is over, run this command again to resume", l.Namespace, l.Name),
		"lost Lease %s/%s to %s: stopped before the next change", l.Namespace, l.Name, holder)
}

func (h *Held) current() *coordinationv1.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease
}

// fetch gets the lease as it is now; errs.Locked when someone else holds
// it.
func (h *Held) fetch(ctx context.Context) (*coordinationv1.Lease, error) {
	cur := h.current()
	l, err := h.c.CoordinationV1().Leases(cur.Namespace).Get(ctx, cur.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.identity {
		return nil, lostTo(l)
	}
	return l, nil
}

// Renew renews the lease once. It fails with errs.Locked when someone else
// took it.
func (h *Held) Renew(ctx context.Context) error {
	l, err := h.fetch(ctx)
	if err != nil {
		return err
	}
	t := metav1.NewMicroTime(h.now())
	l.Spec.RenewTime = &t
	return h.update(ctx, l)
}

// update writes l and keeps what the API server returned.
func (h *Held) update(ctx context.Context, l *coordinationv1.Lease) error {
	updated, err := h.c.CoordinationV1().Leases(l.Namespace).Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.lease = updated
	h.mu.Unlock()
	return nil
}

// KeepAlive renews the lease every third of its duration and watches it
// until ctx ends. When the lease is lost (another run took it, or it could
// not be renewed twice in a row) it calls lost once with the reason and
// returns. The watch sees a takeover at once, so the caller stops before
// its next change rather than at the next renewal.
func (h *Held) KeepAlive(ctx context.Context, lost func(error)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	report := func(err error) { once.Do(func() { lost(err); cancel() }) }
	go h.watch(ctx, report)
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
				report(err)
				return
			case ctx.Err() != nil:
				return
			default:
				// A passing API error: try again, but give up before the
				// lease could expire under us.
				if failures++; failures >= 2 {
					cur := h.current()
					report(errs.Wrap(errs.Locked, err, fmt.Sprintf("cannot renew Lease %s/%s", cur.Namespace, cur.Name),
						"check that the API server is reachable, then run this command again to resume"))
					return
				}
			}
		}
	}
}

// watch follows the lease and reports it lost as soon as another holder
// (or nobody) has it. A broken watch is started again from the last version
// seen; renewals keep working while the API server is away.
func (h *Held) watch(ctx context.Context, lost func(error)) {
	cur := h.current()
	ns, name := cur.Namespace, cur.Name
	rv := cur.ResourceVersion
	for ctx.Err() == nil {
		w, err := h.c.CoordinationV1().Leases(ns).Watch(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: rv,
		})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified:
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok {
					continue
				}
				rv = l.ResourceVersion
				if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.identity {
					w.Stop()
					lost(lostTo(l))
					return
				}
			case watch.Deleted:
				w.Stop()
				lost(errs.Newf(errs.Locked, "run this command again to resume", "Lease %s/%s was deleted while this run held it: stopped before the next change", ns, name))
				return
			case watch.Error:
				// Too old a version (or another watch error): start over
				// from the current state.
				rv = ""
			}
		}
		w.Stop()
	}
}

// Release gives the lease up (it stays, with no holder) if still held.
func (h *Held) Release(ctx context.Context) error {
	cur := h.current()
	l, err := h.c.CoordinationV1().Leases(cur.Namespace).Get(ctx, cur.Name, metav1.GetOptions{})
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

// Noted returns the note key of the lease: what an earlier holder left for
// the next (see Note), or this run's own; "" if none.
func (h *Held) Noted(key string) string {
	return h.current().Annotations[key]
}

// Note keeps value under key in the lease's annotations, for a later run
// to find if this one is interrupted; "" removes it. It fails with
// errs.Locked when someone else holds the lease now.
func (h *Held) Note(ctx context.Context, key, value string) error {
	for attempt := 0; ; attempt++ {
		l, err := h.fetch(ctx)
		if err != nil {
			return err
		}
		if l.Annotations[key] == value {
			return nil
		}
		if value == "" {
			delete(l.Annotations, key)
		} else {
			if l.Annotations == nil {
				l.Annotations = map[string]string{}
			}
			l.Annotations[key] = value
		}
		err = h.update(ctx, l)
		if apierrors.IsConflict(err) && attempt < 5 {
			continue // a renewal at the same moment
		}
		return err
	}
}

// Peek returns the note key of lease ns/name without taking it ("" when
// the lease or the note is not there).
func Peek(ctx context.Context, c kubernetes.Interface, ns, name, key string) (string, error) {
	l, err := c.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return l.Annotations[key], nil
}
