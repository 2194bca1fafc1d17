package migrate

import (
	"context"
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/detect"
)

// TestHostCNIConfDir: the rollback's instructions name the node's CNI
// directory, the one the values give Cilium as cni.confPath (the
// distribution's), not the agent's /host/etc/cni/net.d mount.
func TestHostCNIConfDir(t *testing.T) {
	k3s := &detect.Distribution{Name: detect.DistroK3s, CNIConfDir: detect.K3sCNIConfDir, CNIBinDir: detect.K3sCNIBinDir}
	const k3sDir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
	for _, tc := range []struct {
		name   string
		distro *detect.Distribution
		oldCNI string
		// written is the CiliumNodeConfig's write-cni-conf-when-ready
		// without /host ("" when it sets none).
		written string
		file    string
		want    []string
		notWant []string
	}{
		{
			name: "kubeadm flannel", oldCNI: "flannel", written: "/etc/cni/net.d/05-cilium.conflist",
			file: "/etc/cni/net.d/05-cilium.conflist",
			want: []string{
				"Cilium's agent no longer manages /etc/cni/net.d, so its 05-cilium.conflist stays there",
				"  rm -f /etc/cni/net.d/05-cilium.conflist\n",
				"  mv -n /etc/cni/net.d/10-flannel.conflist.cilium_bak /etc/cni/net.d/10-flannel.conflist\n",
			},
			notWant: []string{"rancher"},
		},
		{
			name: "kubeadm flannel, no write-cni-conf-when-ready", oldCNI: "flannel",
			file: DefaultCNIConfFile,
			want: []string{"  rm -f /etc/cni/net.d/05-cilium.conflist\n"},
		},
		{
			name: "rke2 canal keeps /etc/cni/net.d", distro: &detect.Distribution{Name: detect.DistroRKE2}, oldCNI: "canal", written: "/etc/cni/net.d/05-cilium.conflist",
			file: "/etc/cni/net.d/05-cilium.conflist",
			want: []string{"  rm -f /etc/cni/net.d/05-cilium.conflist\n"},
		},
		{
			name: "k3s flannel", distro: k3s, oldCNI: "k3s-flannel", written: "/etc/cni/net.d/05-cilium.conflist",
			file: k3sDir + "/05-cilium.conflist",
			want: []string{
				"Cilium's agent no longer manages " + k3sDir + ", so its 05-cilium.conflist stays there",
				"  rm -f " + k3sDir + "/05-cilium.conflist\n",
				"  mv -n " + k3sDir + "/10-flannel.conflist.cilium_bak " + k3sDir + "/10-flannel.conflist\n",
			},
			notWant: []string{"rm -f /etc/cni", "mv -n /etc/cni"},
		},
		{
			name: "k3s, no write-cni-conf-when-ready", distro: k3s, oldCNI: "k3s-flannel",
			file: k3sDir + "/05-cilium.conflist",
			want: []string{"  rm -f " + k3sDir + "/05-cilium.conflist\n"},
		},
		{
			name: "k3s, a file outside the chart's mount stays", distro: k3s, oldCNI: "k3s-flannel", written: "/var/lib/cni/conf/05-cilium.conflist",
			file: "/var/lib/cni/conf/05-cilium.conflist",
			want: []string{"  rm -f /var/lib/cni/conf/05-cilium.conflist\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := HostCNIConfFile(tc.written, tc.distro)
			if file != tc.file {
				t.Fatalf("HostCNIConfFile(%q) = %q, want %q", tc.written, file, tc.file)
			}
			got := CNIConfigRestore("worker-1", &Plan{OldCNI: &detect.CNI{Name: tc.oldCNI}, CNIConfFile: file})
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("instruction lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("instruction has %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestPreflightHostCNIConfFile: Preflight reads the file from the
// CiliumNodeConfig and places it in the detected distribution's directory.
func TestPreflightHostCNIConfFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		distro *detect.Distribution
		want   string
	}{
		{"kubeadm", nil, "/etc/cni/net.d/05-cilium.conflist"},
		{"k3s", &detect.Distribution{Name: detect.DistroK3s, CNIConfDir: detect.K3sCNIConfDir}, "/var/lib/rancher/k3s/agent/etc/cni/net.d/05-cilium.conflist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			w.cluster.Distribution = tc.distro
			plan, err := w.migrator(testOptions(), nil).Preflight(context.Background(), w.cluster, []string{"worker-1"})
			if err != nil {
				t.Fatal(err)
			}
			if plan.CNIConfFile != tc.want {
				t.Errorf("CNIConfFile %q, want %q", plan.CNIConfFile, tc.want)
			}
		})
	}
}
