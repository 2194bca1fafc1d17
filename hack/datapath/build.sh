#!/usr/bin/env bash
# Builds everything the real-datapath lab (test/e2e/lab, test/e2e/datapath) needs into
# $E2E_CACHE/datapath, on top of what hack/e2e/build-tools.sh builds:
#
#   bin/{kubelet,kube-proxy,agnhost}       k8s.io/kubernetes (hack/e2e/kube), and
#   agnhost/localhost.{crt,key}            its porter's TLS pair, as its image has
#   bin/flanneld                           github.com/flannel-io/flannel
#   bin/flannel                            the flannel CNI plugin
#   bin/coredns                            github.com/coredns/coredns with kubeadm's
#                                          Corefile plugins only (hack/datapath/coredns)
#   cilium/<v>/bin/cilium-*                github.com/cilium/cilium (hack/datapath/cilium-<minor>),
#                                          v = the plugin's default Cilium
#   cilium/<v>/{bpf,scripts}               the C datapath and the image's scripts
#   calico/bin/{calico-node,calico,install,kube-controllers,check-status}
#                                          github.com/projectcalico/calico (hack/datapath/calico)
#   calico/manifests/{calico-vxlan,canal}.yaml, calico/felix.cfg
#                                          the same module's manifests, unchanged
#   bin/e2e-network.test                   Kubernetes' e2e suite with its network tests
#                                          only (hack/datapath/e2e-network)
#   rootfs/                                a Debian rootfs (debootstrap) with
#                                          iproute2, iptables, ipset and clang/llc
#                                          for the images
#
# The lab assembles its images from these (test/e2e/lab/images.go) and imports
# them into each node's containerd: no registry is used. Every artefact has a
# stamp with the pin it was built from and is skipped when it matches.
# Builds run niced, one after another: a go build of these trees keeps both
# cores busy on its own.
#
# Usage: hack/datapath/build.sh [step...]
#   steps: rootfs kube flannel coredns cilium calico e2e (default: all)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_CACHE="${E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cni-migrate}"
OUT="$E2E_CACHE/datapath"
BIN="$OUT/bin"
STAMPS="$E2E_CACHE/stamps"
mkdir -p "$BIN" "$STAMPS"

KUBE_VERSION="v1.34.4"      # hack/e2e/kube/go.mod
FLANNEL_VERSION="v0.28.4"   # hack/datapath/flannel/go.mod
CNI_PLUGINS_VERSION="v0.9.1" # hack/datapath/cni-plugins/go.mod
COREDNS_VERSION="v1.12.1"   # hack/datapath/coredns/go.mod
CALICO_VERSION="v3.31.0"    # hack/datapath/calico/go.mod (the monorepo's pseudo-version of that release)
# Cilium versions built for the lab: VERSION:scratch-module-directory. By
# default the release the plugin installs when the user names none
# (plugin/ciliumver DefaultVersion, which `kubectl cni-migrate version -o
# json` reports and the lab's tests follow), from hack/datapath/cilium-MINOR.
CILIUM_DEFAULT="$(sed -n 's/^const DefaultVersion = "\(.*\)"$/\1/p' "$HERE/../../plugin/ciliumver/ciliumver.go")"
[[ -n "$CILIUM_DEFAULT" ]] || { echo "no DefaultVersion in plugin/ciliumver/ciliumver.go" >&2; exit 1; }
CILIUM_BUILDS="${CILIUM_BUILDS:-$CILIUM_DEFAULT:cilium-${CILIUM_DEFAULT%.*}}"
DEBIAN_SUITE="bookworm"
ROOTFS_PACKAGES="iproute2 iptables ipset conntrack kmod ca-certificates procps curl wget netcat-openbsd bind9-dnsutils clang-19 llvm-19"

export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
timed() {
	local name="$1" start end
	shift
	start=$(date +%s.%N)
	"$@"
	end=$(date +%s.%N)
	log "done  $name in $(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e-s}') s"
}
sum_of() { cat "$@" | sha256sum | cut -c1-16; }
fresh() {
	local name="$1" pin="$2"
	shift 2
	[[ -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$pin" ]] || return 1
	local f
	for f in "$@"; do [[ -e "$f" ]] || return 1; done
}
stamp() { printf '%s\n' "$2" >"$STAMPS/$1"; }
moddir() {
	(cd / && GOFLAGS=-mod=mod go mod download -json "$1") |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# gobuild DIR OUT PKG [LDFLAGS] [TAGS]
gobuild() {
	local dir="$1" out="$2" pkg="$3" ldflags="${4:-}" tags="${5:-}"
	(cd "$dir" && nice -n 10 go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
	mv -f "$out.tmp" "$out"
}

# The Debian mirror the host's apt uses (debootstrap needs one; none is named here).
debian_mirror() {
	local uri
	uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
	[[ -n "$uri" ]] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
	[[ -n "$uri" ]] || { log "no Debian mirror in /etc/apt sources"; exit 1; }
	printf '%s\n' "$uri"
}

build_rootfs() {
	local pin="rootfs $DEBIAN_SUITE $ROOTFS_PACKAGES v1"
	if fresh rootfs "$pin" "$OUT/rootfs/usr/bin/clang"; then log "skip  rootfs"; return; fi
	command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install debootstrap"; exit 1; }
	local tmp="$OUT/rootfs.tmp" mirror
	mirror="$(debian_mirror)"
	rm -rf "$tmp"
	log "debootstrap $DEBIAN_SUITE (minbase)"
	timed debootstrap nice -n 10 debootstrap --variant=minbase "$DEBIAN_SUITE" "$tmp" "$mirror" >"$OUT/debootstrap.log" 2>&1 ||
		{ tail -20 "$OUT/debootstrap.log" >&2; exit 1; }
	mount -t proc proc "$tmp/proc"
	trap 'umount "$tmp/proc" 2>/dev/null || true' RETURN
	log "install $ROOTFS_PACKAGES into the rootfs"
	timed rootfs-packages chroot "$tmp" env DEBIAN_FRONTEND=noninteractive \
		bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $ROOTFS_PACKAGES && apt-get clean && rm -rf /var/lib/apt/lists/*" \
		>>"$OUT/debootstrap.log" 2>&1 || { tail -20 "$OUT/debootstrap.log" >&2; exit 1; }
	umount "$tmp/proc"
	trap - RETURN
	ln -sf clang-19 "$tmp/usr/bin/clang"
	ln -sf llc-19 "$tmp/usr/bin/llc"
	ln -sf llvm-objcopy-19 "$tmp/usr/bin/llvm-objcopy"
	rm -rf "$OUT/rootfs"
	mv "$tmp" "$OUT/rootfs"
	stamp rootfs "$pin"
}

build_kube() {
	local v="$KUBE_VERSION" major minor ld="" p c
	major="$(echo "${v#v}" | cut -d. -f1)"
	minor="$(echo "${v#v}" | cut -d. -f2)"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
	done
	local pin="kubernetes $v $(sum_of "$HERE/../e2e/kube/go.sum")"
	for c in kubelet kube-proxy; do
		if fresh "lab-$c" "$pin" "$BIN/$c"; then log "skip  $c ($v)"; continue; fi
		log "build $c ($v)"
		CGO_ENABLED=0 timed "$c" gobuild "$HERE/../e2e/kube" "$BIN/$c" "k8s.io/kubernetes/cmd/$c" "$ld"
		stamp "lab-$c" "$pin"
	done
	if ! fresh lab-agnhost "$pin" "$BIN/agnhost"; then
		log "build agnhost ($v)"
		CGO_ENABLED=0 timed agnhost gobuild "$HERE/../e2e/kube" "$BIN/agnhost" k8s.io/kubernetes/test/images/agnhost
		stamp lab-agnhost "$pin"
	else
		log "skip  agnhost ($v)"
	fi
	# The TLS certificate and key agnhost's image has for its porter (the
	# image's Dockerfile adds them from test/images/agnhost/porter).
	if ! fresh lab-agnhost-tls "$pin" "$OUT/agnhost/localhost.crt" "$OUT/agnhost/localhost.key"; then
		local src
		src="$(cd "$HERE/../e2e/kube" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
		[[ -n "$src" ]] || { log "cannot locate k8s.io/kubernetes $v"; exit 1; }
		mkdir -p "$OUT/agnhost"
		install -m 0644 "$src/test/images/agnhost/porter/localhost.crt" "$src/test/images/agnhost/porter/localhost.key" "$OUT/agnhost/"
		stamp lab-agnhost-tls "$pin"
	fi
}

# Kubernetes' e2e suite, its network tests only (hack/datapath/e2e-network):
# the lab runs its [sig-network] [Conformance] tests and NoSNAT.
build_e2e() {
	local v="$KUBE_VERSION" major minor ld="" p
	major="$(echo "${v#v}" | cut -d. -f1)"
	minor="$(echo "${v#v}" | cut -d. -f2)"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
	done
	local pin="e2e-network $v $(sum_of "$HERE/e2e-network/go.sum" "$HERE/e2e-network/e2e_test.go")"
	if fresh lab-e2e-network "$pin" "$BIN/e2e-network.test"; then log "skip  e2e-network.test ($v)"; return; fi
	log "build e2e-network.test ($v)"
	CGO_ENABLED=0 timed e2e-network.test bash -c "cd '$HERE/e2e-network' && nice -n 10 go test -c -trimpath -ldflags '-s -w $ld' -o '$BIN/e2e-network.test.tmp' ."
	mv -f "$BIN/e2e-network.test.tmp" "$BIN/e2e-network.test"
	stamp lab-e2e-network "$pin"
}

build_flannel() {
	local pin="flannel $FLANNEL_VERSION $(sum_of "$HERE/flannel/go.sum")"
	if fresh lab-flanneld "$pin" "$BIN/flanneld"; then
		log "skip  flanneld ($FLANNEL_VERSION)"
	else
		log "build flanneld ($FLANNEL_VERSION)"
		# flannel's own image builds it with CGO on (the udp backend is C).
		CGO_ENABLED=1 timed flanneld gobuild "$HERE/flannel" "$BIN/flanneld" github.com/flannel-io/flannel \
			"-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION -extldflags -static"
		stamp lab-flanneld "$pin"
	fi
	pin="cni-plugins $CNI_PLUGINS_VERSION $(sum_of "$HERE/cni-plugins/go.sum")"
	if fresh lab-flannel-cni "$pin" "$BIN/flannel"; then
		log "skip  flannel CNI plugin ($CNI_PLUGINS_VERSION)"
	else
		log "build flannel CNI plugin ($CNI_PLUGINS_VERSION)"
		CGO_ENABLED=0 timed flannel-cni gobuild "$HERE/cni-plugins" "$BIN/flannel" \
			github.com/containernetworking/plugins/plugins/meta/flannel
		stamp lab-flannel-cni "$pin"
	fi
}

build_coredns() {
	local pin="coredns $COREDNS_VERSION $(sum_of "$HERE/coredns/go.sum" "$HERE/coredns/main.go")"
	if fresh lab-coredns "$pin" "$BIN/coredns"; then log "skip  coredns ($COREDNS_VERSION)"; return; fi
	log "build coredns ($COREDNS_VERSION)"
	CGO_ENABLED=0 timed coredns gobuild "$HERE/coredns" "$BIN/coredns" .
	stamp lab-coredns "$pin"
}

build_cilium_one() {
	local v="$1" mod="$HERE/$2" dst="$OUT/cilium/$1"
	if ! grep -q "^[[:space:]]*github.com/cilium/cilium v$v\b" "$mod/go.mod" 2>/dev/null; then
		log "no scratch module for Cilium $v: hack/datapath/$2/go.mod must require github.com/cilium/cilium v$v" \
			"(copy hack/datapath/cilium-* and run go get -tool for v$v there; see its go.mod)"
		exit 1
	fi
	local pin="cilium v$v $(sum_of "$mod/go.sum")"
	local ld="-X github.com/cilium/cilium/pkg/version.ciliumVersion=$v"
	local names=(cilium-agent cilium-operator-generic cilium-cni cilium-dbg cilium-health cilium-health-responder cilium-mount cilium-sysctlfix)
	local pkgs=(daemon operator plugins/cilium-cni cilium-dbg cilium-health cilium-health/responder tools/mount tools/sysctlfix)
	local tags=(osusergo osusergo,ipam_provider_operator osusergo osusergo osusergo osusergo osusergo osusergo)
	mkdir -p "$dst/bin"
	local i
	for i in "${!names[@]}"; do
		local n="${names[$i]}"
		if fresh "lab-$n-$v" "$pin" "$dst/bin/$n"; then log "skip  $n ($v)"; continue; fi
		log "build $n ($v)"
		CGO_ENABLED=0 timed "$n $v" gobuild "$mod" "$dst/bin/$n" "github.com/cilium/cilium/${pkgs[$i]}" "$ld" "${tags[$i]}"
		stamp "lab-$n-$v" "$pin"
	done
	if ! fresh "lab-cilium-src-$v" "$pin" "$dst/bpf/bpf_lxc.c" "$dst/scripts/install-plugin.sh"; then
		local src
		src="$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/cilium/cilium)"
		[[ -n "$src" ]] || { log "cannot locate github.com/cilium/cilium@v$v"; exit 1; }
		rm -rf "$dst/bpf" "$dst/scripts"
		cp -R "$src/bpf" "$dst/bpf"
		mkdir -p "$dst/scripts"
		cp "$src/images/cilium/init-container.sh" "$src/plugins/cilium-cni/install-plugin.sh" \
			"$src/plugins/cilium-cni/cni-uninstall.sh" "$dst/scripts/"
		chmod -R u+w "$dst/bpf" "$dst/scripts"
		chmod +x "$dst/scripts/"*.sh
		stamp "lab-cilium-src-$v" "$pin"
	fi
}

build_cilium() {
	local b
	for b in $CILIUM_BUILDS; do build_cilium_one "${b%%:*}" "${b#*:}"; done
}

# Calico v3.31.0 from the monorepo, cgo-free (felix's BPF parts are stubs
# then: the lab's images set FELIX_DebugSkipCTLBCleanup and
# FELIX_XDPENABLED so felix in iptables mode never calls them), and the
# module's own manifests and felix.cfg for the lab to apply.
build_calico() {
	local mod="$HERE/calico" dst="$OUT/calico"
	local pin="calico $CALICO_VERSION $(sum_of "$mod/go.sum" "$mod/go.mod")"
	local ld="-X github.com/projectcalico/calico/pkg/buildinfo.Version=$CALICO_VERSION"
	local names=(calico-node calico install kube-controllers check-status)
	local pkgs=(node/cmd/calico-node cni-plugin/cmd/calico cni-plugin/cmd/install kube-controllers/cmd/kube-controllers kube-controllers/cmd/check-status)
	mkdir -p "$dst/bin"
	local i
	for i in "${!names[@]}"; do
		local n="${names[$i]}"
		if fresh "lab-calico-$n" "$pin" "$dst/bin/$n"; then log "skip  calico $n ($CALICO_VERSION)"; continue; fi
		log "build calico $n ($CALICO_VERSION)"
		CGO_ENABLED=0 timed "calico $n" gobuild "$mod" "$dst/bin/$n" "github.com/projectcalico/calico/${pkgs[$i]}" "$ld"
		stamp "lab-calico-$n" "$pin"
	done
	if ! fresh lab-calico-manifests "$pin" "$dst/manifests/calico-vxlan.yaml" "$dst/manifests/canal.yaml" "$dst/felix.cfg"; then
		local src
		src="$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/projectcalico/calico)"
		[[ -n "$src" ]] || { log "cannot locate github.com/projectcalico/calico for $CALICO_VERSION"; exit 1; }
		mkdir -p "$dst/manifests"
		install -m 0644 "$src/manifests/calico-vxlan.yaml" "$src/manifests/canal.yaml" "$dst/manifests/"
		install -m 0644 "$src/node/filesystem/etc/calico/felix.cfg" "$dst/felix.cfg"
		stamp lab-calico-manifests "$pin"
	fi
}

main() {
	local steps=("$@")
	[[ ${#steps[@]} -gt 0 ]] || steps=(rootfs kube flannel coredns cilium calico e2e)
	log "datapath tools into $OUT ($(go version))"
	local s
	for s in "${steps[@]}"; do
		case "$s" in
		rootfs) build_rootfs ;;
		kube) build_kube ;;
		flannel) build_flannel ;;
		coredns) build_coredns ;;
		cilium) build_cilium ;;
		calico) build_calico ;;
		e2e) build_e2e ;;
		*) log "unknown step $s"; exit 2 ;;
		esac
	done
	log "datapath tools ready in $OUT"
}

timed total main "$@"
