#!/usr/bin/env bash
# Cold start of the plugin: `kubectl-cni_migrate --help` (the binary alone and
# through kubectl's plugin lookup) against `kubectl version --client`, RUNS
# times each, interleaved; prints the median and the 90th percentile in ms.
# Usage: hack/bench/help.sh BIN [RUNS]
set -euo pipefail
bin=$1 runs=${2:-50}
kubectl=${KUBECTL:-kubectl}
dir=$(cd "$(dirname "$bin")" && pwd)
declare -A samples
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
names=("plugin --help" "kubectl cni-migrate --help" "kubectl version --client")
for ((i = 0; i < runs; i++)); do
  samples[0]+="$(ms "$bin" --help) "
  samples[1]+="$(PATH="$dir:$PATH" ms "$kubectl" cni-migrate --help) "
  samples[2]+="$(ms "$kubectl" version --client) "
done
stat() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9+0.5)]; printf "median %4d ms  p90 %4d ms", m, p}'; }
echo "cold start, $runs runs each ($(nproc) cores, $(uname -r)):"
for i in 0 1 2; do
  printf '  %-28s %s\n' "${names[$i]}" "$(echo "${samples[$i]}" | stat)"
done
