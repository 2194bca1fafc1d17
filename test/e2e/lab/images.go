package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cni-migrate/kubectl-cni-migrate/test/e2e/lab/image"
)

// Images are the lab's image references. They share a Debian rootfs layer
// (iproute2, iptables, ipset, conntrack, curl, wget, nc, dig and clang/llc); all but
// Calico's have one more layer with every other binary, Calico's have one of
// their own (the CNI installer copies its image's whole /opt/cni/bin to the
// node); they differ in their entrypoint, environment and user.
var Images = struct {
	Pause, Flannel, FlannelCNI, KubeProxy, CoreDNS, Agnhost, Probe string
	// Plugin is the plugin's own image (the binary at
	// /usr/local/bin/kubectl-cni_migrate), for policy-bridge --deploy.
	Plugin string
	// CiliumRepository and OperatorRepository are Helm values
	// (image.repository, operator.image.repository: the chart appends
	// "-generic" to the operator's); the tag is "v" + the Cilium version.
	CiliumRepository, OperatorRepository string
	// CalicoNode, CalicoCNI and CalicoKubeControllers are Calico's (with
	// Options.Calico).
	CalicoNode, CalicoCNI, CalicoKubeControllers string
}{
	Pause:                 "lab.local/pause:1",
	Flannel:               "lab.local/flannel:v0.28.4",
	FlannelCNI:            "lab.local/flannel-cni-plugin:v1.9.1-flannel1",
	KubeProxy:             "lab.local/kube-proxy:v1.34.4",
	CoreDNS:               "lab.local/coredns:v1.12.1",
	Agnhost:               "lab.local/agnhost:2.55",
	Probe:                 "lab.local/labprobe:1",
	Plugin:                "lab.local/kubectl-cni-migrate:dev",
	CiliumRepository:      "lab.local/cilium",
	OperatorRepository:    "lab.local/operator",
	CalicoNode:            "lab.local/calico-node:" + CalicoVersion,
	CalicoCNI:             "lab.local/calico-cni:" + CalicoVersion,
	CalicoKubeControllers: "lab.local/calico-kube-controllers:" + CalicoVersion,
}

// E2ERegistry is where Kubernetes' e2e suite finds its images in the lab
// (promoterE2eRegistry and gcRegistry of the suite's KUBE_TEST_REPO_LIST,
// see E2ERepoList): the lab's own images under the names and tags the
// suite of v1.34.4 asks for (test/utils/image/manifest.go).
const E2ERegistry = "lab.local/e2e-test-images"

// E2ERepoList is the suite's KUBE_TEST_REPO_LIST file.
const E2ERepoList = "promoterE2eRegistry: " + E2ERegistry + "\ngcRegistry: " + E2ERegistry + "\n"

// CalicoVersion is the Calico the lab builds (hack/datapath/build.sh).
const CalicoVersion = "v3.31.0"

// ImageOverrides maps the upstream images of the manifests the lab applies
// unchanged but for their images (kube-flannel.yml, kubeadm's kube-proxy
// and CoreDNS) to the lab's.
var ImageOverrides = map[string]string{
	"ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel1": Images.FlannelCNI,
	"ghcr.io/flannel-io/flannel:v0.28.4":                    Images.Flannel,
	"registry.k8s.io/kube-proxy:v1.34.4":                    Images.KubeProxy,
	"registry.k8s.io/coredns/coredns:v1.12.1":               Images.CoreDNS,
	// calico-vxlan.yaml and canal.yaml (canal's flannel container runs
	// the lab's flanneld, a newer release of the same program).
	"quay.io/calico/node:" + CalicoVersion:             Images.CalicoNode,
	"quay.io/calico/cni:" + CalicoVersion:              Images.CalicoCNI,
	"quay.io/calico/kube-controllers:" + CalicoVersion: Images.CalicoKubeControllers,
	"docker.io/flannel/flannel:v0.24.4":                Images.Flannel,
}

// calicoNodeStart is the calico-node image's entrypoint: what the real
// image's runit setup (node/filesystem/etc/rc.local and its services)
// runs for a VXLAN or policy-only backend, without runit: the start-up,
// the tunnel address allocation, then felix and the helpers, each
// restarted when it exits as runit would.
const calicoNodeStart = `#!/bin/bash
set -e
calico-node -startup
NODENAME=$(cat /var/lib/calico/nodename)
export NODENAME FELIX_FELIXHOSTNAME=$NODENAME
[ -z "$DATASTORE_TYPE" ] || export FELIX_DATASTORETYPE=$DATASTORE_TYPE
calico-node -allocate-tunnel-addrs -allocate-tunnel-addrs-run-once
keep() { while :; do "$@" || true; echo "lab: $* exited, restarting in 1s" >&2; sleep 1; done; }
calico-node -complete-startup &
keep calico-node -felix &
[ "$CALICO_NETWORKING_BACKEND" = none ] || keep calico-node -monitor-addresses &
keep calico-node -allocate-tunnel-addrs &
keep calico-node -status-reporter &
[ "$CALICO_MANAGE_CNI" = false ] || keep calico-node -monitor-token &
trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
wait
`

// writeIfChanged writes data to path unless it holds data already (so its
// modification time, which the image fingerprint includes, stays).
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}

// calicoImages returns the Calico layer and images (their layers are the
// rootfs, 0, and this one, 2).
func calicoImages(dp string) (image.Layer, []image.Image, error) {
	cd := filepath.Join(dp, "calico")
	start := filepath.Join(cd, "lab", "start-calico-node")
	if err := writeIfChanged(start, []byte(calicoNodeStart), 0o755); err != nil {
		return image.Layer{}, nil, err
	}
	// check-status (a non-root kube-controllers) writes /status.
	status := filepath.Join(cd, "lab", "status")
	if err := os.MkdirAll(status, 0o755); err != nil {
		return image.Layer{}, nil, err
	}
	if err := os.Chmod(status, 0o777|os.ModeSticky); err != nil {
		return image.Layer{}, nil, err
	}
	bin := func(n string) string { return filepath.Join(cd, "bin", n) }
	l := image.Layer{
		Files: map[string]string{
			"/usr/bin/calico-node":             bin("calico-node"),
			"/usr/local/bin/start-calico-node": start,
			"/etc/calico/felix.cfg":            filepath.Join(cd, "felix.cfg"),
			"/usr/bin/kube-controllers":        bin("kube-controllers"),
			"/usr/bin/check-status":            bin("check-status"),
			// calico/cni's /opt/cni/bin, which its install copies to the node.
			"/opt/cni/bin/install":     bin("install"),
			"/opt/cni/bin/calico":      bin("calico"),
			"/opt/cni/bin/calico-ipam": bin("calico"),
			"/opt/cni/bin/flannel":     filepath.Join(dp, "bin", "flannel"),
		},
		Trees: map[string]string{"/status": status},
	}
	for _, p := range []string{"portmap", "host-local", "loopback", "bandwidth", "tuning"} {
		l.Files["/opt/cni/bin/"+p] = "/usr/lib/cni/" + p
	}
	layers := []int{0, 2}
	env := append([]string{
		// cgo-free felix has stub BPF packages that panic when called;
		// in iptables mode these are the only calls left.
		"FELIX_DebugSkipCTLBCleanup=true", "FELIX_XDPENABLED=false",
	}, image.DefaultEnv...)
	return l, []image.Image{
		{Names: []string{Images.CalicoNode}, Entrypoint: []string{"/usr/local/bin/start-calico-node"}, Env: env, Layers: layers},
		{Names: []string{Images.CalicoCNI}, Entrypoint: []string{"/opt/cni/bin/install"}, Layers: layers},
		{Names: []string{Images.CalicoKubeControllers}, Entrypoint: []string{"/usr/bin/kube-controllers"}, User: "999", Layers: layers},
	}, nil
}

// archives are the lab's image archives: Base, every image but the
// probe's and the plugin's (1.5 GB, the same from one make test to the
// next: imported once into the image root, imageroot.go), and Run, those
// two (a few MB: the binaries of this build, imported by each node at
// boot). FP and RunFP are fingerprints of their inputs.
type archives struct {
	Base, FP, Run, RunFP string
}

// buildImages writes (or reuses) the image archives every node imports.
func buildImages(cache, ciliumVersion string, calico bool, probe, plugin string, logf func(string, ...any)) (archives, error) {
	var a archives
	var err error
	if a.Base, a.FP, err = buildBaseImages(cache, ciliumVersion, calico, logf); err != nil {
		return a, err
	}
	a.Run, a.RunFP, err = buildRunImages(cache, probe, plugin, logf)
	return a, err
}

// buildRunImages writes the archive of the probe's and the plugin's images:
// their binary alone (both static; the plugin's policy bridge runs its
// node rules in the Cilium agent's image), so that a new build of either
// leaves the base archive and its image root as they are.
func buildRunImages(cache, probe, plugin string, logf func(string, ...any)) (string, string, error) {
	l := image.Layer{Files: map[string]string{}}
	var images []image.Image
	if probe != "" {
		l.Files["/usr/local/bin/labprobe"] = probe
		images = append(images, image.Image{Names: []string{Images.Probe}, Entrypoint: []string{"/usr/local/bin/labprobe"}})
	}
	if plugin != "" {
		l.Files["/usr/local/bin/kubectl-cni_migrate"] = plugin
		images = append(images, image.Image{Names: []string{Images.Plugin}, Entrypoint: []string{"/usr/local/bin/kubectl-cni_migrate"}})
	}
	if len(images) == 0 {
		return "", "", nil
	}
	return writeArchive(filepath.Join(cache, "datapath"), "run-", []image.Layer{l}, images, logf)
}

// writeArchive writes (or reuses) the archive of kind (its file name's
// prefix) for layers and images under dp/images, removing the kind's
// older archives, and returns its path and fingerprint.
func writeArchive(dp, kind string, layers []image.Layer, images []image.Image, logf func(string, ...any)) (string, string, error) {
	for _, l := range layers {
		for _, f := range l.Files {
			if _, err := os.Stat(f); err != nil {
				return "", "", fmt.Errorf("image input missing (run `make datapath-tools`): %w", err)
			}
		}
	}
	fp, err := image.Fingerprint(layers, images)
	if err != nil {
		return "", "", err
	}
	out := filepath.Join(dp, "images", kind+fp[:16]+".tar")
	if _, err := os.Stat(out); err == nil {
		return out, fp, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", "", err
	}
	// Keep the cache small: older archives of the kind are of no use.
	old, _ := filepath.Glob(filepath.Join(dp, "images", kind+strings.Repeat("?", 16)+".tar"))
	for _, o := range old {
		_ = os.Remove(o)
		_ = os.RemoveAll(imageRootDir(o))
		_ = os.RemoveAll(imageRootDir(o) + ".tmp")
	}
	t0 := time.Now()
	if err := image.WriteArchive(out, layers, images); err != nil {
		return "", "", err
	}
	logf("lab: wrote image archive %s in %v", out, time.Since(t0).Round(time.Millisecond))
	return out, fp, nil
}

// buildBaseImages writes (or reuses) the base archive (see archives).
func buildBaseImages(cache, ciliumVersion string, calico bool, logf func(string, ...any)) (string, string, error) {
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
			// agnhost's porter serves TLS with these, from its working
			// directory, as in upstream's image.
			"/localhost.crt": filepath.Join(dp, "agnhost", "localhost.crt"),
			"/localhost.key": filepath.Join(dp, "agnhost", "localhost.key"),
		},
		Trees:    map[string]string{},
		Symlinks: map[string]string{"/agnhost": "/usr/local/bin/agnhost"},
	}
	images := []image.Image{
		{Names: []string{Images.Pause, E2ERegistry + "/pause:3.10.1"}, Entrypoint: []string{"/usr/local/bin/agnhost", "pause"}},
		{Names: []string{Images.Flannel}, Entrypoint: []string{"/opt/bin/flanneld"}},
		{Names: []string{Images.FlannelCNI}, Entrypoint: []string{"/bin/sh"}},
		{Names: []string{Images.KubeProxy}, Entrypoint: []string{"/usr/local/bin/kube-proxy"}},
		{Names: []string{Images.CoreDNS}, Entrypoint: []string{"/coredns"}},
		// As upstream's agnhost image: the e2e suite's exec pods give no
		// arguments and expect it to pause.
		{Names: []string{Images.Agnhost, E2ERegistry + "/agnhost:2.56"}, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}},
		// The e2e suite's DNS queriers (dig, from the rootfs) and shells.
		{Names: []string{E2ERegistry + "/jessie-dnsutils:1.7", E2ERegistry + "/busybox:1.37.0-1"}, Cmd: []string{"/bin/sh"}},
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
	for i := range images {
		images[i].Layers = []int{0, 1}
	}
	layers := []image.Layer{rootfs, files}
	// One archive of each kind (with Calico's images or without) is kept,
	// so that the sources of one make test-datapath, which alternate
	// kinds, each write theirs once (1.5 min a write while the CPU is busy).
	kind := "lab-"
	if calico {
		l, ims, err := calicoImages(dp)
		if err != nil {
			return "", "", err
		}
		layers = append(layers, l)
		images = append(images, ims...)
		kind = "lab-calico-"
	}
	return writeArchive(dp, kind, layers, images, logf)
}
