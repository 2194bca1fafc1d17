package migrate

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// listFunc lists objects and returns them with the list's resourceVersion.
type listFunc func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error)

// watchFunc starts a watch.
type watchFunc func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)

// watchUntil waits, by watching, until cond is true: it lists (so that API
// errors such as Forbidden surface at once), hands every listed object to
// cond as an Added event, then watches from the list's resourceVersion and
// hands cond every event. A watch that expires (410 Gone) is resumed with a
// new list. It returns cond's error, an API error, or ctx's error.
func watchUntil(ctx context.Context, opts metav1.ListOptions, list listFunc, watchFn watchFunc, cond watchtools.ConditionFunc) error {
	for {
		objs, rv, err := list(ctx, opts)
		if err != nil {
			return err
		}
		if rv == "" || rv == "0" {
			// A list without a resourceVersion to watch from (some fakes
			// and proxies): watch first, then list again, so nothing that
			// happens in between is missed.
			return watchThenList(ctx, opts, list, watchFn, cond)
		}
		for _, o := range objs {
			done, err := cond(watch.Event{Type: watch.Added, Object: o})
			if err != nil || done {
				return err
			}
		}
		lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector, o.FieldSelector = opts.LabelSelector, opts.FieldSelector
			return watchFn(ctx, o)
		}}
		var expired bool
		_, err = watchtools.Until(ctx, rv, lw, func(e watch.Event) (bool, error) {
			if e.Type == watch.Error {
				werr := apierrors.FromObject(e.Object)
				if apierrors.IsResourceExpired(werr) || apierrors.IsGone(werr) {
					expired = true
				}
				return false, werr
			}
			return cond(e)
		})
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case expired, errors.Is(err, watchtools.ErrWatchClosed):
			continue
		default:
			return err
		}
	}
}

func watchThenList(ctx context.Context, opts metav1.ListOptions, list listFunc, watchFn watchFunc, cond watchtools.ConditionFunc) error {
	w, err := watchFn(ctx, opts)
	if err != nil {
		return err
	}
	defer w.Stop()
	objs, _, err := list(ctx, opts)
	if err != nil {
		return err
	}
	for _, o := range objs {
		done, err := cond(watch.Event{Type: watch.Added, Object: o})
		if err != nil || done {
			return err
		}
	}
	_, err = watchtools.UntilWithoutRetry(ctx, w, cond)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
