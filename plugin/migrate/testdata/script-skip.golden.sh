#!/usr/bin/env bash
# The per-node steps of Cilium's dual-overlay migration, as plain kubectl commands.
#
# Each step records its phase on the node (annotation cni-migrate.io/phase), and a re-run
# continues after the last recorded phase, as the plugin does: the plugin and
# this script can resume each other's work. Review it, then run it with bash.
set -euo pipefail

# annotation NODE KEY: the value of a cni-migrate.io/ annotation of NODE ("" if unset)
annotation() { kubectl get node "$1" -o jsonpath="{.metadata.annotations.cni-migrate\.io/$2}"; }

# record NODE PHASE [ANNOTATION=VALUE...]: record that NODE completed PHASE
record() {
  local node=$1 phase=$2
  shift 2
  kubectl annotate node "$node" --overwrite "cni-migrate.io/phase=$phase" "cni-migrate.io/phase-time=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$@"
}

# wait_new_agent NODE OLD_UIDS SECONDS: wait until a Cilium agent pod on NODE
# whose UID is not in OLD_UIDS is Ready
wait_new_agent() {
  local node=$1 old=" $2 " deadline=$((SECONDS + $3)) pod
  while ((SECONDS < deadline)); do
    for pod in $(kubectl -n kube-system get pod -l k8s-app=cilium --field-selector spec.nodeName="$node" \
        -o jsonpath='{range .items[*]}{.metadata.uid}/{.metadata.name}{"\n"}{end}'); do
      if [[ $old != *" ${pod%%/*} "* ]] &&
        kubectl -n kube-system wait --for=condition=Ready "pod/${pod#*/}" --timeout="$((deadline - SECONDS + 1))s"; then
        return 0
      fi
    done
    sleep 2
  done
  echo "error: the Cilium agent on node $node is not Ready after $3s" >&2
  exit 11
}

# wait_agent_rebooted NODE SECONDS: wait until the Cilium agent on NODE is
# Ready in another container than the one recorded before the reboot (the
# agent pod shows the old boot's Ready until the kubelet reports on it
# again); any Ready agent when none was recorded
wait_agent_rebooted() {
  local node=$1 old deadline=$((SECONDS + $2)) id ready
  old=$(annotation "$node" agent-container)
  while ((SECONDS < deadline)); do
    while read -r ready id; do
      if [[ $ready == True && ( -z $old || $id != "$old" ) ]]; then return 0; fi
    done < <(kubectl -n kube-system get pod -l k8s-app=cilium --field-selector spec.nodeName="$node" \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[?(@.name=="cilium-agent")].containerID}{"\n"}{end}')
    sleep 2
  done
  echo "error: the Cilium agent on node $node is not Ready after $2s" >&2
  exit 11
}

# wait_reboot NODE OLD_BOOT_ID SECONDS: wait until NODE reports another bootID
wait_reboot() {
  local node=$1 old=$2 deadline=$((SECONDS + $3))
  until [[ "$(kubectl get node "$node" -o jsonpath='{.status.nodeInfo.bootID}')" != "$old" ]]; do
    if ((SECONDS >= deadline)); then
      echo "error: node $node did not reboot within $3s (bootID still $old)" >&2
      exit 13
    fi
    sleep 5
  done
}

# in_pool IP CIDR...: whether the IPv4 address IP is inside one of the CIDRs
ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
in_pool() {
  local ip=$1 cidr net bits mask
  shift
  for cidr in "$@"; do
    net=${cidr%/*} bits=${cidr#*/}
    mask=$(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
    if ((($(ip2int "$ip") & mask) == ($(ip2int "$net") & mask))); then return 0; fi
  done
  return 1
}

# Before anything changes: the CiliumNodeConfig that hands labelled nodes to
# Cilium must exist. (The plugin also checks that Cilium is in migration mode,
# that the config selects the label and that workers go before control planes.)
kubectl -n kube-system get ciliumnodeconfigs.cilium.io migrate >/dev/null
pool=$(kubectl -n kube-system get configmap cilium-config -o jsonpath='{.data.cluster-pool-ipv4-cidr}')
pool=${pool//,/ }

########## node ip-10-0-1-5.eu-west-1.compute.internal
case "$(annotation ip-10-0-1-5.eu-west-1.compute.internal phase)" in
"")
  # 1. cordon, after recording whether the node was cordoned before
  if [[ -z "$(annotation ip-10-0-1-5.eu-west-1.compute.internal was-unschedulable)" ]]; then
    was=$(kubectl get node ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.spec.unschedulable}')
    kubectl annotate node ip-10-0-1-5.eu-west-1.compute.internal --overwrite "cni-migrate.io/was-unschedulable=${was:-false}" cni-migrate.io/boot-id- cni-migrate.io/reboot-
  fi
  kubectl cordon ip-10-0-1-5.eu-west-1.compute.internal
  record ip-10-0-1-5.eu-west-1.compute.internal cordoned
  ;&
cordoned)
  # 2. drain: DaemonSet pods stay, the others are evicted (PodDisruptionBudgets honoured)
  kubectl drain ip-10-0-1-5.eu-west-1.compute.internal --ignore-daemonsets --timeout=0s --disable-eviction --force
  record ip-10-0-1-5.eu-west-1.compute.internal drained
  ;&
drained)
  # 3. label: the CiliumNodeConfig migrate now selects the node
  kubectl label node ip-10-0-1-5.eu-west-1.compute.internal example.com/cilium=yes --overwrite
  record ip-10-0-1-5.eu-west-1.compute.internal labelled
  ;&
labelled)
  # 4. restart the Cilium agent so that it reads the CiliumNodeConfig, and wait for the new one
  old=$(kubectl -n kube-system get pod -l k8s-app=cilium --field-selector spec.nodeName=ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.items[*].metadata.uid}')
  kubectl -n kube-system delete pod -l k8s-app=cilium --field-selector spec.nodeName=ip-10-0-1-5.eu-west-1.compute.internal --wait=true
  wait_new_agent ip-10-0-1-5.eu-west-1.compute.internal "$old" 180
  record ip-10-0-1-5.eu-west-1.compute.internal agent-restarted
  ;&
agent-restarted)
  # 5. reboot: skipped on request. The old CNI's interfaces and iptables rules stay
  # on the node until it next reboots; pods it runs keep their old addresses until restarted.
  record ip-10-0-1-5.eu-west-1.compute.internal rebooted cni-migrate.io/reboot=skip
  ;&
rebooted)
  # 6. verify: the agent is Ready, and a probe pod pinned to the node gets an
  # address in Cilium's pod CIDR and reaches the API server (the plugin also
  # waits for the old CNI's pod on the node to be Ready and has the probe
  # reach the old network; this script, written without reading the
  # cluster's CNI, does not: check both before the uncordon)
  wait_agent_rebooted ip-10-0-1-5.eu-west-1.compute.internal 180
  kubectl -n kube-system delete job cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal --ignore-not-found --wait=true
  kubectl create -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata:
  annotations:
    cni-migrate.io/probe-node: ip-10-0-1-5.eu-west-1.compute.internal
  labels:
    app.kubernetes.io/component: cni-migrate-probe
    app.kubernetes.io/managed-by: kubectl-cni-migrate
  name: cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal
  namespace: kube-system
spec:
  activeDeadlineSeconds: 120
  backoffLimit: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/component: cni-migrate-probe
        app.kubernetes.io/managed-by: kubectl-cni-migrate
    spec:
      automountServiceAccountToken: false
      containers:
      - command:
        - sh
        - -c
        - |-
          ip -br addr 2>/dev/null || true
          curl -sSk --max-time 10 "https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/healthz" || exit
          echo
          [ -n "${OLD_NETWORK_ADDR:-}" ] || exit 0
          until out=$(curl -sSk --connect-timeout 2 --max-time 4 -o /dev/null "https://${OLD_NETWORK_ADDR}:10250/healthz" 2>&1) || case "$out" in *refused*) true ;; *) false ;; esac; do
            echo "old network: ${OLD_NETWORK_ADDR}: $out"
            sleep 1
          done
          echo "old network: reached ${OLD_NETWORK_ADDR}"
        image: curlimages/curl:8.11.1
        name: probe
      nodeName: ip-10-0-1-5.eu-west-1.compute.internal
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      tolerations:
      - operator: Exists
  ttlSecondsAfterFinished: 600
EOF
  if ! kubectl -n kube-system wait --for=condition=Complete job/cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal --timeout=150s; then
    echo "error: the probe on node ip-10-0-1-5.eu-west-1.compute.internal failed; see kubectl -n kube-system logs job/cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal (the node stays cordoned)" >&2
    exit 12
  fi
  ip=$(kubectl -n kube-system get pod -l job-name=cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.items[0].status.podIP}')
  if ! in_pool "$ip" $pool; then
    echo "error: the probe pod on node ip-10-0-1-5.eu-west-1.compute.internal got address $ip, outside Cilium's pod CIDR $pool (the node stays cordoned)" >&2
    exit 12
  fi
  kubectl -n kube-system delete job cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal --wait=true
  record ip-10-0-1-5.eu-west-1.compute.internal verified
  ;&
verified)
  # 7. uncordon, unless the node was cordoned before the migration
  if [[ "$(annotation ip-10-0-1-5.eu-west-1.compute.internal was-unschedulable)" != true ]]; then
    kubectl uncordon ip-10-0-1-5.eu-west-1.compute.internal
  fi
  record ip-10-0-1-5.eu-west-1.compute.internal done
  echo "node ip-10-0-1-5.eu-west-1.compute.internal: migrated"
  ;;
done)
  echo "node ip-10-0-1-5.eu-west-1.compute.internal: already migrated"
  ;;
*)
  echo "error: node ip-10-0-1-5.eu-west-1.compute.internal has an unknown phase $(annotation ip-10-0-1-5.eu-west-1.compute.internal phase)" >&2
  exit 1
  ;;
esac
