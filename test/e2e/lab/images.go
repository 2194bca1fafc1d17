package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/image"
)

// Images are the lab's image references. They all share the same layers
// (a Debian rootfs with iproute2, iptables, ipset, curl and clang/llc, and
// one layer with every binary) and differ in their entrypoint only.
var Images = struct {
	Pause, Flannel, FlannelCNI, KubeProxy, CoreDNS, Agnhost, Probe string
	// CiliumRepository and OperatorRepository are Helm values
	// (image.repository, operator.image.repository: the chart appends
	// "-generic" to the operator's); the tag is "v" + the Cilium version.
	CiliumRepository, OperatorRepository string
}{
	Pause:              "lab.local/pause:1",
	Flannel:            "lab.local/flannel:v0.28.4",
	FlannelCNI:         "lab.local/flannel-cni-plugin:v1.9.1-flannel1",
	KubeProxy:          "lab.local/kube-proxy:v1.34.4",
	CoreDNS:            "lab.local/coredns:v1.12.1",
	Agnhost:            "lab.local/agnhost:2.55",
	Probe:              "lab.local/labprobe:1",
	CiliumRepository:   "lab.local/cilium",
	OperatorRepository: "lab.local/operator",
}

// ImageOverrides maps the upstream images of the manifests the lab applies
// unchanged but for their images (kube-flannel.yml, kubeadm's kube-proxy
// and CoreDNS) to the lab's.
var ImageOverrides = map[string]string{
	"ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel1": Images.FlannelCNI,
	"ghcr.io/flannel-io/flannel:v0.28.4":                    Images.Flannel,
	"registry.k8s.io/kube-proxy:v1.34.4":                    Images.KubeProxy,
	"registry.k8s.io/coredns/coredns:v1.12.1":               Images.CoreDNS,
}

// buildImages writes (or reuses) the image archive every node imports and
// returns its path and a fingerprint of its inputs.
func buildImages(cache, ciliumVersion, probe string, logf func(string, ...any)) (string, string, error) {
	dp := filepath.Join(cache, "datapath")
	bin := func(n string) string { return filepath.Join(dp, "bin", n) }
	rootfs := image.Layer{Dir: filepath.Join(dp, "rootfs")}
	files := image.Layer{
		Files: map[string]string{
			"/usr/local/bin/kube-proxy": bin("kube-proxy"),
			"/usr/local/bin/agnhost":    bin("agnhost"),
			"/coredns":                  bin("coredns"),
			"/opt/bin/flanneld":         bin("flanneld"),
			"/flannel":                  bin("flannel"),
			"/cni/loopback":             "/usr/lib/cni/loopback",
		},
		Trees:    map[string]string{},
		Symlinks: map[string]string{"/agnhost": "/usr/local/bin/agnhost"},
	}
	if probe != "" {
		files.Files["/usr/local/bin/labprobe"] = probe
	}
	images := []image.Image{
		{Names: []string{Images.Pause}, Entrypoint: []string{"/usr/local/bin/agnhost", "pause"}},
		{Names: []string{Images.Flannel}, Entrypoint: []string{"/opt/bin/flanneld"}},
		{Names: []string{Images.FlannelCNI}, Entrypoint: []string{"/bin/sh"}},
		{Names: []string{Images.KubeProxy}, Entrypoint: []string{"/usr/local/bin/kube-proxy"}},
		{Names: []string{Images.CoreDNS}, Entrypoint: []string{"/coredns"}},
		{Names: []string{Images.Agnhost}, Entrypoint: []string{"/agnhost"}},
		{Names: []string{Images.Probe}, Entrypoint: []string{"/usr/local/bin/labprobe"}},
	}
	if ciliumVersion != "" {
		cd := filepath.Join(dp, "cilium", ciliumVersion)
		for _, b := range []string{"cilium-agent", "cilium-operator-generic", "cilium-dbg", "cilium-health", "cilium-health-responder", "cilium-mount", "cilium-sysctlfix"} {
			files.Files["/usr/bin/"+b] = filepath.Join(cd, "bin", b)
		}
		files.Files["/opt/cni/bin/cilium-cni"] = filepath.Join(cd, "bin", "cilium-cni")
		for _, s := range []string{"init-container.sh", "install-plugin.sh", "cni-uninstall.sh"} {
			files.Files["/"+s] = filepath.Join(cd, "scripts", s)
		}
		files.Trees["/var/lib/cilium/bpf"] = filepath.Join(cd, "bpf")
		files.Symlinks["/usr/bin/cilium"] = "cilium-dbg"
		tag := ":v" + ciliumVersion
		images = append(images,
			image.Image{Names: []string{Images.CiliumRepository + tag}, Cmd: []string{"/usr/bin/cilium-dbg"},
				Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HUBBLE_SERVER=unix:///var/run/cilium/hubble.sock", "INITSYSTEM=SYSTEMD"}, WorkingDir: "/home/cilium"},
			image.Image{Names: []string{Images.OperatorRepository + "-generic" + tag}, Entrypoint: []string{"/usr/bin/cilium-operator-generic"}},
		)
	}
	for _, f := range files.Files {
		if _, err := os.Stat(f); err != nil {
			return "", "", fmt.Errorf("image input missing (run `make datapath-tools`): %w", err)
		}
	}
	layers := []image.Layer{rootfs, files}
	fp, err := image.Fingerprint(layers, images)
	if err != nil {
		return "", "", err
	}
	out := filepath.Join(dp, "images", "lab-"+fp[:16]+".tar")
	if _, err := os.Stat(out); err == nil {
		return out, fp, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", "", err
	}
	// Keep the cache small: older archives are of no use.
	old, _ := filepath.Glob(filepath.Join(dp, "images", "lab-*.tar"))
	for _, o := range old {
		_ = os.Remove(o)
	}
	t0 := time.Now()
	if err := image.WriteArchive(out, layers, images); err != nil {
		return "", "", err
	}
	logf("lab: wrote image archive %s in %v", out, time.Since(t0).Round(time.Millisecond))
	return out, fp, nil
}
