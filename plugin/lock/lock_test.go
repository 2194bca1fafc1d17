package lock

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLive(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	lease := func(holder string, renewedAgo time.Duration, secs int32) *coordinationv1.Lease {
		rt := metav1.NewMicroTime(now.Add(-renewedAgo))
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &rt, LeaseDurationSeconds: &secs}}
	}
	tests := []struct {
		name string
		l    *coordinationv1.Lease
		live bool
	}{
		{"renewed just now", lease("a", time.Second, 60), true},
		{"renewed within duration", lease("a", 59*time.Second, 60), true},
		{"expired", lease("a", 61*time.Second, 60), false},
		{"released", lease("", time.Second, 60), false},
		{"never renewed", &coordinationv1.Lease{}, false},
	}
	for _, tt := range tests {
		if live, _ := Live(tt.l, now); live != tt.live {
			t.Errorf("%s: live=%v", tt.name, live)
		}
	}
}
