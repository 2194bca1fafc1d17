#!/usr/bin/env bash
# make demo on a machine that can run the real-datapath lab: three real
# nodes (network namespaces with their own kubelet, containerd and kernel
# datapath, test/e2e/lab) moved from Flannel to Cilium node by node with the
# built plugin, while the lab's monitor probes every pod pair and Service;
# the downtime tables and the timeline are printed at the end.
#
#   hack/demo-real.sh --check   exit 0 when this machine can run the lab,
#                               else print why (make demo then runs the
#                               simulated demo, hack/demo.sh)
#
# Environment (set by the Makefile): BIN_DIR (the plugin), E2E_CACHE,
# DEMO_DIR, E2E_ROOT (the repository).
set -euo pipefail

check() {
	local why=()
	[ "$(id -u)" = 0 ] || why+=("it needs root (the lab makes network namespaces, cgroups and mounts)")
	local c
	for c in unshare nsenter ip iptables; do
		command -v "$c" >/dev/null || why+=("$c is missing")
	done
	# The lab's kubelets run in cgroup v1 mode (test/e2e/lab/cgroup.go).
	[ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/cpu ] ||
		why+=("the lab's kubelets need the cgroup v1 hierarchies (cpu, memory, ...) under /sys/fs/cgroup")
	command -v apt-get >/dev/null || why+=("the lab's packages (containerd, runc, CNI plugins) come from Debian's apt")
	if [ ${#why[@]} -eq 0 ]; then
		# The kernel features the lab's nodes use: network namespaces and
		# VXLAN devices (Flannel's and Cilium's tunnels).
		local ns="cni-migrate-democheck-$$"
		if ! ip netns add "$ns" 2>/dev/null; then
			why+=("cannot create a network namespace")
		else
			ip -n "$ns" link add vxdemo type vxlan id 42 dstport 4789 dev lo 2>/dev/null ||
				why+=("the kernel has no VXLAN devices (modprobe vxlan)")
			ip netns del "$ns" 2>/dev/null || true
		fi
	fi
	if [ ${#why[@]} -gt 0 ]; then
		local w
		for w in "${why[@]}"; do echo "the real-datapath demo cannot run here: $w" >&2; done
		return 1
	fi
}

if [ "${1:-}" = --check ]; then
	check
	exit
fi

: "${BIN_DIR:?}" "${E2E_CACHE:?}" "${DEMO_DIR:?}" "${E2E_ROOT:?}"
bold=$'\e[1m'; off=$'\e[0m'
if [ -n "${NO_COLOR:-}" ] || [ ! -t 1 ]; then bold=; off=; fi

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
transcript="$DEMO_DIR/transcript.txt"
: >"$transcript"
printf '%sThe real-datapath demo%s: three real nodes on this machine (network namespaces, each with its own kubelet,\n' "$bold" "$off"
echo "containerd and kernel datapath) run Flannel; kubectl cni-migrate moves them to Cilium node by node while the"
echo "lab's monitor probes every pod pair and Service twice a second. (make demo-sim: the quick simulated demo.)"
echo "The commands and their output follow as they run; the full test log: $DEMO_DIR/test.log"

tail -n +1 -F "$transcript" 2>/dev/null &
tailer=$!
trap 'kill $tailer 2>/dev/null || true' EXIT
rc=0
(cd "$E2E_ROOT/test/e2e" && GOWORK=off E2E_DATAPATH=1 E2E_CACHE="$E2E_CACHE" PLUGIN_BIN_DIR="$BIN_DIR" \
	E2E_DEMO_TRANSCRIPT="$transcript" E2E_DATAPATH_REPORT_DIR="$DEMO_DIR" \
	go test -count=1 -timeout 60m -v -run '^TestDemo$' ./datapath/ >"$DEMO_DIR/test.log" 2>&1) || rc=$?
sleep 1
kill $tailer 2>/dev/null || true

results="$DEMO_DIR/datapath-results-flannel.md"
if [ -f "$results" ]; then
	printf '\n%s==> What the monitor measured%s\n\n' "$bold" "$off"
	# The totals, the users' verdict, the phases and each node's window.
	awk '/^### (Totals|What the application|Phases|Each node.s window)/{p=1} /^### /&&!/^### (Totals|What the application|Phases|Each node.s window)/{p=0} /^#### /{p=0} p' "$results"
	echo
	echo "The whole report: $results"
	echo "The timeline (open it in a browser): $DEMO_DIR/datapath-timeline-flannel.svg"
fi
if [ "$rc" -ne 0 ]; then
	echo "the demo's migration failed (exit $rc): see $DEMO_DIR/test.log" >&2
	exit "$rc"
fi
printf '\n%sDone%s: the three nodes went from Flannel to Cilium, node by node.\n' "$bold" "$off"
