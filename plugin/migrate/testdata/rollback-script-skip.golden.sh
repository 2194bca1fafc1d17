#!/usr/bin/env bash
# The rollback of nodes migrated with Cilium's dual-overlay migration, as plain kubectl commands.
#
# Each step records its progress on the node (annotation cni-migrate.io/rollback-phase), and a
# re-run continues after the last recorded step, as the plugin does: the plugin
# and this script can resume each other's work. The last step removes every
# cni-migrate.io/ annotation: the node is then not migrated (phase none).
# Review it, then run it with bash.
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

# record_rollback NODE PHASE [ANNOTATION=VALUE...]: record that the rollback of NODE completed PHASE
record_rollback() {
  local node=$1 phase=$2
  shift 2
  kubectl annotate node "$node" --overwrite "cni-migrate.io/rollback-phase=$phase" "cni-migrate.io/phase-time=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$@"
}

# Before anything changes: the migration must not be finalized: Cilium in
# migration mode and the CiliumNodeConfig that hands labelled nodes to Cilium
# still there. (The plugin also checks that the config selects the label, and
# not the nodes without it.)
kubectl -n kube-system get ciliumnodeconfigs.cilium.io migrate >/dev/null
if [[ "$(kubectl -n kube-system get configmap cilium-config -o jsonpath='{.data.custom-cni-conf}')" != true ]]; then
  echo "error: Cilium is not in migration mode: the migration was finalized, and a rollback node by node works only before finalize (docs/rollback.md)" >&2
  exit 15
fi
pool=$(kubectl -n kube-system get configmap cilium-config -o jsonpath='{.data.cluster-pool-ipv4-cidr}')
pool=${pool//,/ }

########## node ip-10-0-1-5.eu-west-1.compute.internal
phase=$(annotation ip-10-0-1-5.eu-west-1.compute.internal phase)
rollback=$(annotation ip-10-0-1-5.eu-west-1.compute.internal rollback-phase)
if [[ -z "$rollback" && -z "$(annotation ip-10-0-1-5.eu-west-1.compute.internal rollback-was-unschedulable)" &&
  -z "$(kubectl get node ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.metadata.labels.example\.com/cilium}')" ]]; then
  case "$phase" in
  "") rollback=not-migrated ;;
  cordoned | drained) rollback=verified ;; # the label was never set: only uncordon
  esac
fi
case "$rollback" in
not-migrated)
  echo "node ip-10-0-1-5.eu-west-1.compute.internal: not migrated; nothing to roll back"
  ;;
"")
  # 1. cordon, after recording whether the node was cordoned before the rollback
  # (a node the migration cordoned counts as it was before the migration)
  if [[ -z "$(annotation ip-10-0-1-5.eu-west-1.compute.internal rollback-was-unschedulable)" ]]; then
    was=$(kubectl get node ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.spec.unschedulable}')
    case "$phase" in
    cordoned | drained | labelled | agent-restarted | rebooted | verified)
      migration_was=$(annotation ip-10-0-1-5.eu-west-1.compute.internal was-unschedulable)
      if [[ -n "$migration_was" ]]; then was=$migration_was; fi
      ;;
    esac
    kubectl annotate node ip-10-0-1-5.eu-west-1.compute.internal --overwrite "cni-migrate.io/rollback-was-unschedulable=${was:-false}" cni-migrate.io/boot-id- cni-migrate.io/reboot-
  fi
  kubectl cordon ip-10-0-1-5.eu-west-1.compute.internal
  record_rollback ip-10-0-1-5.eu-west-1.compute.internal cordoned
  ;&
cordoned)
  # 2. drain: DaemonSet pods stay, the others are evicted (PodDisruptionBudgets honoured)
  kubectl drain ip-10-0-1-5.eu-west-1.compute.internal --ignore-daemonsets --timeout=5m0s --force
  record_rollback ip-10-0-1-5.eu-west-1.compute.internal drained
  ;&
drained)
  # 3. unlabel: the CiliumNodeConfig migrate no longer selects the node
  kubectl label node ip-10-0-1-5.eu-west-1.compute.internal example.com/cilium-
  record_rollback ip-10-0-1-5.eu-west-1.compute.internal unlabelled
  ;&
unlabelled)
  # 4. restart the Cilium agent so that it starts without the CiliumNodeConfig, and wait for the new one
  old=$(kubectl -n kube-system get pod -l k8s-app=cilium --field-selector spec.nodeName=ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.items[*].metadata.uid}')
  kubectl -n kube-system delete pod -l k8s-app=cilium --field-selector spec.nodeName=ip-10-0-1-5.eu-west-1.compute.internal --wait=true
  wait_new_agent ip-10-0-1-5.eu-west-1.compute.internal "$old" 180
  record_rollback ip-10-0-1-5.eu-west-1.compute.internal agent-restarted
  ;&
agent-restarted)
  # 5. reboot: skipped on request. Pods left on the node (DaemonSet pods) keep
  # their Cilium addresses until restarted.
  echo 'the reboot does not restore the node'\''s CNI config: Cilium'\''s agent no longer manages /etc/cni/net.d, so its 05-cilium.conflist stays there and, sorting first, keeps new pods on Cilium' >&2
  echo 'before the reboot, as root on ip-10-0-1-5.eu-west-1.compute.internal:' >&2
  echo '  rm -f /etc/cni/net.d/05-cilium.conflist' >&2
  echo '  then rename the old CNI'\''s config back: mv -n /etc/cni/net.d/NAME.cilium_bak /etc/cni/net.d/NAME (not 05-cilium.conf.cilium_bak; see docs/rollback.md)' >&2
  record_rollback ip-10-0-1-5.eu-west-1.compute.internal rebooted cni-migrate.io/reboot=skip
  ;&
rebooted)
  # 6. verify: the agent is Ready, and a probe pod pinned to the node gets an
  # address in the node's podCIDR (the old CNI's range), outside Cilium's pod CIDR
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
  if in_pool "$ip" $pool; then
    echo "error: the probe pod on node ip-10-0-1-5.eu-west-1.compute.internal got address $ip, inside Cilium's pod CIDR $pool: new pods there still use Cilium's CNI config; on the node, remove /etc/cni/net.d/05-cilium.conflist and restore the old CNI's config (the node stays cordoned)" >&2
    exit 12
  fi
  node_cidrs=
  for cidr in $(kubectl get node ip-10-0-1-5.eu-west-1.compute.internal -o jsonpath='{.spec.podCIDRs[*]}'); do
    if [[ $cidr == *.* ]]; then node_cidrs+=" $cidr"; fi
  done
  if [[ -n "$node_cidrs" ]] && ! in_pool "$ip" $node_cidrs; then
    echo "error: the probe pod on node ip-10-0-1-5.eu-west-1.compute.internal got address $ip, outside the node's podCIDR$node_cidrs, the old CNI's range (the node stays cordoned)" >&2
    exit 12
  fi
  kubectl -n kube-system delete job cni-migrate-probe-ip-10-0-1-5.eu-west-1.compute.internal --wait=true
  record_rollback ip-10-0-1-5.eu-west-1.compute.internal verified
  ;&
verified)
  # 7. uncordon, unless the node was cordoned before the rollback, and remove
  # every cni-migrate.io/ annotation: the node is not migrated any more
  was=$(annotation ip-10-0-1-5.eu-west-1.compute.internal rollback-was-unschedulable)
  if [[ -z "$was" ]]; then was=$(annotation ip-10-0-1-5.eu-west-1.compute.internal was-unschedulable); fi
  if [[ "$was" != true ]]; then
    kubectl uncordon ip-10-0-1-5.eu-west-1.compute.internal
  fi
  kubectl annotate node ip-10-0-1-5.eu-west-1.compute.internal cni-migrate.io/phase- cni-migrate.io/phase-time- cni-migrate.io/was-unschedulable- cni-migrate.io/boot-id- cni-migrate.io/agent-container- cni-migrate.io/reboot- cni-migrate.io/rollback-phase- cni-migrate.io/rollback-was-unschedulable-
  echo "node ip-10-0-1-5.eu-west-1.compute.internal: rolled back"
  ;;
*)
  echo "error: node ip-10-0-1-5.eu-west-1.compute.internal has an unknown rollback phase $rollback" >&2
  exit 1
  ;;
esac
