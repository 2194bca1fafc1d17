package lock

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
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

func TestIdentity(t *testing.T) {
	id := Identity("alice", "laptop.example", 4242, "rollout")
	if id != "alice@laptop.example (pid 4242, rollout)" {
		t.Fatalf("Identity = %q", id)
	}
	for _, tc := range []struct {
		in   string
		host string
		pid  int
		ok   bool
	}{
		{id, "laptop.example", 4242, true},
		{"bob@h (pid 7)", "h", 7, true}, // written before the command was named
		{"a@b@c (pid 9, node)", "b@c", 9, true},
		{"someone else", "", 0, false},
		{"a@h (pid 0, node)", "", 0, false},
		{"a@h (pid x, node)", "", 0, false},
		{"", "", 0, false},
	} {
		host, pid, ok := ParseIdentity(tc.in)
		if host != tc.host || pid != tc.pid || ok != tc.ok {
			t.Errorf("ParseIdentity(%q) = %q, %d, %v", tc.in, host, pid, ok)
		}
	}
	gone := func(pid int) bool { return pid == 100 }
	dead := DeadHere("here", 1, gone)
	for holder, want := range map[string]bool{
		"a@here (pid 100, node)":  true,  // this host, process gone
		"a@here (pid 101, node)":  false, // this host, still running
		"a@there (pid 100, node)": false, // another host: cannot tell
		"a@here (pid 1, node)":    false, // this process
		"kubectl":                 false,
	} {
		if got := dead(holder); got != want {
			t.Errorf("dead(%q) = %v, want %v", holder, got, want)
		}
	}
	if DeadHere("", 1, gone)("a@ (pid 100, node)") {
		t.Error("an unknown host is never this one")
	}
}

func TestAcquire(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	now := time.Now()
	clock := func() time.Time { return now }
	a, err := Acquire(ctx, c, "kube-system", "l", "a@h (pid 10, node)", Options{Now: clock})
	if err != nil || a.TookOver != "" {
		t.Fatalf("first Acquire: %v %q", err, a.TookOver)
	}
	// A live holder refuses another run, naming it and the way out.
	_, err = Acquire(ctx, c, "kube-system", "l", "b@h (pid 11, rollout)", Options{Now: clock})
	if errs.Code(err) != errs.Locked || !strings.Contains(err.Error(), "another run holds Lease kube-system/l: a@h (pid 10, node)") {
		t.Fatalf("second Acquire: %v", err)
	}
	// Unless it is known to be dead, or forced.
	b, err := Acquire(ctx, c, "kube-system", "l", "b@h (pid 11, rollout)", Options{Now: clock, Dead: DeadHere("h", 11, func(pid int) bool { return pid == 10 })})
	if err != nil || b.TookOver != "a@h (pid 10, node)" {
		t.Fatalf("Acquire over a dead holder: %v %q", err, b.TookOver)
	}
	f, err := Acquire(ctx, c, "kube-system", "l", "c@h2 (pid 12, node)", Options{Now: clock, Force: true})
	if err != nil || f.TookOver != "b@h (pid 11, rollout)" {
		t.Fatalf("forced Acquire: %v %q", err, f.TookOver)
	}
	// The one that lost it learns so when it renews.
	if err := b.Renew(ctx); errs.Code(err) != errs.Locked || !strings.Contains(err.Error(), "lost Lease kube-system/l to c@h2 (pid 12, node)") {
		t.Fatalf("Renew after losing: %v", err)
	}
	// An expired lease is taken over without force.
	now = now.Add(2 * DefaultDuration)
	e, err := Acquire(ctx, c, "kube-system", "l", "d@h (pid 13, node)", Options{Now: clock})
	if err != nil || e.TookOver != "c@h2 (pid 12, node)" {
		t.Fatalf("Acquire of an expired lease: %v %q", err, e.TookOver)
	}
}

// TestKeepAliveSeesTakeoverAtOnce: the watch reports a lost lease long
// before the next renewal would.
func TestKeepAliveSeesTakeoverAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := fake.NewClientset()
	h, err := Acquire(ctx, c, "kube-system", "l", "a@h (pid 10, rollout)", Options{Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 2)
	go h.KeepAlive(ctx, func(err error) { lost <- err })
	time.Sleep(100 * time.Millisecond) // the watch is established
	if _, err := Acquire(ctx, c, "kube-system", "l", "b@h2 (pid 11, node)", Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if errs.Code(err) != errs.Locked || !strings.Contains(err.Error(), "lost Lease kube-system/l to b@h2 (pid 11, node): stopped before the next change") {
			t.Fatalf("lost: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the takeover was not seen (the renewal is an hour away)")
	}
	select {
	case err := <-lost:
		t.Fatalf("lost reported twice: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestNotes: a note outlives its holder, renewals and releases, for the
// next holder to find; only the holder writes one.
func TestNotes(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	a, err := Acquire(ctx, c, "kube-system", "l", "a@h (pid 10, finalize)", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Note(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Noted("k") != "v" {
		t.Fatalf("own note %q", a.Noted("k"))
	}
	b, err := Acquire(ctx, c, "kube-system", "l", "b@h (pid 11, finalize)", Options{Dead: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if b.Noted("k") != "v" {
		t.Fatalf("the next holder found %q", b.Noted("k"))
	}
	if v, err := Peek(ctx, c, "kube-system", "l", "k"); err != nil || v != "v" {
		t.Fatalf("Peek = %q, %v", v, err)
	}
	if v, err := Peek(ctx, c, "kube-system", "none", "k"); err != nil || v != "" {
		t.Fatalf("Peek of no lease = %q, %v", v, err)
	}
	if err := a.Note(ctx, "k", "x"); errs.Code(err) != errs.Locked {
		t.Fatalf("a note by a run that lost the lease: %v", err)
	}
	if err := b.Note(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := c.CoordinationV1().Leases("kube-system").Get(ctx, "l", metav1.GetOptions{})
	if err != nil || l.Annotations["k"] != "" {
		t.Fatalf("after removing the note: %v %v", err, l.Annotations)
	}
}
