package finalize

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
)

// A CNI without a registry entry is an explicit Unsupported error, never
// flannel's objects or leftovers.
func TestUnregisteredCNIIsAnError(t *testing.T) {
	tests := []struct {
		name string
		run  func() (string, error)
	}{
		{"PlanRemoval", func() (string, error) {
			cl := &detect.Cluster{CNI: &detect.CNI{Name: "antrea", Namespace: "kube-system", DaemonSet: "antrea-agent"}}
			r, err := PlanRemoval(context.Background(), fake.NewSimpleClientset(ds("kube-system", "antrea-agent", "antrea")), cl)
			if r != nil {
				return r.Manual, err
			}
			return "", err
		}},
		{"Leftovers", func() (string, error) {
			var b strings.Builder
			err := Leftovers(&b, "antrea")
			return b.String(), err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.run()
			if errs.Code(err) != errs.Unsupported || !strings.Contains(err.Error(), `"antrea" is not a source CNI`) {
				t.Errorf("error %v (code %d), want Unsupported naming antrea", err, errs.Code(err))
			}
			if out != "" {
				t.Errorf("wrote %q, want nothing", out)
			}
		})
	}
}
