#!/usr/bin/env bash
# Builds (or fetches) everything the end-to-end tests need into $E2E_CACHE:
#
#   bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kwok,helm}
#   kwok/stages/*.yaml                  kwok Stage objects (from the kwok module)
#   cilium/<version>/{chart,crds}       Cilium Helm chart and CRDs per version
#   manifests/kube-flannel.yml          upstream flannel manifest, unchanged
#   manifests/calico/*.yaml             upstream Calico manifests, unchanged (step
#                                       "calico", in the default set): calico.yaml,
#                                       calico-vxlan.yaml, canal.yaml,
#                                       tigera-operator.yaml, custom-resources.yaml
#   krew/bin/{kubectl-krew,validate-krew-manifest}
#                                       krew, for the release tests (step
#                                       "krew", not part of the default set)
#
# Everything comes from the Go module proxy: the binaries are built from the
# scratch modules next to this script (`tool` directives in their go.mod,
# every dependency pinned by their go.sum), the charts and manifests are copied out of downloaded module
# zips. The script is idempotent: each artefact has a stamp file recording the
# pin it was built from, and is skipped when the stamp matches.
#
# Usage: hack/e2e/build-tools.sh [step...]
#   steps: etcd kube kwok helm cilium flannel (default: all of these), krew
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_CACHE="${E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-cni-migrate}"

KUBE_VERSION="v1.34.4"          # must match hack/e2e/kube/go.mod
ETCD_MODULE_VERSION="v3.6.16"   # must match hack/e2e/etcd/go.mod
KWOK_VERSION="v0.8.0"           # must match hack/e2e/kwok/go.mod
HELM_VERSION="v3.19.0"          # must match hack/e2e/helm/go.mod
KREW_VERSION="v0.4.4"           # must match hack/krew/go.mod
HELM_K8S_MAJOR="1"
HELM_K8S_MINOR="34"
FLANNEL_VERSION="v0.28.4"
# github.com/projectcalico/calico@latest resolves to this pseudo-version (the
# module's tags are component tags, not releases); its manifests/ are Calico
# v3.28.5 (calico/node:v3.28.5, tigera operator v1.34.13).
CALICO_MODULE_VERSION="v1.11.0-cni-plugin.0.20250813170300-a0db560f0520"
CALICO_MANIFESTS="calico.yaml calico-vxlan.yaml canal.yaml tigera-operator.yaml custom-resources.yaml"
# Cilium versions whose chart and CRDs are staged (keep at least one < 1.16,
# which uses CiliumNodeConfig v2alpha1).
CILIUM_VERSIONS="${CILIUM_VERSIONS:-1.15.19 1.17.6 1.18.11 1.20.2}"

BIN="$E2E_CACHE/bin"
STAMPS="$E2E_CACHE/stamps"
mkdir -p "$BIN" "$STAMPS"

# The scratch modules must build exactly as pinned, whatever the caller's
# environment says.
export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED="${CGO_ENABLED:-0}"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# timed NAME CMD...: runs CMD and logs how long it took.
timed() {
	local name="$1" start end
	shift
	start=$(date +%s.%N)
	"$@"
	end=$(date +%s.%N)
	log "done  $name in $(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e-s}') s"
}

sum_of() { cat "$@" | sha256sum | cut -c1-16; }

# fresh NAME PIN [FILE...]: true when the stamp for NAME records PIN and every
# FILE exists.
fresh() {
	local name="$1" pin="$2"
	shift 2
	[[ -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$pin" ]] || return 1
	local f
	for f in "$@"; do [[ -e "$f" ]] || return 1; done
}

stamp() { printf '%s\n' "$2" >"$STAMPS/$1"; }

# moddir MODULE@VERSION: downloads a module and prints its directory in the
# module cache. Run outside any module so nothing is edited.
moddir() {
	(cd / && GOFLAGS=-mod=mod go mod download -json "$1") |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# gobuild MODDIR OUT PKG [LDFLAGS]: one go build invocation for one binary.
gobuild() {
	local mod="$1" out="$2" pkg="$3" ldflags="${4:-}"
	(cd "$HERE/$mod" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
	mv -f "$out.tmp" "$out"
}

build_etcd() {
	local pin="etcd $ETCD_MODULE_VERSION $(sum_of "$HERE/etcd/go.sum" "$HERE/etcd/main.go")"
	if fresh etcd "$pin" "$BIN/etcd"; then log "skip  etcd ($ETCD_MODULE_VERSION)"; return; fi
	log "build etcd ($ETCD_MODULE_VERSION)"
	timed etcd gobuild etcd "$BIN/etcd" .
	stamp etcd "$pin"
}

build_kube() {
	local v="$KUBE_VERSION" minor major ld=""
	major="$(echo "${v#v}" | cut -d. -f1)"
	minor="$(echo "${v#v}" | cut -d. -f2)"
	local p
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
	done
	# go.sum pins every module version, the replaced staging modules included.
	local pin="kubernetes $v $(sum_of "$HERE/kube/go.sum")"
	local c
	for c in kube-apiserver kube-controller-manager kube-scheduler; do
		if fresh "$c" "$pin" "$BIN/$c"; then log "skip  $c ($v)"; continue; fi
		log "build $c ($v)"
		timed "$c" gobuild kube "$BIN/$c" "k8s.io/kubernetes/cmd/$c" "$ld"
		stamp "$c" "$pin"
	done
}

build_kwok() {
	local pin="kwok $KWOK_VERSION $(sum_of "$HERE/kwok/go.sum")"
	if fresh kwok "$pin" "$BIN/kwok" "$E2E_CACHE/kwok/stages/pod-ready.yaml"; then
		log "skip  kwok ($KWOK_VERSION)"
		return
	fi
	log "build kwok ($KWOK_VERSION)"
	timed kwok gobuild kwok "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok
	local dir
	dir="$(moddir "sigs.k8s.io/kwok@$KWOK_VERSION")"
	[[ -n "$dir" ]] || { log "cannot locate sigs.k8s.io/kwok@$KWOK_VERSION"; exit 1; }
	rm -rf "$E2E_CACHE/kwok/stages"
	mkdir -p "$E2E_CACHE/kwok/stages"
	local s
	for s in node/fast/node-initialize.yaml \
		node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		install -m 0644 "$dir/kustomize/stage/$s" "$E2E_CACHE/kwok/stages/"
	done
	stamp kwok "$pin"
}

build_helm() {
	local pin="helm $HELM_VERSION k8s=$HELM_K8S_MAJOR.$HELM_K8S_MINOR $(sum_of "$HERE/helm/go.sum")"
	if fresh helm "$pin" "$BIN/helm"; then log "skip  helm ($HELM_VERSION)"; return; fi
	log "build helm ($HELM_VERSION)"
	timed helm gobuild helm "$BIN/helm" helm.sh/helm/v3/cmd/helm \
		"-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
	stamp helm "$pin"
}

# krew and krew's manifest validator, from the scratch module hack/krew (the
# proxy serves sigs.k8s.io/krew v0.4.4 but no version list, so `go install
# ...@v0.4.4` fails). kubectl finds krew as the plugin `kubectl-krew`.
build_krew() {
	local pin="krew $KREW_VERSION $(sum_of "$HERE/../krew/go.sum")"
	local dir="$E2E_CACHE/krew/bin"
	if fresh krew "$pin" "$dir/kubectl-krew" "$dir/validate-krew-manifest"; then
		log "skip  krew ($KREW_VERSION)"
		return
	fi
	log "build krew ($KREW_VERSION)"
	mkdir -p "$dir"
	timed kubectl-krew gobuild ../krew "$dir/kubectl-krew" sigs.k8s.io/krew/cmd/krew
	timed validate-krew-manifest gobuild ../krew "$dir/validate-krew-manifest" sigs.k8s.io/krew/cmd/validate-krew-manifest
	stamp krew "$pin"
}

stage_cilium_one() {
	local v="$1" dir dst="$E2E_CACHE/cilium/$1"
	dir="$(moddir "github.com/cilium/cilium@v$v")"
	[[ -n "$dir" ]] || { log "cannot locate github.com/cilium/cilium@v$v"; exit 1; }
	rm -rf "$dst"
	mkdir -p "$dst"
	cp -R "$dir/install/kubernetes/cilium" "$dst/chart"
	cp -R "$dir/pkg/k8s/apis/cilium.io/client/crds" "$dst/crds"
	chmod -R u+w "$dst"
}

stage_cilium() {
	local v
	for v in $CILIUM_VERSIONS; do
		if fresh "cilium-$v" "cilium v$v" "$E2E_CACHE/cilium/$v/chart/Chart.yaml" "$E2E_CACHE/cilium/$v/crds"; then
			log "skip  cilium $v"
			continue
		fi
		log "stage cilium $v chart and CRDs"
		timed "cilium-$v" stage_cilium_one "$v"
		stamp "cilium-$v" "cilium v$v"
	done
}

stage_flannel_one() {
	local dir
	dir="$(moddir "github.com/flannel-io/flannel@$FLANNEL_VERSION")"
	[[ -n "$dir" ]] || { log "cannot locate flannel@$FLANNEL_VERSION"; exit 1; }
	mkdir -p "$E2E_CACHE/manifests"
	install -m 0644 "$dir/Documentation/kube-flannel.yml" "$E2E_CACHE/manifests/kube-flannel.yml"
}

stage_flannel() {
	if fresh flannel "flannel $FLANNEL_VERSION" "$E2E_CACHE/manifests/kube-flannel.yml"; then
		log "skip  flannel manifest ($FLANNEL_VERSION)"
		return
	fi
	log "stage flannel manifest ($FLANNEL_VERSION)"
	timed flannel stage_flannel_one
	stamp flannel "flannel $FLANNEL_VERSION"
}

stage_calico_one() {
	local dir f dst="$E2E_CACHE/manifests/calico"
	dir="$(moddir "github.com/projectcalico/calico@$CALICO_MODULE_VERSION")"
	[[ -n "$dir" ]] || { log "cannot locate github.com/projectcalico/calico@$CALICO_MODULE_VERSION"; exit 1; }
	rm -rf "$dst"
	mkdir -p "$dst"
	for f in $CALICO_MANIFESTS; do
		install -m 0644 "$dir/manifests/$f" "$dst/$f"
	done
}

# Calico's and Canal's manifests, copied unchanged out of the calico module.
stage_calico() {
	local pin="calico $CALICO_MODULE_VERSION $CALICO_MANIFESTS" files=() f
	for f in $CALICO_MANIFESTS; do files+=("$E2E_CACHE/manifests/calico/$f"); done
	if fresh calico "$pin" "${files[@]}"; then
		log "skip  calico manifests ($CALICO_MODULE_VERSION)"
		return
	fi
	log "stage calico manifests ($CALICO_MODULE_VERSION)"
	timed calico stage_calico_one
	stamp calico "$pin"
}

main() {
	local steps=("$@")
	[[ ${#steps[@]} -gt 0 ]] || steps=(cilium flannel calico etcd kube kwok helm)
	log "E2E_CACHE=$E2E_CACHE ($(go version))"
	local s
	for s in "${steps[@]}"; do
		case "$s" in
		etcd) build_etcd ;;
		kube) build_kube ;;
		kwok) build_kwok ;;
		helm) build_helm ;;
		cilium) stage_cilium ;;
		flannel) stage_flannel ;;
		krew) build_krew ;;
		calico) stage_calico ;;
		*) log "unknown step $s"; exit 2 ;;
		esac
	done
	log "all tools ready in $E2E_CACHE"
}

timed total main "$@"
