package rollout

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/kube"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

func node(name string, labels, ann map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: ann}}
}

func TestSelectAndAllDone(t *testing.T) {
	done := map[string]string{migrate.AnnotationPhase: "done"}
	cl := &kube.Clients{Kube: fake.NewClientset(
		node("cp-1", map[string]string{"node-role.kubernetes.io/master": ""}, nil),
		node("w-1", map[string]string{"pool": "a"}, done),
		node("w-2", map[string]string{"pool": "b"}, nil),
	)}
	ctx := context.Background()
	sel, err := Select(ctx, cl, "", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := Describe(sel.Batches); got != "[w-2] [cp-1]" || strings.Join(sel.Done, " ") != "w-1" || len(sel.Nodes) != 3 {
		t.Fatalf("batches %s, done %v, %d nodes", got, sel.Done, len(sel.Nodes))
	}
	if _, err := Select(ctx, cl, "pool=c", 0, ""); errs.Code(err) != errs.Precondition || !strings.Contains(err.Error(), `no node matches --selector "pool=c"`) {
		t.Fatalf("no match: %v", err)
	}

	sel, err = Select(ctx, cl, "pool=a", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s, err := Run(ctx, cl, nil, sel, Options{Out: &out})
	if err != nil || s == nil || len(s.Nodes) != 0 || s.Result != "ok" || s.Kind != "Rollout" {
		t.Fatalf("all done: %+v, %v", s, err)
	}
	if out.String() != "all 1 nodes are migrated; next: kubectl cni-migrate finalize\n" {
		t.Fatalf("all done said %q", out.String())
	}
}

func TestLockHold(t *testing.T) {
	cl := &kube.Clients{Kube: fake.NewClientset()}
	ctx := context.Background()
	var out bytes.Buffer
	held, release, err := Lock{Holder: "a"}.Hold(ctx, cl, &out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := (Lock{Holder: "b"}).Hold(ctx, cl, &out); errs.Code(err) != errs.Locked {
		t.Fatalf("second holder: %v", err)
	}
	if LockLost(held) != nil {
		t.Fatal("lock lost while held")
	}
	release()
	if held.Err() == nil {
		t.Fatal("release did not end the held context")
	}
	_, release, err = Lock{Holder: "b"}.Hold(ctx, cl, &out)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release()
	if out.String() != "" {
		t.Fatalf("said %q", out.String())
	}
}
