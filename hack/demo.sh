#!/usr/bin/env bash
# make demo-sim (and make demo where the real-datapath lab cannot run):
# start a local simulated Flannel cluster (real control plane, kwok
# nodes, the Cilium simulation: see test/e2e/README.md) and run every step of
# the migration that kubectl cni-migrate has, printing each command first.
#
# Environment (set by the Makefile): BIN_DIR (the plugin), E2E_CACHE (tools),
# E2E_CLUSTER_BIN, DEMO_DIR, KUBECTL, KEEP (1: leave the cluster running).
set -euo pipefail

: "${BIN_DIR:?}" "${E2E_CACHE:?}" "${E2E_CLUSTER_BIN:?}" "${DEMO_DIR:?}"
KUBECTL=${KUBECTL:-kubectl}
NODES=${DEMO_NODES:-4}
CILIUM=${DEMO_CILIUM:-1.20.2}

export PATH="$BIN_DIR:$PATH"
export KUBECONFIG="$DEMO_DIR/cluster/kubeconfig"
export NO_COLOR=${NO_COLOR:-}

bold=$'\e[1m'; dim=$'\e[2m'; off=$'\e[0m'
if [ -n "$NO_COLOR" ] || [ ! -t 1 ]; then bold=; dim=; off=; fi

step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
note() { printf '%s# %s%s\n' "$dim" "$*" "$off"; }
# run prints a command, then runs it; a non-zero exit is shown, not fatal,
# when the command is expected to report problems (plan exits 3 on FAIL).
run() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; "$@"; }

stop_cluster() {
  if [ "${KEEP:-}" = 1 ]; then
    step "The cluster keeps running"
    echo "export KUBECONFIG=$KUBECONFIG"
    echo "stop it with: $E2E_CLUSTER_BIN down --dir $DEMO_DIR/cluster   (or make e2e-down E2E_DIR=$DEMO_DIR/cluster)"
  else
    "$E2E_CLUSTER_BIN" down --dir "$DEMO_DIR/cluster" >/dev/null 2>&1 || true
  fi
}

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/values"

printf '%sThe simulated demo%s: a real control plane with kwok nodes and a simulated Cilium; no packet moves
' "$bold" "$off"
echo "(make demo-real, as root: real nodes, a real Cilium and the downtime monitor)."
step "Start a local cluster: $NODES kwok nodes running Flannel from its upstream manifest"
note "control plane: etcd, kube-apiserver, controller-manager, scheduler (real, on 127.0.0.1)"
"$E2E_CLUSTER_BIN" up --dir "$DEMO_DIR/cluster" --nodes "$NODES" --name demo 2>&1 | sed 's/^/  /'
trap stop_cluster EXIT
run "$KUBECTL" get nodes -o wide

step "1. Plan: what runs today, what is proposed, is it safe?"
run "$KUBECTL" cni-migrate plan

step "2. Generate the Helm values"
run "$KUBECTL" cni-migrate values --output-dir "$DEMO_DIR/values"
run cat "$DEMO_DIR/values/values-initial.yaml"
run diff -u "$DEMO_DIR/values/values-initial.yaml" "$DEMO_DIR/values/values-final.yaml" || true

step "3. Install Cilium $CILIUM beside Flannel with values-initial.yaml"
note "simulation: the Cilium operator would register its CRDs; here they are applied from the chart's module"
"$KUBECTL" apply --server-side -f "$E2E_CACHE/cilium/$CILIUM/crds/v2" >/dev/null
[ -d "$E2E_CACHE/cilium/$CILIUM/crds/v2alpha1" ] && "$KUBECTL" apply --server-side -f "$E2E_CACHE/cilium/$CILIUM/crds/v2alpha1" >/dev/null
"$KUBECTL" wait --for condition=Established crd --all --timeout 60s >/dev/null
note "users run: helm install cilium cilium/cilium --version $CILIUM --namespace kube-system --values values-initial.yaml"
run "$E2E_CACHE/bin/helm" install cilium "$E2E_CACHE/cilium/$CILIUM/chart" --namespace kube-system \
  --values "$DEMO_DIR/values/values-initial.yaml" --wait --timeout 5m
run "$KUBECTL" -n kube-system rollout status ds/cilium --timeout 2m

step "4. Plan again: Cilium now runs in migration mode"
run "$KUBECTL" cni-migrate plan

step "5. Apply the CiliumNodeConfig"
run "$KUBECTL" cni-migrate nodeconfig --apply --dry-run=server -o yaml
run "$KUBECTL" cni-migrate nodeconfig --apply

# The demo's reboot: a new bootID, as the kubelet reports after a real reboot.
reboot="$DEMO_DIR/reboot-node"
cat > "$reboot" <<'SCRIPT'
#!/usr/bin/env bash
# Simulated reboot for the demo: a new bootID, as the kubelet reports after a
# reboot, and the pods cni-migrate marked NotReady for the reboot Ready again,
# as the kubelet reports them once the node is back.
set -euo pipefail
kubectl patch node "$1" --subresource=status --type=merge -p "{\"status\":{\"nodeInfo\":{\"bootID\":\"$(cat /proc/sys/kernel/random/uuid)\"}}}" >/dev/null
kubectl get pods -A --field-selector spec.nodeName="$1" \
  -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name} {.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
  while read -r ns name reason; do
    [[ $reason == CNIMigrateReboot ]] || continue
    kubectl -n "$ns" patch pod "$name" --subresource=status --type=strategic >/dev/null \
      -p '{"status":{"conditions":[{"type":"Ready","status":"True","reason":null,"message":null}]}}'
  done
SCRIPT
chmod +x "$reboot"

step "6. Migrate one worker node"
note "plan warned that PodDisruptionBudget demo/payments allows no disruption: relax the budgets, or the drain waits"
run "$KUBECTL" -n demo patch pdb payments --type merge -p '{"spec":{"maxUnavailable":2}}'
run "$KUBECTL" -n demo patch pdb db --type merge -p '{"spec":{"maxUnavailable":2}}'
note "simulation: the reboot command gives the node a new bootID, as a real reboot would (users pass e.g. 'ssh {{.Node}} sudo systemctl reboot')"
run "$KUBECTL" cni-migrate node worker-1 --timeout 2m --reboot-command "$reboot {{.Node}}"
run "$KUBECTL" get pods -A -o wide --field-selector spec.nodeName=worker-1

if "$KUBECTL" cni-migrate status --help >/dev/null 2>&1; then
  step "7. Status halfway"
  run "$KUBECTL" cni-migrate status
fi

step "8. Roll out the other nodes, two workers at a time, the control plane last"
run "$KUBECTL" cni-migrate rollout --batch 2 --timeout 2m --reboot-command "$reboot {{.Node}}"

if "$KUBECTL" cni-migrate status --help >/dev/null 2>&1; then
  step "9. Status after the rollout"
  run "$KUBECTL" cni-migrate status
fi

step "10. Finalize: final values, helm upgrade, restart Cilium, remove the CiliumNodeConfig and Flannel"
note "without --yes, finalize writes values-final.yaml and prints the helm upgrade for you to run (exit 16)"
run "$KUBECTL" cni-migrate finalize --output-dir "$DEMO_DIR/values" || true
note "users run: kubectl cni-migrate finalize --yes --remove-old-cni (helm on PATH, chart cilium/cilium)"
run "$KUBECTL" cni-migrate finalize --output-dir "$DEMO_DIR/values" --yes --remove-old-cni \
  --helm "$E2E_CACHE/bin/helm" --chart "$E2E_CACHE/cilium/$CILIUM/chart"
run "$KUBECTL" get ds -A
run "$KUBECTL" cni-migrate plan || true

step "Done"
echo "The cluster went from Flannel to Cilium, node by node. KEEP=1 make demo-sim leaves it running."
