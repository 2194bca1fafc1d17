#!/usr/bin/env bash
# Installs the Debian packages the real-datapath lab runs on the machine
# itself (not in its images): containerd and runc for the nodes, the
# reference CNI plugins, iproute2/iptables for the namespaces, debootstrap
# for the images' rootfs, util-linux's nsenter/unshare, curl for the
# reboot command. Idempotent: installs only what is missing.
set -euo pipefail
declare -A want=(
	[containerd]=containerd [runc]=runc [ctr]=containerd
	[debootstrap]=debootstrap [ip]=iproute2 [iptables]=iptables [ipset]=ipset
	[nsenter]=util-linux [unshare]=util-linux [curl]=curl [conntrack]=conntrack
)
missing=()
for cmd in "${!want[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap ]] || missing+=(containernetworking-plugins)
if [[ ${#missing[@]} -eq 0 ]]; then
	echo "datapath deps: all installed" >&2
	exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "datapath deps: installing ${pkgs[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
	echo "error: the real-datapath lab needs root to install ${pkgs[*]}; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
