package check

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

func TestDistributionCheck(t *testing.T) {
	k3s := &detect.Distribution{Name: "k3s", Version: "v1.31.4+k3s1", Evidence: "node a: k3s.io/node-args",
		CNIConfDir: detect.K3sCNIConfDir, CNIBinDir: detect.K3sCNIBinDir}
	k3sDataDir := *k3s
	k3sDataDir.ServerArgs = []string{"server", "--data-dir", "/srv/k3s"}
	rke2 := &detect.Distribution{Name: "rke2", Version: "v1.31.4+rke2r1", Evidence: "node a: rke2.io/node-args"}
	rke2Canal := &detect.CNI{Name: "canal", DaemonSet: "rke2-canal"}
	tests := []struct {
		name   string
		d      *detect.Distribution
		cni    *detect.CNI
		ignore bool
		status Status // "" for no check
		has    []string
	}{
		{"none", nil, nil, false, "", nil},
		{"k3s", k3s, nil, false, Warn, []string{"cni.confPath /var/lib/rancher/k3s/agent/etc/cni/net.d", "cni.binPath /var/lib/rancher/k3s/data/cni", "data/current/bin"}},
		{"k3s --data-dir", &k3sDataDir, nil, false, Warn, []string{"--data-dir /srv/k3s"}},
		{"rke2 canal", rke2, rke2Canal, false, Fail, []string{"HelmChart kube-system/rke2-canal", "does not support changing the CNI", "--ignore-unsupported-distribution"}},
		{"rke2 canal ignored", rke2, rke2Canal, true, Warn, []string{"migrating anyway", "cni: none"}},
		{"rke2 calico operator", rke2, &detect.CNI{Name: "calico", Install: "operator"}, false, Fail, []string{"HelmChart kube-system/rke2-calico"}},
		{"unknown distribution", &detect.Distribution{Name: "other"}, nil, false, Fail, []string{"no rules for"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := distributionCheck(&detect.Cluster{Distribution: tt.d, CNI: tt.cni}, nil, tt.ignore)
			if !ok {
				if tt.status != "" {
					t.Fatalf("no check, want %s", tt.status)
				}
				return
			}
			if r.Status != tt.status || r.ID != IDDistribution {
				t.Errorf("%s %s %q, want %s", r.ID, r.Status, r.Message, tt.status)
			}
			for _, h := range tt.has {
				if !strings.Contains(r.Message+" -> "+r.Fix, h) {
					t.Errorf("%q -> %q lacks %q", r.Message, r.Fix, h)
				}
			}
		})
	}
}
