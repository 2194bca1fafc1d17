package finalize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// helmSecret is the Secret helm keeps revision v of release cilium in.
func helmSecret(v int, status string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: fmt.Sprintf("sh.helm.release.v1.cilium.v%d", v),
		Labels: map[string]string{"owner": "helm", "name": "cilium", "status": status, "version": fmt.Sprint(v)}}}
}

// memNotes are Notes in memory.
type memNotes map[string]string

func (m memNotes) Noted(key string) string { return m[key] }
func (m memNotes) Note(_ context.Context, key, value string) error {
	if value == "" {
		delete(m, key)
	} else {
		m[key] = value
	}
	return nil
}

func TestReadRelease(t *testing.T) {
	c := fake.NewClientset(helmSecret(1, "superseded"), helmSecret(2, "deployed"), helmSecret(3, "pending-upgrade"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "other", Labels: map[string]string{"owner": "helm", "name": "hubble", "version": "9", "status": "deployed"}}})
	r, found, err := ReadRelease(context.Background(), c, "kube-system", "cilium")
	if err != nil || !found || r != (Release{Revision: 3, Status: "pending-upgrade", Deployed: 2}) || !r.Pending() {
		t.Fatalf("got %+v %v %v", r, found, err)
	}
	if _, found, _ := ReadRelease(context.Background(), c, "cilium", "cilium"); found {
		t.Error("found a release in a namespace without one")
	}
}

func TestSettleHelm(t *testing.T) {
	host, _ := os.Hostname()
	// A pid that is gone: a process that ran and was waited for.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	note := func(pid int) memNotes {
		b, _ := json.Marshal(helmRun{Release: "kube-system/cilium", From: 1, Host: host, PID: pid})
		return memNotes{HelmNote: string(b)}
	}
	dir := t.TempDir()
	helmLog := filepath.Join(dir, "helm.log")
	helm := filepath.Join(dir, "helm")
	if err := os.WriteFile(helm, []byte("#!/bin/sh\necho \"$@\" >> "+helmLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pendingRelease := []runtime.Object{helmSecret(1, "deployed"), helmSecret(2, "pending-upgrade")}
	manual := "if no helm runs on this release now, roll it back (" + helm + " rollback cilium 1 --namespace kube-system --wait)"
	for _, tc := range []struct {
		name     string
		objs     []runtime.Object
		notes    memNotes
		yes      bool
		forbid   bool
		wantErr  string // "" for none
		rollback bool
	}{
		{name: "no release", yes: true},
		{name: "a deployed release", objs: []runtime.Object{helmSecret(1, "superseded"), helmSecret(2, "deployed")}, yes: true},
		{name: "pending, not noted", objs: pendingRelease, yes: true, notes: memNotes{},
			wantErr: "Helm release kube-system/cilium is pending-upgrade at revision 2: an operation that did not finish"},
		{name: "pending, no lock (no notes)", objs: pendingRelease, yes: true, wantErr: manual},
		{name: "pending, noted, its helm still runs", objs: pendingRelease, yes: true, notes: note(os.Getpid()),
			wantErr: fmt.Sprintf("the helm upgrade (pid %d) of an interrupted finalize still runs", os.Getpid())},
		{name: "pending, noted from another revision", objs: []runtime.Object{helmSecret(1, "superseded"), helmSecret(2, "deployed"), helmSecret(3, "pending-upgrade")},
			yes: true, notes: note(gone.Process.Pid), wantErr: "is pending-upgrade at revision 3"},
		{name: "pending, noted, helm gone, without --yes", objs: pendingRelease, notes: note(gone.Process.Pid), wantErr: manual},
		{name: "pending, noted, helm gone: rolled back", objs: pendingRelease, yes: true, notes: note(gone.Process.Pid), rollback: true},
		{name: "Secrets forbidden without --yes", objs: pendingRelease, forbid: true},
		{name: "Secrets forbidden with --yes", objs: pendingRelease, forbid: true, yes: true, wantErr: "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(helmLog)
			c := fake.NewClientset(tc.objs...)
			if tc.forbid {
				c.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("no"))
				})
			}
			var out bytes.Buffer
			say := func(f string, a ...any) { fmt.Fprintf(&out, f+"\n", a...) }
			o := Options{Release: "cilium", Helm: helm, Yes: tc.yes, Out: &out}
			var notes Notes
			if tc.notes != nil {
				notes = tc.notes
			}
			_, rolledBack, err := o.settleHelm(context.Background(), c, "kube-system", notes, say)
			if rolledBack != tc.rollback {
				t.Errorf("rolled back: %v, want %v", rolledBack, tc.rollback)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			case tc.wantErr != "" && !tc.forbid && errs.Code(err) != errs.HelmFailed:
				t.Errorf("exit %d, want %d", errs.Code(err), errs.HelmFailed)
			}
			ran, _ := os.ReadFile(helmLog)
			if tc.rollback {
				if string(ran) != "rollback cilium 1 --namespace kube-system --wait\n" {
					t.Errorf("helm ran %q", ran)
				}
				if !strings.Contains(out.String(), fmt.Sprintf("the helm upgrade (pid %d) of an interrupted finalize is gone and left Helm release kube-system/cilium pending-upgrade at revision 2: rolling back to revision 1 first", gone.Process.Pid)) {
					t.Errorf("said %q", out.String())
				}
				if tc.notes[HelmNote] != "" {
					t.Error("the note is still there after the rollback")
				}
			} else if len(ran) > 0 {
				t.Errorf("helm ran %q", ran)
			}
		})
	}
}
