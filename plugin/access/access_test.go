package access

import (
	"context"
	"strings"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// Require skips optional needs; Required makes them count.
func TestRequireOptional(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = r.Spec.ResourceAttributes.Resource != "namespaces"
		return true, r, nil
	})
	ctx := context.Background()
	needs := ConnectivityNeeds("probes")
	if err := Require(ctx, c, needs, "running the probes", "fix"); err != nil {
		t.Fatalf("optional needs were required: %v", err)
	}
	err := Require(ctx, c, Required(needs), "running the probes", "bind the role")
	want := "running the probes needs permission to get namespaces (create the probes' namespace; connectivity --cleanup deletes it) and 2 more (create namespaces, delete namespaces)"
	if errs.Code(err) != errs.Forbidden || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "bind the role") {
		t.Fatalf("err %v\nwant exit 8 and %s", err, want)
	}
	if !needs[0].Optional {
		t.Error("Required changed the needs it was given")
	}
}
